"""Noise recordings for the corruption pipeline: multi-talker babble and stationary noises (16 kHz).

Babble mixes several synthetic voices, each reading a stream of sentences of the corpus grammar, so at
low SNR it masks the very sounds the recogniser listens for, as LRS babble does. Voices and sentences are
drawn from the seed; none of the babble talkers reads with a corpus speaker's exact rate and pitch.
"""
from __future__ import annotations

import numpy as np

from avsr_lightning.data.synthetic.sentences import all_sentences
from avsr_lightning.data.synthetic.speech import SAMPLE_RATE, synthesize

NOISE_KINDS = ("babble", "white", "pink", "hum")
_BABBLE_VOICES = ("en-us+m2", "en-us+f4", "en+m3", "en+f1", "en-us+m5", "en+f3", "en-us+m6", "en+f5")


def _normalise(x: np.ndarray, rms: float = 0.1) -> np.ndarray:
    return (x * (rms / max(float(np.sqrt(np.mean(x ** 2))), 1e-8))).astype(np.float32)


def babble(seconds: float, rng: np.random.Generator, talkers: int = 6) -> np.ndarray:
    """``talkers`` synthetic voices talking at once, float32 at 16 kHz with RMS 0.1."""
    num = int(seconds * SAMPLE_RATE)
    sentences = all_sentences()
    mix = np.zeros(num, np.float64)
    for k in range(talkers):
        voice = _BABBLE_VOICES[k % len(_BABBLE_VOICES)]
        rate, pitch = int(rng.integers(150, 200)), int(rng.integers(20, 80))
        stream: list[np.ndarray] = [np.zeros(int(rng.integers(0, SAMPLE_RATE // 2)), np.float32)]
        filled = stream[0].shape[0]
        per_call = int(np.clip(seconds / 1.5 + 1, 1, 25))  # one synthesis call per paragraph of sentences
        while filled < num:
            paragraph = ". ".join(sentences[int(i)] for i in rng.integers(len(sentences), size=per_call))
            speech = synthesize(paragraph, voice, rate=rate, pitch=pitch)
            stream.append(speech.audio)
            filled += speech.audio.shape[0]
        mix += _normalise(np.concatenate(stream)[:num])
    return _normalise(mix)


def white(seconds: float, rng: np.random.Generator) -> np.ndarray:
    return _normalise(rng.standard_normal(int(seconds * SAMPLE_RATE)))


def pink(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """1/f noise: white noise shaped in the frequency domain (power falls 3 dB per octave)."""
    num = int(seconds * SAMPLE_RATE)
    spectrum = np.fft.rfft(rng.standard_normal(num))
    freqs = np.fft.rfftfreq(num, 1.0 / SAMPLE_RATE)
    spectrum /= np.sqrt(np.maximum(freqs, 20.0))
    return _normalise(np.fft.irfft(spectrum, n=num))


def hum(seconds: float, rng: np.random.Generator, mains_hz: float = 50.0) -> np.ndarray:
    """Mains hum: a 50 Hz tone and odd harmonics with slowly drifting amplitude, plus a little hiss."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    signal = np.zeros_like(t)
    for harmonic, gain in ((1, 1.0), (3, 0.5), (5, 0.3), (7, 0.15), (2, 0.2)):
        drift = 1.0 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.05, 0.3) * t + rng.uniform(0, 2 * np.pi))
        signal += gain * drift * np.sin(2 * np.pi * mains_hz * harmonic * t + rng.uniform(0, 2 * np.pi))
    return _normalise(signal + 0.02 * rng.standard_normal(t.shape[0]))


def make_noise(kind: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """One of :data:`NOISE_KINDS` as float32 at 16 kHz, RMS 0.1."""
    makers = {"babble": babble, "white": white, "pink": pink, "hum": hum}
    if kind not in makers:
        raise ValueError(f"unknown noise kind {kind!r}; expected one of {NOISE_KINDS}")
    return makers[kind](seconds, rng)
