"""The tracker on a real photograph: the face is found in every frame and the mouth crop lands on the mouth."""
from __future__ import annotations

import numpy as np
import pytest

from .conftest import SCALE, face_frames


@pytest.fixture(scope="module")
def moving_face(astronaut):
    return face_frames(astronaut, 50, 25.0)  # 2 s at 25 fps


@pytest.fixture(scope="module")
def mediapipe():
    pytest.importorskip("mediapipe", reason="the [faces] extra (requirements-faces-lock.txt) is needed")
    from avsr_lightning.faces import create_detector

    return create_detector("mediapipe")


def _track(detector, frames, stride):
    from avsr_lightning.faces import FaceTracker

    detector.reset()
    tracker = FaceTracker(detector, stride=stride, max_side=0)
    for rgb in frames:
        tracker.push(rgb)
    return tracker


def test_face_found_in_every_frame(mediapipe, moving_face):
    frames, _ = moving_face
    tracker = _track(mediapipe, frames, stride=1)
    assert len(tracker.tracks) == 1, "one still face moving a little must stay one track"
    assert tracker.tracks[0].detected(0, len(frames)).all()
    assert tracker.present(0, len(frames)).all()


def test_mouth_crop_lands_on_the_mouth(mediapipe, moving_face, mean_face):
    from avsr_lightning.faces.mouth import mouth_centres, mouth_crops, prepare_points

    frames, hand_mouths = moving_face
    tracker = _track(mediapipe, frames, stride=2)
    track = tracker.main_track()
    raw = track.points_array(len(frames))
    assert np.isfinite(raw).all(axis=(1, 2))[::2].all()  # detected on every 2nd frame, filled in between
    points = prepare_points(raw)
    grey = frames.mean(axis=3).astype(np.uint8)
    crops, yx_min = mouth_crops(grey, points, mean_face)
    assert crops.shape == (len(frames), 96, 96)
    centres = mouth_centres(points, yx_min, mean_face)
    # against the detector's own lip contour (468-point mesh, not the 68 points the crop is built from)
    lips = np.stack([track.lips[t].mean(axis=0) for t in sorted(track.lips)])
    lip_err = np.linalg.norm(centres[sorted(track.lips)] - lips, axis=1)
    # against the mouth position measured by hand on the photograph, moved by each frame's known motion
    hand_err = np.linalg.norm(centres - hand_mouths, axis=1)
    mouth_width = 46 * SCALE  # the astronaut's mouth is ~46 px wide in the 512x512 photograph
    # (measured here: ~0.7 px and ~1.1 px; a crop moved by 6 px of the aligned frame gives ~3.5 px)
    assert lip_err.max() < 0.07 * mouth_width, lip_err.max()
    assert hand_err.max() < 0.10 * mouth_width, hand_err.max()


def test_crop_scale_matches_the_training_crops(mediapipe, moving_face, mean_face):
    """The aligned face has the mean face's size: the stable points (nose, eye and mouth corners) spread as
    much as the mean face's (one pair alone is no yardstick: the astronaut smiles broadly)."""
    from avsr_lightning.data.preprocess.alignment import align_clip
    from avsr_lightning.faces.mouth import prepare_points

    frames, _ = moving_face
    track = _track(mediapipe, frames, stride=2).main_track()
    points = prepare_points(track.points_array(len(frames)))
    _, aligned = align_clip(frames.mean(axis=3).astype(np.uint8), points, mean_face)
    from avsr_lightning.data.preprocess.alignment import STABLE_POINTS

    idx = list(STABLE_POINTS)
    stable = aligned[:, idx]
    spread = np.sqrt(((stable - stable.mean(axis=1, keepdims=True)) ** 2).sum(axis=2).mean(axis=1))
    ref = mean_face[idx]
    expected = np.sqrt(((ref - ref.mean(axis=0)) ** 2).sum(axis=1).mean())
    assert np.abs(spread / expected - 1).max() < 0.08, spread / expected
    centre_shift = np.linalg.norm(stable.mean(axis=1) - ref.mean(axis=0), axis=1)
    assert centre_shift.max() < 0.05 * expected


def test_mesh_mapping_is_the_ibug_layout():
    from avsr_lightning.faces.mediapipe_mesh import MESH_TO_68

    assert MESH_TO_68.shape == (68,) and len(set(MESH_TO_68.tolist())) == 68
    assert (MESH_TO_68 >= 0).all() and (MESH_TO_68 < 468).all()


def test_haar_fallback_finds_the_face(astronaut, mean_face, moving_face):
    from avsr_lightning.faces import create_detector

    frames, hand_mouths = moving_face
    det = create_detector("haar")
    det.set_template(mean_face)
    faces = det(frames[0])
    assert faces, "OpenCV's cascade finds the astronaut's face"
    mouth = faces[0].points[48:68].mean(axis=0)
    assert np.linalg.norm(mouth - hand_mouths[0]) < 0.6 * 46 * SCALE * 2
