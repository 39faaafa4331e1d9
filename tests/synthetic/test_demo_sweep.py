"""The sweep compares three checkpoints (AV, audio-only, video-only) on the synthetic corpus: CER plot,
tables and the AV model's reliability picture."""
from __future__ import annotations

import csv

import torch

from avsr_lightning import models
from avsr_lightning.sweep import main

TINY = dict(d_model=32, heads=2, encoder_layers=1, ffn_dim=64, decoder_layers=1, decoder_ffn_dim=64, conv_kernel=3,
            frontend_widths=(8, 8, 16, 16), mask_padding=True)


def test_sweep_three_checkpoints(tiny_corpus, tmp_path):
    paths = {}
    for name, arch in (("av", "AVRelScore"), ("audio", "Audio"), ("video", "Video")):
        torch.manual_seed(0)
        extra = dict(scorer_hidden=16, scorer_kernel=3) if arch == "AVRelScore" else {}
        model = getattr(models, arch)(**TINY, **extra)
        paths[name] = tmp_path / f"{name}.pth"
        torch.save({"state_dict": model.state_dict()}, paths[name])  # the reference checkpoint layout
    out = tmp_path / "sweep"
    models_arg = "{" + ", ".join(f"{k}: {v}" for k, v in paths.items()) + "}"
    rows = main(["--models", models_arg, "--data", "avsr_lightning.datamodules.SyntheticDataModule",
                 "--data.init_args.root", str(tiny_corpus), "--data.init_args.utterances", "6",
                 "--data.init_args.max_frames", "null", "--data.init_args.batch_size", "2",
                 "--data.init_args.num_workers", "0", "--data.init_args.train_snrs", "[null]",
                 "--decoder", "avsr_lightning.decoding.greedy.CTCGreedyDecoder",
                 "--snrs", "[null, 5, 0]", "--visual", "[clean, noise]", "--metric", "cer", "--device", "cpu",
                 "--out_dir", str(out)])
    assert len(rows) == 3 * 2 * 3
    with open(out / "sweep.csv") as f:
        table = list(csv.DictReader(f))
    assert {t["model"] for t in table} == {"av", "audio", "video"}
    assert all((t["reliability_video"] != "") == (t["model"] == "av") for t in table)
    for t in table:
        if t["model"] == "av":
            assert 0.0 < float(t["reliability_video"]) < 1.0 and 0.0 < float(t["reliability_audio"]) < 1.0
    # the video-only model never sees the audio: its rates do not depend on the SNR
    video = {(t["visual"], t["snr"]): t["cer"] for t in table if t["model"] == "video"}
    assert video[("clean", "clean")] == video[("clean", "0")]
    md = (out / "sweep.md").read_text()
    assert "## CER (%), visual: noise" in md and "Reliability scores of av" in md
    for name in ("sweep.png", "reliability.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_recipe_gives_the_sweep_its_data_section(tmp_path):
    from avsr_lightning.sweep import _with_recipe_data

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("trainer: {max_steps: 3}\ndata:\n  class_path: avsr_lightning.datamodules.LRSDataModule\n"
                      "  init_args: {root: /x, batch_size: 2, max_frames: null}\n")
    args = _with_recipe_data(["--models", "{a: b}", "--recipe", str(recipe), "--data.init_args.root", "/y"])
    assert args[0] == "--data" and '"root": "/x"' in args[1]
    assert args[2:] == ["--models", "{a: b}", "--data.init_args.root", "/y"]  # later overrides still win
    import pytest

    (tmp_path / "nodata.yaml").write_text("trainer: {}\n")
    with pytest.raises(ValueError, match="no data section"):
        _with_recipe_data(["--recipe", str(tmp_path / "nodata.yaml")])
