"""``python -m avsr_lightning fit|validate|test|predict --config ...``: LightningCLI for AVSR.

The model is always :class:`AVSRModule` wrapping a ``Recognizer`` given by ``class_path``; the data is
any ``LightningDataModule`` by ``class_path``. The vocabulary size is linked once, from the data
module's tokenizer to the recognizer (``model.model.init_args.vocab_size`` never needs writing).
Always-on callbacks get their own config groups (``checkpoint``, ``lr_monitor``, ``rng_state``,
``reliability_plot``, ``fit_summary``, ``budget_schedule``) so presets that replace ``trainer.callbacks`` cannot drop them.
"""
from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningDataModule, Trainer
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_info

from avsr_lightning.allocator import retain_freed_memory
from avsr_lightning.callbacks import (
    FitSummary,
    ReliabilityPlot,
    ResumableModelCheckpoint,
    RNGStateCallback,
    TimeBudgetSchedule,
)
from avsr_lightning.callbacks.atomic_checkpoint_io import read_lightning_checkpoint
from avsr_lightning.elastic_store import destroy_default_group, init_process_group_for_trainer
from avsr_lightning.lightning_module import AVSRModule
from avsr_lightning.primitive_cache import enlarge_primitive_cache

__all__ = ["AVSRCLI", "main", "data_vocab_size"]


def data_vocab_size(data: Any) -> int:
    """The vocabulary size a data module implies: its tokenizer's, else the reference 41 characters."""
    tokenizer = getattr(data, "tokenizer", None)
    if tokenizer is None:
        from avsr_lightning.text import CharTokenizer

        tokenizer = CharTokenizer()
    return int(tokenizer.vocab_size)


class AVSRCLI(LightningCLI):
    """LightningCLI with the AVSR defaults: checkpoints on ``val/wer`` (min) + ``last``, lr monitor,
    RNG-state checkpointing, the reliability picture, ``use_distributed_sampler`` set for data modules
    that shard their own batches, elastic-restart resume and a closing summary."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data", "model.model.init_args.vocab_size", compute_fn=data_vocab_size,
                              apply_on="instantiate")
        parser.add_lightning_class_args(ResumableModelCheckpoint, "checkpoint")
        parser.set_defaults({
            "checkpoint.monitor": "val/wer", "checkpoint.mode": "min", "checkpoint.save_top_k": 5,
            "checkpoint.save_last": True, "checkpoint.auto_insert_metric_name": False,
            "checkpoint.filename": "epoch{epoch:03d}-step{step:07d}-wer{val/wer:.2f}",
        })
        parser.add_lightning_class_args(LearningRateMonitor, "lr_monitor")
        parser.set_defaults({"lr_monitor.logging_interval": "step"})
        parser.add_lightning_class_args(RNGStateCallback, "rng_state")
        parser.add_lightning_class_args(ReliabilityPlot, "reliability_plot")
        parser.add_lightning_class_args(FitSummary, "fit_summary")
        parser.add_lightning_class_args(TimeBudgetSchedule, "budget_schedule")

    def _prepare_subcommand_parser(self, klass: type, subcommand: str, **kwargs: Any) -> LightningArgumentParser:
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        if subcommand == "test":
            # AVSRModule prints one table of every condition; Lightning's would repeat it per test loader
            parser.set_defaults({"verbose": False})
        return parser

    def _parse_ckpt_path(self) -> None:
        """With ``--ckpt_path``, take only the recognizer (architecture and sizes) from the checkpoint.

        LightningCLI would apply *all* saved module arguments over the command line, so ``test
        --ckpt_path X --config configs/decode/beam40_lm.yaml`` would silently decode with the
        checkpoint's (training-time) decoder and report directory. The weights only need the model.
        """
        subcommand = self.config.get("subcommand")
        if not subcommand:
            return
        ckpt_path = self.config[subcommand].get("ckpt_path")
        if not ckpt_path:
            return
        if ckpt_path in ("last", "best", "hpc", "registry"):  # Lightning's keywords, resolved by the Trainer
            return
        if not Path(ckpt_path).is_file():
            raise SystemExit(f"error: --ckpt_path {ckpt_path}: no such file (give a checkpoint file, or 'last')")
        # the project's one reader: weights_only=True, one-line errors naming the file
        from avsr_lightning.weights.load import CheckpointError

        try:
            hparams = read_lightning_checkpoint(ckpt_path).get("hyper_parameters") or {}
        except CheckpointError as err:
            raise SystemExit(f"error: --ckpt_path: {err}") from None
        recognizer = hparams.get("model")
        if isinstance(recognizer, dict) and "class_path" in recognizer:
            self.config = self.parser.parse_object({subcommand: {"model": {"model": recognizer}}}, self.config)

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The durable checkpoint plugin is installed by ``AVSRModule.setup`` (plain Trainers get it too).

        A data module that shards its own batches (``shards_own_batches``, e.g. :class:`LRSDataModule`)
        gets ``use_distributed_sampler=False`` here, so any recipe goes multi-process by changing only
        ``devices``/``num_nodes``/``strategy`` (docs/training.md, "Distributed training").

        Under torchrun the default process group is initialised here, on a store namespace that is new at
        every (re)start of the group (avsr_lightning/elastic_store.py): torchrun's job-long store still holds
        the previous workers' addresses after an elastic restart.
        """
        config = self._get(self.config_init, "trainer", default={}) or {}
        if getattr(self.datamodule, "shards_own_batches", False) and config.get("use_distributed_sampler", True):
            kwargs["use_distributed_sampler"] = False
            rank_zero_info(f"{type(self.datamodule).__name__} shards its batches itself: "
                           "trainer.use_distributed_sampler set to false")
        trainer = super().instantiate_trainer(**kwargs)
        init_process_group_for_trainer(trainer)
        return trainer

    def before_fit(self) -> None:
        """After an elastic restart (torchrun ``--max_restarts``), resume from the newest ``last.ckpt`` of this job."""
        resume = elastic_resume_checkpoint(self.trainer.default_root_dir, self._get(self.config_init, "ckpt_path"))
        if resume is not None:
            rank_zero_info(f"elastic restart (torchrun job {os.environ.get('TORCHELASTIC_RUN_ID')}): resuming from {resume}")
            self.config_init[self.subcommand]["ckpt_path"] = str(resume)

    def after_fit(self) -> None:
        trainer = self.trainer
        ckpt = trainer.checkpoint_callback
        log_dir = trainer.log_dir  # a collective under DDP: every rank asks
        if trainer.is_global_zero and isinstance(ckpt, ModelCheckpoint):
            score = ckpt.best_model_score
            rank_zero_info(
                "\n".join([
                    f"best checkpoint ({ckpt.monitor}={float(score):.3f}): {ckpt.best_model_path}" if score is not None
                    else f"best checkpoint: {ckpt.best_model_path or 'none (no validation ran)'}",
                    f"last checkpoint: {ckpt.last_model_path}",
                    f"logs and resolved config: {log_dir}",
                ]))


