"""``mask_padding`` + ``sync_batchnorm``: the masked BatchNorm reduces its valid-frame statistics over ranks.

Two gloo processes each hold half of a padded batch; outputs, running statistics and gradients must equal
one process normalising the whole batch (docs/training.md, "Multi-process").
"""
from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from avsr_lightning.models.masking import masked_batch_norm


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 7, generator=g) * 2 + 1
    lengths = torch.tensor([7, 3, 5, 2])
    valid = (torch.arange(7)[None, :] < lengths[:, None]).unsqueeze(1)  # (B, 1, T)
    grad_out = torch.randn(4, 3, 7, generator=g)
    return x, valid, grad_out


def _bn(sync: bool) -> nn.Module:
    torch.manual_seed(1)
    bn = nn.BatchNorm1d(3)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    return nn.SyncBatchNorm.convert_sync_batchnorm(bn) if sync else bn


def _reference():
    x, valid, grad_out = _data()
    x = x.clone().requires_grad_(True)
    bn = _bn(sync=False).train()
    y = masked_batch_norm(bn, x, valid)
    (y * grad_out).sum().backward()
    return y.detach(), x.grad, bn.weight.grad, bn.bias.grad, bn.running_mean, bn.running_var


def _worker(rank: int, store_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    # A file store, not TCP: the rank hosting a TCPStore can abort at exit while its peer still talks to it.
    dist.init_process_group("gloo", init_method=f"file://{store_file}", rank=rank, world_size=2)
    try:
        x, valid, grad_out = _data()
        part = slice(2 * rank, 2 * rank + 2)
        xr = x[part].clone().requires_grad_(True)
        bn = _bn(sync=True).train()
        y = masked_batch_norm(bn, xr, valid[part])
        (y * grad_out[part]).sum().backward()
        torch.save({"y": y.detach(), "x_grad": xr.grad, "w_grad": bn.weight.grad, "b_grad": bn.bias.grad,
                    "running_mean": bn.running_mean, "running_var": bn.running_var},
                   os.path.join(out_dir, f"rank{rank}.pt"))
        dist.barrier()  # neither rank tears the group down while the other is still in a collective
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not available")
def test_masked_batchnorm_syncs_valid_frames_across_ranks(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    y, x_grad, w_grad, b_grad, running_mean, running_var = _reference()
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    kw = dict(atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.cat([r["y"] for r in ranks]), y, **kw)
    torch.testing.assert_close(torch.cat([r["x_grad"] for r in ranks]), x_grad, **kw)
    # parameter gradients: each rank holds its share (DDP averages them); together they are the whole batch's
    torch.testing.assert_close(ranks[0]["w_grad"] + ranks[1]["w_grad"], w_grad, **kw)
    torch.testing.assert_close(ranks[0]["b_grad"] + ranks[1]["b_grad"], b_grad, **kw)
    for r in ranks:
        torch.testing.assert_close(r["running_mean"], running_mean, **kw)
        torch.testing.assert_close(r["running_var"], running_var, **kw)


def test_plain_batchnorm_and_single_process_are_unchanged():
    """Without a process group a SyncBatchNorm takes the local path (same numbers as BatchNorm)."""
    x, valid, _ = _data()
    a = masked_batch_norm(_bn(sync=False).train(), x, valid)
    b = masked_batch_norm(_bn(sync=True).train(), x, valid)
    assert torch.equal(a, b)
