"""Corruption ops and wrappers: exact SNRs, configured probabilities over many draws, placement, seeding."""
from __future__ import annotations

import numpy as np
import pytest

from avsr_lightning.data.conditions import Condition, apply_condition
from avsr_lightning.data.corruption import functional as F
from avsr_lightning.data.corruption.acoustic import NoiseMixer
from avsr_lightning.data.corruption.occluders import OccluderBank
from avsr_lightning.data.corruption.seeding import generator_for
from avsr_lightning.data.corruption.visual import VisualCorruption
from avsr_lightning.data.landmarks import Landmarks
from avsr_lightning.data.media import write_audio


def _snr(clean, mixed):
    noise = mixed - clean
    return 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2))


@pytest.mark.parametrize("snr", [-5.0, 0.0, 12.5])
def test_mix_at_snr_is_exact(snr):
    rng = np.random.default_rng(0)
    clean = rng.standard_normal(16000).astype(np.float32) * 0.1
    noise = F.crop_noise(rng.standard_normal(5000).astype(np.float32), 16000, rng)  # tiled: shorter than speech
    assert abs(_snr(clean, F.mix_at_snr(clean, noise, snr)) - snr) < 0.01
    silent = F.mix_at_snr(np.zeros(100, np.float32), noise[:100], snr)
    assert np.isfinite(silent).all() and not silent.any()


@pytest.fixture()
def babble(tmp_path):
    write_audio(tmp_path / "babble.wav", np.random.default_rng(1).standard_normal(32000) * 0.1)
    return tmp_path / "babble.wav"


def test_noise_mixer_draws_snrs_uniformly_including_clean(babble):
    mixer = NoiseMixer([babble], snrs=[None, 0, 10])
    rng = np.random.default_rng(0)
    speech = np.random.default_rng(2).standard_normal(1600).astype(np.float32) * 0.1
    counts = {None: 0, 0.0: 0, 10.0: 0}
    for _ in range(1500):
        out, info = mixer(speech, rng)
        counts[info["snr"]] += 1
        if info["snr"] is None:
            assert np.array_equal(out, speech) and info["noise"] is None
        else:
            assert info["noise"] == "babble"
    for v in counts.values():
        assert abs(v / 1500 - 1 / 3) < 0.04
    with pytest.raises(ValueError, match="noise_files"):
        NoiseMixer([], snrs=[0])
    assert NoiseMixer([], snrs=[None])(speech, rng)[1]["snr"] is None


def test_partial_noise_options(babble):
    rng = np.random.default_rng(0)
    speech = np.random.default_rng(2).standard_normal(16000).astype(np.float32) * 0.1
    ref = NoiseMixer([babble], snrs=[0], partial="reference_train")
    gated = sum(ref(speech, rng)[1]["partial"] == "reference_train" for _ in range(1000))
    assert abs(gated / 1000 - 0.5) < 0.05  # the reference's 50 % chance
    keep = F.partial_noise_keep_mask(16000, rng)
    assert 0.3 < keep.mean() < 1.0  # some spans noise-free, never all
    short = F.partial_noise_keep_mask(1000, rng)  # the reference crashes here (spec §8.25)
    assert short.shape == (1000,)
    out, info = NoiseMixer([babble], snrs=[5], partial="avrelscore")(speech, rng)
    noise = out - speech
    assert info["partial"] == "avrelscore" and (np.abs(noise) < 1e-7).mean() > 0.01


def test_visual_noise_probabilities_match_configuration():
    vc = VisualCorruption(occluders=None)  # reference training defaults: 0.2 clean, noise kinds 0.3/0.3/0.4
    rng = np.random.default_rng(0)
    frames = np.full((12, 8, 8), 128, np.uint8)
    clean, kinds = 0, {"gaussian": 0, "blur": 0, "none": 0}
    n = 3000
    for _ in range(n):
        _, info = vc(frames, None, rng)
        if info["visual"] == "clean":
            clean += 1
            continue
        for seg in info["noise_segments"]:
            kinds[seg["kind"]] += 1
    assert abs(clean / n - 0.2) < 0.02
    total = sum(kinds.values())
    for kind, p in zip(("gaussian", "blur", "none"), vc.noise_probs):
        assert abs(kinds[kind] / total - p) < 0.025
    test = VisualCorruption.avrelscore_test(None)
    kinds = [seg["kind"] for _ in range(500) for seg in test(frames, None, rng, condition="noise")[1]["noise_segments"]]
    assert "none" not in kinds and abs(kinds.count("blur") / len(kinds) - 0.5) < 0.06


