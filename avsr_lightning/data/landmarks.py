"""Facial landmarks: the npz format of the processed layout, the restricted reader for the public pickles,
missing-frame interpolation and the reference's temporal smoothing.

Landmark arrays are float32 (T, 68, 2) in (x, y) pixels; a frame without a detection is all-NaN.
"""
from __future__ import annotations

import io
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avsr_lightning.data.atomic import atomic_path
from avsr_lightning.data.errors import DataError

NUM_POINTS = 68
MOUTH = slice(48, 68)


@dataclass
class Landmarks:
    """``points`` (T, 68, 2) float32 (x, y); ``yx_min`` (T, 2) [y_min, x_min] of the mouth crop, if known."""

    points: np.ndarray
    yx_min: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.points.shape[0])


class LandmarkError(DataError):
    """Landmarks are missing, malformed or unusable; the message names the file and the reason
    (``LandmarkError("<path>: <reason>")``)."""


# --------------------------------------------------------------------------- restricted pickle reading
_NUMPY_CALLABLES = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
}


class _LandmarkUnpickler(pickle.Unpickler):
    """Admits only what numpy needs to rebuild plain arrays; every other global is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) in _NUMPY_CALLABLES:
            import importlib

            return getattr(importlib.import_module(module), name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a landmark pickle")


def _check_plain(obj, depth: int = 0) -> None:
    """Arrays (non-object dtype), numbers, lists/tuples, dicts with str keys, None - nothing else."""
    if depth > 8:
        raise pickle.UnpicklingError("landmark pickle nested too deeply")
    if obj is None or isinstance(obj, (int, float, str, np.generic)):
        return
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise pickle.UnpicklingError("object arrays are not allowed in landmark pickles")
        return
    if isinstance(obj, (list, tuple)):
        for item in obj:
            _check_plain(item, depth + 1)
        return
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str):
                raise pickle.UnpicklingError("landmark pickle dict keys must be strings")
            _check_plain(value, depth + 1)
        return
    raise pickle.UnpicklingError(f"type {type(obj).__name__} is not allowed in landmark pickles")


def load_landmark_pickle(path: str | os.PathLike):
    """Load a landmark ``.pkl`` through the restricted unpickler (never executes code from the file)."""
    data = Path(path).read_bytes()
    try:
        obj = _LandmarkUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError, IndexError, KeyError) as err:
        raise LandmarkError(f"{path}: cannot read landmark pickle ({err})") from err
    try:
        _check_plain(obj)
    except pickle.UnpicklingError as err:
        raise LandmarkError(f"{path}: cannot read landmark pickle ({err})") from err
    return obj


def frames_to_array(frames, path: str | os.PathLike = "<landmarks>") -> np.ndarray:
    """A per-frame list of (68, 2) arrays or None → float32 (T, 68, 2) with NaN rows for missing frames."""
    if isinstance(frames, np.ndarray) and frames.ndim == 3:
        arr = frames.astype(np.float32)
    else:
        arr = np.full((len(frames), NUM_POINTS, 2), np.nan, dtype=np.float32)
        for i, frame in enumerate(frames):
            if frame is None:
                continue
            frame = np.asarray(frame, dtype=np.float32)
            if frame.ndim == 3 and frame.shape[0] >= 1:  # some detectors store (faces, 68, 2): keep the first
                frame = frame[0]
            if frame.shape != (NUM_POINTS, 2):
                raise LandmarkError(f"{path}: frame {i} has landmark shape {frame.shape}, expected (68, 2)")
            arr[i] = frame
    if arr.ndim != 3 or arr.shape[1:] != (NUM_POINTS, 2):
        raise LandmarkError(f"{path}: landmarks have shape {arr.shape}, expected (T, 68, 2)")
    bad = ~np.isfinite(arr).all(axis=(1, 2))
    arr[bad] = np.nan  # a frame with any NaN/inf counts as undetected
    return arr


def read_landmarks(path: str | os.PathLike) -> Landmarks:
    """Read landmarks from ``.npz`` (``landmarks`` [+ ``yx_min``]) or a ``.pkl`` (raw list or
    ``{'landmarks': [...], 'yx_min': [...]}``). Missing frames are NaN; nothing is interpolated here."""
    path = Path(path)
    if not path.is_file():
        raise LandmarkError(f"{path}: landmark file is missing")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                points = frames_to_array(npz["landmarks"], path)
                yx_min = np.asarray(npz["yx_min"], dtype=np.float32) if "yx_min" in npz.files else None
        except LandmarkError:
            raise
        except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            raise LandmarkError(f"{path}: cannot read landmark npz ({err})") from err
    else:
        obj = load_landmark_pickle(path)
        try:
            points, yx_min = _pickle_content(obj, path)
        except LandmarkError:
            raise
        except (TypeError, ValueError, IndexError) as err:  # ragged lists, scalars, strings: malformed file
            raise LandmarkError(f"{path}: landmark pickle has an unexpected layout ({err})") from err
    if yx_min is not None and (yx_min.ndim != 2 or yx_min.shape[1] != 2 or len(yx_min) != len(points)):
        raise LandmarkError(f"{path}: yx_min has shape {tuple(yx_min.shape)}, expected ({len(points)}, 2)")
    return Landmarks(points, yx_min)


def _pickle_content(obj, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(points, yx_min) of an already restricted-unpickled landmark object."""
    if isinstance(obj, dict):
        if "landmarks" not in obj:
            raise LandmarkError(f"{path}: landmark dict has no 'landmarks' key (keys: {sorted(obj)})")
        points = frames_to_array(obj["landmarks"], path)
        yx = obj.get("yx_min")
        yx_min = np.asarray(yx, dtype=np.float32).reshape(-1, 2) if yx is not None else None
    else:
        points = frames_to_array(list(obj), path)
        yx_min = None
    return points, yx_min


