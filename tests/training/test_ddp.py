"""2-process CPU DDP (gloo) in a subprocess: trains without find_unused_parameters, and its validation
WER/CER equal a 1-process validation of the same weights (each utterance counted once: 5 validation
utterances over 2 ranks make Lightning's sampler repeat one)."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest


def _last_val_row(metrics_csv: Path) -> dict[str, str]:
    rows = [r for r in csv.DictReader(metrics_csv.open()) if r.get("val/wer")]
    assert rows, f"no val/wer rows in {metrics_csv}"
    return rows[-1]


def test_two_process_ddp_matches_one_process_validation(tmp_path, tr):
    args = tr.tiny_args(tmp_path, "avrelscore", max_steps=2, extra=[
        "--trainer.strategy", "ddp", "--trainer.devices", "2",
        "--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir", str(tmp_path),
        "--reliability_plot.num_utterances", "1",
        # an untrained CTC head mostly emits blanks (WER 100 for every utterance, a trivially equal number);
        # attention greedy output is non-empty and differs per utterance, so double counting would show
        "--model.val_decoder", "avsr_lightning.decoding.greedy.AttentionGreedyDecoder"])
    proc = tr.run_subprocess(["-m", "avsr_lightning", "fit", *args], cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "find_unused_parameters" not in proc.stderr
    metrics_csv = next(tmp_path.rglob("metrics.csv"))
    ddp = _last_val_row(metrics_csv)
    last = next(tmp_path.rglob("last.ckpt"))

    single = tr.run_cli(["validate", *tr.tiny_args(tmp_path / "single", "avrelscore"), "--ckpt_path", str(last),
                         "--model.val_decoder", "avsr_lightning.decoding.greedy.AttentionGreedyDecoder"])
    metrics = single.trainer.callback_metrics
    assert float(ddp["val/cer"]) != 100.0, "trivial hypotheses: the comparison would prove nothing"
    assert float(ddp["val/wer"]) == pytest.approx(float(metrics["val/wer"]), abs=1e-4)
    assert float(ddp["val/cer"]) == pytest.approx(float(metrics["val/cer"]), abs=1e-4)
