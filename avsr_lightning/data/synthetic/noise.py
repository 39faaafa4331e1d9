"""Noise recordings for the corruption pipeline: multi-talker babble and stationary noises (16 kHz).

Babble mixes several synthetic voices, each reading a stream of sentences of the corpus grammar, so at
low SNR it masks the very sounds the recogniser listens for, as LRS babble does. Voices and sentences are
drawn from the seed; none of the babble talkers reads with a corpus speaker's exact rate and pitch.

Two disjoint sets: the *training* noise (``noise/*.wav``) and the *evaluation* noise (``noise/eval/*.wav``),
whose babble talkers use other eSpeak voices and other sentences (alternate sentences of the grammar), and
whose stationary noises are other realisations, so val/test noise is never heard in training. The
generator records which voices, rates, pitches and sentences each babble file uses (``noise/manifest.json``).
"""
from __future__ import annotations

import numpy as np

from avsr_lightning.data.synthetic.sentences import all_sentences
from avsr_lightning.data.synthetic.speech import SAMPLE_RATE, synthesize

NOISE_KINDS = ("babble", "white", "pink", "hum")
#: babble voices of the training noise and of the evaluation noise (disjoint, and no corpus speaker's voice)
BABBLE_VOICES = {"train": ("en-us+m2", "en-us+f4", "en+m3", "en+f1", "en-us+m5", "en+f3"),
                 "eval": ("en-us+m6", "en+f5", "en+m4", "en+f2", "en+m6", "en-us+m7")}
NOISE_SETS = ("train", "eval")


def _normalise(x: np.ndarray, rms: float = 0.1) -> np.ndarray:
    return (x * (rms / max(float(np.sqrt(np.mean(x ** 2))), 1e-8))).astype(np.float32)


def babble_sentences(noise_set: str) -> tuple[str, ...]:
    """The sentence pool of a noise set: even-indexed sentences of the grammar for training, odd for eval."""
    if noise_set not in NOISE_SETS:
        raise ValueError(f"noise set must be one of {NOISE_SETS}, got {noise_set!r}")
    return all_sentences()[NOISE_SETS.index(noise_set)::2]


def babble(seconds: float, rng: np.random.Generator, talkers: int = 6, noise_set: str = "train",
           record: list | None = None) -> np.ndarray:
    """``talkers`` synthetic voices talking at once, float32 at 16 kHz with RMS 0.1. ``record`` (a list)
    receives one ``{"voice", "rate", "pitch", "sentences"}`` entry per talker."""
    num = int(seconds * SAMPLE_RATE)
    sentences = babble_sentences(noise_set)
    voices = BABBLE_VOICES[noise_set]
    mix = np.zeros(num, np.float64)
    for k in range(talkers):
        voice = voices[k % len(voices)]
        rate, pitch = int(rng.integers(150, 200)), int(rng.integers(20, 80))
        stream: list[np.ndarray] = [np.zeros(int(rng.integers(0, SAMPLE_RATE // 2)), np.float32)]
        filled = stream[0].shape[0]
        per_call = int(np.clip(seconds / 1.5 + 1, 1, 25))  # one synthesis call per paragraph of sentences
        read: list[str] = []
        while filled < num:
            chosen = [sentences[int(i)] for i in rng.integers(len(sentences), size=per_call)]
            speech = synthesize(". ".join(chosen), voice, rate=rate, pitch=pitch)
            stream.append(speech.audio)
            filled += speech.audio.shape[0]
            read += chosen
        mix += _normalise(np.concatenate(stream)[:num])
        if record is not None:
            record.append({"voice": voice, "rate": rate, "pitch": pitch, "sentences": read})
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


def make_noise(kind: str, seconds: float, rng: np.random.Generator, noise_set: str = "train",
               record: list | None = None) -> np.ndarray:
    """One of :data:`NOISE_KINDS` as float32 at 16 kHz, RMS 0.1 (``record``: babble talkers, see :func:`babble`)."""
    makers = {"white": white, "pink": pink, "hum": hum}
    if kind == "babble":
        return babble(seconds, rng, noise_set=noise_set, record=record)
    if kind not in makers:
        raise ValueError(f"unknown noise kind {kind!r}; expected one of {NOISE_KINDS}")
    return makers[kind](seconds, rng)
