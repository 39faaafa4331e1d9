"""Durable writers for corpus files: write to a hidden unique temporary name in the same directory, fsync, rename.

A reader (or a resumed generator) therefore sees either no file or a complete one, never half of one.
Temporary names end in :data:`PARTIAL_SUFFIX` so a resumed run can remove leftovers of a killed one.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

import av
import numpy as np
import soundfile as sf

from avsr_lightning.durable import durable_path

PARTIAL_SUFFIX = ".partial"
_FULL_RANGE = 2  # AVCOL_RANGE_JPEG: luma uses 0-255, as the data module's reader expects


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Durable write (avsr_lightning/durable.py); the temp name ends in PARTIAL_SUFFIX (formats are explicit)."""
    with durable_path(path, suffix=PARTIAL_SUFFIX) as tmp:
        write(tmp)


def write_text(path: Path, text: str) -> None:
    _atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """float audio in [-1, 1] -> 16-bit PCM mono wav."""
    pcm = np.clip(np.rint(audio * 32767.0), -32768, 32767).astype(np.int16)
    _atomic(path, lambda tmp: sf.write(str(tmp), pcm, sample_rate, subtype="PCM_16", format="WAV"))


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        tmp.write_bytes(buffer.getvalue())

    _atomic(path, write)


def _full_range_grey(image: np.ndarray) -> "av.VideoFrame":
    """A full-range yuv420p frame whose luma plane is exactly ``image`` (grey survives the round trip)."""
    frame = av.VideoFrame(image.shape[1], image.shape[0], "yuv420p")
    for index, plane in enumerate(frame.planes):
        rows = image.shape[0] if index == 0 else (image.shape[0] + 1) // 2
        data = np.full((rows, plane.line_size), 128, dtype=np.uint8)
        if index == 0:
            data[:, : image.shape[1]] = image
        plane.update(data.tobytes()[: plane.buffer_size])
    frame.color_range = _FULL_RANGE
    return frame


def _grey_frames(frames: np.ndarray):
    """:func:`_full_range_grey` of every frame, cheaply: when the planes have no row padding (even sizes
    such as our 96x96), the luma plane is filled straight from the frame and the chroma planes from one
    constant buffer, instead of three padded arrays per frame. The frames' planes hold the same bytes."""
    height, width = int(frames.shape[1]), int(frames.shape[2])
    chroma = bytes([128]) * ((height // 2) * (width // 2))
    for image in frames:
        frame = av.VideoFrame(width, height, "yuv420p")
        luma, u, v = frame.planes
        if height % 2 or width % 2 or luma.buffer_size != height * width or \
                u.buffer_size != len(chroma) or v.buffer_size != len(chroma):
            yield _full_range_grey(image)
            continue
        luma.update(np.ascontiguousarray(image))
        u.update(chroma)
        v.update(chroma)
        frame.color_range = _FULL_RANGE
        yield frame


def write_mp4(path: Path, frames: np.ndarray, fps: int = 25, crf: int = 20) -> None:
    """uint8 grey frames (T, H, W) -> H.264 mp4 (yuv420p), byte-identical for identical frames.

    x264's macroblock-tree rate control over a lookahead window is not deterministic on this build (the same
    frames occasionally encode to different bytes), so it is switched off, as are extra threads.
    """
    def write(tmp: Path) -> None:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("h264", rate=fps)
            stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
            stream.pix_fmt = "yuv420p"
            stream.codec_context.color_range = _FULL_RANGE
            stream.thread_count = 1
            stream.codec_context.options = {"crf": str(crf), "preset": "ultrafast", "threads": "1",
                                            "x264-params": "mbtree=0:rc-lookahead=0"}
            for frame in _grey_frames(frames):
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)

    _atomic(path, write)
