"""LRW-pretrained frontends (mpc001 Lipreading_using_TCN checkpoints, ``model_state_dict``).

The back-end keys (``tcn.*``, classifier) are dropped; every remaining key must land in the model's
video (``frontend3D.*``, ``trunk.*``) or audio (``trunk.*``) frontend, and every frontend tensor must be
filled, otherwise the load fails naming the keys. The frontends are found by type, so this works for
every architecture, including the Conformer baseline (``encoder_vid.frontend``) which the reference
silently left random because of a key-prefix bug (spec §3.2, §8.1).
"""
from __future__ import annotations

import os
from collections.abc import Mapping

from torch import Tensor, nn

from ..models.frontends import AudioFrontend, VideoFrontend
from .load import CheckpointError, load_strict, read_checkpoint

DROPPED_SUBSTRING = "tcn"


def read_lrw_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """Frontend tensors of an LRW checkpoint, back-end (``tcn``) keys removed."""
    obj = read_checkpoint(path)
    if isinstance(obj, Mapping) and "model_state_dict" in obj:
        obj = obj["model_state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(f"{os.fspath(path)}: expected an LRW checkpoint with 'model_state_dict'")
    return {k: v for k, v in obj.items() if DROPPED_SUBSTRING not in k}


def find_frontends(model: nn.Module, kind: type[nn.Module]) -> dict[str, nn.Module]:
    """Qualified name -> frontend module of the given type."""
    return {name: m for name, m in model.named_modules() if isinstance(m, kind)}


def load_lrw_frontends(model: nn.Module, video_path: str | os.PathLike | None = None,
                       audio_path: str | os.PathLike | None = None) -> dict[str, list[str]]:
    """Initialise every video/audio frontend of ``model`` from LRW checkpoints, strictly.

    Returns ``{frontend qualified name: [loaded keys]}`` so callers can log exactly what went where.
    """
    report: dict[str, list[str]] = {}
    for path, kind in ((video_path, VideoFrontend), (audio_path, AudioFrontend)):
        if path is None:
            continue
        frontends = find_frontends(model, kind)
        if not frontends:
            raise CheckpointError(f"{type(model).__name__} has no {kind.__name__} for {os.fspath(path)}")
        state = read_lrw_state_dict(path)
        for name, frontend in frontends.items():
            load_strict(frontend, state, source=f"LRW {kind.__name__} checkpoint {os.fspath(path)} -> {name}")
            report[name] = sorted(state)
    return report
