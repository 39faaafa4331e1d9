"""The ``transcribe`` command on clips built from a real photograph, tone bursts and tiny random models."""
from __future__ import annotations

import json

import numpy as np
import pytest

from .conftest import SIZE, face_frames, parse_subtitles, save_tiny, tone_bursts, write_clip

GREEDY = "model:\n  test_decoder:\n    class_path: avsr_lightning.decoding.CTCGreedyDecoder\n"
BEAM = ("model:\n  test_decoder:\n    class_path: avsr_lightning.decoding.BeamSearchDecoder\n    init_args: "
        "{beam_size: 3, ctc_weight: 0.3, lm_path: null, lm_weight: 0.0, length_bonus: 0.5, nbest: 1}\n")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("transcribe")
    (root / "greedy.yaml").write_text(GREEDY)
    (root / "beam.yaml").write_text(BEAM)
    save_tiny(root / "av.ckpt", "AVRelScore", blank_bias=-4.0)
    save_tiny(root / "audio.ckpt", "Audio", blank_bias=-4.0)
    save_tiny(root / "video.ckpt", "Video", blank_bias=-4.0)
    return root


def run(args, capsys):
    from avsr_lightning.transcribe import main

    rc = main([str(a) for a in args])
    return rc, capsys.readouterr().err


def common(work, mean_face_path, ckpt="av.ckpt", config="greedy.yaml"):
    return ["--ckpt_path", work / ckpt, "--config", work / config, "--mean_face", mean_face_path, "--out", work / "out"]


@pytest.mark.usefixtures("astronaut")
def test_30fps_stereo_44k_comes_out_at_25fps_16k(work, astronaut, capsys, mean_face_path):
    from avsr_lightning.transcribe.reader import probe, stream

    pytest.importorskip("mediapipe")
    frames, _ = face_frames(astronaut, 60, 30.0)  # 2.0 s at 30 fps
    clip = write_clip(work / "face30.mp4", frames, 30.0, tone_bursts(2.0, 44100, channels=2), 44100)
    info = probe(clip)
    assert (info.fps, info.sample_rate, info.channels) == (30.0, 44100, 2)
    n_frames, n_samples = 0, 0
    for chunk in stream(clip, info):
        n_frames += len(chunk.frames)
        n_samples += 0 if chunk.audio is None else len(chunk.audio)
    assert n_frames == 50
    assert abs(n_samples - 32000) <= 1600  # AAC priming/padding: < 0.1 s
    rc, err = run([clip, *common(work, mean_face_path), "--output_format", "txt", "json", "srt"], capsys)
    assert rc == 0, err
    assert "30 fps -> 25 fps" in err and "44100 Hz 2-channel -> 16000 Hz mono" in err
    result = json.loads((work / "out" / "face30.json").read_text())
    assert result["duration"] == 2.0 and result["segments"][0]["source"] == "audio-visual"
    assert (work / "out" / "face30.txt").read_text().strip() == result["text"]
    assert (work / "out" / "face30.srt").is_file() and not (work / "out" / "face30.vtt").exists()


def test_no_face_decodes_from_audio_and_is_marked(work, capsys, mean_face_path):
    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(0, 255, (1, SIZE, SIZE, 3), dtype=np.uint8), 50, axis=0)  # noise, no face
    clip = write_clip(work / "noface.mp4", frames, 25.0, tone_bursts(2.0, 16000), 16000)
    rc, err = run([clip, *common(work, mean_face_path), "--audio_ckpt_path", work / "audio.ckpt", "--detector",
                   "haar"], capsys)
    assert rc == 0, err
    result = json.loads((work / "out" / "noface.json").read_text())
    assert [s["source"] for s in result["segments"]] == ["audio"]
    assert "no face" in result["segments"][0]["note"] and "no face" in err
    assert result["text"], "decoded from the audio model"


