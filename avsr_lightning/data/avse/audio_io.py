"""Wav I/O for AVSE scenes: checked target reads, memory-mapped masker segments, atomic int16 writes.

Maskers are long (a speech masker is a speaker's whole concatenated speech, tens of millions of samples),
and a scene needs only ``L`` samples of one. A 16-bit PCM wav is therefore memory-mapped once per process
and sliced, which reads just the pages a scene touches; other encodings fall back to a soundfile seek and
read. Both give libsndfile's float semantics (``s / 32768``) once passed through ``mixing.as_float64``.

Every problem becomes a :class:`SceneError` with a reason code (missing file, wrong sample rate, not mono,
unreadable), so callers can skip and count the scene.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import soundfile as sf

from avsr_lightning.durable import durable_path

from .errors import SceneError
from .mixing import SAMPLE_RATE

__all__ = ["WavLayout", "probe_wav", "read_target", "MaskerStore", "write_wav_int16"]


class WavLayout:
    """Where a plain PCM-16 mono wav keeps its samples (``data_offset`` bytes in, ``frames`` samples)."""

    __slots__ = ("sample_rate", "channels", "frames", "data_offset", "pcm16")

    def __init__(self, sample_rate: int, channels: int, frames: int, data_offset: int | None, pcm16: bool) -> None:
        self.sample_rate, self.channels, self.frames = sample_rate, channels, frames
        self.data_offset, self.pcm16 = data_offset, pcm16


def _parse_pcm16_wav(path: Path) -> WavLayout | None:
    """The layout of a plain RIFF/WAVE 16-bit integer PCM file from its header alone, else None.

    Reading two chunk headers is much cheaper than opening the file with libsndfile, and targets are read
    once per scene; anything unusual (other encodings, truncated headers) returns None and goes through
    soundfile instead.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            fmt = None
            while True:
                chunk = fh.read(8)
                if len(chunk) < 8:
                    return None
                cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"fmt ":
                    body = fh.read(size + (size & 1))
                    if len(body) < 16:
                        return None
                    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
                    if tag == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the sub-format's first 2 bytes
                        tag = struct.unpack("<H", body[24:26])[0]
                    fmt = (tag, channels, rate, bits)
                elif cid == b"data":
                    if fmt is None or fmt[0] != 1 or fmt[3] != 16:
                        return None
                    start = fh.tell()
                    nbytes = min(size, os.fstat(fh.fileno()).st_size - start)
                    return WavLayout(fmt[2], fmt[1], nbytes // (2 * max(1, fmt[1])), start, fmt[1] == 1)
                else:
                    fh.seek(size + (size & 1), os.SEEK_CUR)
    except OSError:
        return None


def probe_wav(path: str | os.PathLike, what: str = "wav") -> WavLayout:
    """Check that ``path`` exists and is a readable 16 kHz mono file; describe where its samples are."""
    path = Path(path)
    layout = _parse_pcm16_wav(path)
    if layout is None:
        if not path.is_file():
            raise SceneError("missing_file", f"{what} not found: {path}")
        try:
            info = sf.info(str(path))
        except (RuntimeError, sf.LibsndfileError) as err:  # type: ignore[attr-defined]
            raise SceneError("read_error", f"{what} {path} cannot be read ({err})") from None
        layout = WavLayout(info.samplerate, info.channels, info.frames, None, False)
    if layout.sample_rate != SAMPLE_RATE:
        raise SceneError("wrong_sample_rate", f"{what} {path} is {layout.sample_rate} Hz, expected {SAMPLE_RATE} Hz")
    if layout.channels != 1:
        raise SceneError("not_mono", f"{what} {path} has {layout.channels} channels, expected mono")
    return layout


def read_target(path: str | os.PathLike) -> np.ndarray:
    """The whole decoded target: int16 for PCM-16 files (exact), float64 (libsndfile scaling) otherwise."""
    layout = probe_wav(path, "target wav")
    try:
        if layout.pcm16:
            return np.fromfile(path, dtype="<i2", count=layout.frames, offset=layout.data_offset).astype(np.int16)
        return sf.read(str(path), dtype="float64")[0]
    except (RuntimeError, OSError, ValueError) as err:
        raise SceneError("read_error", f"target wav {path} cannot be read ({err})") from None


class MaskerStore:
    """Lazily opened maskers; ``segment`` returns ``masker[offset:offset+length]`` (int16 view or float64).

    Memory maps are opened on first use in each process (they are dropped when the store is pickled into a
    DataLoader worker), so a worker maps only the maskers its scenes touch.
    """

    def __init__(self) -> None:
        self._open: dict[str, tuple[WavLayout, np.ndarray | None]] = {}

    def __getstate__(self) -> dict:
        return {"_open": {}}

    def layout(self, path: str | os.PathLike) -> WavLayout:
        return self._get(str(path))[0]

    def _get(self, key: str) -> tuple[WavLayout, np.ndarray | None]:
        entry = self._open.get(key)
        if entry is None:
            layout = probe_wav(key, "masker wav")
            mapped = None
            if layout.pcm16 and layout.frames > 0:
                mapped = np.memmap(key, dtype="<i2", mode="r", offset=layout.data_offset, shape=(layout.frames,))
            entry = self._open[key] = (layout, mapped)
        return entry

    def whole(self, path: str | os.PathLike) -> np.ndarray:
        """The whole masker (a memory map when possible), for ``mix_scene(target, masker, scene)``."""
        layout, mapped = self._get(str(path))
        if mapped is not None:
            return mapped
        return sf.read(str(path), dtype="float64")[0]

    def segment(self, path: str | os.PathLike, offset: int, length: int) -> np.ndarray:
        layout, mapped = self._get(str(path))
        if offset < 0 or offset + length > layout.frames:
            raise SceneError("offset_past_masker_end", f"masker {path}: offset {offset} + {length} samples > "
                                                       f"{layout.frames} samples in the file")
        if mapped is not None:
            return np.asarray(mapped[offset:offset + length])
        with sf.SoundFile(str(path)) as fh:
            fh.seek(offset)
            return fh.read(length, dtype="float64")


def write_wav_int16(path: str | os.PathLike, samples: np.ndarray) -> None:
    """Write int16 samples losslessly (PCM_16), durably (avsr_lightning/durable.py)."""
    with durable_path(path, suffix=".wav") as tmp:
        sf.write(str(tmp), np.asarray(samples, dtype=np.int16), SAMPLE_RATE, subtype="PCM_16", format="WAV")
