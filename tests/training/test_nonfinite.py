"""A NaN/inf loss skips the batch (warned, counted, weights untouched); too many in a row stop the run."""
from __future__ import annotations

import pytest
import torch

from avsr_lightning.lightning_module import NonFiniteLossError


def _poison(module, bad_calls):
    """Make the model's loss NaN on the given (0-based) training calls."""
    original, calls = module.model.loss, {"n": 0}

    def loss(*args, **kwargs):
        out = original(*args, **kwargs)
        if module.training:
            if calls["n"] in bad_calls:
                out = {**out, "loss": out["loss"] * float("nan")}
            calls["n"] += 1
        return out

    module.model.loss = loss


def test_nan_batch_is_skipped_and_counted(tmp_path, tr):
    module = tr.tiny_module("Video")
    _poison(module, bad_calls={1})
    snapshots = []

    import lightning as L

    class Recorder(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            snapshots.append({k: v.detach().clone() for k, v in pl_module.model.named_parameters()})

    trainer = tr.tiny_trainer(tmp_path, max_steps=4, limit_val_batches=0, callbacks=[Recorder()])
    with pytest.warns(UserWarning, match="non-finite training loss.*batch skipped"):
        trainer.fit(module, datamodule=tr.tiny_data())
    assert module.skipped_batches == 1
    # Lightning counts the skipped batch as a (no-op) step: 4 batches, 3 real updates
    assert trainer.global_step == 4 and len(snapshots) == 4
    assert all(torch.equal(snapshots[0][k], snapshots[1][k]) for k in snapshots[0])  # skipped: unchanged
    assert any(not torch.equal(snapshots[1][k], snapshots[2][k]) for k in snapshots[0])
    assert all(torch.isfinite(p).all() for p in module.model.parameters())


def test_too_many_bad_batches_in_a_row_stop_with_a_clear_error(tmp_path, tr):
    module = tr.tiny_module("Video", max_consecutive_bad_batches=3)
    _poison(module, bad_calls={0, 1, 2, 3})
    trainer = tr.tiny_trainer(tmp_path, max_steps=5, limit_val_batches=0)
    with pytest.raises(NonFiniteLossError, match="3 consecutive batches.*gradient clipping"):
        with pytest.warns(UserWarning):
            trainer.fit(module, datamodule=tr.tiny_data())


def test_skipped_batch_does_not_advance_the_schedule(tmp_path, tr):
    """T10 fixed: 4 batches, one skipped -> the LR schedule has counted 3 updates (docs/reference_differences.md)."""
    module = tr.tiny_module("Video")
    _poison(module, bad_calls={1})
    trainer = tr.tiny_trainer(tmp_path, max_steps=4, limit_val_batches=0)
    with pytest.warns(UserWarning, match="batch skipped"):
        trainer.fit(module, datamodule=tr.tiny_data())
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert trainer.global_step == 4 and scheduler.last_epoch == 3
    assert trainer.optimizers[0].param_groups[0]["lr"] == scheduler.get_last_lr()[0]


def test_plain_trainer_gets_the_durable_checkpoint_plugin(tmp_path, tr):
    from avsr_lightning.callbacks import AtomicCheckpointIO

    trainer = tr.tiny_trainer(tmp_path, max_steps=1, limit_val_batches=0)
    trainer.fit(tr.tiny_module("Video"), datamodule=tr.tiny_data())
    assert type(trainer.strategy.checkpoint_io) is AtomicCheckpointIO


def test_reference_checkpoint_works_with_test_ckpt_path(tmp_path, tr):
    """README: reference {'state_dict': ...} checkpoints work with ``test --ckpt_path``."""
    from avsr_lightning.weights.reference import save_reference_checkpoint

    trained = tr.tiny_module("Video", seed=3)
    path = tmp_path / "reference.pth"
    save_reference_checkpoint(trained.model, path)
    module = tr.tiny_module("Video", seed=4)
    trainer = tr.tiny_trainer(tmp_path, limit_test_batches=1)
    trainer.test(module, datamodule=tr.tiny_data(), ckpt_path=str(path))
    for k, v in trained.model.state_dict().items():
        assert torch.equal(module.model.state_dict()[k], v), k
