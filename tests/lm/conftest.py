"""Tiny-tensor tests: one intra-op thread (on a loaded 2-core machine, two threads make every small op
wait for a busy core: ~10 ms per op instead of microseconds)."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
