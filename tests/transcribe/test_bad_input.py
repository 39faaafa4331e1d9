"""Bad input: one clear line naming the file and the reason, nothing half-written, the other files go on."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from .conftest import face_frames, save_tiny, tone_bursts, write_clip


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad")
    save_tiny(root / "av.ckpt", "AVRelScore")
    save_tiny(root / "video.ckpt", "Video")
    (root / "greedy.yaml").write_text("model:\n  test_decoder:\n    class_path: avsr_lightning.decoding.CTCGreedyDecoder\n")
    return root


def run(work, capsys, files, *extra, ckpt="av.ckpt"):
    from avsr_lightning.transcribe import main

    rc = main([*map(str, files), "--ckpt_path", str(work / ckpt), "--config", str(work / "greedy.yaml"),
               "--out", str(work / "out"), *map(str, extra)])
    return rc, capsys.readouterr().err


def test_each_bad_file_is_one_line_and_the_batch_goes_on(work, capsys, mean_face_path):
    not_video = work / "notes.mp4"
    not_video.write_text("this is not a video\n")
    grey = np.full((1, 64, 64, 3), 128, np.uint8)
    one_frame = write_clip(work / "one.mp4", grey, 25.0, tone_bursts(0.04, 16000), 16000)
    silent = write_clip(work / "silent.mp4", np.repeat(grey, 10, 0), 25.0)
    good = write_clip(work / "good.m4a", None, 25.0, tone_bursts(1.0, 16000), 16000)
    rc, err = run(work, capsys, [not_video, one_frame, silent, good], "--mean_face", mean_face_path)
    assert rc == 1
    lines = [ln for ln in err.splitlines() if "skipped" in ln and "file(s)" not in ln]
    assert len(lines) == 3, err
    assert str(not_video) in lines[0] and "not a readable video" in lines[0]
    assert str(one_frame) in lines[1] and "1 frame" in lines[1]
    assert str(silent) in lines[2] and "no audio track" in lines[2]
    outputs = sorted(p.name for p in (work / "out").iterdir())
    assert outputs == ["good.json", "good.srt", "good.txt", "good.vtt"], outputs
    assert "3 of 4 file(s) skipped" in err


def test_silent_video_decodes_with_a_video_only_model(work, capsys, astronaut, mean_face_path):
    pytest.importorskip("mediapipe")
    frames, _ = face_frames(astronaut, 25, 25.0)
    clip = write_clip(work / "mute.mp4", frames, 25.0)
    rc, err = run(work, capsys, [clip], "--mean_face", mean_face_path, ckpt="video.ckpt")
    assert rc == 0, err
    result = json.loads((work / "out" / "mute.json").read_text())
    assert "no audio track" in err and result["segments"][0]["source"] == "video"


def test_variable_frame_rate_keeps_the_duration(work, capsys, astronaut):
    from avsr_lightning.transcribe.reader import probe, stream

    frames, _ = face_frames(astronaut, 40, 25.0)
    pts = np.cumsum([0] + [30 if i % 2 else 70 for i in range(39)]).tolist()  # 30/70 ms steps: 1.95 s + last
    clip = write_clip(work / "vfr.mp4", frames, 20.0, pts=pts)
    info = probe(clip)
    n = sum(len(c.frames) for c in stream(clip, info))
    duration = (pts[-1] + 50) / 1000  # last frame lasts one mean step
    assert abs(n / 25 - duration) <= 0.08, (n, duration)


def test_unreadable_checkpoint_is_one_line(work, capsys, tmp_path):
    bad = tmp_path / "broken.ckpt"
    bad.write_bytes(b"\x80\x04 not a checkpoint")
    clip = write_clip(work / "any.m4a", None, 25.0, tone_bursts(0.5, 16000), 16000)
    from avsr_lightning.transcribe import main

    rc = main([str(clip), "--ckpt_path", str(bad), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and str(bad) in err and "unreadable checkpoint" in err
    assert not (tmp_path / "out").exists()


def test_lm_with_another_vocabulary_is_refused(work, capsys, tmp_path):
    from avsr_lightning.models.rnnlm import RNNLM

    lm = RNNLM(vocab_size=30, layers=1, units=8)
    state = {f"predictor.{k}": v for k, v in lm.state_dict().items()}
    torch.save(state, tmp_path / "model.pth")
    (tmp_path / "model.json").write_text("{}")
    clip = write_clip(work / "lm.m4a", None, 25.0, tone_bursts(0.5, 16000), 16000)
    from avsr_lightning.transcribe import main

    rc = main([str(clip), "--ckpt_path", str(work / "av.ckpt"), "--lm_path", str(tmp_path / "model.pth"),
               "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "vocabulary" in err.lower(), err
    assert not (tmp_path / "out").exists()


def test_transcribe_dispatches_from_the_main_cli(work, capsys, mean_face_path):  # skips without the mean face
    from avsr_lightning.cli import main

    clip = write_clip(work / "cli.m4a", None, 25.0, tone_bursts(0.5, 16000), 16000)
    with pytest.raises(SystemExit) as exit_info:
        main(["transcribe", str(clip), "--ckpt_path", str(work / "av.ckpt"), "--config", str(work / "greedy.yaml"),
              "--out", str(work / "cli_out"), "--output_format", "txt"])
    assert exit_info.value.code == 0
    assert (work / "cli_out" / "cli.txt").is_file()
