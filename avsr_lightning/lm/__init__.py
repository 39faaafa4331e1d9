"""Character RNN language model training (``python -m avsr_lightning.lm fit --config ...``)."""
from __future__ import annotations

__all__ = ["RNNLMModule", "TextDataModule"]


def __getattr__(name: str):
    if name == "RNNLMModule":
        from .module import RNNLMModule

        return RNNLMModule
    if name == "TextDataModule":
        from .data import TextDataModule

        return TextDataModule
    raise AttributeError(name)
