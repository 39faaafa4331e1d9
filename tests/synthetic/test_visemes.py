"""Lip shapes follow the phonemes: closures close the mouth, open vowels open it, in landmarks and pixels."""
from __future__ import annotations

import numpy as np

from avsr_lightning.data.synthetic import lips, speakers, visemes
from avsr_lightning.data.synthetic.speech import Phone, synthesize

CLOSURES = {"p", "b", "m"}
OPEN_VOWELS = {"a", "aa", "A:", "V", "0", "aI", "aU"}


def _frames_centred_on(phones, names, offset, num_frames):
    """Frames whose centre falls in the middle half of a phone from ``names``."""
    picked = set()
    bounds = [p.start for p in phones[1:]] + [phones[-1].start + 0.1]
    for phone, end in zip(phones, bounds):
        if phone.name in names:
            lo, hi = phone.start + offset, end + offset
            mid_lo, mid_hi = lo + 0.25 * (hi - lo), hi - 0.25 * (hi - lo)
            picked |= {i for i in range(num_frames) if mid_lo <= (i + 0.5) * 0.04 <= mid_hi}
    return sorted(picked)


def test_closures_are_closed_and_open_vowels_open():
    speaker = speakers.speakers(0)[0]
    speech = synthesize("BOB PUT THE MAP ON MOM'S CAR", speaker.voice, rate=speaker.rate, pitch=speaker.pitch)
    offset, num_frames = 0.2, int(np.ceil((speech.duration + 0.3) / 0.04))
    trajectory = visemes.mouth_trajectory(speech.phones, offset, num_frames)
    closed = _frames_centred_on(speech.phones, CLOSURES, offset, num_frames)
    opened = _frames_centred_on(speech.phones, OPEN_VOWELS, offset, num_frames)
    assert len(closed) >= 3 and len(opened) >= 3
    assert trajectory[closed, 0].max() < trajectory[opened, 0].min()
    assert trajectory[closed, 0].mean() < 0.15 < 0.6 < trajectory[opened, 0].mean()

    frames, landmarks, _ = lips.render_clip(trajectory, speaker, np.random.default_rng(0))
    inner_gap = landmarks[:, 66, 1] - landmarks[:, 62, 1]  # lower inner lip minus upper inner lip
    assert inner_gap[closed].mean() < 2.0 < 8.0 < inner_gap[opened].mean()
    # pixels: the dark mouth interior is (nearly) absent during closures
    dark = (frames[:, 30:80, 20:76] < 60).sum(axis=(1, 2))
    assert dark[closed].mean() * 4 < dark[opened].mean()


def test_rounded_vowels_narrow_the_mouth():
    speaker = speakers.speakers(0)[1]
    phones = (Phone("_", 0.0), Phone("u:", 0.3), Phone("_", 0.7), Phone("i:", 1.0), Phone("_", 1.4))
    trajectory = visemes.mouth_trajectory(phones, 0.0, 45)
    _, landmarks, _ = lips.render_clip(trajectory, speaker, np.random.default_rng(0))
    width = landmarks[:, 54, 0] - landmarks[:, 48, 0]
    rounded, spread = width[10:16].mean(), width[27:33].mean()
    assert rounded < 0.8 * spread


def test_unknown_phonemes_fall_back_instead_of_failing():
    assert visemes.visemes_of("p") == (visemes.CLOSURE,)
    assert visemes.visemes_of("'zz") == (visemes.MID,)
    assert visemes.visemes_of("b#") == (visemes.CLOSURE,)
