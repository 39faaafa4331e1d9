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