def test_two_faces_picks_one_and_says_which(work, astronaut, capsys, mean_face_path):
    import cv2

    pytest.importorskip("mediapipe")
    big, _ = face_frames(astronaut, 50, 25.0)
    side = SIZE * 3 // 4
    small = cv2.resize(big[0], (side, side))
    frames = np.concatenate([np.full((50, SIZE, side, 3), 200, np.uint8), big], axis=2)
    frames[:, (SIZE - side) // 2: (SIZE - side) // 2 + side, :side] = small  # a 3/4-size still copy on the left
    clip = write_clip(work / "two.mp4", np.ascontiguousarray(frames), 25.0, tone_bursts(2.0, 16000), 16000)
    rc, err = run([clip, *common(work, mean_face_path)], capsys)
    assert rc == 0, err
    face = json.loads((work / "out" / "two.json").read_text())["segments"][0]["face"]
    assert "of 2" in face and "right" in face and "largest" in face, face


@pytest.fixture(scope="module")
def long_result(work, mean_face_path):  # mean_face_path: skips without the reference mean face
    """60 s of tone bursts (1.5 s on, 0.5 s off) as an audio-only file, cut into <= 8 s segments."""
    from avsr_lightning.transcribe import main

    clip = write_clip(work / "long.m4a", None, 25.0, tone_bursts(60.0, 16000), 16000)
    rc = main([str(clip), "--ckpt_path", str(work / "audio.ckpt"), "--config", str(work / "greedy.yaml"),
               "--out", str(work / "out"), "--max_seconds", "8", "--batch_size", "4"])
    assert rc == 0
    return {fmt: (work / "out" / f"long.{fmt}").read_text() for fmt in ("json", "srt", "vtt", "txt")}


def test_long_clip_is_cut_at_pauses_and_every_segment_decoded(long_result):
    result = json.loads(long_result["json"])
    segs = result["segments"]
    assert len(segs) >= 8 and all(s["end"] - s["start"] <= 8.0 for s in segs)
    assert segs[0]["start"] == 0.0 and abs(segs[-1]["end"] - result["duration"]) < 1e-6
    assert abs(result["duration"] - 60.0) < 0.2
    for a, b in zip(segs, segs[1:]):
        assert a["end"] == b["start"]
        assert (a["end"] % 2.0) >= 1.5 - 0.1, f"cut at {a['end']} s is not in a pause (pauses at 1.5-2.0 s mod 2)"
    assert all(s["source"] == "audio" and s["text"] for s in segs)
    words = result["words"]
    assert {w["segment"] for w in words} == set(range(len(segs)))
    starts = [w["start"] for w in words]
    assert starts == sorted(starts) and all(w["end"] > w["start"] for w in words)
    assert all(segs[w["segment"]]["start"] <= w["start"] and w["end"] <= segs[w["segment"]]["end"] for w in words)
    assert long_result["txt"].strip() == result["text"]


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_subtitles_parse_and_match_the_json(long_result, fmt):
    from avsr_lightning.transcribe.subtitles import cues

    result = json.loads(long_result["json"])
    parsed = parse_subtitles(long_result[fmt])
    expected = cues(result)
    assert len(parsed) == len(expected) > 0
    for (a, b, text), (ea, eb, etext) in zip(parsed, expected):
        assert abs(a - ea) < 1e-3 and abs(b - eb) < 1e-3 and text == etext
    starts = {w["start"] for w in result["words"]}
    assert all(round(a, 3) in starts for a, _, _ in parsed)
    assert " ".join(t for _, _, t in parsed) == " ".join(w["word"] for w in result["words"])
    if fmt == "vtt":
        assert long_result[fmt].startswith("WEBVTT")



def test_forced_alignment_recovers_known_token_times():
    """Posteriors that put each token on known frames -> those frames back, grouped into words."""
    from avsr_lightning.transcribe.align import ctc_forced_align, word_spans

    tokens = [14, 15, 13, 16, 16]  # "AB CC": the repeated C needs a blank between its two frames
    frames = {0: 0, 1: 0, 2: 14, 3: 14, 4: 0, 5: 15, 6: 13, 7: 0, 8: 16, 9: 0, 10: 16, 11: 0}
    log_probs = np.full((12, 41), -10.0)
    for t, tok in frames.items():
        log_probs[t, tok] = -0.01
    spans = ctc_forced_align(log_probs, tokens, blank=0)
    assert spans == [(2, 4), (5, 6), (6, 7), (8, 9), (10, 11)]
    words = word_spans(tokens, spans, ["A", "B", " ", "C", "C"])
    assert words == [("AB", 2, 6), ("CC", 8, 11)]


def test_face_leaving_mid_clip_is_cut_and_decoded_from_audio(work, astronaut, capsys, mean_face_path):
    pytest.importorskip("mediapipe")
    faces, _ = face_frames(astronaut, 50, 25.0)
    rng = np.random.default_rng(1)
    empty = np.repeat(rng.integers(0, 255, (1, SIZE, SIZE, 3), dtype=np.uint8), 75, axis=0)
    clip = write_clip(work / "leaves.mp4", np.concatenate([faces, empty]), 25.0, tone_bursts(5.0, 16000), 16000)
    rc, err = run([clip, *common(work, mean_face_path), "--audio_ckpt_path", work / "audio.ckpt"], capsys)
    assert rc == 0, err
    segs = json.loads((work / "out" / "leaves.json").read_text())["segments"]
    assert [s["source"] for s in segs] == ["audio-visual", "audio"], segs
    assert abs(segs[0]["end"] - 2.0) <= 0.3 and segs[1]["end"] == 5.0
    assert "no face" in segs[1]["note"]
