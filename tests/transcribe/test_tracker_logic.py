"""FaceTracker logic with a scripted detector (any LandmarkDetector plugs in): the speaking face is chosen
over a larger silent one, tracks survive short losses, and memory stays bounded on long streams."""
from __future__ import annotations

import numpy as np

from avsr_lightning.faces import Face, FaceTracker, LandmarkDetector


def face_at(cx: float, cy: float, size: float, opening: float = 0.0) -> Face:
    """A crude 68-point face: points on a grid, inner-lip points 62/66 ``opening`` apart."""
    rng = np.random.default_rng(0)
    pts = (rng.random((68, 2)) - 0.5) * size + np.array([cx, cy])
    pts[48:68] = np.array([cx, cy + 0.25 * size]) + (rng.random((20, 2)) - 0.5) * 0.2 * size
    pts[62] = (cx, cy + 0.25 * size - opening / 2)
    pts[66] = (cx, cy + 0.25 * size + opening / 2)
    return Face(pts.astype(np.float32))


class Scripted:
    name = "scripted"

    def __init__(self, script):
        self.script, self.t = script, 0

    def reset(self) -> None:
        self.t = 0

    def __call__(self, rgb):
        faces = self.script(self.t)
        self.t += 1
        return faces


def test_speaking_face_beats_the_larger_silent_one():
    rng = np.random.default_rng(3)
    n = 100
    energy = np.abs(np.sin(np.arange(n) / 3.0)) * (rng.random(n) > 0.3)
    opening = np.cumsum(np.where(rng.random(n) > 0.5, 1, -1) * energy * 4)  # moves when there is sound
    det = Scripted(lambda t: [face_at(300, 200, 200), face_at(100, 200, 100, opening=20 + opening[t])])
    assert isinstance(det, LandmarkDetector)
    tracker = FaceTracker(det, stride=1, max_side=0)
    for _ in range(n):
        tracker.push(np.zeros((10, 10, 3), np.uint8))
    track, why = tracker.choose(0, n, energy)
    assert track is tracker.tracks[1] and "follows the audio" in why and "left of 2" in why, why
    track, why = tracker.choose(0, n, None)
    assert track is tracker.tracks[0] and "largest" in why and "right of 2" in why, why


def test_short_losses_keep_the_track_and_long_ones_are_absences():
    lost = set(range(20, 26)) | set(range(50, 90))
    det = Scripted(lambda t: [] if t in lost else [face_at(100, 100, 80)])
    tracker = FaceTracker(det, stride=1, max_side=0, max_gap=12)
    for _ in range(100):
        tracker.push(np.zeros((10, 10, 3), np.uint8))
    present = tracker.present(0, 100)
    assert present[:50].all(), "a 6-frame loss is bridged"
    assert not present[50:90].any() and present[90:].all()
    assert len(tracker.tracks) == 2, "after a long loss the face starts a new track"


def test_forget_before_bounds_memory():
    det = Scripted(lambda t: [face_at(100, 100, 80)])
    tracker = FaceTracker(det, stride=2, max_side=0)
    peak = 0
    for t in range(1, 2001):
        tracker.push(np.zeros((10, 10, 3), np.uint8))
        if t % 100 == 0:
            tracker.forget_before(t)
        peak = max(peak, sum(len(tr.points) for tr in tracker.tracks))
    assert peak <= 50
