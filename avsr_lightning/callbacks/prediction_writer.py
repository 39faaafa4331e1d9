"""``PredictionWriter``: prints each transcript as it is decoded and writes ``predictions.jsonl``.

Works with ``AVSRModule.predict_step``, which returns one dict per utterance (``id``, ``hypothesis``,
``score``, ...). Rows are appended to a temporary file during the run and moved into place when
prediction ends, so an interrupted run never leaves a half-written ``predictions.jsonl``. Under DDP every
rank writes ``predictions.rank<k>.jsonl``.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Optional, Sequence

import lightning as L
from lightning.pytorch.callbacks import BasePredictionWriter


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # strict JSON
    return value


class PredictionWriter(BasePredictionWriter):
    """Args:
        output: the jsonl path (default ``<trainer log dir>/predictions.jsonl``).
        print_transcripts: print ``id<TAB>hypothesis`` for every utterance.
    """

    def __init__(self, output: Optional[str] = None, print_transcripts: bool = True) -> None:
        super().__init__(write_interval="batch")
        self.output, self.print_transcripts = output, print_transcripts
        self._tmp: Optional[Path] = None
        self._final: Optional[Path] = None
        self.count = 0

    def _target(self, trainer: L.Trainer) -> Path:
        base = Path(self.output) if self.output else Path(trainer.log_dir or trainer.default_root_dir) / "predictions.jsonl"
        if trainer.world_size > 1:
            base = base.with_name(f"{base.stem}.rank{trainer.global_rank}{base.suffix}")
        return base

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._final = self._target(trainer)
        self._final.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self._final.with_name(f".{self._final.name}.tmp")
        self._tmp.write_text("", encoding="utf-8")
        self.count = 0

    def write_on_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, prediction: Any,
                           batch_indices: Optional[Sequence[int]], batch: Any, batch_idx: int,
                           dataloader_idx: int) -> None:
        rows = prediction if isinstance(prediction, list) else [prediction]
        with open(self._tmp, "a", encoding="utf-8") as f:
            for row in rows:
                if not isinstance(row, dict):
                    continue
                row = {k: _clean(v) for k, v in row.items()}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                self.count += 1
                if self.print_transcripts:
                    print(f"{row.get('id', '?')}\t{row.get('hypothesis', '')}", flush=True)

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._tmp is not None and self._tmp.exists():
            os.replace(self._tmp, self._final)
            print(f"{self.count} transcripts written to {self._final}", flush=True)
