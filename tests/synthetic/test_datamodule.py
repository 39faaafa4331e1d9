"""SyntheticDataModule generates into its cache on first use and then serves LRS batches."""
from __future__ import annotations

import pytest

from avsr_lightning.batch import SAMPLES_PER_FRAME, AVBatch
from avsr_lightning.data.synthetic import VERSION
from avsr_lightning.datamodules.synthetic import SyntheticDataModule, synthetic_corpus_dir


def _as_avbatch(dm, batch):
    return dm.on_before_batch_transfer(batch, 0) if not isinstance(batch, AVBatch) else batch


def test_cache_directory_is_keyed_by_version_seed_and_size(tmp_path, monkeypatch):
    monkeypatch.setenv("AVSR_LIGHTNING_CACHE", str(tmp_path))
    assert synthetic_corpus_dir(1500, 3) == tmp_path / "synthetic" / f"{VERSION}-3-1500"
    assert SyntheticDataModule(utterances=40, corpus_seed=2, batch_size=2, max_frames=None).root == \
        tmp_path / "synthetic" / f"{VERSION}-2-40"
    with pytest.raises(ValueError, match="utterances should be >= 3"):
        SyntheticDataModule(utterances=2)


def test_serves_batches_from_an_existing_corpus(tiny_corpus):
    dm = SyntheticDataModule(utterances=6, corpus_seed=0, root=str(tiny_corpus), batch_size=2, max_frames=None,
                             num_workers=0, train_snrs=[None, 0.0])
    dm.prepare_data()  # finished corpus: nothing to do
    dm.setup("fit")
    batch = _as_avbatch(dm, next(iter(dm.train_dataloader())))
    assert isinstance(batch, AVBatch) and len(batch) == 2
    assert batch.video.shape[-2:] == (88, 88)
    assert batch.audio.shape[1] == SAMPLES_PER_FRAME * batch.video.shape[1]
    assert all(t and t == t.upper() for t in batch.texts)
    val = _as_avbatch(dm, next(iter(dm.val_dataloader())))
    assert val.ids[0].startswith("trainval/")
