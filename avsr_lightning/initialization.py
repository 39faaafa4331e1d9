"""Weight initialisation before training: a full checkpoint and/or LRW frontend checkpoints.

Thin policy layer over :mod:`avsr_lightning.weights` (which reads with ``weights_only=True`` and loads
strictly, naming every missing/unexpected key): it adds the vocabulary check with a message saying
what to change, and the rule that a full checkpoint wins over frontend checkpoints (spec §3.2). The
LRW frontends reach every architecture, including the Conformer baseline the reference left random
(spec §8.1).
"""
from __future__ import annotations

import os
from typing import Mapping

from torch import Tensor

from avsr_lightning.models.recognizer import Recognizer
from avsr_lightning.weights.load import CheckpointError, load_strict, read_checkpoint, split_checkpoint
from avsr_lightning.weights.lrw import load_lrw_frontends

__all__ = ["initialize_model", "load_full_checkpoint", "check_vocabulary", "CheckpointError"]

_VOCAB_KEYS = ("decoder.output_layer.weight", "ctc.ctc_lo.weight")


def check_vocabulary(model: Recognizer, state: Mapping[str, Tensor], source: str) -> None:
    """Fail with a fix when the checkpoint's output layers have another vocabulary size than the model."""
    for key in _VOCAB_KEYS:
        if key in state and state[key].shape[0] != model.vocab_size:
            raise CheckpointError(
                f"{source} was trained with a vocabulary of {state[key].shape[0]} symbols ({key} "
                f"{tuple(state[key].shape)}) but the model has vocab_size={model.vocab_size}: use the tokenizer the "
                "checkpoint was trained with (data.init_args.tokenizer; the CLI links its size to the model) or "
                "drop model.init_from")


def load_full_checkpoint(model: Recognizer, path: str | os.PathLike) -> str:
    """Strictly load a reference checkpoint, a bare state dict or one of ours into ``model``."""
    source = os.fspath(path)
    state, _, kind = split_checkpoint(read_checkpoint(source), source=source)
    check_vocabulary(model, state, source)
    load_strict(model, state, source=f"model.init_from={source}")
    return f"init_from: loaded all {len(state)} tensors of {source} ({kind} checkpoint) into {type(model).__name__}"


def initialize_model(model: Recognizer, init_from: str | None = None, video_frontend_ckpt: str | None = None,
                     audio_frontend_ckpt: str | None = None) -> list[str]:
    """Apply the configured initialisation; returns report lines for the log."""
    if init_from:
        report = [load_full_checkpoint(model, init_from)]
        if video_frontend_ckpt or audio_frontend_ckpt:
            report.append("frontend checkpoints ignored: model.init_from already sets the frontends")
        return report
    if not (video_frontend_ckpt or audio_frontend_ckpt):
        return []
    loaded = load_lrw_frontends(model, video_frontend_ckpt, audio_frontend_ckpt)
    return [f"LRW frontend: {len(keys)} tensors -> {name}" for name, keys in loaded.items()]
