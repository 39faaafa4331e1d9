"""Helpers for the training tests: tiny configurations, in-process CLI runs, subprocess runs."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"

#: tiny random data: 8 training utterances of 6-10 frames at 24x24 pixels
TINY_DATA = [
    "--data", "avsr_lightning.datamodules.RandomAVDataModule",
    "--data.init_args.train_size", "8", "--data.init_args.val_size", "5", "--data.init_args.test_size", "4",
    "--data.init_args.batch_size", "2", "--data.init_args.min_frames", "6", "--data.init_args.max_frames", "10",
    "--data.init_args.image_size", "24",
]


def tiny_args(tmp_path: Path, arch: str = "avrelscore", max_steps: int = 2, extra: list[str] | None = None,
              modalities: str | None = None) -> list[str]:
    """CLI arguments for a tiny CPU fit in ``tmp_path``."""
    if modalities is None:
        modalities = {"audio": "audio", "video": "video"}.get(arch, "av")
    return [
        "--config", str(CONFIGS / "trainer" / "cpu_debug.yaml"),
        "--config", str(CONFIGS / "model" / f"tiny_{arch}.yaml"),
        *TINY_DATA, "--data.init_args.modalities", modalities,
        "--trainer.max_steps", str(max_steps), "--trainer.val_check_interval", str(max_steps),
        "--trainer.num_sanity_val_steps", "0", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false", "--trainer.default_root_dir", str(tmp_path),
        *(extra or []),
    ]


def run_cli(args: list[str]):
    """``python -m avsr_lightning <args>`` in this process; returns the AVSRCLI."""
    from avsr_lightning.cli import main

    saved, sys.argv = sys.argv, sys.argv[:1]  # LightningCLI warns when pytest's own argv is also present
    try:
        return main(args)
    finally:
        sys.argv = saved


def run_subprocess(args: list[str], cwd: Path, timeout: float = 240, env: dict | None = None):
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout)


TINY_MODEL = dict(d_model=32, heads=2, encoder_layers=1, ffn_dim=64, decoder_layers=1, decoder_ffn_dim=64,
                  conv_kernel=3, frontend_widths=(8, 8, 16, 16))


def tiny_module(arch: str = "Video", seed: int = 0, **module_kwargs):
    """An AVSRModule around a tiny model (Noam with 10 warm-up steps)."""
    from functools import partial

    import torch

    from avsr_lightning import models
    from avsr_lightning.lightning_module import AVSRModule
    from avsr_lightning.schedules import NoamLR

    torch.manual_seed(seed)
    model = getattr(models, arch)(**TINY_MODEL)
    module_kwargs.setdefault("scheduler", partial(NoamLR, d_model=32, warmup_steps=10))
    return AVSRModule(model, **module_kwargs)


def tiny_data(modalities: str = "video", **kwargs):
    from avsr_lightning.datamodules.random import RandomAVDataModule

    args = dict(train_size=8, val_size=4, test_size=4, batch_size=2, min_frames=6, max_frames=10, image_size=24,
                modalities=modalities)
    args.update(kwargs)
    return RandomAVDataModule(**args)


def tiny_trainer(root, **kwargs):
    import lightning as L

    from avsr_lightning.callbacks import RNGStateCallback

    args = dict(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                num_sanity_val_steps=0, default_root_dir=str(root), callbacks=[RNGStateCallback()])
    args.update(kwargs)
    return L.Trainer(**args)


@pytest.fixture
def tr():
    """The helpers above (test modules cannot import conftest under ``--import-mode=importlib``)."""
    return SimpleNamespace(REPO=REPO, CONFIGS=CONFIGS, TINY_DATA=TINY_DATA, tiny_args=tiny_args, run_cli=run_cli,
                           run_subprocess=run_subprocess, tiny_module=tiny_module, tiny_data=tiny_data,
                           tiny_trainer=tiny_trainer, TINY_MODEL=TINY_MODEL)