def elastic_resume_checkpoint(root: str | os.PathLike, ckpt_path: Any) -> Path | None:
    """The ``last.ckpt`` to resume from after a torchrun restart, or None.

    Only under torchrun with ``--max_restarts`` > 0 and no ``--ckpt_path``: the most recently written
    ``last*.ckpt`` under ``root`` (``trainer.default_root_dir``, shared by all nodes), if it was written by
    this torchrun job (the ``TORCHELASTIC_RUN_ID`` that ``AVSRModule`` records in every checkpoint, i.e.
    torchrun's ``--rdzv_id``). None when there is none yet (the crash came before the first checkpoint:
    the run starts over, which is the same thing).

    Why not ``TORCHELASTIC_RESTART_COUNT``: it counts the restarts of *this node's* agent. The agent of a
    node whose worker failed increments it; the agents of healthy nodes restart their workers for the new
    rendezvous round with the count unchanged (0). Deciding on it, the failed node resumed while the others
    started over, and the restarted group deadlocked. The decision here depends only on the environment
    torchrun gives every node alike and on the shared checkpoint directory, so all ranks agree.
    """
    run_id = os.environ.get("TORCHELASTIC_RUN_ID")
    if ckpt_path or not run_id or int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0") or 0) <= 0:
        return None
    candidates = [p for p in Path(root).rglob("last*.ckpt") if p.is_file() and not p.name.startswith(".")]
    if not candidates:
        return None
    newest = max(candidates, key=lambda p: (p.stat().st_mtime_ns, str(p)))
    from avsr_lightning.weights.load import CheckpointError

    try:
        written_by = read_lightning_checkpoint(newest).get("torchelastic_run_id")
    except CheckpointError as err:
        raise SystemExit(f"error: elastic restart: cannot resume from {newest}: {err}") from None
    return newest if written_by == run_id else None


def main(args: list[str] | None = None) -> AVSRCLI:
    """Entry point of ``python -m avsr_lightning`` and the ``avsr-lightning`` script.

    ``transcribe`` is a plain argparse command (docs/transcribe.md), not a LightningCLI subcommand: it exits
    with its own status code."""
    argv = sys.argv[1:] if args is None else list(args)
    retain_freed_memory()  # before the model exists: no page faults for the step's large tensors (allocator.py)
    enlarge_primitive_cache()  # before the first convolution: no oneDNN kernel rebuilt per batch shape
    atexit.unregister(destroy_default_group)  # once per process, however often main() runs (tests)
    atexit.register(destroy_default_group)  # a DDP run's process group (gloo too) ends before the interpreter
    if argv and argv[0] == "transcribe":
        from avsr_lightning.transcribe import main as transcribe_main

        raise SystemExit(transcribe_main(argv[1:]))
    return AVSRCLI(AVSRModule, LightningDataModule, subclass_mode_data=True, auto_configure_optimizers=False,
                   save_config_kwargs={"overwrite": True}, args=args)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
