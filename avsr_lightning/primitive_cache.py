"""Room in oneDNN's primitive cache for every batch shape a run meets: no kernel re-creation per step.

Why: on CPU, PyTorch runs convolutions (and bf16 linear layers) through oneDNN, which builds a *primitive* -- a
JIT-compiled kernel plus its reorders -- for every distinct tensor shape, and keeps the most recent ones in a
cache of 1024 entries by default. A training step of the demo AVRelScore needs hundreds of primitives per batch
shape (forward, backward-data and backward-weights of each convolution of both frontends, and the layout
reorders), and a run sees a batch shape per distinct longest utterance (17 on the synthetic corpus) plus the
validation shapes: with the default capacity the cache evicts in a cycle and steps keep compiling kernels.
Measured on the 2-core CPU (docs/models.md, "Speed"): the first 300 updates of the demo AV recipe asked
oneDNN for 28,367 primitives it had to build with the default capacity and 8,097 with a large one, and took
167.6 s instead of 134.9 s.

oneDNN reads ``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` when it first builds a primitive, so
:func:`enlarge_primitive_cache` must run before the first convolution of the process (the CLI, the LM CLI,
the sweep and the benchmarks call it at start-up, next to
:func:`~avsr_lightning.allocator.retain_freed_memory`). A capacity the user set in the environment is kept.
"""
from __future__ import annotations

import os

#: the environment variable oneDNN reads (``DNNL_PRIMITIVE_CACHE_CAPACITY`` is its former name)
ENV = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"
LEGACY_ENV = "DNNL_PRIMITIVE_CACHE_CAPACITY"
#: entries kept; oneDNN's default is 1024. The demo AV recipe creates ~8,100 distinct primitives in its first
#: 300 updates (training and validation shapes, counted with ONEDNN_VERBOSE=profile_create); 32768 leaves room
#: for the LRS recipes' frame-budget shapes
CAPACITY = 32768


def enlarge_primitive_cache(capacity: int = CAPACITY) -> int:
    """Set oneDNN's primitive cache capacity to ``capacity`` unless the environment already sets one.

    Returns the capacity in force for this process from now on (the user's, if they set it). Only effective
    before the process' first oneDNN primitive; afterwards oneDNN keeps the capacity it read.
    """
    if capacity < 0:
        raise ValueError(f"primitive cache capacity {capacity} is negative: use 0 (no cache) or more")
    for name in (ENV, LEGACY_ENV):
        value = os.environ.get(name)
        if value is not None and value.strip():
            return int(value)
    os.environ[ENV] = str(capacity)
    return capacity
