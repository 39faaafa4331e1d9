"""Landmark files: restricted pickle reading, npz conversion, None/NaN frames, smoothing."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from avsr_lightning.data.landmarks import (
    LandmarkError,
    convert_pickle_to_npz,
    convert_pickle_tree,
    interpolate_missing,
    read_landmarks,
    smooth_landmarks,
)


def _frames(n=6):
    base = np.stack([np.linspace(0, 67, 68), np.linspace(10, 77, 68)], axis=1).astype(np.float32)
    return [base + i for i in range(n)]


def test_raw_pickle_with_none_frames_converts_and_interpolates(tmp_path):
    frames = _frames()
    frames[0] = frames[2] = None
    frames[5] = None
    with open(tmp_path / "clip.pkl", "wb") as fh:
        pickle.dump(frames, fh)
    lm = read_landmarks(tmp_path / "clip.pkl")
    assert lm.points.shape == (6, 68, 2) and np.isnan(lm.points[[0, 2, 5]]).all()
    filled = interpolate_missing(lm.points)
    base = _frames()
    np.testing.assert_allclose(filled[2], base[2], atol=1e-5)  # between detections: linear
    np.testing.assert_allclose(filled[0], base[1], atol=1e-5)  # leading gap copies the first detection
    np.testing.assert_allclose(filled[5], base[4], atol=1e-5)  # trailing gap copies the last one
    npz = convert_pickle_to_npz(tmp_path / "clip.pkl")
    again = read_landmarks(npz)
    np.testing.assert_array_equal(np.isnan(again.points), np.isnan(lm.points))


def test_reference_transformed_pickle_dict(tmp_path):
    data = {"landmarks": _frames(4), "yx_min": [np.array([10, 20])] * 4}
    (tmp_path / "a.pkl").write_bytes(pickle.dumps(data, protocol=4))
    (tmp_path / "b.pkl").write_bytes(pickle.dumps(data, protocol=5))
    for name in ("a.pkl", "b.pkl"):
        lm = read_landmarks(tmp_path / name)
        assert lm.yx_min.shape == (4, 2) and lm.yx_min[0].tolist() == [10, 20]
    converted, errors = convert_pickle_tree(tmp_path)
    assert converted == 2 and not errors and (tmp_path / "a.npz").is_file()


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_malicious_pickle_is_refused(tmp_path):
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps([_Evil()]))
    with pytest.raises(LandmarkError, match="refusing"):
        read_landmarks(tmp_path / "evil.pkl")
    (tmp_path / "obj.pkl").write_bytes(pickle.dumps([np.array([object()], dtype=object)]))
    with pytest.raises((LandmarkError, pickle.UnpicklingError)):
        read_landmarks(tmp_path / "obj.pkl")


def test_nan_frames_all_missing_and_bad_shapes(tmp_path):
    pts = np.stack(_frames(3))
    pts[1, 5] = np.nan  # one NaN point makes the whole frame "undetected"
    np.savez(tmp_path / "nan.npz", landmarks=pts)
    lm = read_landmarks(tmp_path / "nan.npz")
    assert np.isnan(lm.points[1]).all() and np.isfinite(interpolate_missing(lm.points)).all()
    with pytest.raises(LandmarkError, match="no frame has landmarks"):
        interpolate_missing(np.full((3, 68, 2), np.nan, np.float32))
    np.savez(tmp_path / "shape.npz", landmarks=np.zeros((3, 5, 2)))
    with pytest.raises(LandmarkError, match="expected"):
        read_landmarks(tmp_path / "shape.npz")
    with pytest.raises(LandmarkError, match="missing"):
        read_landmarks(tmp_path / "none.npz")


def test_smoothing_removes_jitter_but_keeps_translation():
    rng = np.random.default_rng(0)
    base = np.stack(_frames(40))
    jitter = rng.normal(0, 1.0, base.shape).astype(np.float32)
    smooth = smooth_landmarks(base + jitter)
    # centroids equal the raw centroids frame by frame (translation kept)...
    np.testing.assert_allclose(smooth.mean(axis=1), (base + jitter).mean(axis=1), atol=1e-4)
    # ...while the shape error against the clean landmarks shrinks in the interior
    err_raw = np.abs((base + jitter) - base)[6:-6].mean()
    err_smooth = np.abs(smooth - base)[6:-6].mean()
    assert err_smooth < 0.5 * err_raw
    np.testing.assert_allclose(smooth[0], (base + jitter)[0], atol=1e-5)  # window 0 at the ends
