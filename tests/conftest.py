"""Shared test fixtures: small, CPU-only, generated data; the shared reference material is optional."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

REPO_ROOT = Path(__file__).resolve().parents[1]
#: ``shared/reference`` sits beside the checkout (``<checkout>/../shared/reference``) on developer machines and CI.
SHARED_REFERENCE = Path(os.environ.get("AVSR_SHARED_REFERENCE", REPO_ROOT.parent / "shared" / "reference"))


def pytest_configure(config):
    import torch

    # The tests run tiny models: one intra-op thread is several times faster than two on a shared
    # 2-core machine (with two, every small op waits for a busy core), and results do not depend on it.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_reference() -> Path:
    """Path to ``shared/reference``; tests that need it skip with a visible reason when it is absent."""
    if not SHARED_REFERENCE.is_dir():
        pytest.skip(f"shared reference material not found at {SHARED_REFERENCE} (set AVSR_SHARED_REFERENCE)")
    return SHARED_REFERENCE
