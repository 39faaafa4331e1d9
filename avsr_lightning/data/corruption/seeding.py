"""Seeds derived from names, so a random draw depends on *what* is drawn, not on the order of drawing.

``generator_for(seed, utt_id, condition)`` gives the same stream on every machine, in every worker and
whatever the iteration order, which makes corrupted test sets and on-the-fly test conditions reproducible.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch


def seed_words(seed: int, *names: object) -> list[int]:
    """Four 32-bit words from a SHA-256 of ``seed`` and ``names`` (stable across Python versions)."""
    key = "\x1f".join([str(int(seed)), *(str(n) for n in names)]).encode("utf-8")
    digest = hashlib.sha256(key).digest()
    return [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]


def generator_for(seed: int, utt_id: str, condition: str = "") -> np.random.Generator:
    """A numpy Generator seeded from ``(seed, utt_id, condition)``."""
    return np.random.default_rng(np.random.SeedSequence(seed_words(seed, utt_id, condition)))


def torch_generator_for(seed: int, utt_id: str, condition: str = "") -> torch.Generator:
    """A CPU torch.Generator seeded from ``(seed, utt_id, condition)``."""
    words = seed_words(seed, utt_id, condition)
    return torch.Generator().manual_seed((words[0] << 32 | words[1]) & 0x7FFF_FFFF_FFFF_FFFF)
