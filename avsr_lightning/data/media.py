"""Reading and writing the media files of the processed layout (PyAV for video, soundfile for wav).

Readers raise :class:`MediaError` with a human-readable reason; the dataset turns that into one counted
warning naming the file. Nothing here knows about utterances, splits or corruption.
"""
from __future__ import annotations

import os
import warnings
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from avsr_lightning.data.atomic import atomic_path
from avsr_lightning.data.errors import DataError

SAMPLE_RATE = 16000
FPS = 25


class MediaError(DataError):
    """A media file is missing, unreadable or empty; ``reason`` is short and user-facing."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(path, reason)


#: Limited-range ("TV", 16-235) luma to full-range grey, as swscale/OpenCV do when converting to grey.
_LIMITED_TO_FULL = np.clip(np.rint((np.arange(256) - 16) * (255.0 / 219.0)), 0, 255).astype(np.uint8)
_FULL_RANGE = 2  # AVCOL_RANGE_JPEG


def _luma(frame, out: np.ndarray | None = None) -> np.ndarray:
    """Grey (H, W) uint8 of a decoded frame; for YUV input only the luma plane is read (no colour conversion).

    With ``out`` (a (H, W) uint8 view into the clip buffer) the plane is written there directly: one copy per
    frame instead of a copy plus a final ``np.stack``."""
    if frame.format.name in ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "gray"):
        plane = frame.planes[0]
        y = np.frombuffer(plane, dtype=np.uint8).reshape(frame.height, plane.line_size)[:, : frame.width]
        full = frame.format.name in ("gray", "yuvj420p", "yuvj422p", "yuvj444p") or frame.color_range == _FULL_RANGE
        if out is None:
            return y.copy() if full else _LIMITED_TO_FULL[y]
        if full:
            out[...] = y
        else:
            np.take(_LIMITED_TO_FULL, y, out=out)
        return out
    grey = frame.to_ndarray(format="gray")
    if out is None:
        return grey
    out[...] = grey
    return out


def _grey_frame(image: np.ndarray):
    """A full-range yuv420p frame whose luma is exactly ``image`` (so grey pixels survive a round trip)."""
    import av

    height, width = image.shape
    frame = av.VideoFrame(width, height, "yuv420p")
    for index, plane in enumerate(frame.planes):
        rows = height if index == 0 else (height + 1) // 2
        data = np.full((rows, plane.line_size), 128, dtype=np.uint8)
        if index == 0:
            data[:, :width] = image
        plane.update(data.tobytes()[: plane.buffer_size])
    frame.color_range = _FULL_RANGE
    return frame


def read_video(path: str | os.PathLike, max_frames: int | None = None,
               warn: Callable[[str], None] | None = None, threads: int = 1) -> np.ndarray:
    """Decode a video to grey frames, uint8 (T, H, W).

    Only the luma plane is kept (the reference converts BGR to grey, which is the same signal up to
    rounding). ``threads=1`` (default) decodes in the calling thread, the cheapest choice for small lip crops
    inside DataLoader workers; ``threads=0`` lets FFmpeg thread large raw videos. ``max_frames`` stops decoding early; a file damaged after some frames is returned up to the damage
    and reported through ``warn``. Raises :class:`MediaError` if the file is missing,
    cannot be decoded or has no frames.
    """
    import av  # local: keeps `import avsr_lightning.data` light

    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "video file is missing")
    frames = _FrameBuffer(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(path, "file has no video stream")
            stream = container.streams.video[0]
            if threads == 1:
                stream.codec_context.thread_count = 1
            else:
                stream.thread_type = "AUTO"
                stream.codec_context.thread_count = threads
            expected = stream.frames or 0  # from the mp4 index; only a capacity hint
            if max_frames is not None:
                expected = min(expected, max_frames) if expected else max_frames
            for frame in container.decode(stream):
                frames.append(frame, expected)
                if max_frames is not None and len(frames) >= max_frames:
                    break
            indexed = int(stream.frames or 0)
            if frames and indexed > len(frames) and (max_frames is None or len(frames) < max_frames):
                # the stream simply ended early (cut at a packet boundary): as damaged as a decoder error
                (warn or (lambda m: warnings.warn(m, stacklevel=3)))(
                    f"{path}: video truncated after {len(frames)} frames (the index lists {indexed})")
    except MediaError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as err:
        if not frames:
            raise MediaError(path, f"video cannot be decoded ({type(err).__name__}: {err})") from err
        # A truncated file often decodes up to the damage: keep what decoded (the caller cuts the audio).
        (warn or (lambda m: warnings.warn(m, stacklevel=3)))(f"{path}: video truncated after {len(frames)} frames ({err})")
    if not len(frames):
        raise MediaError(path, "video has zero frames")
    return frames.array()


class _FrameBuffer:
    """Decoded grey frames written into one growing (T, H, W) uint8 array (no per-frame arrays to stack)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._data: np.ndarray | None = None
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def append(self, frame, expected: int = 0) -> None:
        if self._data is None:
            grey = _luma(frame)
            self._data = np.empty((max(expected, 16),) + grey.shape, np.uint8)
            self._data[0] = grey
        else:
            if (frame.height, frame.width) != self._data.shape[1:]:
                raise MediaError(self._path, f"frame size changes from {self._data.shape[1:]} to "
                                             f"{(frame.height, frame.width)} at frame {self._count}")
            if self._count == len(self._data):
                grown = np.empty((2 * len(self._data),) + self._data.shape[1:], np.uint8)
                grown[: self._count] = self._data
                self._data = grown
            _luma(frame, self._data[self._count])
        self._count += 1

    def array(self) -> np.ndarray:
        """The frames decoded so far, (T, H, W) uint8 (a view when the capacity was exact)."""
        assert self._data is not None
        return self._data if self._count == len(self._data) else self._data[: self._count].copy()


