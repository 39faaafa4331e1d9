"""``python -m avsr_lightning.lm fit|validate|test --config configs/lm/char_rnnlm.yaml``."""
from __future__ import annotations

from lightning.pytorch.cli import LightningCLI

from avsr_lightning.allocator import retain_freed_memory
from avsr_lightning.primitive_cache import enlarge_primitive_cache

from .data import TextDataModule
from .module import RNNLMModule


def main(args=None) -> None:
    retain_freed_memory()  # no page faults per step for large CPU tensors (avsr_lightning/allocator.py)
    enlarge_primitive_cache()  # no oneDNN kernel rebuilt per batch shape (avsr_lightning/primitive_cache.py)
    LightningCLI(RNNLMModule, TextDataModule, args=args, save_config_kwargs={"overwrite": True})


if __name__ == "__main__":
    main()
