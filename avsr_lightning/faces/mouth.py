"""Tracked 68 points -> the 96x96 mouth crops the models were trained on, with the LRS functions.

The mapping is the LRS preprocessing itself (docs/transcribe.md, "Mapping to the training crop"):
similarity alignment of the stable points (nose, eye corners, mouth corners) onto the 20words mean face
in a 256x256 frame, then a 96x96 patch centred on the mean of the 20 lip points; the data pipeline's
``VideoTransform`` then takes the centred 88x88. Nothing is re-implemented here.
"""
from __future__ import annotations

import numpy as np

from avsr_lightning.data.landmarks import interpolate_missing, smooth_landmarks
from avsr_lightning.data.preprocess.alignment import (
    STABLE_POINTS,
    align_clip,
    crop_mouth,
    estimate_similarity,
)

CROP = 96
#: The preprocessing's smoothing window (runner.process_clip: window=12 -> half window 6).
HALF_WINDOW = 6


def prepare_points(points: np.ndarray, source: str = "<tracker>") -> np.ndarray:
    """Fill gaps (linear; edges copy the nearest detection) and smooth, exactly as the preprocessing does."""
    return smooth_landmarks(interpolate_missing(points, source), half_window=HALF_WINDOW)


def mouth_crops(frames: np.ndarray, points: np.ndarray, mean_face: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grey (T, H, W) frames + gap-free (T, 68, 2) points -> (T, 96, 96) uint8 crops and (T, 2) yx_min."""
    aligned, transformed = align_clip(frames, points, mean_face)
    return crop_mouth(aligned, transformed, CROP)


def mouth_centres(points: np.ndarray, yx_min: np.ndarray, mean_face: np.ndarray) -> np.ndarray:
    """Where the centre of each frame's crop (96x96 and so also the centred 88x88) lies in the original
    image: (T, 2) (x, y). Used to check the mapping against the detector's own lip points."""
    idx = list(STABLE_POINTS)
    out = np.empty((len(points), 2), np.float32)
    for t, lm in enumerate(points):
        m = estimate_similarity(lm[idx], mean_face[idx])
        a, tr = m[:, :2], m[:, 2]
        centre = np.array([yx_min[t, 1] + CROP / 2, yx_min[t, 0] + CROP / 2], np.float64)
        out[t] = np.linalg.solve(a, centre - tr)
    return out
