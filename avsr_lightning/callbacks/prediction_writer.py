"""``PredictionWriter``: prints each transcript as it is decoded and writes ``predictions.jsonl``.

Works with ``AVSRModule.predict_step``, which returns one dict per utterance (``id``, ``hypothesis``,
``score``, ...). Rows are appended to a uniquely named temporary file during the run and durably moved into place when
prediction ends (avsr_lightning/durable.py), so an interrupted run never leaves a half-written ``predictions.jsonl``. Under DDP every
rank writes ``predictions.rank<k>.jsonl``.
"""
from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any, Optional, Sequence

import lightning as L
from lightning.pytorch.callbacks import BasePredictionWriter

from avsr_lightning.durable import durable_path


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
        self._commit: Optional[contextlib.AbstractContextManager] = None
        self.count = 0

    def _target(self, trainer: L.Trainer) -> Path:
        base = Path(self.output) if self.output else Path(trainer.log_dir or trainer.default_root_dir) / "predictions.jsonl"
        if trainer.world_size > 1:
            base = base.with_name(f"{base.stem}.rank{trainer.global_rank}{base.suffix}")
        return base

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._final = self._target(trainer)
        self._final.parent.mkdir(parents=True, exist_ok=True)
        self._abort()  # a previous run of this writer that never reached on_predict_end
        self._commit = durable_path(self._final)  # unique temp name: two runs into one folder never collide
        self._tmp = self._commit.__enter__()
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
        if self._commit is not None:
            commit, self._commit, self._tmp = self._commit, None, None
            commit.__exit__(None, None, None)
            print(f"{self.count} transcripts written to {self._final}", flush=True)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._abort()

    def _abort(self) -> None:
        """Remove the temporary file of an unfinished run; the final name is left as it was."""
        if self._commit is not None:
            commit, self._commit, self._tmp = self._commit, None, None
            err = RuntimeError("prediction did not finish")
            commit.__exit__(type(err), err, None)
