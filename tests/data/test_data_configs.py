"""configs/data/lrs{2,3}.yaml build an LRSDataModule that reads a generated corpus."""
from __future__ import annotations

import pytest
import yaml
from jsonargparse import ArgumentParser
from lightning.pytorch import LightningDataModule


@pytest.mark.parametrize("name", ["lrs2", "lrs3"])
def test_data_presets_instantiate_and_load(repo_root, corpus, name):
    cfg = yaml.safe_load((repo_root / "configs" / "data" / f"{name}.yaml").read_text())["data"]
    assert cfg["class_path"] == "avsr_lightning.datamodules.LRSDataModule"
    args = dict(cfg["init_args"], root=str(corpus), train_split="train.txt", num_workers=0, max_frames=120)
    parser = ArgumentParser()  # as LightningCLI builds data: (class_path/init_args, the pipeline steps too)
    parser.add_subclass_arguments(LightningDataModule, "data")
    dm = parser.instantiate(parser.parse_object({"data": {**cfg, "init_args": args}})).data
    assert dm.test_occluder_size == (30 if name == "lrs2" else 42)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch.video.shape[-2:] == (88, 88) and all(c["snr"] is not None for c in batch.conditions)
