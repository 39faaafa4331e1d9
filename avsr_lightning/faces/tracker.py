"""Face tracking through a clip: detect every ``stride`` frames on a reduced image, associate faces to
tracks by position, forget tracks that stay lost, and pick the speaking (or the largest) face.

Frames between detections are left as gaps that :func:`~avsr_lightning.faces.mouth.prepare_points` fills
by interpolation and smooths; a track lost for more than ``max_gap`` frames is a real absence (the
transcriber decodes that stretch from audio). Memory is bounded: :meth:`FaceTracker.forget_before` drops
the points of frames already cut into segments.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from avsr_lightning.faces.detector import Face, LandmarkDetector


@dataclass
class Track:
    """One face over time: ``points[t]`` (68, 2) for the frames it was detected in."""

    index: int
    points: dict[int, np.ndarray] = field(default_factory=dict)
    lips: dict[int, np.ndarray] = field(default_factory=dict)
    last: int = -1
    #: the points at ``last`` (kept when older frames are forgotten, for association)
    last_points: np.ndarray | None = None

    def centre(self) -> np.ndarray:
        return self.last_points[48:68].mean(axis=0)

    def width(self) -> float:
        p = self.last_points
        return float(p[:, 0].max() - p[:, 0].min())

    def points_array(self, stop: int, start: int = 0) -> np.ndarray:
        """(stop - start, 68, 2) float32, NaN where not detected."""
        out = np.full((stop - start, 68, 2), np.nan, np.float32)
        for t, p in self.points.items():
            if start <= t < stop:
                out[t - start] = p
        return out

    def detected(self, start: int, stop: int) -> np.ndarray:
        out = np.zeros(stop - start, bool)
        for t in self.points:
            if start <= t < stop:
                out[t - start] = True
        return out


class FaceTracker:
    """Feed 25-fps RGB frames with :meth:`push`; read tracks back per segment.

    Args:
        detector: a :class:`LandmarkDetector`.
        stride: run the detector on every ``stride``-th frame (and on every frame while no face is tracked).
        max_side: downscale frames so their longer side is at most this before detecting (0 = never).
        max_gap: frames a track may go undetected before it is closed (a later face starts a new track).
    """

    def __init__(self, detector: LandmarkDetector, stride: int = 2, max_side: int = 480, max_gap: int = 12) -> None:
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        self.detector, self.stride, self.max_side, self.max_gap = detector, stride, max_side, max_gap
        self.tracks: list[Track] = []
        self.frames = 0
        self._misses = 0
        self.detections = 0

    def _active(self) -> list[Track]:
        return [tr for tr in self.tracks if self.frames - tr.last <= self.max_gap]

    def push(self, rgb: np.ndarray) -> list[Face] | None:
        """Process the next frame; returns the faces found (None when this frame was skipped)."""
        t = self.frames
        self.frames += 1
        if t % self.stride != 0:
            return None
        scale = 1.0
        image = rgb
        h, w = rgb.shape[:2]
        if self.max_side and max(h, w) > self.max_side:
            import cv2

            scale = self.max_side / max(h, w)
            image = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        faces = self.detector(image)
        self.detections += 1
        if scale != 1.0:
            faces = [Face(f.points / scale, f.score, None if f.lips is None else f.lips / scale) for f in faces]
        self._misses = 0 if faces else self._misses + 1
        self._associate(t, faces)
        return faces

    def _associate(self, t: int, faces: list[Face]) -> None:
        free = self._active()
        for face in faces:
            centre = face.points[48:68].mean(axis=0)
            best, best_d = None, np.inf
            for tr in free:
                d = float(np.linalg.norm(tr.centre() - centre))
                if d < 0.5 * max(tr.width(), 1.0) and d < best_d:
                    best, best_d = tr, d
            if best is None:
                best = Track(len(self.tracks))
                self.tracks.append(best)
            else:
                free.remove(best)
            best.points[t] = face.points.astype(np.float32)
            if face.lips is not None:
                best.lips[t] = face.lips.astype(np.float32)
            best.last, best.last_points = t, best.points[t]

    def forget_before(self, t: int) -> None:
        """Drop points of frames < t (already cut into segments) to keep memory bounded on long files."""
        for tr in self.tracks:
            for k in [k for k in tr.points if k < t]:
                del tr.points[k]
                tr.lips.pop(k, None)
        self.tracks = [tr for tr in self.tracks if tr.points or self.frames - tr.last <= self.max_gap]

    def present(self, start: int, stop: int) -> np.ndarray:
        """(stop - start,) bool: a face is tracked at the frame (detections with gaps <= max_gap bridged)."""
        out = np.zeros(stop - start, bool)
        for tr in self.tracks:
            times = sorted(k for k in tr.points if start - self.max_gap <= k < stop + self.max_gap)
            for a, b in zip(times, times[1:] + [None]):
                end = a + 1 if b is None or b - a > self.max_gap else b
                lo, hi = max(a, start), min(end, stop)
                if hi > lo:
                    out[lo - start:hi - start] = True
        return out

    def main_track(self, start: int = 0, stop: int | None = None, energy: np.ndarray | None = None):
        track, _ = self.choose(start, self.frames if stop is None else stop, energy)
        return track

    def choose(self, start: int, stop: int, energy: np.ndarray | None = None) -> tuple[Track | None, str]:
        """The face to read lips from in [start, stop): the one whose mouth motion correlates best with the
        audio energy (when that is clear), else the largest. Returns (track, a sentence saying which/why)."""
        cands = [tr for tr in self.tracks if tr.detected(start, stop).sum() >= 2]
        if not cands:
            return None, "no face"
        if len(cands) == 1:
            return cands[0], "one face"
        sizes, corrs = [], []
        for tr in cands:
            pts = tr.points_array(stop, start)
            ok = np.isfinite(pts).all(axis=(1, 2))
            widths = pts[ok, :, 0].max(axis=1) - pts[ok, :, 0].min(axis=1)
            sizes.append(float(np.median(widths)) ** 2)
            corr = np.nan
            if energy is not None and ok.sum() > 8:
                opening = np.full(len(pts), np.nan)
                opening[ok] = np.linalg.norm(pts[ok, 66] - pts[ok, 62], axis=1) / np.maximum(widths, 1.0)
                t = np.arange(len(pts))
                opening = np.interp(t, t[ok], opening[ok])
                motion = np.abs(np.diff(opening, prepend=opening[0]))
                e = np.asarray(energy[: len(motion)], np.float64)
                if len(e) == len(motion) and e.std() > 1e-9:
                    # a still mouth does not follow the audio: correlation 0, not undefined
                    corr = float(np.corrcoef(motion, e)[0, 1]) if motion.std() > 1e-6 else 0.0
            corrs.append(corr)
        order = np.argsort([tr.points_array(stop, start)[:, 48:68, 0][np.isfinite(
            tr.points_array(stop, start)[:, 48:68, 0])].mean() for tr in cands])
        position = {int(k): ("left" if r == 0 else "right" if r == len(cands) - 1 else f"#{r + 1} from left")
                    for r, k in enumerate(order)}
        valid = [c for c in corrs if np.isfinite(c)]
        if len(valid) == len(cands):
            ranked = np.argsort(corrs)[::-1]
            if corrs[ranked[0]] > 0.2 and corrs[ranked[0]] - corrs[ranked[1]] > 0.1:
                k = int(ranked[0])
                return cands[k], (f"face {cands[k].index} ({position[k]} of {len(cands)}): mouth motion follows "
                                  f"the audio (r={corrs[k]:.2f})")
        k = int(np.argmax(sizes))
        return cands[k], f"face {cands[k].index} ({position[k]} of {len(cands)}): the largest"
