"""LRSDataModule under a real Lightning Trainer on a generated corpus (CPU, tiny)."""
from __future__ import annotations

import shutil

import lightning.pytorch as pl
import pytest
import torch

from avsr_lightning.batch import AVBatch
from avsr_lightning.data.bad_items import TooManyBadItems
from avsr_lightning.datamodules.lrs import LRSDataModule


class Recorder(pl.LightningModule):
    """Consumes AVBatch and records what it saw."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.train_ids: dict[int, list[list[str]]] = {}
        self.test_conditions: list[tuple[int, str]] = []

    def training_step(self, batch, batch_idx):
        assert type(batch) is AVBatch
        assert batch.audio.shape[1] == 640 * batch.video.shape[1]
        self.train_ids.setdefault(self.current_epoch, []).append(
            [i for i, c in zip(batch.ids, batch.conditions) if not c.get("replacement")])
        return (self.w * batch.video.mean()).sum() + self.w.sum() ** 2

    def validation_step(self, batch, batch_idx):
        assert all(c["visual"] == "clean" and c["snr"] is None for c in batch.conditions)

    def test_step(self, batch, batch_idx, dataloader_idx=0):
        self.test_conditions += [(dataloader_idx, c["name"]) for c in batch.conditions]

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def _trainer(tmp_path, **kw):
    return pl.Trainer(accelerator="cpu", devices=1, max_epochs=2, enable_progress_bar=False,
                      enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path,
                      logger=pl.loggers.CSVLogger(tmp_path), num_sanity_val_steps=0, **kw)


@pytest.fixture()
def damaged(tmp_path, corpus):
    root = tmp_path / "corpus"
    shutil.copytree(corpus, root)
    first = (root / "train.txt").read_text().split()[0]
    (root / "Audio" / f"{first}.wav").unlink()  # one bad training utterance
    return root, first


def test_fit_counts_bad_items_reshuffles_and_tests_conditions(tmp_path, damaged):
    root, bad_id = damaged
    dm = LRSDataModule(str(root), max_frames=90, num_workers=1, visual_corruption=True, train_snrs=[None, 5],
                       max_bad_fraction=0.5,
                       test_conditions=[None, {"snr": 0, "visual": "occlusion"}, "babble_snr10__noise"])
    model = Recorder()
    trainer = _trainer(tmp_path)
    with pytest.warns(UserWarning, match=f"skipping utterance {bad_id}.*audio file is missing"):
        trainer.fit(model, datamodule=dm)
    epochs = model.train_ids
    assert set(epochs) == {0, 1}
    for batches in epochs.values():
        ids = [i for b in batches for i in b]
        assert len(ids) == len(set(ids)) == 7 and bad_id not in ids  # 8 listed, 1 bad, no duplicates
    assert epochs[0] != epochs[1]  # new order/composition each epoch
    counts = dm.bad_item_counts["train"]  # the last epoch's counts (each epoch is reported, then reset)
    assert counts["bad"] == 1 and counts["seen"] >= 8
    metrics = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text()
    assert "data/train_bad" in metrics
    trainer.test(model, datamodule=dm)
    names = {idx: name for idx, name in model.test_conditions}
    assert names == {0: "clean__clean", 1: "babble_snr0__occlusion", 2: "babble_snr10__noise"}
    assert len(model.test_conditions) == 9


def test_too_many_bad_items_stop_with_examples(tmp_path, damaged):
    root, bad_id = damaged
    dm = LRSDataModule(str(root), max_frames=90, num_workers=0, train_snrs=[None], max_bad_fraction=0.05)
    dm.datasets, dm.samplers = {}, {}
    with pytest.warns(UserWarning), pytest.raises(TooManyBadItems, match=bad_id):
        _trainer(tmp_path).fit(Recorder(), datamodule=dm)


def test_setup_drops_unopenable_videos_and_fails_fast_on_config(tmp_path, corpus):
    root = tmp_path / "c"
    shutil.copytree(corpus, root)
    victim = (root / "train.txt").read_text().split()[1]
    (root / "Video" / f"{victim}.mp4").write_bytes(b"broken")
    dm = LRSDataModule(str(root), max_frames=90, num_workers=0, train_snrs=[None], max_bad_fraction=0.5)
    with pytest.warns(UserWarning, match="video cannot be opened"):
        dm.setup("fit")
    assert victim not in [dm.datasets["train"].utterances[i].id for b in dm.samplers["train"].plan(0) for i in b]
    assert dm.bad_item_counts["setup/train"]["bad"] == 1
    with pytest.raises(ValueError, match="noise"):
        LRSDataModule(str(corpus), train_snrs=[0], noise_files=[]).setup("fit")
    with pytest.raises(ValueError, match="max_frames or batch_size"):
        LRSDataModule(str(root), max_frames=100, batch_size=4)
    with pytest.raises(FileNotFoundError, match="data.root"):
        LRSDataModule(str(root / "nope")).setup("fit")


def test_modalities_and_ddp_sharding_from_the_trainer(corpus):
    dm = LRSDataModule(str(corpus), max_frames=90, num_workers=0, modalities=["audio"], train_snrs=[None])

    class FakeConnector:
        use_distributed_sampler = False

    class FakeTrainer:
        world_size, global_rank = 2, 1
        _accelerator_connector = FakeConnector()

    dm.trainer = FakeTrainer()
    dm.setup("fit")
    sampler = dm.samplers["train"]
    assert (sampler.num_replicas, sampler.rank) == (2, 1)
    batch = next(iter(dm.train_dataloader()))
    assert batch.video is None and batch.audio is not None
    FakeConnector.use_distributed_sampler = True
    dm2 = LRSDataModule(str(corpus), max_frames=90, num_workers=0, train_snrs=[None])
    dm2.trainer = FakeTrainer()
    with pytest.raises(ValueError, match="use_distributed_sampler"):
        dm2.setup("fit")


class _NiceOfWorker(torch.utils.data.Dataset):
    """Each item is the nice value of the process that produced it."""

    def __len__(self):
        return 2

    def __getitem__(self, index):
        import os
        return os.nice(0)


def test_worker_nice_lowers_the_workers_priority_only(corpus):
    import os

    from avsr_lightning.data.worker_priority import LowPriorityWorkerInit
    from avsr_lightning.data.worker_seed import WorkerSeeder

    dm = LRSDataModule(str(corpus), max_frames=90, num_workers=1, worker_nice=7)
    dm.setup("fit")
    init = dm.train_dataloader().worker_init_fn
    assert isinstance(init, LowPriorityWorkerInit) and init.nice == 7 and isinstance(init.inner, WorkerSeeder)
    parent = os.nice(0)
    # the loader's own init function, run in a real worker process
    got = list(torch.utils.data.DataLoader(_NiceOfWorker(), batch_size=None, num_workers=1, worker_init_fn=init))
    assert got == [min(parent + 7, 19)] * 2
    assert os.nice(0) == parent  # the training process keeps its priority
    with pytest.raises(ValueError, match="worker_nice"):
        LRSDataModule(str(corpus), max_frames=90, worker_nice=25)
