"""The machine's GEMM peak for one dtype: the limit every benchmark's "fraction of floor" is read against.

One source for ``train_step.py`` and ``decode.py``. A single best-of-5 timing of one (n x n) matmul proved
unsteady on a shared VM (session 16: fp32 152 and bf16 1380 GFLOP/s in one run, 232 / 626 the session
before; 1380 is above what two avx512_bf16 cores can issue), so the probe now times ``repeats`` matmuls after
two warm-ups and reports the *median* rate, with the spread, so a glitch shows instead of setting the floor.
"""
from __future__ import annotations

import statistics
import time

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gemm_peak(device: torch.device, dtype: torch.dtype, n: int, repeats: int = 7) -> dict:
    """``{"gflops": median, "min", "max", "n", "repeats"}`` of (n x n) @ (n x n) in ``dtype``."""
    if repeats < 1 or n < 1:
        raise ValueError(f"gemm_peak needs n >= 1 and repeats >= 1, got n={n}, repeats={repeats}")
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device, dtype)
    b = torch.randn(n, n, generator=g).to(device, dtype)
    for _ in range(2):
        a @ b
    rates = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        rates.append(2.0 * n ** 3 / (time.perf_counter() - start) / 1e9)
    return {"gflops": statistics.median(rates), "min": min(rates), "max": max(rates), "n": n, "repeats": repeats}
