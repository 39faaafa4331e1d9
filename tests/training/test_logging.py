"""Loggers: offline wandb from the logger preset; test/predict through the CLI."""
from __future__ import annotations

import json

import pytest


def test_offline_wandb_run_is_written(tmp_path, tr, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    cli = tr.run_cli(["fit", *tr.tiny_args(tmp_path, "avrelscore", max_steps=2),
                      "--config", str(tr.CONFIGS / "logger" / "wandb.yaml"),
                      "--trainer.logger.init_args.save_dir", str(tmp_path / "runs")])
    import wandb

    wandb.finish()
    runs = list(tmp_path.rglob("offline-run-*"))
    assert runs, "no offline wandb run directory"
    assert list(runs[0].glob("*.wandb")), "offline run has no data file"
    assert list(tmp_path.rglob("reliability/step_*.png"))  # the picture is also a file next to the logs
    assert cli.trainer.logger.__class__.__name__ == "WandbLogger"


def test_test_and_predict_through_the_cli(tmp_path, tr):
    fit = tr.run_cli(["fit", *tr.tiny_args(tmp_path, "audio", max_steps=1)])
    last = fit.trainer.checkpoint_callback.last_model_path
    report = tmp_path / "report"
    tr.run_cli(["test", *tr.tiny_args(tmp_path, "audio"), "--ckpt_path", last, "--model.results_dir", str(report),
                "--data.init_args.num_test_loaders", "2",
                "--model.test_decoder", "avsr_lightning.decoding.greedy.AttentionGreedyDecoder"])
    summary = json.loads((report / "summary.json").read_text())
    assert summary["overall"]["utterances"] == 8 and len(summary["conditions"]) == 2
    assert (report / "wer.txt").read_text().startswith("WER: ")
    pred = tr.run_cli(["predict", *tr.tiny_args(tmp_path, "audio"), "--ckpt_path", last])
    assert pred.trainer.predict_loop.predictions is not None
