"""Corpus-level preprocessing: parallel, resumable, atomic, with a report of every failure.

For each ``<split>/<spk>/<utt>.mp4`` of a raw LRS2/LRS3 tree (and ``<landmark_root>/<same>.pkl|npz``):
interpolate + smooth the landmarks, align every frame to the mean face on the stable points, cut the 96x96
mouth crop, extract 16 kHz mono audio with PyAV, copy the transcript, and write
``Video/ Audio/ Text/ Transformed_LM/`` (spec §4.1) - each file atomically, so an interrupted run resumes
by skipping clips whose four outputs exist.
"""
from __future__ import annotations

import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np

from avsr_lightning.data.atomic import atomic_path, write_text_atomic
from avsr_lightning.data.landmarks import (
    LandmarkError,
    Landmarks,
    frames_to_array,
    interpolate_missing,
    read_landmarks,
    smooth_landmarks,
    write_landmarks,
)
from avsr_lightning.data.manifest import read_transcript
from avsr_lightning.data.media import MediaError, extract_audio, read_video, write_audio, write_video
from avsr_lightning.data.preprocess.alignment import AlignmentError, align_clip, crop_mouth
from avsr_lightning.data.preprocess.detector import load_detector

RAW_SPLITS = ("main", "pretrain", "trainval", "test")
SAMPLES_PER_FRAME = 640  # 16 kHz audio, 25 fps video
#: audio and video of one clip may differ by codec priming/padding, never by more than this (docs/data.md)
AV_TOLERANCE_FRAMES = 3
Detector = Union[Callable[[np.ndarray], list], str, None]


@dataclass
class ClipResult:
    relpath: str
    status: str  # written | skipped | failed
    reason: str = ""


@dataclass
class PreprocessReport:
    written: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    log_file: Optional[Path] = None

    def add(self, result: ClipResult) -> None:
        if result.status == "written":
            self.written += 1
        elif result.status == "skipped":
            self.skipped += 1
        else:
            self.failed.append((result.relpath, result.reason))

    def summary(self) -> str:
        reasons: dict[str, int] = {}
        for _, reason in self.failed:
            key = reason.split(" (")[0].split(": ")[-1]
            reasons[key] = reasons.get(key, 0) + 1
        text = f"written {self.written}, skipped {self.skipped} (already done), failed {len(self.failed)}"
        if reasons:
            text += " - " + ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]))
        if self.log_file is not None and self.failed:
            text += f"; one line per failed clip in {self.log_file}"
        return text


def list_clips(raw_root: str | os.PathLike, splits: Sequence[str] | None = None) -> list[str]:
    """Relative paths without extension (``main/<spk>/<utt>``), sorted within each split, splits in order."""
    raw_root = Path(raw_root)
    splits = [s for s in (splits or RAW_SPLITS) if (raw_root / s).is_dir()]
    clips = []
    for split in splits:
        clips += sorted(str(p.relative_to(raw_root).with_suffix("")) for p in (raw_root / split).glob("*/*.mp4"))
    return clips


def output_paths(out_root: Path, relpath: str) -> dict[str, Path]:
    return {"video": out_root / "Video" / f"{relpath}.mp4", "audio": out_root / "Audio" / f"{relpath}.wav",
            "text": out_root / "Text" / f"{relpath}.txt", "landmarks": out_root / "Transformed_LM" / f"{relpath}.npz"}


def _raw_landmarks(landmark_root: Path, relpath: str, frames: np.ndarray, detector) -> np.ndarray:
    for ext in (".npz", ".pkl"):
        path = landmark_root / f"{relpath}{ext}"
        if path.is_file():
            return read_landmarks(path).points
    if detector is None:
        raise LandmarkError(f"{landmark_root / relpath}.pkl: landmark file is missing (give landmarks or a detector)")
    return frames_to_array(detector(frames), f"detector output for {relpath}")


def _landmark_file(landmark_root: Path, relpath: str) -> Path:
    for ext in (".npz", ".pkl"):
        if (landmark_root / f"{relpath}{ext}").is_file():
            return landmark_root / f"{relpath}{ext}"
    return Path(f"detector output for {relpath}")


