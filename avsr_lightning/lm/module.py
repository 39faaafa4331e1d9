"""``RNNLMModule``: trains the character :class:`~avsr_lightning.models.rnnlm.RNNLM` and exports it in
the ESPnet format (``model.pth`` + ``model.json``) that :func:`avsr_lightning.load_lm` and the beam
search read. Logs the token-level cross entropy and the perplexity (exp of the mean NLL per token,
eos included) on train/val/test.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from ..models.rnnlm import RNNLM
from ..text import CharTokenizer
from ..weights.espnet_lm import export_lm


class RNNLMModule(L.LightningModule):
    """Args:
        vocab_size, layers, units, embed_units, rnn_type, dropout, emb_dropout, tie_weights: see RNNLM.
        optimizer: ``OptimizerCallable`` (default Adam, lr 1e-3); grad clipping is a Trainer setting.
        export_dir: where ``model.pth``/``model.json`` are written at the end of ``fit`` (default
            ``<log_dir>/lm_export``).
    """

    def __init__(self, vocab_size: int = 41, layers: int = 2, units: int = 650, embed_units: Optional[int] = None,
                 rnn_type: str = "lstm", dropout: float = 0.0, emb_dropout: float = 0.0, tie_weights: bool = False,
                 optimizer: Optional[OptimizerCallable] = None, export_dir: Optional[str] = None) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["optimizer"])
        self.lm = RNNLM(vocab_size, layers, units, embed_units, rnn_type, dropout, emb_dropout, tie_weights)
        self.optimizer_factory = optimizer
        self.export_dir = export_dir
        self._sums: dict[str, list[float]] = {}

    def nll(self, inputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """Summed token NLL and the number of scored tokens."""
        logits, _ = self.lm(inputs)
        nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1,
                              reduction="sum")
        return nll, (targets >= 0).sum()

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        nll, count = self.nll(*batch)
        loss = nll / count.clamp_min(1)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch[0].size(0))
        self.log("train/ppl", torch.exp(loss.detach()), batch_size=batch[0].size(0))
        return loss

    def _eval_step(self, batch: tuple[Tensor, Tensor], split: str) -> None:
        nll, count = self.nll(*batch)
        sums = self._sums.setdefault(split, [0.0, 0.0])
        sums[0] += float(nll)
        sums[1] += float(count)

    def _eval_end(self, split: str) -> None:
        nll, count = self._sums.pop(split, [0.0, 0.0])
        totals = torch.tensor([nll, count], dtype=torch.float64, device=self.device)
        if self.trainer.world_size > 1 and torch.distributed.is_initialized():
            torch.distributed.all_reduce(totals)
        if totals[1] > 0:
            loss = float(totals[0] / totals[1])
            self.log(f"{split}/loss", loss, sync_dist=False)
            self.log(f"{split}/ppl", math.exp(loss), prog_bar=True, sync_dist=False)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._eval_end("val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._eval_end("test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.optimizer_factory is not None:
            return self.optimizer_factory(self.parameters())
        return torch.optim.Adam(self.parameters(), lr=1e-3)

    def export(self, out_dir: str | Path) -> Path:
        """Write the ESPnet-format files; returns the ``model.pth`` path."""
        tokenizer = getattr(getattr(self.trainer, "datamodule", None), "tokenizer", None) if self._trainer else None
        symbols = getattr(tokenizer, "symbols", None)
        if symbols is None and self.lm.vocab_size == CharTokenizer().vocab_size:
            symbols = CharTokenizer().symbols
        pth, _ = export_lm(self.lm, out_dir, char_list=symbols or [f"<{i}>" for i in range(self.lm.vocab_size)])
        return pth

    def on_fit_end(self) -> None:
        if not self.trainer.is_global_zero:
            return
        out = Path(self.export_dir) if self.export_dir else Path(self.trainer.log_dir or ".") / "lm_export"
        pth = self.export(out)
        rank_zero_info(f"LM exported (ESPnet format) to {pth} and {pth.with_name('model.json')}")
