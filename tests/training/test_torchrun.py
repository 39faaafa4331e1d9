"""torchrun, two "nodes" x one process on localhost (gloo, configs/trainer/multinode_cpu.yaml), no extra flags
(docs/training.md, "Distributed training").

- both ranks train, checkpoints are written once, and the 2-process validation metrics equal a 1-process
  ``validate`` of the same ``last.ckpt``;
- elastic restart: with ``--max_restarts 1`` rank 1 crashes once at a mid-epoch step (the injected fault of
  avsr_lightning/callbacks/fault_injection.py, once per test thanks to a marker file); torchrun restarts the
  group, the CLI resumes from ``last.ckpt`` by itself, and the final weights, optimizer and scheduler state
  equal the uninterrupted 2-process run's bit for bit. This also checks that the restarted workers connect at
  all: torchrun's job-long store still holds the first workers' gloo addresses, and without the fresh store
  namespace of avsr_lightning/elastic_store.py the restarted group failed in ``connectFullMesh`` (Connection
  refused to a dead worker's port).

Each torchrun is two agents (node ranks 0 and 1) on a free localhost port, with a timeout that kills both
process groups (agents and their workers) and shows both outputs.
"""
from __future__ import annotations

import contextlib
import csv
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))
from test_kill import corpus, differences, fit_args, load  # noqa: E402,F401  (corpus is a fixture)

STEPS, PER_EPOCH = 6, 3
FAULT_STEP = 4  # mid-epoch (epochs of PER_EPOCH batches): the sampler position must be restored too
DECODER = "avsr_lightning.decoding.greedy.AttentionGreedyDecoder"
#: Validation on the 16 training utterances (the corpus's val split has only 2): 16 / batch 2 = 8 batches, 4
#: per rank, so FrameBudgetBatchSampler pads nothing and both runs score exactly the same utterances. (With an
#: uneven split it would repeat batches; WER/CER would still count each utterance once, de-duplicated by id,
#: but the sync_dist mean of val/loss would not.) Attention greedy decoding: an untrained CTC head emits mostly
#: blanks, WER 100 for every utterance, which would make the equality trivial. (Timeouts are generous: they
#: only turn a hang into a readable failure on a loaded machine; the runs take ~20-40 s each when idle.)
VAL = ["--data.init_args.val_split", "train.txt", "--model.val_decoder", DECODER,
       "--model.val_decoder.init_args.max_len_ratio", "0.2",  # short hypotheses: decoding stays cheap
       "--trainer.limit_val_batches", "1.0",
       "--trainer.logger", "lightning.pytorch.loggers.CSVLogger"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux ``/proc``; empty elsewhere)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
    return out


def _run_args(corpus: Path, root: Path) -> list[str]:
    return fit_args(corpus, root, "--config", str(REPO / "configs" / "trainer" / "multinode_cpu.yaml"),
                    "--trainer.max_steps", str(STEPS), "--trainer.limit_train_batches", str(PER_EPOCH),
                    "--trainer.val_check_interval", str(STEPS), "--trainer.check_val_every_n_epoch", "null",
                    "--model.model.init_args.mask_padding", "true", *VAL,
                    "--trainer.logger.save_dir", str(root))


def torchrun(corpus: Path, root: Path, *extra_torchrun: str, env: dict | None = None, timeout: float = 600
             ) -> list[str]:
    """Two torchrun agents (node ranks 0 and 1) on localhost; returns their outputs (each must exit 0)."""
    port = _free_port()
    fit = _run_args(corpus, root)
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1", **(env or {})}
    procs = []
    for node in range(2):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
               "--node_rank", str(node), "--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{port}",
               "--rdzv_id", f"avsr-{port}", "--monitor_interval", "0.5", *extra_torchrun, *fit[1:]]  # fit[0] is "-m"
        procs.append(subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, start_new_session=True))
    outs: list[str] = [""] * len(procs)
    try:
        for i, p in enumerate(procs):
            outs[i], _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    finally:
        timed_out = [p for p in procs if p.poll() is None]
        for p in procs:  # agents run in their own session, and torchrun starts each worker in a session of its
            if p.poll() is None:  # own: kill the workers, then the agent's group (else a hung worker outlives the test)
                for child in _children(p.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child, signal.SIGKILL)
                os.killpg(p.pid, signal.SIGKILL)
        for i, p in enumerate(procs):
            rest, _ = p.communicate()
            outs[i] += rest or ""
    report = "\n".join(f"===== node {i} (exit {p.returncode}) =====\n{out[-5000:]}" for i, (p, out)
                       in enumerate(zip(procs, outs)))
    assert not timed_out, f"torchrun did not finish within {timeout} s\n{report}"
    assert all(p.returncode == 0 for p in procs), report
    return outs