def process_clip(relpath: str, raw_root: str | os.PathLike, out_root: str | os.PathLike, mean_face: np.ndarray,
                 landmark_root: str | os.PathLike | None = None, detector: Detector = None, overwrite: bool = False,
                 crop: int = 96, window: int = 12) -> ClipResult:
    """Process one clip; never raises for bad input (returns a ``failed`` result with the reason)."""
    raw_root, out_root = Path(raw_root), Path(out_root)
    landmark_root = Path(landmark_root) if landmark_root else raw_root
    outs = output_paths(out_root, relpath)
    if not overwrite and all(p.is_file() for p in outs.values()):
        return ClipResult(relpath, "skipped")
    if isinstance(detector, str):
        detector = load_detector(detector)
    src = raw_root / f"{relpath}.mp4"
    try:
        text_src = raw_root / f"{relpath}.txt"
        if not text_src.is_file():
            raise MediaError(text_src, "transcript file is missing")
        if not read_transcript(text_src):
            raise MediaError(text_src, "transcript is empty")
        truncated: list[str] = []
        frames = read_video(src, threads=0, warn=truncated.append)
        if truncated:  # a partial clip would pair a short lip video with the full audio track
            raise MediaError(src, f"video is truncated or damaged after {len(frames)} frames")
        raw = _raw_landmarks(landmark_root, relpath, frames, detector)
        if len(raw) != len(frames):  # refused, never cut: which frames the landmarks belong to is unknown
            raise LandmarkError(f"{_landmark_file(landmark_root, relpath)}: landmarks and video differ in length "
                                f"({len(raw)} landmark frames, {len(frames)} frames in {src}; re-run landmark "
                                f"detection for this clip)")
        points = smooth_landmarks(interpolate_missing(raw, landmark_root / relpath), half_window=window // 2)
        aligned, transformed = align_clip(frames, points, mean_face)
        crops, yx_min = crop_mouth(aligned, transformed, crop)
        audio = extract_audio(src)
        audio_frames = len(audio) / SAMPLES_PER_FRAME
        if abs(audio_frames - len(frames)) > AV_TOLERANCE_FRAMES:
            raise MediaError(src, f"audio track lasts {audio_frames:.1f} frames but the video has {len(frames)} "
                                  f"frames (more than {AV_TOLERANCE_FRAMES} apart)")
    except (MediaError, LandmarkError, AlignmentError) as err:
        return ClipResult(relpath, "failed", str(err))
    except Exception as err:  # noqa: BLE001 - a corrupt clip must not stop a corpus run; reported per clip
        return ClipResult(relpath, "failed", f"{src}: {type(err).__name__}: {err}")
    with atomic_path(outs["text"]) as tmp:
        shutil.copyfile(text_src, tmp)
    write_audio(outs["audio"], audio)
    write_landmarks(outs["landmarks"], Landmarks(transformed[: len(crops)], yx_min))
    write_video(outs["video"], crops)  # last: its presence is the first thing a resume checks
    return ClipResult(relpath, "written")


_WORKER: dict = {}


def _init_worker(kwargs: dict) -> None:
    detector = kwargs.get("detector")
    if isinstance(detector, str):
        kwargs = dict(kwargs, detector=load_detector(detector))
    _WORKER.update(kwargs)


def _run_one(relpath: str) -> ClipResult:
    return process_clip(relpath, **_WORKER)


def preprocess_corpus(raw_root: str | os.PathLike, out_root: str | os.PathLike, mean_face: str | os.PathLike,
                      landmark_root: str | os.PathLike | None = None, splits: Sequence[str] | None = None,
                      workers: int = 4, detector: Detector = None, overwrite: bool = False,
                      log_file: str | os.PathLike | None = None, progress: bool = True,
                      limit: int | None = None) -> PreprocessReport:
    """Process every clip of ``raw_root`` (see module docstring); returns and prints the report.

    ``workers=0`` runs in-process. Failed clips are listed one per line (``relpath<TAB>reason``) in
    ``log_file`` (default ``<out_root>/preprocess_failures.log``).
    """
    out_root = Path(out_root)
    face = np.load(mean_face, allow_pickle=False)
    if face.shape != (68, 2):
        raise ValueError(f"mean face {mean_face} has shape {face.shape}, expected (68, 2)")
    clips = list_clips(raw_root, splits)
    if not clips:
        raise FileNotFoundError(f"no <split>/<spk>/<utt>.mp4 under {raw_root} (splits {list(splits or RAW_SPLITS)})")
    clips = clips[:limit] if limit else clips
    kwargs = dict(raw_root=str(raw_root), out_root=str(out_root), mean_face=face,
                  landmark_root=str(landmark_root) if landmark_root else None, detector=detector, overwrite=overwrite)
    report = PreprocessReport(log_file=Path(log_file) if log_file else out_root / "preprocess_failures.log")
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        def tqdm(it, **_):
            return it
    bar = tqdm(total=len(clips), disable=not progress, desc="preprocess", unit="clip", file=sys.stderr)
    if workers <= 0:
        _init_worker(kwargs)
        for relpath in clips:
            report.add(_run_one(relpath))
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(kwargs,)) as pool:
            futures = [pool.submit(_run_one, relpath) for relpath in clips]
            for future in as_completed(futures):
                report.add(future.result())
                bar.update()
    bar.close()
    report.failed.sort()
    out_root.mkdir(parents=True, exist_ok=True)
    write_text_atomic(report.log_file, "".join(f"{rel}\t{reason}\n" for rel, reason in report.failed))
    print(f"preprocess_lrs: {report.summary()}", file=sys.stderr)
    return report
