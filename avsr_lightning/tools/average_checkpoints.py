"""Average the weights of several checkpoints (the last N or the best N by the monitored metric).

    python -m avsr_lightning.tools.average_checkpoints --dir runs/avsr/version_0/checkpoints --last 5 \\
        --output averaged.ckpt
    python -m avsr_lightning.tools.average_checkpoints --dir .../checkpoints --best 5 --output averaged.ckpt
    python -m avsr_lightning.tools.average_checkpoints a.ckpt b.ckpt --output averaged.ckpt

The output keeps the newest input's Lightning metadata (hyper-parameters, epoch, global step) with the
averaged ``state_dict`` and no optimizer state, so ``test --ckpt_path``, ``predict --ckpt_path`` and
``avsr_lightning.load_model`` accept it. Floating-point tensors are averaged in float64 and cast back;
integer buffers (BatchNorm's ``num_batches_tracked``) are taken from the newest checkpoint. "Best" uses
the score ModelCheckpoint stored inside each file (``val/wer`` by default, lower is better).
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence

import torch

from avsr_lightning.callbacks.atomic_checkpoint_io import atomic_torch_save
from avsr_lightning.weights.load import CheckpointError, read_checkpoint

__all__ = ["average_state_dicts", "checkpoint_score", "select_checkpoints", "average_checkpoints", "main"]


def _load(path: Path) -> dict[str, Any]:
    """The project's one checkpoint reader (weights_only=True); a file without weights raises naming it."""
    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise CheckpointError(f"{path}: not a training checkpoint (no 'state_dict'); average only "
                              "checkpoints written by the trainer")
    return ckpt


def average_state_dicts(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of float tensors; integer tensors from the last state. Keys and shapes must match."""
    if not states:
        raise ValueError("average_state_dicts needs at least one state dict")
    keys = list(states[-1])
    for i, s in enumerate(states):
        if set(s) != set(keys):
            diff = sorted(set(s) ^ set(keys))[:5]
            raise ValueError(f"checkpoint {i} has different keys than the newest one (e.g. {diff}); "
                             "average only checkpoints of the same model")
    out = {}
    for key in keys:
        ref = states[-1][key]
        if ref.is_floating_point():
            acc = torch.zeros_like(ref, dtype=torch.float64)
            for s in states:
                if s[key].shape != ref.shape:
                    raise ValueError(f"{key}: shapes differ ({tuple(s[key].shape)} vs {tuple(ref.shape)})")
                acc += s[key].to(torch.float64)
            out[key] = (acc / len(states)).to(ref.dtype)
        else:
            out[key] = ref.clone()
    return out


def checkpoint_score(ckpt: dict[str, Any], monitor: str = "val/wer") -> float | None:
    """The monitored score ModelCheckpoint recorded when it wrote this file (``current_score``)."""
    for key, state in (ckpt.get("callbacks") or {}).items():
        if str(key).startswith("ModelCheckpoint") and isinstance(state, dict) and state.get("monitor") == monitor:
            score = state.get("current_score")
            if score is not None:
                return float(score)
    return None


def select_checkpoints(directory: Path, last: int | None = None, best: int | None = None, monitor: str = "val/wer",
                       mode: str = "min") -> list[Path]:
    """The ``last`` newest (by global step) or ``best`` best-scoring checkpoints in ``directory``.

    ``last.ckpt`` is only a copy of the newest step, so files are de-duplicated by global step. An
    unreadable file (truncated, empty, foreign, code payload) is skipped with a warning naming it.
    """
    if (last is None) == (best is None):
        raise ValueError("give exactly one of last=N or best=N")
    by_step: dict[int, tuple[Path, float | None]] = {}
    skipped = 0
    for path in sorted(directory.glob("*.ckpt")):
        if path.name.startswith("."):
            continue
        try:
            ckpt = _load(path)
        except CheckpointError as err:
            warnings.warn(f"average_checkpoints: skipped {err}", stacklevel=2)
            skipped += 1
            continue
        step = int(ckpt.get("global_step", -1))
        if step in by_step and path.name.startswith("last"):
            continue
        by_step[step] = (path, checkpoint_score(ckpt, monitor))
    if not by_step:
        raise FileNotFoundError(f"no readable *.ckpt files in {directory}"
                                + (f" ({skipped} unreadable, see the warnings above)" if skipped else ""))
    if last is not None:
        chosen = [by_step[s][0] for s in sorted(by_step)[-last:]]
    else:
        scored = [(score, step, path) for step, (path, score) in by_step.items() if score is not None]
        if not scored:
            raise ValueError(f"no checkpoint in {directory} records a {monitor!r} score; use --last instead")
        scored.sort(key=lambda t: (t[0] if mode == "min" else -t[0], -t[1]))
        chosen = [path for _, _, path in sorted(scored[:best], key=lambda t: t[1])]
    if len(chosen) < (last or best):
        print(f"average_checkpoints: only {len(chosen)} checkpoints available", file=sys.stderr)
    return chosen


def average_checkpoints(paths: Sequence[Path], output: Path) -> dict[str, Any]:
    """Average ``paths`` (oldest first) into ``output``; returns the written checkpoint."""
    ckpts = [_load(Path(p)) for p in paths]
    ckpts.sort(key=lambda c: int(c.get("global_step", -1)))
    newest = ckpts[-1]
    averaged = {k: v for k, v in newest.items()
                if k not in ("state_dict", "optimizer_states", "lr_schedulers", "loops", "callbacks")}
    averaged["state_dict"] = average_state_dicts([c["state_dict"] for c in ckpts])
    averaged["averaged_from"] = [str(p) for p in paths]
    atomic_torch_save(averaged, output)
    return averaged


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m avsr_lightning.tools.average_checkpoints",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="*", type=Path, help="explicit checkpoint files")
    parser.add_argument("--dir", type=Path, help="checkpoint directory (with --last or --best)")
    parser.add_argument("--last", type=int, help="average the N newest checkpoints of --dir")
    parser.add_argument("--best", type=int, help="average the N best checkpoints of --dir")
    parser.add_argument("--monitor", default="val/wer", help="score used by --best (default val/wer)")
    parser.add_argument("--mode", choices=("min", "max"), default="min", help="min: lower is better")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.checkpoints and args.dir:
        parser.error("give checkpoint files or --dir, not both")
    if not args.dir and not args.checkpoints:
        parser.error("give checkpoint files or --dir with --last/--best")
    try:
        paths = (select_checkpoints(args.dir, args.last, args.best, args.monitor, args.mode) if args.dir
                 else list(args.checkpoints))
        average_checkpoints(paths, args.output)
    except (CheckpointError, FileNotFoundError, ValueError) as err:
        parser.exit(2, f"average_checkpoints: error: {err}\n")
    print(f"averaged {len(paths)} checkpoints -> {args.output}:\n  " + "\n  ".join(map(str, paths)))
    return args.output


if __name__ == "__main__":
    main()
