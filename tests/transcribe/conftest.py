"""Clips built from a real photograph (scikit-image's astronaut), tone-burst audio and tiny random checkpoints."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

#: Mouth centre of ``skimage.data.astronaut()`` measured once by hand on the photograph (x, y pixels of the
#: 512x512 image): midway between the mouth corners, on the line where the lips meet.
ASTRONAUT_MOUTH = (224.0, 144.0)
#: Frame size of the test clips and the scale applied to the photograph to make them.
SIZE = 320
SCALE = SIZE / 512

TINY = dict(d_model=32, heads=2, encoder_layers=1, ffn_dim=64, decoder_layers=1, decoder_ffn_dim=64, conv_kernel=3,
            frontend_widths=[8, 8, 16, 16])


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    skdata = pytest.importorskip("skimage.data", reason="scikit-image (requirements-faces-lock.txt) is needed")
    return skdata.astronaut()


@pytest.fixture(scope="session")
def mean_face(shared_reference) -> np.ndarray:
    return np.load(shared_reference / "data" / "20words_mean_face.npy")


@pytest.fixture(scope="session")
def mean_face_path(shared_reference) -> Path:
    return shared_reference / "data" / "20words_mean_face.npy"


def motion(t: int, fps: float) -> np.ndarray:
    """Small affine motion of the still photograph at frame t: +-3 deg rotation, +-4 % scale, +-8 px shift."""
    import cv2

    s = t / fps
    angle = 3.0 * np.sin(2 * np.pi * 0.5 * s)
    scale = SCALE * (1.0 + 0.04 * np.sin(2 * np.pi * 0.7 * s))
    m = cv2.getRotationMatrix2D((256.0, 256.0), angle, scale)
    m[:, 2] += (SIZE / 2 - 256.0) + np.array([8 * np.sin(2 * np.pi * 0.4 * s), 6 * np.cos(2 * np.pi * 0.3 * s)])
    return m


def face_frames(image: np.ndarray, n: int, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """(n, SIZE, SIZE, 3) frames of the moving face and (n, 2) where the hand-measured mouth lands."""
    import cv2

    frames = np.empty((n, SIZE, SIZE, 3), np.uint8)
    mouths = np.empty((n, 2), np.float32)
    for t in range(n):
        m = motion(t, fps)
        frames[t] = cv2.warpAffine(image, m, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        mouths[t] = m[:, :2] @ np.array(ASTRONAUT_MOUTH) + m[:, 2]
    return frames, mouths


def tone_bursts(seconds: float, rate: int, on: float = 1.5, off: float = 0.5, channels: int = 1,
                seed: int = 0) -> np.ndarray:
    """(channels, N) float32: tone bursts with a little noise, separated by silences (pauses to cut at)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    gate = (t % (on + off)) < on
    x = 0.3 * np.sin(2 * np.pi * (220 + 80 * np.sin(2 * np.pi * 0.3 * t)) * t) + 0.05 * rng.standard_normal(n)
    x = (x * gate + 1e-4 * rng.standard_normal(n)).astype(np.float32)
    return np.repeat(x[None], channels, axis=0)


def write_clip(path: Path, frames: np.ndarray | None, fps: float, audio: np.ndarray | None = None,
               rate: int = 16000, pts: list[int] | None = None) -> Path:
    """An mp4 (H.264 + AAC) or, without frames, an m4a. ``pts`` (ms) gives variable frame timing."""
    import av

    with av.open(str(path), "w") as c:
        vs = None
        if frames is not None:
            vs = c.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
            vs.options = {"preset": "ultrafast", "crf": "18"}
            if pts is not None:
                vs.codec_context.time_base = Fraction(1, 1000)
                vs.time_base = Fraction(1, 1000)
        aus = None
        if audio is not None:
            layout = "stereo" if audio.shape[0] == 2 else "mono"
            aus = c.add_stream("aac", rate=rate, layout=layout)
        if vs is not None:
            for i, img in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                if pts is not None:
                    frame.pts, frame.time_base = pts[i], Fraction(1, 1000)
                for p in vs.encode(frame):
                    c.mux(p)
            for p in vs.encode():
                c.mux(p)
        if aus is not None:
            block = 1024
            for start in range(0, audio.shape[1], block):
                piece = np.ascontiguousarray(audio[:, start:start + block])
                frame = av.AudioFrame.from_ndarray(piece, format="fltp", layout=aus.layout.name)
                frame.sample_rate, frame.pts = rate, start
                for p in aus.encode(frame):
                    c.mux(p)
            for p in aus.encode():
                c.mux(p)
    return path


def save_tiny(path: Path, arch: str, seed: int = 0, blank_bias: float | None = None,
              space_bias: float | None = None) -> Path:
    """A tiny random recognizer saved as a Lightning checkpoint (class path + init args + ``model.`` keys)."""
    from avsr_lightning.weights import build_model

    torch.manual_seed(seed)
    kwargs = dict(TINY)
    if arch == "AVRelScore":
        kwargs.update(scorer_hidden=16, scorer_kernel=3)
    model = build_model(arch, **kwargs)
    if blank_bias is not None:  # make CTC emit letters and spaces (words to time) instead of blanks
        with torch.no_grad():
            model.ctc.ctc_lo.bias[0] = blank_bias
    if space_bias is not None:
        with torch.no_grad():
            model.ctc.ctc_lo.bias[13] = space_bias  # <space>
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    hparams = {"model": {"class_path": f"avsr_lightning.models.{arch}", "init_args": kwargs}}
    torch.save({"state_dict": state, "hyper_parameters": hparams}, path)
    return path


def parse_subtitles(text: str) -> list[tuple[float, float, str]]:
    """Minimal SRT/VTT parser: (start, end, text) per cue."""
    def seconds(stamp: str) -> float:
        h, m, s = stamp.replace(",", ".").split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)

    cues = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if "-->" in line:
            a, b = (x.strip() for x in line.split("-->"))
            body = []
            for nxt in lines[i + 1:]:
                if not nxt.strip():
                    break
                body.append(nxt)
            cues.append((seconds(a), seconds(b), " ".join(body)))
    return cues
