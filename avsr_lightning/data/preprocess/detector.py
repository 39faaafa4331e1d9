"""Pluggable landmark detection for users' own videos (clips without a landmark file).

Any callable ``detector(frames) -> list[(68, 2) array | None]`` works, where ``frames`` is uint8 grey
(T, H, W). Give it to :func:`preprocess_corpus` directly, or by import path (``package.module:factory``)
on the command line; the factory is called without arguments in every worker process.
"""
from __future__ import annotations

import importlib
from typing import Callable, Optional, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class LandmarkDetector(Protocol):
    def __call__(self, frames: np.ndarray) -> list[Optional[np.ndarray]]: ...


def load_detector(spec: str) -> Callable[[np.ndarray], list]:
    """Import ``module:attr`` and call it to build the detector (e.g. a face-alignment wrapper)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"detector must be given as 'package.module:factory', got {spec!r}")
    factory = getattr(importlib.import_module(module_name), attr)
    detector = factory()
    if not callable(detector):
        raise TypeError(f"{spec} did not return a callable detector")
    return detector
