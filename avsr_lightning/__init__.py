"""avsr_lightning: audio-visual speech recognition on PyTorch Lightning.

Public API (imported lazily so ``import avsr_lightning`` stays cheap):

- :func:`load_model` - an architecture, randomly initialised or loaded from a reference/our checkpoint.
- :func:`decode` - batched joint CTC/attention beam search with optional RNN-LM fusion.
- :func:`load_lm` - an ESPnet-format character RNN language model.
"""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["load_model", "decode", "load_lm", "__version__"]

_LAZY = {
    "load_model": ("avsr_lightning.weights.load", "load_model"),
    "decode": ("avsr_lightning.decoding.api", "decode"),
    "load_lm": ("avsr_lightning.weights.espnet_lm", "load_lm"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'avsr_lightning' has no attribute {name!r}")
