"""Preprocessing generated raw clips (face-like frames + landmarks + audio track) into the processed layout."""
from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

from avsr_lightning.data.landmarks import read_landmarks
from avsr_lightning.data.media import read_audio, read_video
from avsr_lightning.data.preprocess import preprocess_corpus, process_clip


def _template() -> np.ndarray:
    rng = np.random.default_rng(0)
    face = rng.uniform(70, 190, (68, 2)).astype(np.float32)
    face[28], face[33] = (128, 110), (128, 130)
    face[36], face[39], face[42], face[45] = (85, 90), (110, 92), (146, 92), (171, 90)
    angles = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    face[48:68, 0] = 129 + 22 * np.cos(angles)
    face[48:68, 1] = 158 + 8 * np.sin(angles)
    face[48], face[54] = (107, 158), (151, 158)
    return face


def _similarity(t: int) -> np.ndarray:
    scale, angle = 0.55, np.deg2rad(6 * np.sin(t / 5))
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[c, -s, 10 + 1.2 * t], [s, c, 5 + 0.6 * t]], np.float32)


def _write_raw_clip(raw, rel, n_frames=30, none_frames=(), audio=True):
    import av

    face = _template()
    yy, xx = np.mgrid[0:160, 0:160]
    frames, lms = [], []
    for t in range(n_frames):
        m = _similarity(t)
        lm = face @ m[:, :2].T + m[:, 2]
        cx, cy = lm[48:68].mean(axis=0)
        frame = np.full((160, 160), 160, np.uint8)
        frame[((xx - cx) / 10) ** 2 + ((yy - cy) / 4) ** 2 <= 1] = 30  # the mouth
        frames.append(frame)
        lms.append(None if t in none_frames else lm.astype(np.float32))
    path = raw / f"{rel}.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        vs = container.add_stream("libx264", rate=25)
        vs.width = vs.height = 160
        vs.pix_fmt = "yuv420p"
        astream = container.add_stream("aac", rate=16000) if audio else None
        for f in frames:
            for p in vs.encode(av.VideoFrame.from_ndarray(np.repeat(f[..., None], 3, 2), format="rgb24")):
                container.mux(p)
        for p in vs.encode():
            container.mux(p)
        if astream is not None:
            tone = (0.3 * np.sin(2 * np.pi * 300 * np.arange(n_frames * 640) / 16000)).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(tone[None], format="fltp", layout="mono")
            frame.sample_rate = 16000
            for p in astream.encode(frame):
                container.mux(p)
            for p in astream.encode():
                container.mux(p)
    (raw / f"{rel}.txt").write_text("Text:  HELLO THERE\nConf:  5\n")
    return lms


@pytest.fixture()
def raw(tmp_path):
    raw = tmp_path / "raw"
    lm_root = tmp_path / "landmarks"
    for rel, none in (("main/spk/00001", (5, 6, 12)), ("main/spk/00002", ())):
        lms = _write_raw_clip(raw, rel, none_frames=none)
        (lm_root / rel).parent.mkdir(parents=True, exist_ok=True)
        (lm_root / f"{rel}.pkl").write_bytes(pickle.dumps(lms))
    np.save(tmp_path / "mean_face.npy", _template())
    return tmp_path


def test_crop_follows_the_mouth_and_layout_is_complete(raw):
    out = raw / "out"
    r = process_clip("main/spk/00001", raw / "raw", out, _template(), landmark_root=raw / "landmarks")
    assert r.status == "written", r.reason
    crops = read_video(out / "Video/main/spk/00001.mp4")
    assert crops.shape == (30, 96, 96)
    for t, crop in enumerate(crops):  # the dark mouth stays centred although the face moves and rotates
        rows, cols = np.nonzero(crop < 90)
        assert abs(rows.mean() - 48) < 3 and abs(cols.mean() - 48) < 3, t
    lm = read_landmarks(out / "Transformed_LM/main/spk/00001.npz")
    assert lm.points.shape == (30, 68, 2) and lm.yx_min.shape == (30, 2) and np.isfinite(lm.points).all()
    centre = lm.points[:, 48:68].mean(axis=1) - lm.yx_min[:, ::-1]
    np.testing.assert_allclose(centre, 48, atol=1.0)  # mouth landmarks at the crop centre
    audio = read_audio(out / "Audio/main/spk/00001.wav")
    assert abs(len(audio) - 30 * 640) < 2048 and np.abs(audio).max() > 0.1
    assert (out / "Text/main/spk/00001.txt").read_text().startswith("Text:  HELLO THERE")


def test_resumable_with_failure_report(raw):
    out = raw / "out"
    _write_raw_clip(raw / "raw", "main/spk/00003")  # no landmark file
    lms = [None] * 30
    _write_raw_clip(raw / "raw", "main/spk/00004")
    (raw / "landmarks/main/spk/00004.pkl").write_bytes(pickle.dumps(lms))  # every frame undetected
    (raw / "raw/main/spk/00005.mp4").write_bytes(b"not a video")
    (raw / "raw/main/spk/00005.txt").write_text("Text:  X\n")
    kw = dict(landmark_root=raw / "landmarks", workers=0, progress=False)
    report = preprocess_corpus(raw / "raw", out, raw / "mean_face.npy", **kw)
    assert report.written == 2 and report.skipped == 0
    failed = dict(report.failed)
    assert set(failed) == {"main/spk/00003", "main/spk/00004", "main/spk/00005"}
    assert "landmark file is missing" in failed["main/spk/00003"]
    assert "no frame has landmarks" in failed["main/spk/00004"]
    assert "main/spk/00005.mp4" in failed["main/spk/00005"]
    log_lines = (out / "preprocess_failures.log").read_text().splitlines()
    assert len(log_lines) == 3 and log_lines[0].startswith("main/spk/00003\t")
    before = (out / "Video/main/spk/00002.mp4").stat().st_mtime_ns
    (out / "Audio/main/spk/00001.wav").unlink()  # an interrupted clip is redone, finished ones skipped
    again = preprocess_corpus(raw / "raw", out, raw / "mean_face.npy", **kw)
    assert (again.written, again.skipped, len(again.failed)) == (1, 1, 3)
    assert (out / "Video/main/spk/00002.mp4").stat().st_mtime_ns == before
    assert not list(out.rglob(".*.*")), "temporary files left behind"


def test_parallel_workers_and_cli(raw):
    out = raw / "out_cli"
    cmd = [sys.executable, "data_prep/preprocess_lrs.py", "--raw_root", str(raw / "raw"), "--out_root", str(out),
           "--mean_face", str(raw / "mean_face.npy"), "--landmark_root", str(raw / "landmarks"), "--workers", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "written 2, skipped 0" in proc.stderr
    assert len(list((out / "Video").rglob("*.mp4"))) == 2


def test_detector_plugin_for_clips_without_landmarks(raw):
    face = _template()

    def detector(frames):
        return [(face @ _similarity(t)[:, :2].T + _similarity(t)[:, 2]) for t in range(len(frames))]

    _write_raw_clip(raw / "raw", "main/spk/00009")
    r = process_clip("main/spk/00009", raw / "raw", raw / "out", face, landmark_root=raw / "landmarks",
                     detector=detector)
    assert r.status == "written", r.reason
