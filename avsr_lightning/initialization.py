"""Weight initialisation before training: a full checkpoint and/or LRW frontend checkpoints.

Every load is strict and reported: a checkpoint that does not fit the configured model fails before
training starts with a message naming the keys and what to change. The frontends are found by type
(``VideoFrontend``/``AudioFrontend``), so LRW weights reach every architecture - including the Conformer
baseline, which the reference silently left random (spec §8.1).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch
from torch import Tensor, nn

from avsr_lightning.models.frontends import AudioFrontend, VideoFrontend
from avsr_lightning.models.recognizer import Recognizer

__all__ = ["initialize_model", "read_state_dict", "load_full_checkpoint", "load_lrw_frontend",
           "CheckpointMismatchError"]

_VOCAB_KEYS = ("decoder.output_layer.weight", "ctc.ctc_lo.weight")


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the configured model."""


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Tensors of a checkpoint: ours (Lightning, ``model.`` prefix), the reference's (``{'state_dict'}``),
    an LRW one (``model_state_dict``) or a bare state dict. Always ``weights_only=True``."""
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - re-raised with the path and the reason
        raise CheckpointMismatchError(f"cannot read checkpoint {path}: {err}. Only tensor checkpoints are "
                                      "accepted (torch.load(weights_only=True)).") from err
    if not isinstance(obj, Mapping):
        raise CheckpointMismatchError(f"checkpoint {path} holds a {type(obj).__name__}, not a state dict")
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    state = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
    if state and all(k.startswith("model.") for k in state):  # saved by AVSRModule
        state = {k[len("model."):]: v for k, v in state.items()}
    if not state:
        raise CheckpointMismatchError(f"checkpoint {path} contains no tensors")
    return state


def _check_vocab(model: Recognizer, state: Mapping[str, Tensor], path: str | Path) -> None:
    for key in _VOCAB_KEYS:
        if key in state and state[key].shape[0] != model.vocab_size:
            raise CheckpointMismatchError(
                f"{path} was trained with a vocabulary of {state[key].shape[0]} symbols ({key} "
                f"{tuple(state[key].shape)}) but the model has vocab_size={model.vocab_size}: use the tokenizer the "
                f"checkpoint was trained with (data tokenizer -> model.model.init_args.vocab_size) or drop init_from")


def load_full_checkpoint(model: Recognizer, path: str | Path) -> str:
    """Strictly load every tensor of ``path`` into ``model``; returns a one-line report."""
    state = read_state_dict(path)
    _check_vocab(model, state, path)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise CheckpointMismatchError(
            f"{path} does not fit {type(model).__name__}: {len(missing)} missing keys {missing[:5]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:5]}, {len(wrong)} shape mismatches "
            f"{[(k, tuple(state[k].shape), tuple(own[k].shape)) for k in wrong[:5]]}. Check model.class_path "
            "(architecture) and its sizes against the checkpoint.")
    model.load_state_dict(state, strict=True)
    return f"init_from: loaded all {len(state)} tensors of {path} into {type(model).__name__}"


def load_lrw_frontend(model: nn.Module, path: str | Path, kind: type[nn.Module]) -> str:
    """Load an LRW checkpoint (``tcn.*`` back-end dropped) into every ``kind`` frontend of ``model``."""
    state = {k: v for k, v in read_state_dict(path).items() if "tcn" not in k}
    targets = [(name, m) for name, m in model.named_modules() if isinstance(m, kind)]
    if not targets:
        raise CheckpointMismatchError(f"{type(model).__name__} has no {kind.__name__}; remove the "
                                      f"{'video' if kind is VideoFrontend else 'audio'}_frontend_ckpt setting")
    for name, module in targets:
        result = module.load_state_dict(state, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise CheckpointMismatchError(
                f"{path} does not fit {name} ({kind.__name__}): missing {result.missing_keys[:5]}, unexpected "
                f"{result.unexpected_keys[:5]}. Is it the {'video' if kind is VideoFrontend else 'audio'} LRW "
                "checkpoint, and do model frontend_widths match it (64, 128, 256, 512)?")
    return f"loaded {len(state)} LRW tensors from {path} into {', '.join(n for n, _ in targets)}"


def initialize_model(model: Recognizer, init_from: str | None = None, video_frontend_ckpt: str | None = None,
                     audio_frontend_ckpt: str | None = None) -> list[str]:
    """Apply the configured initialisation; returns report lines. A full checkpoint wins over frontends
    (the frontends are part of it), as in the reference (spec §3.2)."""
    report: list[str] = []
    if init_from:
        report.append(load_full_checkpoint(model, init_from))
        if video_frontend_ckpt or audio_frontend_ckpt:
            report.append("frontend checkpoints ignored: init_from already sets the frontends")
        return report
    if video_frontend_ckpt:
        report.append(load_lrw_frontend(model, video_frontend_ckpt, VideoFrontend))
    if audio_frontend_ckpt:
        report.append(load_lrw_frontend(model, audio_frontend_ckpt, AudioFrontend))
    return report

