"""Pixel statistics of a corpus' lip crops, for ``Normalize(mean=null, std=null)``.

The synthetic generator records ``pixel_mean``/``pixel_std`` (grey levels / 255 of the decoded 96x96 crops of
training videos) in ``corpus.json``; any corpus may carry the same two keys there.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

import numpy as np


def corpus_pixel_stats(root: str | os.PathLike) -> dict[str, float]:
    """``{"pixel_mean": m, "pixel_std": s}`` from ``<root>/corpus.json``, or {} when it has none."""
    try:
        meta = json.loads((Path(root) / "corpus.json").read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(meta, dict):
        return {}
    return {k: float(meta[k]) for k in ("pixel_mean", "pixel_std") if isinstance(meta.get(k), (int, float))}


def pixel_stats(clips: Iterable[np.ndarray]) -> dict[str, float]:
    """Mean and std of ``x / 255`` over every pixel of every uint8 clip (float64 sums: exact and order-free
    up to rounding)."""
    total, total_sq, count = 0.0, 0.0, 0
    for frames in clips:
        x = np.asarray(frames, dtype=np.float64) / 255.0
        total += float(x.sum())
        total_sq += float(np.square(x).sum())
        count += x.size
    if count == 0:
        raise ValueError("pixel_stats: no frames given")
    mean = total / count
    return {"pixel_mean": round(mean, 6), "pixel_std": round(float(np.sqrt(max(total_sq / count - mean ** 2, 0.0))), 6)}