def write_landmarks(path: str | os.PathLike, landmarks: Landmarks) -> None:
    """Write the npz format atomically (``landmarks`` float32 (T,68,2), ``yx_min`` float32 (T,2))."""
    arrays = {"landmarks": np.asarray(landmarks.points, dtype=np.float32)}
    if landmarks.yx_min is not None:
        arrays["yx_min"] = np.asarray(landmarks.yx_min, dtype=np.float32)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def convert_pickle_to_npz(pkl_path: str | os.PathLike, npz_path: str | os.PathLike | None = None) -> Path:
    """Convert one reference landmark pickle to npz once (restricted unpickler); returns the npz path."""
    pkl_path = Path(pkl_path)
    npz_path = Path(npz_path) if npz_path is not None else pkl_path.with_suffix(".npz")
    write_landmarks(npz_path, read_landmarks(pkl_path))
    return npz_path


def convert_pickle_tree(root: str | os.PathLike) -> tuple[int, list[str]]:
    """Convert every ``*.pkl`` under ``root`` that has no ``.npz`` yet; returns (converted, errors)."""
    converted, errors = 0, []
    for pkl in sorted(Path(root).rglob("*.pkl")):
        if pkl.with_suffix(".npz").exists():
            continue
        try:
            convert_pickle_to_npz(pkl)
            converted += 1
        except (LandmarkError, pickle.UnpicklingError) as err:
            errors.append(str(err))
    return converted, errors


# --------------------------------------------------------------------------- cleaning
def interpolate_missing(points: np.ndarray, path: str | os.PathLike = "<landmarks>") -> np.ndarray:
    """Linearly interpolate NaN frames between detections; leading/trailing gaps copy the nearest detection.

    Raises :class:`LandmarkError` if no frame has landmarks.
    """
    points = np.asarray(points, dtype=np.float32)
    valid = np.isfinite(points).all(axis=(1, 2))
    if not valid.any():
        raise LandmarkError(f"{path}: no frame has landmarks")
    if valid.all():
        return points.copy()
    t = np.arange(len(points))
    known = t[valid]
    flat = points[valid].reshape(len(known), -1)
    filled = np.empty((len(points), flat.shape[1]), dtype=np.float32)
    for j in range(flat.shape[1]):  # np.interp holds the end values constant outside the known range
        filled[:, j] = np.interp(t, known, flat[:, j])
    return filled.reshape(points.shape)


def smooth_landmarks(points: np.ndarray, half_window: int = 6) -> np.ndarray:
    """The reference's temporal smoothing (spec §4.1): mean over [i-w, i+w], w = min(half_window, i, T-1-i),
    then shifted so the smoothed frame's centroid equals frame i's raw centroid (keeps translation, removes jitter).
    """
    points = np.asarray(points, dtype=np.float32)
    n = len(points)
    cumsum = np.concatenate([np.zeros((1,) + points.shape[1:], np.float64), np.cumsum(points, axis=0, dtype=np.float64)])
    out = np.empty_like(points)
    for i in range(n):
        w = min(half_window, i, n - 1 - i)
        mean = (cumsum[i + w + 1] - cumsum[i - w]) / (2 * w + 1)
        out[i] = mean - mean.mean(axis=0) + points[i].mean(axis=0)
    return out.astype(np.float32)
