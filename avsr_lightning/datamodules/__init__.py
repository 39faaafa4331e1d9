"""LightningDataModules; all yield :class:`avsr_lightning.batch.AVBatch`. Imported lazily by name."""
from __future__ import annotations

__all__ = ["LRSDataModule", "SyntheticDataModule", "AVSEDataModule", "RandomAVDataModule", "RawVideoDataModule"]

_LAZY = {
    "LRSDataModule": "avsr_lightning.datamodules.lrs",
    "SyntheticDataModule": "avsr_lightning.datamodules.synthetic",
    "AVSEDataModule": "avsr_lightning.datamodules.avse",
    "RandomAVDataModule": "avsr_lightning.datamodules.random",
    "RawVideoDataModule": "avsr_lightning.datamodules.raw_video",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
