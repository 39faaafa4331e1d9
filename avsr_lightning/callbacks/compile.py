"""Opt-in ``torch.compile`` of the repeated blocks of a recognizer (docs/models.md, "Speed").

Off by default: compilation costs tens of seconds per input-shape family, needs a C++ compiler on CPU,
and on CPU it was measured slower (one default-size Conformer block fwd+bwd: 0.23 s compiled vs 0.15 s
eager, after 275 s of compilation): it is meant for GPUs; measure with benchmarks/train_step.py.
Only the Conformer blocks and the decoder layers are compiled, each in place (``nn.Module.compile``),
with dynamic shapes, because the batch length changes every step. Frontends are left eager: they are
dominated by convolutions, which compilation does not speed up. The decoder's incremental ``step`` used
by beam search calls ``DecoderLayer.forward_last`` and stays eager.

    trainer:
      callbacks:
        - class_path: avsr_lightning.callbacks.compile.CompileModel
"""
from __future__ import annotations

from typing import Any

import lightning as L
from torch import nn

from avsr_lightning.models import ConformerBlock, DecoderLayer

__all__ = ["CompileModel"]

_TARGETS = {"conformer": ConformerBlock, "decoder": DecoderLayer}


class CompileModel(L.Callback):
    """Compile ``targets`` ("conformer", "decoder") of ``pl_module.model`` once, at setup.

    Args:
        targets: which block types to compile.
        dynamic: passed to ``torch.compile`` (True: one graph for all sequence lengths).
        mode, backend: passed to ``torch.compile`` (``None`` / "inductor" = torch's defaults).
    """

    def __init__(self, targets: tuple[str, ...] = ("conformer", "decoder"), dynamic: bool = True,
                 mode: str | None = None, backend: str = "inductor") -> None:
        unknown = set(targets) - set(_TARGETS)
        if unknown:
            raise ValueError(f"CompileModel targets {sorted(unknown)} unknown; choose from {sorted(_TARGETS)}")
        self.types = tuple(_TARGETS[t] for t in targets)
        self.options: dict[str, Any] = {"dynamic": dynamic, "mode": mode, "backend": backend}
        self.compiled: list[str] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.compiled:
            return
        model: nn.Module = getattr(pl_module, "model", pl_module)
        for name, module in model.named_modules():
            if isinstance(module, self.types):
                module.compile(**self.options)
                self.compiled.append(name)
