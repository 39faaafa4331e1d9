"""The demo recipe runs end to end through the CLI on a tiny synthetic corpus and the training loss falls."""
from __future__ import annotations

import csv
import sys

import pytest

from .conftest import TINY


@pytest.mark.parametrize("config", ["configs/demo.yaml"])
def test_short_cpu_fit_through_the_cli_reduces_training_loss(tiny_corpus, tmp_path, repo_root, config, monkeypatch):
    from avsr_lightning.cli import main

    monkeypatch.setattr(sys, "argv", ["avsr_lightning"])  # the CLI gets its arguments from `args` only

    main([
        "fit", "--config", str(repo_root / config), "--config", str(repo_root / "configs/model/tiny_avrelscore.yaml"),
        "--data.init_args.root", str(tiny_corpus), "--data.init_args.utterances", str(TINY["utterances"]),
        "--data.init_args.batch_size", "2", "--data.init_args.num_workers", "0",
        "--data.init_args.train_snrs", "[null]",
        "--model.model.init_args.dropout", "0.0", "--model.model.init_args.ctc_weight", "0.3",
        "--trainer.max_time", "null", "--trainer.max_steps", "16", "--trainer.limit_train_batches", "2",
        "--trainer.check_val_every_n_epoch", "8", "--trainer.limit_val_batches", "1",
        "--trainer.log_every_n_steps", "1", "--trainer.enable_progress_bar", "false",
        "--trainer.default_root_dir", str(tmp_path),
        "--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir", str(tmp_path),
    ])
    rows = list(csv.DictReader(open(next(tmp_path.rglob("metrics.csv")))))
    losses = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    assert len(losses) >= 14
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < 0.7 * first, losses
    assert any(r.get("val/cer") for r in rows)  # validation reports WER/CER
    assert list(tmp_path.rglob("last.ckpt"))
