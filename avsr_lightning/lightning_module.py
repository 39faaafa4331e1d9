"""``AVSRModule``: the LightningModule that trains, validates and tests any :class:`Recognizer`.

What it adds to the model: the optimizer/schedule (injected callables, stepped per update), logging
(losses, accuracy, lr, throughput), validation WER/CER from a real decoder with each utterance counted
once across DDP ranks, test reports per condition, skipping of non-finite losses, weight
initialisation from checkpoints, freezing of the reference's unused parameters (so DDP needs no
``find_unused_parameters``) and optional frontend freezing for the first N updates.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Optional

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor

from avsr_lightning.batch import AVBatch
from avsr_lightning.data.conditions import Condition
from avsr_lightning.decoding.greedy import CTCGreedyDecoder
from avsr_lightning.decoding.hypothesis import Hypothesis
from avsr_lightning.decoding.pre_encoded import PreEncoded
from avsr_lightning.evaluation.metrics import ErrorRate
from avsr_lightning.evaluation.report import condition_name, make_record, same_utterances, write_report
from avsr_lightning.initialization import initialize_model
from avsr_lightning.models.dropout import set_packed_dropout
from avsr_lightning.models.recognizer import Recognizer
from avsr_lightning.schedules import NoamLR
from avsr_lightning.text import CharTokenizer, Tokenizer

__all__ = ["AVSRModule", "Decoder", "NonFiniteLossError", "format_test_table"]

#: ``decoder(model, batch) -> one n-best list per utterance`` (greedy, beam search, ...).
Decoder = Callable[[Recognizer, AVBatch], list]

_INJECTED = ("model", "optimizer", "scheduler", "val_decoder", "test_decoder", "tokenizer")


def _readable(name: str) -> str:
    try:
        return Condition.from_any(name).label
    except ValueError:  # not a test-condition name (e.g. "all", a loader name)
        return name


def format_test_table(summary: dict[str, Any]) -> str:
    """One table for the whole test run: a row per condition (readable name, utterances, WER, CER)."""
    rows = [(_readable(name), name, r) for name, r in summary["conditions"].items()]
    width = max([len("condition")] + [len(label) for label, _, _ in rows])
    key_width = max([len("key")] + [len(name) for _, name, _ in rows])
    lines = [f"{'condition':<{width}}  {'key':<{key_width}}  {'utts':>5}  {'WER %':>7}  {'CER %':>7}"]
    lines += [f"{label:<{width}}  {name:<{key_width}}  {r['utterances']:>5}  {r['wer']:>7.2f}  {r['cer']:>7.2f}"
              for label, name, r in rows]
    return "\n".join(lines)


class NonFiniteLossError(RuntimeError):
    """Raised when too many consecutive batches had a NaN/inf loss."""


def _reference_adam(params) -> torch.optim.Optimizer:
    """The reference optimizer (spec §3.3): Adam β=(0.9, 0.98), ε=1e-9; Noam sets the lr."""
    return torch.optim.Adam(params, lr=1.0, betas=(0.9, 0.98), eps=1e-9)


class AVSRModule(L.LightningModule):
    """Train/validate/test a recognizer.

    Args:
        model: any ``avsr_lightning.models`` architecture (``class_path`` in YAML).
        optimizer: ``OptimizerCallable``; default: the reference Adam (β=(0.9, 0.98), ε=1e-9).
        scheduler: ``LRSchedulerCallable`` stepped once per optimizer update; default: ``NoamLR`` with
            ``d_model`` taken from the model and 25k warm-up. ``None`` in YAML keeps the default;
            use ``torch.optim.lr_scheduler.ConstantLR`` with factor 1.0 for a constant lr.
        val_decoder: decoder for validation WER/CER; default ``CTCGreedyDecoder``
            (``AttentionGreedyDecoder`` for attention greedy with end-of-sentence stopping).
        test_decoder: decoder for ``test``/``predict``; default ``CTCGreedyDecoder``
            (``avsr_lightning.decoding.BeamSearchDecoder`` for the reference beam search).
        tokenizer: ids -> text for hypotheses; default: the data module's ``tokenizer``, else ``CharTokenizer``.
        init_from: a reference checkpoint, a bare reference state dict or one of ours; loaded before
            training (not when resuming with ``--ckpt_path``).
        video_frontend_ckpt / audio_frontend_ckpt: LRW frontend checkpoints (``model_state_dict``).
        freeze_frontends_steps: frontends get no updates for this many optimizer steps.
        max_consecutive_bad_batches: stop with :class:`NonFiniteLossError` after this many NaN/inf
            losses in a row (isolated bad batches are skipped, warned and counted).
        results_dir: where ``test`` writes its report; default: the trainer's log dir.
        packed_dropout: draw dropout masks from packed random bits (faster on CPU, drop probability
            rounded to a multiple of 2**-16; models/dropout.py). Off: ``nn.Dropout``'s masks.
    """

    def __init__(self, model: Recognizer, optimizer: Optional[OptimizerCallable] = None,
                 scheduler: Optional[LRSchedulerCallable] = None, val_decoder: Optional[Decoder] = None,
                 test_decoder: Optional[Decoder] = None, tokenizer: Optional[Tokenizer] = None,
                 init_from: Optional[str] = None, video_frontend_ckpt: Optional[str] = None,
                 audio_frontend_ckpt: Optional[str] = None, freeze_frontends_steps: int = 0,
                 max_consecutive_bad_batches: int = 20, results_dir: Optional[str] = None,
                 packed_dropout: bool = False) -> None:
        super().__init__()
        if freeze_frontends_steps < 0:
            raise ValueError(f"freeze_frontends_steps should be an int >= 0, got {freeze_frontends_steps}")
        if max_consecutive_bad_batches < 1:
            raise ValueError(f"max_consecutive_bad_batches should be an int >= 1, got {max_consecutive_bad_batches}")
        # Under LightningCLI the parsed config (class paths) is stored; otherwise only plain values.
        self.save_hyperparameters(ignore=None if _given_hyperparameters.get() is not None else list(_INJECTED))
        self.model = model
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        # kept in a plain dict: a decoder that is an nn.Module (e.g. holding an LM) must not add keys to
        # the checkpoint's state dict
        self._decoders = {"val": val_decoder if val_decoder is not None else CTCGreedyDecoder(),
                          "test": test_decoder if test_decoder is not None else CTCGreedyDecoder()}
        self.tokenizer = tokenizer
        self.init_from, self.video_frontend_ckpt, self.audio_frontend_ckpt = (
            init_from, video_frontend_ckpt, audio_frontend_ckpt)
        self.freeze_frontends_steps = freeze_frontends_steps
        self.max_consecutive_bad_batches = max_consecutive_bad_batches
        self.results_dir = results_dir
        # opt-in: dropout masks from packed random bits, faster on CPU (models/dropout.py, docs/models.md);
        # the modules hold the setting (saved with the hyperparameters)
        set_packed_dropout(model, packed_dropout)
        # Reference-compatibility parameters never get gradients: freeze them so DDP can run with
        # find_unused_parameters=False (docs/internals.md, "Extra model contract for DDP").
        for name in model.unused_parameter_names():
            model.get_parameter(name).requires_grad_(False)
        self.val_error = ErrorRate()
        self.skipped_batches = 0
        self._bad_in_row = 0
        self._updated_since_schedule = False  # a finite loss since the last scheduler step (T10)
        self._last_step_time: float | None = None
        self._test_records: list[dict[str, Any]] = []

    @property
    def val_decoder(self) -> Decoder:
        return self._decoders["val"]

    @val_decoder.setter
    def val_decoder(self, decoder: Decoder) -> None:
        self._decoders["val"] = decoder

    @property
    def test_decoder(self) -> Decoder:
        """Used by ``test`` and ``predict``; replaceable after loading (``module.test_decoder = ...``)."""
        return self._decoders["test"]

    @test_decoder.setter
    def test_decoder(self, decoder: Decoder) -> None:
        self._decoders["test"] = decoder

    # ------------------------------------------------------------------ setup
    def setup(self, stage: str) -> None:
        self._install_checkpoint_io()
        if self.tokenizer is None:
            datamodule = getattr(self.trainer, "datamodule", None)
            self.tokenizer = getattr(datamodule, "tokenizer", None) or CharTokenizer()
        if self.tokenizer.vocab_size != self.model.vocab_size:
            raise ValueError(f"the tokenizer has {self.tokenizer.vocab_size} symbols but the model has "
                             f"vocab_size={self.model.vocab_size}; set model.model.init_args.vocab_size to "
                             f"{self.tokenizer.vocab_size} (the CLI links it from data.tokenizer)")
        if stage == "fit" and self.trainer.ckpt_path is None:
            # checked here, not in __init__: validate/test/predict of a trained model need no init files
            for name in ("init_from", "video_frontend_ckpt", "audio_frontend_ckpt"):
                path = getattr(self, name)
                if path is not None and not Path(path).is_file():
                    raise FileNotFoundError(f"model.{name}: no file at {path!r}; fix the path or set "
                                            f"model.{name}: null")
            report = initialize_model(self.model, self.init_from, self.video_frontend_ckpt, self.audio_frontend_ckpt)
            for line in report:
                rank_zero_info(line)

    def _install_checkpoint_io(self) -> None:
        """Durable checkpoint writes and ``weights_only`` reads for every Trainer, not only the CLI's.

        Runs in ``setup``, i.e. before Lightning reads ``ckpt_path`` or writes any checkpoint; a
        user-chosen plugin (anything but the plain ``TorchCheckpointIO``) is kept.
        """
        from lightning.pytorch.plugins.io import TorchCheckpointIO

        from avsr_lightning.callbacks.atomic_checkpoint_io import AtomicCheckpointIO

        strategy = self.trainer.strategy
        if type(strategy.checkpoint_io) is TorchCheckpointIO:
            strategy.checkpoint_io = AtomicCheckpointIO()

    def configure_callbacks(self) -> list[L.Callback]:
        """Test-only fault injection when ``AVSR_FAULT_AT_STEP`` is set (avsr_lightning/callbacks/fault_injection.py)."""
        from avsr_lightning.callbacks.fault_injection import fault_from_env

        fault = fault_from_env()
        return [fault] if fault is not None else []

    def lr_scheduler_step(self, scheduler: Any, metric: Any | None) -> None:
        """Step the schedule only after a real update: a skipped non-finite batch does not advance it.

        Lightning still calls ``optimizer.step`` for a skipped batch (no gradients, so no parameter,
        moment or weight-decay change) and counts it in ``global_step``; the LR schedule counts updates
        that had a finite loss (docs/reference_differences.md, T10).
        """
        if not self._updated_since_schedule:
            return
        self._updated_since_schedule = False
        super().lr_scheduler_step(scheduler, metric)

    def configure_optimizers(self) -> dict[str, Any]:
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = self.optimizer_factory(params) if self.optimizer_factory else _reference_adam(params)
        if self.scheduler_factory is not None:
            scheduler = self.scheduler_factory(optimizer)
        else:
            scheduler = NoamLR(optimizer, d_model=self.model.d_model, warmup_steps=25000)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}

    # --------------------------------------------------------------- training
    def training_step(self, batch: AVBatch, batch_idx: int) -> Tensor | None:
        out = self.model.loss(*batch.model_inputs(), batch.targets, batch.target_lengths)
        loss = out["loss"]
        if not self._loss_is_finite(loss, batch):
            return None
        self._updated_since_schedule = True
        n_utts = len(batch)
        log = dict(on_step=True, on_epoch=False, batch_size=n_utts)
        self.log("train/loss", loss.detach(), prog_bar=True, **log)
        self.log("train/loss_ctc", out["loss_ctc"].detach(), **log)
        self.log("train/loss_att", out["loss_att"].detach(), **log)
        self.log("train/acc", out["acc"].detach(), **log)
        self.log("lr", float(self.trainer.optimizers[0].param_groups[0]["lr"]), prog_bar=True, **log)
        now = time.perf_counter()
        if self._last_step_time is not None and now > self._last_step_time:
            elapsed = now - self._last_step_time
            self.log("train/utt_per_s", n_utts / elapsed, **log)
            # a device tensor: read only when the logger flushes, so no host-device sync per step
            self.log("train/frames_per_s", batch.video_lengths.sum() / elapsed, **log)
        self._last_step_time = now
        return loss

    def _loss_is_finite(self, loss: Tensor, batch: AVBatch) -> bool:
        """One host sync per step; the decision is shared by all ranks so DDP stays in lock-step."""
        finite = self.trainer.strategy.reduce_boolean_decision(bool(torch.isfinite(loss.detach())), all=True)
        if finite:
            self._bad_in_row = 0
            return True
        self.skipped_batches += 1
        self._bad_in_row += 1
        self.log("train/skipped_batches", float(self.skipped_batches), on_step=True, on_epoch=False,
                 batch_size=len(batch))
        ids = ", ".join(batch.ids[:4]) + (" ..." if len(batch.ids) > 4 else "")
        rank_zero_warn(f"non-finite training loss at global step {self.global_step} (batch {ids}); batch skipped "
                       f"({self.skipped_batches} skipped so far, {self._bad_in_row} in a row)")
        if self._bad_in_row >= self.max_consecutive_bad_batches:
            raise NonFiniteLossError(
                f"{self._bad_in_row} consecutive batches had a NaN/inf loss (last: {ids}). The run has diverged or "
                "the data is broken: lower the peak learning rate, enable gradient clipping "
                "(trainer.gradient_clip_val), use bf16-mixed instead of 16-mixed, or check the listed utterances.")
        return False

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.freeze_frontends_steps and self.global_step < self.freeze_frontends_steps:
            # grad None => Adam/AdamW leave the parameter (and its moments) untouched this update
            for name, p in self.model.named_parameters():
                if "frontend" in name:
                    p.grad = None

    # ------------------------------------------------------------- validation
    def validation_step(self, batch: AVBatch, batch_idx: int, dataloader_idx: int = 0) -> None:
        # one encoder pass serves the loss and the decoder (the decoder sees a view with cached features)
        inputs = batch.model_inputs()
        features, lengths = self.model.encode(*inputs)
        out = self.model.loss_from_encoded(features, lengths, batch.targets, batch.target_lengths)
        self.log("val/loss", out["loss"], on_step=False, on_epoch=True, sync_dist=True, batch_size=len(batch),
                 add_dataloader_idx=False)
        self.log("val/acc", out["acc"], on_step=False, on_epoch=True, sync_dist=True, batch_size=len(batch),
                 add_dataloader_idx=False)
        hypotheses = self._texts(self.val_decoder(PreEncoded(self.model, inputs, features, lengths), batch))
        ids = batch.ids if dataloader_idx == 0 else [f"{dataloader_idx}:{i}" for i in batch.ids]
        self.val_error.update(ids, batch.texts, hypotheses)

    def on_validation_epoch_end(self) -> None:
        rates = self.val_error.compute()  # synced across ranks, each utterance once
        self.val_error.reset()
        if not math.isnan(float(rates["wer"])):
            self.log("val/wer", rates["wer"].float(), prog_bar=True, sync_dist=False)
            self.log("val/cer", rates["cer"].float(), sync_dist=False)

    # ------------------------------------------------------------ test/predict
    def on_test_epoch_start(self) -> None:
        self._test_records = []

    def test_step(self, batch: AVBatch, batch_idx: int, dataloader_idx: int = 0) -> None:
        hypotheses = self._texts(self.test_decoder(self.model, batch))
        loaders = self.trainer.test_dataloaders
        several = isinstance(loaders, (list, tuple)) and len(loaders) > 1
        for i, (utt, ref, hyp) in enumerate(zip(batch.ids, batch.texts, hypotheses)):
            condition = batch.conditions[i] if i < len(batch.conditions) else {}
            # a test condition's own name (e.g. babble_snr0__clean) is the stable key of the report
            name = condition["name"] if isinstance(condition.get("name"), str) else condition_name(condition)
            if several and not condition:
                name = f"loader{dataloader_idx}"
            self._test_records.append(make_record(utt, ref, hyp, name, dataloader_idx=dataloader_idx,
                                                  condition_detail=dict(condition)))

    def on_test_epoch_end(self) -> None:
        records = self._gather(self._test_records)
        unique = {(r["condition"], r["dataloader_idx"], r["id"]): r for r in records}  # DDP padding repeats
        records = list(unique.values())
        datamodule = getattr(self.trainer, "datamodule", None)
        skipped_fn = getattr(datamodule, "skipped_utterances", None)
        skipped = self._gather(skipped_fn("test") if callable(skipped_fn) else [])
        records, skipped = same_utterances(records, skipped)
        out_dir = self._results_dir()  # on every rank: Trainer.log_dir is a collective under DDP
        summary = write_report(records, out_dir, skipped=skipped) if self.trainer.is_global_zero else None
        summary = self._broadcast(summary)
        overall = summary["overall"]
        self.log("test/wer", float(overall["wer"]), sync_dist=False, add_dataloader_idx=False)
        self.log("test/cer", float(overall["cer"]), sync_dist=False, add_dataloader_idx=False)
        for name, rates in summary["conditions"].items():
            if len(summary["conditions"]) > 1:
                self.log(f"test/wer[{name}]", float(rates["wer"]), sync_dist=False, add_dataloader_idx=False)
        if self.trainer.is_global_zero:
            print(format_test_table(summary) + f"\nWER: {overall['wer']:.3f}, CER: {overall['cer']:.3f}\n"
                  f"test report written to {out_dir}", flush=True)

    def predict_step(self, batch: AVBatch, batch_idx: int, dataloader_idx: int = 0) -> list[dict[str, Any]]:
        nbest = self.test_decoder(self.model, batch)
        texts = self._texts(nbest)
        return [{"id": utt, "hypothesis": text, "score": float(hyps[0].score) if hyps else float("nan")}
                for utt, text, hyps in zip(batch.ids, texts, nbest)]

    # ---------------------------------------------------------------- helpers
    def _texts(self, nbest: list[list[Hypothesis]]) -> list[str]:
        tokenizer = self.tokenizer or CharTokenizer()
        return [(hyps[0].text or tokenizer.decode(hyps[0].tokens)) if hyps else "" for hyps in nbest]

    def _results_dir(self) -> Path:
        if self.results_dir:
            return Path(self.results_dir)
        return Path(self.trainer.log_dir or self.trainer.default_root_dir)

    def _gather(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.trainer.world_size == 1 or not torch.distributed.is_initialized():
            return list(records)
        gathered: list[list[dict[str, Any]]] = [None] * self.trainer.world_size  # type: ignore[list-item]
        torch.distributed.all_gather_object(gathered, records)
        return [r for part in gathered for r in part]

    def _broadcast(self, obj: Any) -> Any:
        if self.trainer.world_size == 1 or not torch.distributed.is_initialized():
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["avsr_skipped_batches"] = self.skipped_batches
        # which torchrun job wrote it: after an elastic restart every node resumes from it (cli.py,
        # elastic_resume_checkpoint; a per-node restart counter would let the nodes disagree)
        if os.environ.get("TORCHELASTIC_RUN_ID"):
            checkpoint["torchelastic_run_id"] = os.environ["TORCHELASTIC_RUN_ID"]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.skipped_batches = int(checkpoint.get("avsr_skipped_batches", 0))

