"""Row-count buckets for the bfloat16 matrix products of the search.

With compaction the number of live hypothesis rows changes every step. CPU bfloat16 GEMMs go through
oneDNN, which builds (and caches) a kernel per input shape: the first product of every new row count
costs more than the product itself (profiled: ~4 ms creation vs ~3 ms compute for 100 x 650 @ 650 x
2600 on one core). Padding the rows of a bf16 product up to a multiple of :data:`BUCKET` bounds the
number of distinct shapes; the padding rows are zeros and are sliced off, so results are unchanged.
float32 products (MKL, no per-shape kernels) are never padded.
"""
from __future__ import annotations

import torch
from torch import Tensor

BUCKET = 16


def padded_rows(x: Tensor) -> tuple[Tensor, int]:
    """(x with rows padded to a multiple of BUCKET when it is bfloat16 2-D, original row count)."""
    n = x.size(0)
    if x.dtype != torch.bfloat16 or x.dim() != 2 or n % BUCKET == 0:
        return x, n
    out = x.new_zeros((n + BUCKET - 1) // BUCKET * BUCKET, x.size(1))
    out[:n] = x
    return out, n