def test_segments_follow_reference_rules():
    rng = np.random.default_rng(0)
    for _ in range(300):
        (start, length), = F.choose_segments(50, 1, rng)
        assert 5 <= length <= 25 and 0 <= start <= 50 - length
        segs = F.choose_segments(50, 3, rng)
        for j, (s, ln) in enumerate(segs):
            assert s >= 16 * j and (ln == 8 or 15 <= ln <= 25)  # either drawn or the g//2 fallback


def test_pixel_noise_and_blur():
    rng = np.random.default_rng(0)
    frames = np.full((3, 16, 16), 128, np.uint8)
    noisy = F.gaussian_pixel_noise(frames, 0.01, rng)
    assert abs(noisy.astype(float).std() / 255 - 0.1) < 0.01
    edge = np.zeros((1, 16, 16), np.uint8)
    edge[:, :, 8:] = 255
    assert F.gaussian_blur(edge, 2.0)[0, 8, 7] > 50


def test_occluder_bank_skips_images_without_masks(tmp_path, gen):
    with pytest.warns(UserWarning, match="has no mask"):
        bank = OccluderBank(gen.write_occluders(tmp_path / "occ", count=2, without_mask=1))
    assert len(bank) == 2 and len(bank.missing_masks) == 1
    patch, alpha, name = bank.draw(np.random.default_rng(0), 30)
    assert patch.shape == alpha.shape == (30, 30) and 0 <= alpha.min() and alpha.max() <= 1
    again = bank.draw(np.random.default_rng(0), 30)
    assert np.array_equal(patch, again[0]) and name == again[2]  # albumentations seeded from the generator
    (tmp_path / "empty" / "object_image_sr").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no occluder"):
        OccluderBank(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="object_image_sr"):
        OccluderBank(tmp_path / "nothing")


def _changed_centroid(before, after):
    rows, cols = np.nonzero(np.abs(after.astype(int) - before).max(axis=0) > 20)
    return rows.mean(), cols.mean()


def test_occluder_lands_on_the_lips_and_quirks_flag_transposes(tmp_path, gen):
    bank = OccluderBank(gen.write_occluders(tmp_path / "occ", count=1), augment=False)
    frames = np.full((20, 96, 96), 170, np.uint8)
    # mouth at row 70, col 30 of the crop: asymmetric so a transposition is visible
    points = np.zeros((20, 68, 2), np.float32)
    points[:, :, 0], points[:, :, 1] = 81 + 30, 110 + 70
    lm = Landmarks(points, np.tile(np.array([[110.0, 81.0]], np.float32), (20, 1)))
    kw = dict(occluders=bank, occluder_size=(20, 20), offset_single=(10, 10), offset_multi=(10, 10))
    fixed, info = VisualCorruption(**kw).occlude_sequence(frames, lm, 1, np.random.default_rng(0))
    row, col = _changed_centroid(frames, fixed)
    assert abs(row - 70) < 3 and abs(col - 30) < 3  # centred on the landmark (top-left = point - offset)
    quirky, _ = VisualCorruption(reference_quirks=True, **kw).occlude_sequence(frames, lm, 1, np.random.default_rng(0))
    row, col = _changed_centroid(frames, quirky)
    assert abs(row - 30) < 3 and abs(col - 70) < 3  # spec §8.9: axes swapped


def test_conditions_are_seeded_by_utterance_and_condition(babble):
    mixer = NoiseMixer([babble], snrs=[0], partial="avrelscore")
    visual = VisualCorruption.avrelscore_test(None)
    frames = np.random.default_rng(0).integers(0, 255, (15, 16, 16)).astype(np.uint8)
    audio = np.random.default_rng(1).standard_normal(15 * 640).astype(np.float32) * 0.1
    cond = Condition(0.0, visual="noise")
    a = apply_condition(cond, "u1", 7, frames, audio, None, mixer, visual)
    b = apply_condition(cond, "u1", 7, frames, audio, None, mixer, visual)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    c = apply_condition(cond, "u2", 7, frames, audio, None, mixer, visual)
    d = apply_condition(cond, "u1", 8, frames, audio, None, mixer, visual)
    assert not np.array_equal(a[1], c[1]) and not np.array_equal(a[1], d[1])
    audio_only_change = apply_condition(Condition(0.0, visual="blur"), "u1", 7, frames, audio, None, mixer, visual)
    assert np.array_equal(audio_only_change[1], a[1])  # audio stream independent of the visual condition
    assert generator_for(1, "x", "c").random() == generator_for(1, "x", "c").random()
    assert Condition.from_any("babble_snr-5__occlusion_noise") == Condition(-5.0, "babble", "occlusion_noise")
    with pytest.raises(ValueError, match="visual"):
        Condition(0.0, visual="smoke")
