"""Durable file writes for the data layer: thin re-exports of :mod:`avsr_lightning.durable`.

Kept so data code can keep importing ``atomic_path``/``write_text_atomic``; the one implementation
(unique temp in the same directory, fsync, rename, fsync the directory) lives in avsr_lightning/durable.py.
"""
from __future__ import annotations

from avsr_lightning.durable import durable_path as atomic_path
from avsr_lightning.durable import write_bytes as write_bytes_atomic
from avsr_lightning.durable import write_text as write_text_atomic

__all__ = ["atomic_path", "write_bytes_atomic", "write_text_atomic"]
