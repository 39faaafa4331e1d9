"""Checkpoint averaging, atomic writes, and SIGKILL safety of ``last.ckpt``."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from avsr_lightning.callbacks.atomic_checkpoint_io import atomic_torch_save
from avsr_lightning.tools.average_checkpoints import average_checkpoints, select_checkpoints
from avsr_lightning.tools.average_checkpoints import main as average_main


def _ckpt(path: Path, step: int, weight: torch.Tensor, score: float | None = None) -> Path:
    callbacks = {}
    if score is not None:
        callbacks["ModelCheckpoint{'monitor': 'val/wer', 'mode': 'min'}"] = {"monitor": "val/wer",
                                                                             "current_score": torch.tensor(score)}
    torch.save({"global_step": step, "epoch": 0, "pytorch-lightning_version": "2.6.6", "callbacks": callbacks,
                "state_dict": {"model.w": weight, "model.bn.num_batches_tracked": torch.tensor(step)},
                "optimizer_states": [{}]}, path)
    return path


def test_average_of_identical_checkpoints_is_the_same(tmp_path):
    w = torch.randn(3, 4)
    paths = [_ckpt(tmp_path / f"{i}.ckpt", i, w.clone()) for i in range(3)]
    out = average_checkpoints(paths, tmp_path / "avg.ckpt")
    assert torch.equal(out["state_dict"]["model.w"], w)
    assert "optimizer_states" not in torch.load(tmp_path / "avg.ckpt", weights_only=True)


def test_average_of_two_known_checkpoints_is_their_mean(tmp_path):
    a, b = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([3.0, 6.0, -3.0])
    _ckpt(tmp_path / "a.ckpt", 10, a)
    _ckpt(tmp_path / "b.ckpt", 20, b)
    average_main([str(tmp_path / "a.ckpt"), str(tmp_path / "b.ckpt"), "--output", str(tmp_path / "avg.ckpt")])
    avg = torch.load(tmp_path / "avg.ckpt", weights_only=True)
    assert torch.equal(avg["state_dict"]["model.w"], torch.tensor([2.0, 4.0, 0.0]))
    assert int(avg["state_dict"]["model.bn.num_batches_tracked"]) == 20 and avg["global_step"] == 20


def test_select_last_and_best(tmp_path):
    for step, score in ((1, 50.0), (2, 30.0), (3, 40.0), (4, 45.0)):
        _ckpt(tmp_path / f"s{step}.ckpt", step, torch.zeros(1), score)
    _ckpt(tmp_path / "last.ckpt", 4, torch.zeros(1), 45.0)  # a copy of step 4, must not count twice
    assert [p.name for p in select_checkpoints(tmp_path, last=2)] == ["s3.ckpt", "s4.ckpt"]
    assert [p.name for p in select_checkpoints(tmp_path, best=2)] == ["s2.ckpt", "s3.ckpt"]


def test_averaged_checkpoint_tests_and_loads(tmp_path, tr):
    cli = tr.run_cli(["fit", *tr.tiny_args(tmp_path, "video", max_steps=2,
                                            extra=["--trainer.val_check_interval", "1",
                                                   "--trainer.limit_val_batches", "1"])])
    ckpt_dir = Path(cli.trainer.checkpoint_callback.dirpath)
    chosen = select_checkpoints(ckpt_dir, last=2)
    assert [torch.load(p, weights_only=True)["global_step"] for p in chosen] == [1, 2]
    average_main(["--dir", str(ckpt_dir), "--last", "2", "--output", str(tmp_path / "avg.ckpt")])
    states = [torch.load(p, weights_only=True)["state_dict"] for p in chosen]
    key = "model.ctc.ctc_lo.weight"
    assert torch.allclose(torch.load(tmp_path / "avg.ckpt", weights_only=True)["state_dict"][key],
                          (states[0][key] + states[1][key]) / 2)
    test = tr.run_cli(["test", *tr.tiny_args(tmp_path, "video"), "--ckpt_path", str(tmp_path / "avg.ckpt"),
                       "--model.results_dir", str(tmp_path / "report")])
    assert (tmp_path / "report" / "summary.json").is_file()
    assert "test/wer" in test.trainer.callback_metrics
    from avsr_lightning import load_model

    model = load_model(tmp_path / "avg.ckpt")
    assert type(model).__name__ == "Video" and model.d_model == 32


def test_atomic_save_never_leaves_a_half_written_file(tmp_path):
    target = tmp_path / "last.ckpt"
    atomic_torch_save({"x": torch.ones(2)}, target)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom while serialising")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_torch_save({"x": torch.zeros(2), "bad": Unpicklable()}, target)
    assert torch.equal(torch.load(target, weights_only=True)["x"], torch.ones(2))  # old file intact
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary left behind


def test_sigkill_mid_run_leaves_a_loadable_last_ckpt_and_training_resumes(tmp_path, tr):
    # last.ckpt after every update (ResumableModelCheckpoint refreshes it even without a new val/wer)
    args = tr.tiny_args(tmp_path, "video", max_steps=500,
                        extra=["--checkpoint.every_n_train_steps", "1", "--checkpoint.save_top_k", "1"])
    log = open(tmp_path / "fit.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "avsr_lightning", "fit", *args], cwd=tmp_path,
                            stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"})
    try:
        deadline = time.monotonic() + 150
        last = None
        while time.monotonic() < deadline and proc.poll() is None:
            found = list(tmp_path.rglob("last.ckpt"))
            if found:
                # never a partial file: every read of a visible last.ckpt must succeed
                if torch.load(found[0], weights_only=True)["global_step"] >= 3:
                    last = found[0]
                    break
            time.sleep(0.2)
        assert last is not None, ("training did not write last.ckpt in time (exit code "
                                  f"{proc.poll()}):\n" + (tmp_path / "fit.log").read_text()[-3000:])
        os.kill(proc.pid, signal.SIGKILL)  # kill mid-run (it may be saving the next checkpoint right now)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    state = torch.load(last, weights_only=True)
    step = state["global_step"]
    assert step >= 3 and state["optimizer_states"] and "avsr_rng_states" in state
    resumed = tr.run_cli(["fit", *tr.tiny_args(tmp_path / "resumed", "video", max_steps=step + 2),
                          "--ckpt_path", str(last)])
    assert resumed.trainer.global_step == step + 2