def _val_row(root: Path) -> dict[str, str]:
    rows = [r for f in sorted(root.rglob("metrics.csv")) for r in csv.DictReader(f.open()) if r.get("val/wer")]
    assert rows, f"no val/wer logged under {root}"
    return rows[-1]


def _validate_args(argv: list[str]) -> list[str]:
    """fit-only options removed (checkpoint.*, max_steps, ...) so ``validate`` accepts them."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a.startswith("--checkpoint.") or a in ("--trainer.max_steps", "--trainer.limit_train_batches"):
            skip = True
            continue
        out.append(a)
    return out


@pytest.fixture(scope="module")
def two_nodes(corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    return root, torchrun(corpus, root)


def test_two_nodes_train_write_once_and_match_one_process_validation(corpus, two_nodes, tmp_path):
    root, outs = two_nodes
    text = "\n".join(outs)
    assert "GLOBAL_RANK: 0" in text and "GLOBAL_RANK: 1" in text  # both ranks joined the group
    assert "shards its batches itself" in text  # the CLI turned use_distributed_sampler off by itself
    ckpts = sorted(p.name for p in (root / "ckpt").iterdir() if not p.name.startswith("."))
    # written once, by rank 0: no per-rank copies such as last-v1.ckpt (the top-k copy, if any, is saved at the
    # step's end, before that step's validation gives its score)
    assert "last.ckpt" in ckpts and not [c for c in ckpts if c.startswith("last-")], ckpts
    assert sorted(p.name for p in (root / "lightning_logs").iterdir()) == ["version_0"]
    last = root / "ckpt" / "last.ckpt"
    assert load(last)["global_step"] == STEPS
    ddp = _val_row(root)

    # the same checkpoint validated by one plain process (no torchrun, the 1-process CPU preset)
    single_root = tmp_path / "single"
    argv = _validate_args(fit_args(corpus, single_root, *VAL, "--trainer.logger.save_dir", str(single_root)))
    argv[argv.index("fit")] = "validate"
    proc = subprocess.run([sys.executable, *argv, "--model.model.init_args.mask_padding", "true",
                           "--ckpt_path", str(last)], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    one = _val_row(single_root)
    assert float(ddp["val/cer"]) < 100.0, "trivial hypotheses: the comparison would prove nothing"
    # WER/CER are ratios of integer edit counts over the same utterances: equal hypotheses give equal
    # numbers, so they must match exactly (both are float32 values written by the same CSV logger)
    assert (ddp["val/wer"], ddp["val/cer"]) == (one["val/wer"], one["val/cer"]), (ddp, one)
    # the loss is a mean of float32 per-batch means, summed in another order across ranks: float tolerance.
    # It equals only if no batch was repeated or missing (a sync_dist mean is not de-duplicated by id)
    assert float(ddp["val/loss"]) == pytest.approx(float(one["val/loss"]), rel=1e-5), (ddp, one)


def test_elastic_restart_resumes_from_last_ckpt_and_ends_bit_identical(corpus, two_nodes, tmp_path):
    uninterrupted = load(two_nodes[0] / "ckpt" / "last.ckpt")
    root, marker = tmp_path / "elastic", tmp_path / "fault.done"
    outs = torchrun(corpus, root, "--max_restarts", "1", env={
        "AVSR_FAULT_AT_STEP": str(FAULT_STEP), "AVSR_FAULT_RANK": "1", "AVSR_FAULT_MODE": "raise",
        "AVSR_FAULT_ONCE": str(marker)})
    text = "\n".join(outs)
    assert marker.exists() and f"[fault injection] raise at global step {FAULT_STEP} (rank 1)" in text, text[-3000:]
    # every node resumed (rank 0 reports it; a node that started over would have deadlocked the group)
    assert "elastic restart (torchrun job avsr-" in text and f"resuming from {root / 'ckpt' / 'last.ckpt'}" in text, \
        text[-3000:]
    # and resumed rather than started over (a group that started over would end with the same weights: the
    # fault happens once): the restarted run did only the updates after the checkpoint (each node's summary)
    summaries = re.findall(r"fit summary: (\d+) updates", text)
    assert summaries and set(summaries) == {str(STEPS - FAULT_STEP)}, summaries
    final = load(root / "ckpt" / "last.ckpt")
    assert final["global_step"] == STEPS
    diff = differences(uninterrupted, final)
    assert not diff, f"{len(diff)} entries differ from the uninterrupted run, e.g. {diff[:5]}"
