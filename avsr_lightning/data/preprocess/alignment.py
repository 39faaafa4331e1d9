"""Similarity alignment of each frame to a mean face and the 96x96 mouth crop (spec §4.1)."""
from __future__ import annotations

import numpy as np

#: Stable landmarks (nose bridge/tip, eye corners, mouth corners) used to estimate the similarity transform.
STABLE_POINTS = (28, 33, 36, 39, 42, 45, 48, 54)
MOUTH_POINTS = slice(48, 68)


class AlignmentError(ValueError):
    """A clip cannot be aligned or cropped (degenerate landmarks, mouth outside the frame)."""


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 similarity (rotation, uniform scale, translation) mapping ``src`` points onto ``dst`` (LMEDS)."""
    import cv2

    matrix, _ = cv2.estimateAffinePartial2D(src.astype(np.float32), dst.astype(np.float32), method=cv2.LMEDS)
    if matrix is None or not np.isfinite(matrix).all():
        raise AlignmentError("similarity transform could not be estimated from the stable landmarks")
    return matrix


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def align_clip(frames: np.ndarray, landmarks: np.ndarray, mean_face: np.ndarray, size: int = 256,
               stable_points: tuple[int, ...] = STABLE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Warp every frame so its (smoothed) stable landmarks match the mean face's.

    ``frames`` uint8 (T, H, W); ``landmarks`` float (T, 68, 2) without gaps; ``mean_face`` (68, 2) in a
    ``size`` x ``size`` reference frame. Returns aligned frames (T, size, size) and transformed landmarks.
    """
    import cv2

    if len(frames) != len(landmarks):
        n = min(len(frames), len(landmarks))
        frames, landmarks = frames[:n], landmarks[:n]
    idx = list(stable_points)
    aligned = np.empty((len(frames), size, size), dtype=np.uint8)
    points = np.empty_like(landmarks, dtype=np.float32)
    for t, (frame, lm) in enumerate(zip(frames, landmarks)):
        matrix = estimate_similarity(lm[idx], mean_face[idx])
        aligned[t] = cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        points[t] = transform_points(lm, matrix)
    return aligned, points


def crop_mouth(aligned: np.ndarray, points: np.ndarray, crop: int = 96,
               max_shift: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """Cut a ``crop`` x ``crop`` patch centred on the mouth landmarks of every frame.

    A patch that would cross the border is shifted inside (the reference wrote smaller patches that the video
    writer then dropped, desynchronising audio, spec §8.26); a shift larger than ``max_shift`` px means the
    alignment failed and raises :class:`AlignmentError`. Returns crops (T, crop, crop) and yx_min (T, 2).
    """
    t, h, w = aligned.shape
    half = crop // 2
    crops = np.empty((t, crop, crop), dtype=aligned.dtype)
    yx_min = np.empty((t, 2), dtype=np.float32)
    for i in range(t):
        cx, cy = points[i, MOUTH_POINTS].mean(axis=0)
        y0, x0 = int(round(cy)) - half, int(round(cx)) - half
        y_in, x_in = min(max(y0, 0), h - crop), min(max(x0, 0), w - crop)
        if abs(y_in - y0) > max_shift or abs(x_in - x0) > max_shift:
            raise AlignmentError(f"frame {i}: mouth centre ({cx:.0f}, {cy:.0f}) is too close to the border of the "
                                 f"aligned {w}x{h} frame")
        crops[i] = aligned[i, y_in:y_in + crop, x_in:x_in + crop]
        yx_min[i] = (y_in, x_in)
    return crops, yx_min
