"""mix_scene equals a straightforward float64 implementation of the spec's formulas, sample for sample."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.io
import scipy.signal
import soundfile as sf

from avsr_lightning.data.avse import (
    RAMP_SAMPLES,
    SceneError,
    SpeechWeighting,
    load_speech_weight,
    mix_scene,
    mix_scene_float,
    parse_scene,
)


def scene_entry(kind: str, offset: int, snr: float, length: int, name: str = "m1") -> dict:
    return {"dataset": "train", "scene": "S00007", "target": {"name": "trainval/spk/00001"}, "duration": length,
            "interferer": {"type": kind, "time_start": 0, "time_end": length, "name": name, "offset": offset},
            "SNR": snr, "pre_samples": 0, "post_samples": 0}


def reference_render(t: np.ndarray, maskers: list[np.ndarray], offsets: list[int], snr: float, h: np.ndarray):
    """The spec (§3.4-3.7) written out plainly: float64, numpy/scipy, no caching, no shortcuts."""
    n = len(t)
    r = (np.cos(np.linspace(np.pi, 2 * np.pi, RAMP_SAMPLES)) + 1) / 2
    v = np.zeros(n)
    for masker, offset in zip(maskers, offsets):
        u = masker[offset:offset + n].copy()
        assert len(u) == n
        u[:RAMP_SAMPLES] *= r
        u[-RAMP_SAMPLES:] *= r[::-1]
        v = u if len(maskers) == 1 else v + u
    rms_t = np.sqrt(np.mean(scipy.signal.convolve(t, h, mode="full", method="fft") ** 2))
    rms_v = np.sqrt(np.mean(scipy.signal.convolve(v, h, mode="full", method="fft") ** 2))
    i = (v * (rms_t / rms_v)) * (10 ** ((-snr) / 20))
    m = t + i
    peak = max(np.abs(m).max(), np.abs(t).max(), np.abs(i).max())
    return {name: np.trunc((x / peak) * 32767).astype(np.int16)
            for name, x in (("mixed", m), ("target", t), ("interferer", i))}, (m, t, i)


def weighted_snr_db(t: np.ndarray, i: np.ndarray, h: np.ndarray) -> float:
    return 10 * np.log10(np.sum(np.convolve(t, h) ** 2) / np.sum(np.convolve(i, h) ** 2))


def read_float64(path, data: np.ndarray) -> np.ndarray:
    sf.write(path, data, 16000, subtype="PCM_16")
    out, rate = sf.read(path, dtype="float64")
    assert rate == 16000
    return out


CASES = [  # (interferer type, target length, SNR): both types, overlapping ramps (L < 16000), long scenes
    ("speech", 52000, -13.2718),
    ("noise", 80000, 7.5),
    ("speech", 12345, 5.0),
    ("noise", 8000, -10.0),
    ("noise", 96017, 0.0001),
]


def _check_invariants(out):
    peak = max(np.abs(out[k].astype(np.int32)).max() for k in out)
    assert peak == 32767
    assert min(out[k].min() for k in out) >= -32767
    diff = out["mixed"].astype(np.int32) - out["target"] - out["interferer"]
    assert set(np.unique(diff)) <= {-1, 0, 1}


@pytest.mark.parametrize("kind,length,snr", CASES)
def test_mix_scene_equals_reference_generated_filter(tmp_path, make_speech, weight_filter, kind, length, snr):
    rng = np.random.default_rng(length)
    t = read_float64(tmp_path / "t.wav", make_speech(rng, length, 0.4))
    masker = read_float64(tmp_path / "m.wav", make_speech(rng, length * 3 + 500, 0.8)
                          if kind == "speech" else (rng.standard_normal(length * 3 + 500) * 3000).astype(np.int16))
    offset = int(rng.integers(0, len(masker) - length + 1))
    scene = scene_entry(kind, offset, snr, length)
    expected, (m, t_ref, i_ref) = reference_render(t, [masker], [offset], snr, weight_filter)
    got = mix_scene(t, masker, scene, speech_weight=weight_filter)
    for name in ("mixed", "target", "interferer"):
        assert got[name].dtype == np.int16 and got[name].shape == (length,)
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    _check_invariants(got)
    fm, ft, fi = mix_scene_float(t, masker, scene, speech_weight=weight_filter)
    np.testing.assert_array_equal(fi, i_ref)
    assert abs(weighted_snr_db(ft, fi, weight_filter) - snr) < 1e-9
    # int16 files keep the SNR within ~0.01 dB (spec §7.4)
    assert abs(weighted_snr_db(got["target"] / 32768.0, got["interferer"] / 32768.0, weight_filter) - snr) < 0.02


def test_int16_inputs_are_read_like_libsndfile(make_speech, weight_filter):
    rng = np.random.default_rng(3)
    t16, m16 = make_speech(rng, 30000), make_speech(rng, 90000)
    scene = scene_entry("noise", 1234, -3.25, 30000)
    a = mix_scene(t16, m16, scene, speech_weight=weight_filter)
    b = mix_scene(t16 / 32768.0, m16 / 32768.0, scene, speech_weight=weight_filter)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_inputs_are_not_mutated_and_target_rms_cache_is_exact(make_speech, weight_filter):
    rng = np.random.default_rng(5)
    t, masker = make_speech(rng, 40000) / 32768.0, make_speech(rng, 60000) / 32768.0
    t0, m0 = t.copy(), masker.copy()
    weighting = SpeechWeighting(weight_filter)
    scene = parse_scene(scene_entry("speech", 777, 2.5, 40000))
    a = mix_scene(t, masker, scene, speech_weight=weighting)
    b = mix_scene(t, masker, scene, speech_weight=weighting, target_rms=weighting.rms(t))
    np.testing.assert_array_equal(t, t0)
    np.testing.assert_array_equal(masker, m0)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert weighting.rms(t) == np.sqrt(np.mean(scipy.signal.fftconvolve(t, weight_filter) ** 2))


def test_multi_interferer_sums_ramped_segments(make_speech, weight_filter):
    rng = np.random.default_rng(11)
    n = 36000
    t = make_speech(rng, n) / 32768.0
    maskers = [make_speech(rng, 50000) / 32768.0, rng.standard_normal(70000) * 0.05, make_speech(rng, 41000) / 32768.0]
    offsets = [100, 30000, 5000]
    entry = scene_entry("speech", 0, -4.0, n)
    del entry["interferer"]
    entry["interferers"] = [{"type": k, "name": f"x{j}.wav", "offset": o}
                            for j, (k, o) in enumerate(zip(["speech", "noise", "music"], offsets))]
    expected, (m, t_ref, i_ref) = reference_render(t, maskers, offsets, -4.0, weight_filter)
    got = mix_scene(t, maskers, entry, speech_weight=weight_filter)
    for k in expected:
        np.testing.assert_array_equal(got[k], expected[k])
    _, ft, fi = mix_scene_float(t, maskers, entry, speech_weight=weight_filter)
    assert abs(weighted_snr_db(ft, fi, weight_filter) + 4.0) < 1e-9


def test_real_filter_equality_and_snr(shared_reference, tmp_path, make_speech):
    path = shared_reference / "data" / "speech_weight.mat"
    h = load_speech_weight(path)
    assert h.shape == (512,) and np.allclose(h, h[::-1])
    np.testing.assert_array_equal(h, np.asarray(scipy.io.loadmat(path)["filt"], np.float64).ravel())
    for seed, kind, snr in [(1, "speech", -15.0), (2, "noise", 9.9999), (3, "noise", -2.2222)]:
        rng = np.random.default_rng(seed)
        n = int(rng.integers(48000, 96000))
        t = make_speech(rng, n) / 32768.0
        masker = make_speech(rng, 2 * n, 0.9) / 32768.0
        offset = int(rng.integers(0, n))
        scene = scene_entry(kind, offset, snr, n)
        expected, _ = reference_render(t, [masker], [offset], snr, h)
        got = mix_scene(t, masker, scene, speech_weight=path)
        for k in expected:
            np.testing.assert_array_equal(got[k], expected[k])
        _, ft, fi = mix_scene_float(t, masker, scene, speech_weight=h)
        assert abs(weighted_snr_db(ft, fi, h) - snr) < 1e-9


@pytest.mark.parametrize("case,reason", [
    ("short_target", "target_too_short"),
    ("offset_past_end", "offset_past_masker_end"),
    ("silent_interferer", "silent_interferer"),
    ("nan_target", "non_finite"),
    ("inf_masker", "non_finite"),
    ("silent_target", "silent_target"),
    ("stereo_masker", "not_mono"),
])
def test_bad_input_raises_scene_error_with_id_and_reason(make_speech, weight_filter, case, reason):
    rng = np.random.default_rng(0)
    n = 7999 if case == "short_target" else 20000
    t = make_speech(rng, n) / 32768.0
    masker = make_speech(rng, 60000) / 32768.0
    offset = 100
    if case == "offset_past_end":
        offset = 60000 - n + 1
    elif case == "silent_interferer":
        masker[offset:offset + n] = 0.0
    elif case == "nan_target":
        t[17] = np.nan
    elif case == "inf_masker":
        masker[offset + 5] = np.inf
    elif case == "silent_target":
        t[:] = 0.0
    elif case == "stereo_masker":
        masker = np.stack([masker, masker], axis=1)
    with pytest.raises(SceneError) as info:
        mix_scene(t, masker, scene_entry("noise", offset, 0.0, n), speech_weight=weight_filter)
    assert info.value.reason == reason
    assert info.value.scene == "S00007" and "S00007" in str(info.value)


def test_missing_filter_fails_with_instructions(monkeypatch, make_speech):
    from avsr_lightning.data.avse import set_default_speech_weight

    monkeypatch.delenv("AVSE_SPEECH_WEIGHT", raising=False)
    set_default_speech_weight(None)
    rng = np.random.default_rng(0)
    with pytest.raises(RuntimeError, match="speech_weight"):
        mix_scene(make_speech(rng, 9000) / 32768.0, make_speech(rng, 9000) / 32768.0, scene_entry("noise", 0, 0.0, 9000))


def test_parseval_fast_path_within_tolerance_and_mixed_only(make_speech, weight_filter):
    """§7.3: a non-exact path may differ by at most 1 LSB on at most 0.1 % of samples (here: none)."""
    weighting = SpeechWeighting(weight_filter)
    changed = total = 0
    for seed in range(12):
        rng = np.random.default_rng(100 + seed)
        n = int(rng.integers(20000, 100000))
        t = make_speech(rng, n) / 32768.0
        masker = (make_speech(rng, 2 * n, 0.8) if seed % 2 else (rng.standard_normal(2 * n) * 4000).astype(np.int16))
        scene = scene_entry("speech" if seed % 2 else "noise", int(rng.integers(0, n)), float(rng.uniform(-15, 10)), n)
        exact = mix_scene(t, masker, scene, speech_weight=weighting)
        fast = mix_scene(t, masker, scene, speech_weight=weighting, exact=False)
        assert abs(weighting.rms(t, exact=False) - weighting.rms(t)) <= 8 * np.spacing(weighting.rms(t))
        for k in exact:
            diff = np.abs(exact[k].astype(np.int32) - fast[k])
            assert diff.max() <= 1
            changed += int(np.count_nonzero(diff))
            total += diff.size
        only = mix_scene(t, masker, scene, speech_weight=weighting, signals=("mixed",))
        assert list(only) == ["mixed"]
        np.testing.assert_array_equal(only["mixed"], exact["mixed"])
    assert changed <= 0.001 * total
