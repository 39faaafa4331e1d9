"""The ``LandmarkDetector`` interface, the built-in detector names and the per-clip adapter for preprocessing."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Protocol, runtime_checkable

import numpy as np


@dataclass
class Face:
    """One detected face: ``points`` (68, 2) float32 (x, y) pixels of the image given; ``score`` in [0, 1];
    ``lips`` the detector's own lip points (N, 2) when it has them (used to check the crop mapping)."""

    points: np.ndarray
    score: float = 1.0
    lips: Optional[np.ndarray] = None

    @property
    def box(self) -> tuple[float, float, float, float]:
        x0, y0 = self.points.min(axis=0)
        x1, y1 = self.points.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)


@runtime_checkable
class LandmarkDetector(Protocol):
    """``detector(rgb) -> list[Face]`` for one uint8 (H, W, 3) RGB frame, biggest/most confident first.

    ``reset()`` forgets any state carried between frames (call it at a cut or a new file). ``video_mode``
    detectors may use the previous frame to track (faster); they must still find a face that appears.
    """

    name: str

    def __call__(self, rgb: np.ndarray) -> list[Face]: ...

    def reset(self) -> None: ...


def _mediapipe(**kwargs) -> LandmarkDetector:
    from avsr_lightning.faces.mediapipe_mesh import MediaPipeFaceMesh

    return MediaPipeFaceMesh(**kwargs)


def _haar(**kwargs) -> LandmarkDetector:
    from avsr_lightning.faces.haar import HaarFaceDetector

    return HaarFaceDetector(**kwargs)


#: Built-in detectors by name (``--detector NAME``); ``auto`` = mediapipe if installed, else haar.
DETECTORS: dict[str, Callable[..., LandmarkDetector]] = {"mediapipe": _mediapipe, "haar": _haar}


def create_detector(name: str = "auto", **kwargs) -> LandmarkDetector:
    """A detector by name (``mediapipe``, ``haar``, ``auto``) or import path ``package.module:factory``."""
    if name == "auto":
        try:
            return _mediapipe(**kwargs)
        except ImportError:
            return _haar(**kwargs)
    if name in DETECTORS:
        return DETECTORS[name](**kwargs)
    if ":" in name:
        import importlib

        module, _, attr = name.partition(":")
        return getattr(importlib.import_module(module), attr)(**kwargs)
    raise ValueError(f"unknown detector {name!r}; choose one of {sorted(DETECTORS) + ['auto']} or give "
                     f"'package.module:factory'")


def frames_detector(name: str = "auto", stride: int = 1, mean_face: np.ndarray | None = None,
                    max_side: int = 640) -> Callable[[np.ndarray], list]:
    """A per-clip detector for :func:`avsr_lightning.data.preprocess.preprocess_corpus`: grey (T, H, W)
    frames -> per-frame (68, 2) points or None, tracked through the clip (the largest face)."""
    from avsr_lightning.faces.tracker import FaceTracker

    detector = create_detector(name)
    if hasattr(detector, "set_template"):
        if mean_face is None:
            raise ValueError(f"the {name} detector needs the mean face (set AVSR_MEAN_FACE)")
        detector.set_template(mean_face)

    def detect(frames: np.ndarray) -> list:
        detector.reset()
        tracker = FaceTracker(detector, stride=stride, max_side=max_side)
        for frame in frames:
            rgb = np.repeat(frame[:, :, None], 3, axis=2) if frame.ndim == 2 else frame
            tracker.push(rgb)
        track = tracker.main_track()
        if track is None:
            return [None] * len(frames)
        return [None if not np.isfinite(p).all() else p for p in track.points_array(len(frames))]

    return detect


def clip_detector_spec(name: str, mean_face: str | None = None) -> str:
    """``preprocess_lrs.py --detector NAME`` -> the ``module:factory`` spec its worker processes build.

    The mean face travels through ``AVSR_MEAN_FACE`` (inherited by the workers) for the cascade's template."""
    import os

    if name not in DETECTORS and name != "auto":
        raise ValueError(f"unknown detector {name!r}; choose one of {sorted(DETECTORS) + ['auto']} or give "
                         f"'package.module:factory'")
    if mean_face is not None:
        os.environ["AVSR_MEAN_FACE"] = os.fspath(mean_face)
    return f"avsr_lightning.faces.detector:{name}_clip_detector"


def _clip_detector(name: str) -> Callable[[np.ndarray], list]:
    import os

    path = os.environ.get("AVSR_MEAN_FACE")
    return frames_detector(name, stride=1, mean_face=np.load(path) if path else None)


def mediapipe_clip_detector() -> Callable[[np.ndarray], list]:
    return _clip_detector("mediapipe")


def haar_clip_detector() -> Callable[[np.ndarray], list]:
    return _clip_detector("haar")


def auto_clip_detector() -> Callable[[np.ndarray], list]:
    return _clip_detector("auto")
