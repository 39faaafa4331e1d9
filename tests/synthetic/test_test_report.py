"""``test`` prints one table for all conditions, one row each with a readable name (not one table per loader)."""
from __future__ import annotations

import json
import sys

from .conftest import TINY


def test_one_table_with_readable_condition_names(tiny_corpus, tmp_path, repo_root, monkeypatch, capsys):
    from avsr_lightning.cli import main

    monkeypatch.setattr(sys, "argv", ["avsr_lightning"])
    main([
        "test", "--config", str(repo_root / "configs/demo.yaml"),
        "--config", str(repo_root / "configs/model/tiny_avrelscore.yaml"),
        "--data.init_args.root", str(tiny_corpus), "--data.init_args.utterances", str(TINY["utterances"]),
        "--data.init_args.batch_size", "2", "--data.init_args.num_workers", "0",
        "--data.init_args.test_conditions", "[clean__clean, babble_snr0__clean, babble_snr-5__noise]",
        "--trainer.enable_progress_bar", "false", "--trainer.logger", "false",
        "--trainer.default_root_dir", str(tmp_path), "--model.results_dir", str(tmp_path / "report"),
    ])
    out = capsys.readouterr().out
    assert "Test metric" not in out  # Lightning's per-loader table is off
    header = [line for line in out.splitlines() if line.startswith("condition")]
    assert len(header) == 1, out
    for label, key in (("clean audio, clean video", "clean__clean"), ("babble 0 dB, clean video", "babble_snr0__clean"),
                       ("babble -5 dB, noise video", "babble_snr-5__noise")):
        rows = [line for line in out.splitlines() if line.startswith(label)]
        assert len(rows) == 1 and key in rows[0], out
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert set(summary["conditions"]) == {"clean__clean", "babble_snr0__clean", "babble_snr-5__noise"}
