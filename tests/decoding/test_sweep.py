"""The robustness sweep: per (model, condition) WER from the data module's test conditions; table + plot."""
from __future__ import annotations

import csv

import pytest
import torch
from torch import nn

from avsr_lightning.batch import AVBatch
from avsr_lightning.decoding.hypothesis import Hypothesis
from avsr_lightning.sweep import condition_grid, run_sweep, write_outputs

TEXTS = ["THE CAT SAT", "WE SAID YES", "A DOG RAN HOME", "NOT WHAT IS IT"]


class ConditionData:
    """Stand-in for LRSDataModule: one test loader (list of AVBatch) per entry of ``test_conditions``."""

    def __init__(self) -> None:
        self.test_conditions = None
        self.hook_calls = 0

    def setup(self, stage):
        assert stage == "test" and self.test_conditions

    def test_dataloader(self):
        loaders = []
        for c in self.test_conditions:
            batches = []
            for start in (0, 2):
                n = 2
                batches.append(AVBatch(video=torch.zeros(n, 3, 4, 4), video_lengths=torch.full((n,), 3), audio=None,
                                       audio_lengths=torch.zeros(n, dtype=torch.long),
                                       targets=torch.full((n, 1), -1), target_lengths=torch.zeros(n, dtype=torch.long),
                                       ids=[f"u{start + i}" for i in range(n)], texts=TEXTS[start:start + n],
                                       conditions=[{"snr": c.snr, "visual": c.visual}] * n))
            loaders.append(batches)
        return loaders

    def on_before_batch_transfer(self, batch, idx):
        self.hook_calls += 1
        return batch


class Oracle(nn.Module):
    """A "model" whose decoder output depends on the condition: drops ``drop`` words when the audio is noisy
    (SNR below 10 dB) and one more under occlusion."""

    def __init__(self, drop: int) -> None:
        super().__init__()
        self.drop = drop


def oracle_decoder(model, batch):
    out = []
    for text, cond in zip(batch.texts, batch.conditions):
        words = text.split()
        k = (model.drop if cond["snr"] is not None and cond["snr"] < 10 else 0) + (cond["visual"] == "occlusion")
        out.append([Hypothesis([], 0.0, " ".join(words[:len(words) - k]))])
    return out


def test_sweep_table_and_plot(tmp_path):
    data = ConditionData()
    models = {"good": Oracle(0), "bad": Oracle(1)}
    rows = run_sweep(models, data, oracle_decoder, snrs=[None, 10, 0], visual=["clean", "occlusion"])
    assert [c.name for c in data.test_conditions] == [c.name for c in condition_grid([None, 10, 0],
                                                                                    ["clean", "occlusion"])]
    assert data.hook_calls == 6 * 2
    assert len(rows) == 12
    cell = {(r.model, r.visual, r.snr): r for r in rows}
    words = sum(len(t.split()) for t in TEXTS)
    assert cell[("good", "clean", None)].wer == 0.0
    assert cell[("bad", "clean", 0.0)].wer == pytest.approx(100 * 4 / words)
    assert cell[("bad", "occlusion", 0.0)].wer == pytest.approx(100 * 8 / words)
    assert cell[("good", "occlusion", 10.0)].wer == pytest.approx(100 * 4 / words)
    assert all(r.utterances == 4 and r.words == words for r in rows)

    paths = write_outputs(rows, tmp_path / "out")
    with open(paths["csv"]) as f:
        table = list(csv.DictReader(f))
    assert len(table) == 12 and {t["snr"] for t in table} == {"clean", "10", "0"}
    md = paths["markdown"].read_text()
    assert "## WER (%), visual: occlusion" in md and "## CER (%), visual: clean" in md
    assert "| good | 0.00 | 0.00 | 0.00 |" in md and "clean | 10 dB | 0 dB" in md
    assert "Reliability" not in md and "reliability" not in paths  # no model has reliability scores
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_bad_grid_fails_fast():
    with pytest.raises(ValueError, match="visual"):
        condition_grid([None], ["foggy"])
    with pytest.raises(ValueError, match="snrs"):
        condition_grid([], ["clean"])
