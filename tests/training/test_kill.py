"""Kill tests through the CLI (docs/training.md, "Resume"): a SIGKILL at a random mid-epoch step, resumed
from ``last.ckpt``, ends bit-identical to an uninterrupted run; a SIGKILL *during* a checkpoint write
leaves the previous ``last.ckpt`` intact and loadable.

Tiny AVRelScore over a generated 20-utterance synthetic corpus, one data-loader worker, epochs of 3
batches (``limit_train_batches``), a checkpoint after every update. The faults are injected through the
environment (avsr_lightning/callbacks/fault_injection.py, ``AVSR_FAULT_KILL_IN_CKPT_WRITE``).
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"


def run_subprocess(args: list[str], cwd: Path, timeout: float = 300, env: dict | None = None):
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout)


STEPS, PER_EPOCH, UTTERANCES = 7, 3, 20


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    from avsr_lightning.data.synthetic import generate_corpus

    # the defaults SyntheticDataModule.prepare_data uses, so the CLI accepts the corpus as finished
    return generate_corpus(tmp_path_factory.mktemp("kill") / "corpus", utterances=UTTERANCES, seed=0, progress=False)


def fit_args(corpus: Path, root: Path, *extra: str) -> list[str]:
    return [
        "-m", "avsr_lightning", "fit", "--config", str(CONFIGS / "trainer" / "cpu_debug.yaml"),
        "--config", str(CONFIGS / "model" / "tiny_avrelscore.yaml"), "--seed_everything", "0",
        "--data", "avsr_lightning.datamodules.SyntheticDataModule", "--data.init_args.root", str(corpus),
        "--data.init_args.utterances", str(UTTERANCES), "--data.init_args.batch_size", "2",
        "--data.init_args.max_frames", "null", "--data.init_args.num_workers", "1",
        "--data.init_args.train_snrs", "[null, 0.0]", "--data.init_args.seed", "0",
        "--trainer.max_steps", str(STEPS), "--trainer.limit_train_batches", str(PER_EPOCH),
        "--trainer.limit_val_batches", "0", "--trainer.num_sanity_val_steps", "0",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--checkpoint.every_n_train_steps", "1", "--checkpoint.dirpath", str(root / "ckpt"),
        "--trainer.default_root_dir", str(root), *extra,
    ]


def fit(corpus: Path, root: Path, *extra: str, env: dict | None = None, ok: bool = True):
    out = run_subprocess(fit_args(corpus, root, *extra), cwd=REPO, env=env)
    if ok:
        assert out.returncode == 0, out.stderr[-3000:]
    return out


def flatten(obj, prefix=""):
    if isinstance(obj, dict):
        for k in sorted(obj, key=str):
            yield from flatten(obj[k], f"{prefix}/{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from flatten(v, f"{prefix}/{i}")
    else:
        yield prefix, obj


def differences(a: dict, b: dict) -> list[str]:
    """Every weight, optimizer-state entry (moments, steps, lr) and scheduler entry that differs."""
    diff = []
    for key in ("state_dict", "optimizer_states", "lr_schedulers"):
        fa, fb = dict(flatten(a[key])), dict(flatten(b[key]))
        if fa.keys() != fb.keys():
            diff.append(f"{key}: different entries")
            continue
        for k, va in fa.items():
            vb = fb[k]
            same = torch.equal(va, vb) if isinstance(va, torch.Tensor) else va == vb
            if not same:
                diff.append(key + k)
    return diff


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def uninterrupted(corpus, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("full")
    fit(corpus, root)
    ckpt = load(root / "ckpt" / "last.ckpt")
    assert ckpt["global_step"] == STEPS
    return ckpt


def test_sigkill_at_a_random_mid_epoch_step_then_resume_is_bit_identical(corpus, uninterrupted, tmp_path):
    k = random.Random().choice([s for s in range(2, STEPS) if s % PER_EPOCH])  # never an epoch boundary
    killed = fit(corpus, tmp_path / "killed", env={"AVSR_FAULT_AT_STEP": str(k)}, ok=False)
    assert killed.returncode == -signal.SIGKILL, (k, killed.stderr[-2000:])
    last = tmp_path / "killed" / "ckpt" / "last.ckpt"
    assert load(last)["global_step"] == k
    fit(corpus, tmp_path / "resumed", "--ckpt_path", str(last))
    resumed = load(tmp_path / "resumed" / "ckpt" / "last.ckpt")
    assert resumed["global_step"] == STEPS
    diff = differences(uninterrupted, resumed)
    assert not diff, f"killed at step {k}: {len(diff)} entries differ from the uninterrupted run, e.g. {diff[:5]}"


def test_sigkill_during_a_checkpoint_write_keeps_the_previous_last_ckpt(corpus, uninterrupted, tmp_path):
    """The 4th checkpoint save of the run is SIGKILLed half-way through writing its temporary file."""
    root = tmp_path / "killed"
    killed = fit(corpus, root, env={"AVSR_FAULT_KILL_IN_CKPT_WRITE": "4"}, ok=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    leftovers = [p for p in (root / "ckpt").iterdir() if p.name.startswith(".")]
    assert leftovers, "the kill should have hit a temporary file being written"
    last = root / "ckpt" / "last.ckpt"
    previous = load(last)  # intact and loadable: the update before the interrupted save
    assert previous["global_step"] == 3
    fit(corpus, tmp_path / "resumed", "--ckpt_path", str(last))  # and training goes on from it, exactly
    assert not differences(uninterrupted, load(tmp_path / "resumed" / "ckpt" / "last.ckpt"))
