"""Checkpoint formats: reference checkpoints, our Lightning checkpoints, LRW frontends.

Always ``torch.load(..., weights_only=True)``; loads are strict and name every offending key.
"""
from __future__ import annotations

from .load import CheckpointError, build_model, load_model, load_strict, read_checkpoint, split_checkpoint
from .lrw import load_lrw_frontends
from .reference import save_reference_checkpoint, to_reference_state_dict

__all__ = ["CheckpointError", "build_model", "load_lrw_frontends", "load_model", "load_strict", "read_checkpoint",
           "save_reference_checkpoint", "split_checkpoint", "to_reference_state_dict"]
