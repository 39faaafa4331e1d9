"""``predict`` on users' clips: a preprocessed crop, a raw video with landmarks, a clip that must be skipped."""
from __future__ import annotations

import json

import lightning as L
import numpy as np
import pytest

from avsr_lightning.callbacks.prediction_writer import PredictionWriter
from avsr_lightning.data.media import write_audio, write_video
from avsr_lightning.datamodules.raw_video import RawVideoDataModule
from avsr_lightning.decoding import BeamSearchDecoder
from avsr_lightning.lightning_module import AVSRModule
from avsr_lightning.weights.load import load_model

TINY = dict(d_model=32, heads=2, encoder_layers=1, ffn_dim=64, decoder_layers=1, decoder_ffn_dim=64, conv_kernel=3,
            frontend_widths=(8, 8, 16, 16), scorer_hidden=16, scorer_kernel=3)


def make_clips(root, mean_face):
    rng = np.random.default_rng(0)
    frames = 12
    write_video(root / "crop.mp4", rng.integers(0, 255, (frames, 96, 96), dtype=np.uint8))
    write_audio(root / "crop.wav", rng.standard_normal(frames * 640).astype(np.float32) * 0.1)
    # a raw 200x200 video whose landmarks are the mean face scaled by 0.6 and shifted: alignment is exact
    raw = rng.integers(0, 255, (frames, 200, 200), dtype=np.uint8)
    (root / "sub").mkdir()
    write_video(root / "sub" / "raw.mp4", raw)
    write_audio(root / "sub" / "raw.wav", rng.standard_normal(frames * 640).astype(np.float32) * 0.1)
    landmarks = np.repeat((mean_face * 0.6 + 20.0)[None], frames, 0).astype(np.float32)
    np.savez(root / "sub" / "raw.npz", landmarks=landmarks)
    # a raw video without landmarks and without a detector: skipped, never a crash
    write_video(root / "sub" / "nolandmarks.mp4", raw)


def test_predict_writes_jsonl_and_skips_bad_clips(tmp_path, shared_reference, capsys):
    mean_face = shared_reference / "data" / "20words_mean_face.npy"
    clips = tmp_path / "clips"
    clips.mkdir()
    make_clips(clips, np.load(mean_face))
    data = RawVideoDataModule(str(clips), mean_face=str(mean_face), batch_size=2)
    module = AVSRModule(load_model(None, arch="AVRelScore", **TINY), test_decoder=BeamSearchDecoder(beam_size=2))
    out = tmp_path / "pred" / "predictions.jsonl"
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[PredictionWriter(str(out))], default_root_dir=tmp_path)
    trainer.predict(module, datamodule=data, return_predictions=False)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == ["crop", "sub/raw"]
    assert all(isinstance(r["hypothesis"], str) and isinstance(r["score"], float) for r in rows)
    assert list(data.skipped) == ["sub/nolandmarks"] and "no landmarks" in data.skipped["sub/nolandmarks"]
    printed = capsys.readouterr().out
    assert "crop\t" in printed and "2 transcripts written" in printed
    assert not list(out.parent.glob(".*.tmp"))


def test_bad_arguments_fail_fast(tmp_path):
    with pytest.raises(FileNotFoundError):
        RawVideoDataModule(str(tmp_path / "nothing")).setup("predict")
    with pytest.raises(ValueError, match="modalities"):
        RawVideoDataModule(str(tmp_path), modalities="smell")
