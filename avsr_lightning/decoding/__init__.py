"""Decoding: greedy decoders and the batched joint CTC/attention beam search with RNN-LM fusion.

Decoders follow one contract: ``decoder(model, batch) -> list[list[Hypothesis]]`` (docs/internals.md).
Heavy modules are imported lazily so ``import avsr_lightning.decoding`` stays cheap.
"""
from __future__ import annotations

from .hypothesis import Hypothesis

__all__ = ["Hypothesis", "BeamSearchDecoder", "decode", "CTCGreedyDecoder", "AttentionGreedyDecoder",
           "BatchBeamSearch"]

_LAZY = {
    "BeamSearchDecoder": ("avsr_lightning.decoding.api", "BeamSearchDecoder"),
    "decode": ("avsr_lightning.decoding.api", "decode"),
    "BatchBeamSearch": ("avsr_lightning.decoding.beam_search", "BatchBeamSearch"),
    "CTCGreedyDecoder": ("avsr_lightning.decoding.greedy", "CTCGreedyDecoder"),
    "AttentionGreedyDecoder": ("avsr_lightning.decoding.greedy", "AttentionGreedyDecoder"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'avsr_lightning.decoding' has no attribute {name!r}")
