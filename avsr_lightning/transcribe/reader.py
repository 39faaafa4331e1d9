"""Streaming reader: any container PyAV opens -> 25-fps RGB frames and 16 kHz mono audio, chunk by chunk.

Video is resampled by timestamps (output frame k shows the input frame nearest to k/25 s), which handles
any constant rate and variable frame rate alike; audio goes through FFmpeg's resampler (downmix to mono,
16 kHz). Nothing is held beyond the current packet: a 4-hour file streams in bounded memory.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

FPS = 25
SAMPLE_RATE = 16000


class InputError(ValueError):
    """The file cannot be transcribed; ``str(err)`` is one line naming the file and the reason."""

    def __init__(self, path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


@dataclass
class StreamInfo:
    path: Path
    has_video: bool
    has_audio: bool
    fps: float | None
    sample_rate: int | None
    channels: int | None
    width: int | None
    height: int | None
    duration: float | None
    variable_rate: bool = False

    def describe(self) -> str:
        parts = []
        if self.has_video:
            parts.append(f"video {self.fps:.3g} fps -> {FPS} fps" + (" (variable frame rate, resampled by "
                                                                     "timestamps)" if self.variable_rate else ""))
        else:
            parts.append("no video stream")
        if self.has_audio:
            parts.append(f"audio {self.sample_rate} Hz {self.channels}-channel -> {SAMPLE_RATE} Hz mono")
        else:
            parts.append("no audio track")
        return f"{self.path}: " + ", ".join(parts)


def probe(path: str | Path) -> StreamInfo:
    """Open the file and describe its streams; :class:`InputError` if it is not a readable media file."""
    import av

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file does not exist")
    try:
        with av.open(str(path)) as c:
            v = c.streams.video[0] if c.streams.video else None
            a = c.streams.audio[0] if c.streams.audio else None
            if v is None and a is None:
                raise InputError(path, "no video or audio stream (not a media file?)")
            fps = float(v.average_rate) if v is not None and v.average_rate else None
            variable = False
            if v is not None and v.guessed_rate and v.average_rate:
                variable = abs(float(v.guessed_rate) - float(v.average_rate)) > 0.01 * float(v.average_rate)
            duration = float(c.duration / 1e6) if c.duration else None
            return StreamInfo(path, v is not None, a is not None, fps, a.rate if a else None,
                              a.channels if a else None, v.width if v else None, v.height if v else None,
                              duration, variable)
    except InputError:
        raise
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as err:
        raise InputError(path, f"not a readable video ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None


@dataclass
class Chunk:
    """What one demuxed packet yields: 25-fps frames (list of (H, W, 3) uint8 RGB) and/or 16 kHz samples."""

    frames: list
    audio: np.ndarray | None


def stream(path: str | Path, info: StreamInfo, max_side: int = 640, use_video: bool = True,
           use_audio: bool = True) -> Iterator[Chunk]:
    """Yield :class:`Chunk` s in file order. Frames are scaled so their longer side is <= ``max_side``."""
    import av

    size = None
    if info.has_video and info.width and info.height:
        s = min(1.0, max_side / max(info.width, info.height)) if max_side else 1.0
        size = (max(2, round(info.width * s / 2) * 2), max(2, round(info.height * s / 2) * 2))
    step = 1.0 / FPS
    state = {"k": 0, "prev": None, "prev_t": None, "dt": None}
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)

    def rgb(frame):
        return frame.to_ndarray(format="rgb24", width=size[0], height=size[1])

    def emit_until(limit: float) -> list:
        out = []
        while state["k"] * step < limit:
            out.append(state["prev"])
            state["k"] += 1
        return out

    try:
        with av.open(str(path)) as c:
            streams = []
            if info.has_video and use_video:
                vs = c.streams.video[0]
                vs.thread_type = "AUTO"
                streams.append(vs)
            if info.has_audio and use_audio:
                streams.append(c.streams.audio[0])
            if not streams:
                return
            for packet in c.demux(streams):
                for frame in packet.decode():
                    if isinstance(frame, av.AudioFrame):
                        pieces = [o.to_ndarray().reshape(-1) for o in resampler.resample(frame)]
                        if pieces:
                            yield Chunk([], np.concatenate(pieces).astype(np.float32))
                        continue
                    t = float(frame.time) if frame.time is not None else state["k"] * step
                    image = rgb(frame)
                    if state["prev"] is None:
                        state["prev"], state["prev_t"] = image, t
                        # a clip that starts late still starts at frame 0 (holds the first picture)
                        continue
                    if t <= state["prev_t"]:
                        state["prev"] = image
                        continue
                    state["dt"] = t - state["prev_t"]
                    frames = emit_until((state["prev_t"] + t) / 2)
                    state["prev"], state["prev_t"] = image, t
                    if frames:
                        yield Chunk(frames, None)
            pieces = [o.to_ndarray().reshape(-1) for o in resampler.resample(None)] if info.has_audio and use_audio else []
            tail = emit_until(state["prev_t"] + (state["dt"] or step) / 2) if state["prev"] is not None else []
            if tail or pieces:
                yield Chunk(tail, np.concatenate(pieces).astype(np.float32) if pieces else None)
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise InputError(path, f"decoding failed ({type(err).__name__}: {err})") from None
