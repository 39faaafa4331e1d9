"""``python -m avsr_lightning.lm fit|validate|test --config configs/lm/char_rnnlm.yaml``."""
from __future__ import annotations

from lightning.pytorch.cli import LightningCLI

from .data import TextDataModule
from .module import RNNLMModule


def main(args=None) -> None:
    LightningCLI(RNNLMModule, TextDataModule, args=args, save_config_kwargs={"overwrite": True})


if __name__ == "__main__":
    main()