def read_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE,
               warn: Callable[[str], None] | None = None) -> np.ndarray:
    """Read a wav/flac file as float32 mono at ``sample_rate`` (N,).

    Multi-channel audio is averaged to mono and other rates are resampled with
    ``torchaudio.functional.resample``; both are reported through ``warn`` (default ``warnings.warn``)
    because they usually mean the preprocessing was not the expected one.
    """
    import soundfile as sf

    path = Path(path)
    warn = warn or (lambda msg: warnings.warn(msg, stacklevel=3))
    if not path.is_file():
        raise MediaError(path, "audio file is missing")
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
        subtype = sf.info(str(path)).subtype
    except (RuntimeError, sf.LibsndfileError, OSError) as err:  # type: ignore[attr-defined]
        raise MediaError(path, f"audio cannot be read ({err})") from err
    if len(audio) == 0:  # never silently used as silent audio (docs/data.md, "Bad input")
        raise MediaError(path, "audio has zero samples")
    if subtype in ("PCM_U8", "PCM_S8", "ULAW", "ALAW"):
        warn(f"{path}: 8-bit audio ({subtype}), converted to float (expected 16-bit PCM)")
    if audio.shape[1] > 1:
        warn(f"{path}: {audio.shape[1]} audio channels, downmixed to mono")
    audio = audio.mean(axis=1, dtype=np.float32) if audio.shape[1] > 1 else audio[:, 0]
    if rate != sample_rate:
        warn(f"{path}: sample rate {rate} Hz, resampled to {sample_rate} Hz")
        audio = resample(audio, rate, sample_rate)
    if not np.all(np.isfinite(audio)):
        raise MediaError(path, "audio contains NaN or infinite samples")
    return np.ascontiguousarray(audio, dtype=np.float32)


def resample(audio: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Band-limited resampling of a 1-D float array (torchaudio's sinc interpolation)."""
    import torch
    import torchaudio.functional as AF

    if orig_rate == new_rate:
        return audio.astype(np.float32, copy=False)
    out = AF.resample(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)), int(orig_rate), int(new_rate))
    return out.numpy()


def read_audio_any(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Audio from a wav/flac file or a 1-D ``.npy`` array (assumed to be at ``sample_rate``), for noise files."""
    path = Path(path)
    if path.suffix == ".npy":
        if not path.is_file():
            raise MediaError(path, "noise file is missing")
        array = np.load(path, allow_pickle=False)
        return np.ascontiguousarray(np.asarray(array, dtype=np.float32).reshape(-1))
    return read_audio(path, sample_rate)


def extract_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode the audio track of a video container with PyAV → float32 mono at ``sample_rate`` (N,)."""
    import av

    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "video file is missing")
    chunks: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MediaError(path, "file has no audio stream")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            for frame in container.decode(container.streams.audio[0]):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except MediaError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise MediaError(path, f"audio track cannot be decoded ({err})") from err
    if not chunks:
        raise MediaError(path, "audio track is empty")
    return np.concatenate(chunks).astype(np.float32)


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: int = FPS, codec: str = "libx264",
                qp: int = 18) -> None:
    """Write grey uint8 frames (T, H, W) atomically as an mp4 (H.264, full-range yuv420p, bit-exact muxing).

    Single-threaded encoding and ``+bitexact`` make the bytes a function of the pixels only, which the
    reproducible corrupted test sets rely on.
    """
    import av

    frames = np.asarray(frames)
    if frames.ndim != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"write_video expects non-empty uint8 (T, H, W) frames, got {frames.dtype} {frames.shape}")
    height, width = frames.shape[1:]
    with atomic_path(path) as tmp:
        with av.open(str(tmp), "w", format="mp4", options={"fflags": "+bitexact"}) as container:
            stream = container.add_stream(codec, rate=fps)
            stream.width, stream.height = width, height
            stream.pix_fmt = "yuv420p"
            stream.codec_context.color_range = _FULL_RANGE
            stream.codec_context.thread_count = 1
            if codec == "libx264":
                # Constant QP without adaptive quantisation, mb-tree or psy tuning: x264's float rate control
                # otherwise makes the bytes depend on the process's floating-point environment (importing torch
                # changes them), which would break byte-identical corrupted test sets.
                # tune=fastdecode (no CABAC/deblocking): ~30 % cheaper decoding in the data loader, same size
                stream.options = {"qp": str(qp), "preset": "veryfast", "tune": "fastdecode", "threads": "1",
                                  "x264-params": "threads=1:lookahead-threads=1:sliced-threads=0:aq-mode=0:"
                                                 "mbtree=0:psy=0"}
            for index, image in enumerate(frames):
                frame = _grey_frame(image)
                frame.pts = index  # explicit timestamps: the encoder's decisions must not depend on process state
                frame.time_base = Fraction(1, fps)
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write mono float audio atomically as 16-bit PCM wav (clipped to [-1, 1])."""
    import soundfile as sf

    audio = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), audio, sample_rate, subtype="PCM_16", format="WAV")
