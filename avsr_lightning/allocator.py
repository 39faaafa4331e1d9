"""Keep freed host memory in the process: no page faults for every large CPU tensor of every step.

Why: glibc's ``malloc`` serves every block above 32 MB (and smaller ones until its threshold adapts) with a
fresh ``mmap`` and gives it back with ``munmap`` when freed. A CPU training step allocates and frees the same
large activations every step, so each step faults all of them in again, zero-filling each 4 KB page in the
kernel: measured on the 2-core CPU at the reference sizes (AVRelScore, batch 4 x 75 frames) 0.74-0.84 million
minor faults, 3.0-3.5 GB, per fp32 step and ~0.46 million (1.9 GB) per bf16 step. Turning ``mmap`` off for
``malloc`` and never trimming the heap makes the steady-state step fault-free; the step got 3-18 % faster in
fp32 and 17-31 % in bf16-mixed (docs/models.md, "Speed"). The price is that the process keeps its peak heap
(peak RSS +23 % at those sizes, +3 % for the demo) until it exits, which a training or decoding run does anyway.

Only glibc (Linux) has these knobs; elsewhere :func:`retain_freed_memory` does nothing and says so in its
result. ``AVSR_LIGHTNING_MALLOC=system`` leaves the allocator as it is (e.g. to compare, or for a process
that must give memory back).
"""
from __future__ import annotations

import ctypes
import os
import sys

#: ``mallopt`` parameters of glibc's ``<malloc.h>``
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
#: value of ``AVSR_LIGHTNING_MALLOC`` that keeps the system allocator's defaults
SYSTEM = "system"
RETAIN = "retain"
UNSUPPORTED = "unsupported"
_applied: str | None = None


def retain_freed_memory(choice: str | None = None) -> str:
    """Configure glibc ``malloc`` to serve large blocks from the heap and never trim it (once per process).

    ``choice``: ``"retain"`` or ``"system"``; None = ``AVSR_LIGHTNING_MALLOC`` (default ``"retain"``).
    Returns what holds afterwards: ``"retain"`` (applied now or earlier), ``"system"`` (asked for) or
    ``"unsupported"`` (not glibc). Call it before the first large
    allocation (the CLI does, before building the model); blocks mapped earlier stay mapped until freed.
    Forked data-loader workers inherit the setting.
    """
    global _applied
    if _applied is not None:
        return _applied
    if choice is None:
        choice = os.environ.get("AVSR_LIGHTNING_MALLOC", RETAIN)
    choice = choice.strip().lower()
    if choice not in (RETAIN, SYSTEM):
        raise ValueError(f"AVSR_LIGHTNING_MALLOC={choice!r}: use {RETAIN!r} (the default: keep freed memory, no "
                         f"page faults per step) or {SYSTEM!r} (glibc's defaults)")
    if choice == SYSTEM:
        _applied = SYSTEM
        return _applied
    libc = _glibc()
    if libc is None:
        _applied = UNSUPPORTED
        return _applied
    # the largest int trim threshold: freed heap memory is never returned to the kernel while we run
    ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    _applied = RETAIN if ok else UNSUPPORTED
    return _applied


def _glibc() -> ctypes.CDLL | None:
    """The process' glibc, or None on other C libraries (musl, macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
    except (OSError, AttributeError):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    return libc
