"""AVSE test fixtures: generated signals and a generated weighting filter (no shared data needed)."""
from __future__ import annotations

import numpy as np
import scipy.signal


def generated_filter(taps: int = 512) -> np.ndarray:
    """A symmetric (type II) band-pass FIR like the challenge's speech weighting, designed here."""
    return scipy.signal.firwin(taps, [120.0, 1900.0], fs=16000, pass_zero=False).astype(np.float64)


def speech_like(rng: np.random.Generator, n: int, level: float = 0.3) -> np.ndarray:
    """int16 amplitude-modulated coloured noise (syllable-rate envelope), never all zero."""
    noise = scipy.signal.lfilter([1.0], [1.0, -0.9], rng.standard_normal(n))
    env = 0.55 + 0.45 * np.sin(2 * np.pi * rng.uniform(3, 6) * np.arange(n) / 16000 + rng.uniform(0, 6))
    x = noise * env
    x = level * x / np.abs(x).max()
    return np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def weight_filter() -> np.ndarray:
    return generated_filter()


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def make_speech():
    """``make_speech(rng, n, level)`` -> int16 speech-like signal."""
    return speech_like
