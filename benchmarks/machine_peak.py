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

from avsr_lightning.decoding import search_weights


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rates(fn, device: torch.device, flop: float, repeats: int) -> list[float]:
    for _ in range(2):
        fn()
    rates = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        rates.append(flop / (time.perf_counter() - start) / 1e9)
    return rates


def gemm_peak(device: torch.device, dtype: torch.dtype, n: int, repeats: int = 7) -> dict:
    """``{"gflops": median, "min", "max", "n", "repeats", "route"}`` of (n x n) @ (n x n) in ``dtype``.

    float32 on CPU is timed by both routes the code multiplies by, ``torch.mm`` (MKL) and oneDNN's linear
    kernel (the search's products, ``avsr_lightning.decoding.search_weights.Matrix``), and the faster one is
    the peak: on the AMD Zen 5 CPU of session 23 MKL's float32 GEMM ran at about half oneDNN's speed, so
    a figure read against MKL alone would exceed 100 % of the "peak" (``routes`` has both medians)."""
    if repeats < 1 or n < 1:
        raise ValueError(f"gemm_peak needs n >= 1 and repeats >= 1, got n={n}, repeats={repeats}")
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device, dtype)
    b = torch.randn(n, n, generator=g).to(device, dtype)
    flop = 2.0 * n ** 3
    routes = {"mm": _rates(lambda: a @ b, device, flop, repeats)}
    search_product = search_weights.Matrix(b)  # a @ b^T: the same work as a @ b
    if search_product.onednn:
        routes["onednn"] = _rates(lambda: search_product.mm(a), device, flop, repeats)
    best = max(routes, key=lambda r: statistics.median(routes[r]))
    rates = routes[best]
    return {"gflops": statistics.median(rates), "min": min(rates), "max": max(rates), "n": n, "repeats": repeats,
            "route": best, "routes": {r: statistics.median(v) for r, v in routes.items()}}
