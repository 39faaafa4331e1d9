"""Exact resume: N updates in one go == k updates, stop, resume to N (weights, optimizer, lr, step, RNG)."""
from __future__ import annotations

import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from avsr_lightning.callbacks import RNGStateCallback


def _train(tr, root, max_epochs, ckpt_path=None, init_seed=0, rng_callback=True):
    module = tr.tiny_module("Video", seed=init_seed)  # dropout 0.1: results depend on the RNG
    ckpt = ModelCheckpoint(dirpath=str(root / "ckpt"), save_last=True, save_top_k=-1, every_n_epochs=1)
    callbacks = [ckpt] + ([RNGStateCallback()] if rng_callback else [])
    trainer = tr.tiny_trainer(root, max_epochs=max_epochs, callbacks=callbacks, limit_val_batches=1)
    torch.manual_seed(1234)
    trainer.fit(module, datamodule=tr.tiny_data(), ckpt_path=ckpt_path)
    return module, trainer


def _optimizer_tensors(trainer):
    state = trainer.optimizers[0].state_dict()["state"]
    return [t for k in sorted(state) for t in (state[k]["exp_avg"], state[k]["exp_avg_sq"], state[k]["step"])]


def test_resume_is_exact(tmp_path, tr):
    full, full_trainer = _train(tr, tmp_path / "full", max_epochs=2)  # 2 epochs x 4 updates
    _, first = _train(tr, tmp_path / "part", max_epochs=1)
    assert first.global_step == 4
    # a different initialisation and a different global RNG state before resuming: all must be restored
    resumed, resumed_trainer = _train(tr, tmp_path / "part2", max_epochs=2, init_seed=99,
                                      ckpt_path=str(tmp_path / "part" / "ckpt" / "last.ckpt"))
    assert resumed_trainer.global_step == full_trainer.global_step == 8
    for (name, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), f"{name} differs after resume"
    for a, b in zip(_optimizer_tensors(full_trainer), _optimizer_tensors(resumed_trainer)):
        assert torch.equal(a, b)
    lr_full = full_trainer.optimizers[0].param_groups[0]["lr"]
    assert lr_full == resumed_trainer.optimizers[0].param_groups[0]["lr"]
    assert full_trainer.lr_scheduler_configs[0].scheduler.last_epoch == 8
    assert resumed_trainer.lr_scheduler_configs[0].scheduler.last_epoch == 8


def test_resume_without_rng_state_differs(tmp_path, tr):
    """Control: the exactness above comes from the RNG callback (dropout draws differ without it)."""
    full, _ = _train(tr, tmp_path / "full", max_epochs=2)
    _train(tr, tmp_path / "part", max_epochs=1, rng_callback=False)
    resumed, _ = _train(tr, tmp_path / "part2", max_epochs=2, rng_callback=False,
                        ckpt_path=str(tmp_path / "part" / "ckpt" / "last.ckpt"))
    assert any(not torch.equal(a, b) for a, b in zip(full.state_dict().values(), resumed.state_dict().values()))
