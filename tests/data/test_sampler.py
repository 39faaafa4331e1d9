"""FrameBudgetBatchSampler: coverage across ranks, budget, reshuffling, curriculum, state."""
from __future__ import annotations

import numpy as np
import pytest

from avsr_lightning.data.sampler import FrameBudgetBatchSampler, fixed_size_batches_waste


def _lengths(n=203, seed=0):
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(np.log(60), 0.6, n), 10, 300).astype(int).tolist()


def _rank_samplers(lengths, world=2, **kw):
    return [FrameBudgetBatchSampler(lengths, num_replicas=world, rank=r, **kw) for r in range(world)]


@pytest.mark.parametrize("world", [2, 3])
def test_every_utterance_once_per_epoch_across_ranks(world):
    lengths = _lengths()
    samplers = _rank_samplers(lengths, world, max_frames=600, seed=3)
    for epoch in range(3):
        seen = []
        for s in samplers:
            s.set_epoch(epoch)
            batches = list(s)
            assert all(e == epoch for b in batches for _, e in b)
            seen += [i for b in batches for i, _ in b]
        assert sorted(seen) == list(range(len(lengths)))  # disjoint and complete: no duplicates
        assert len({len(s) for s in samplers}) == 1  # same number of batches on every rank


def test_frame_budget_respected_and_waste_small():
    lengths = _lengths(2000)
    s = FrameBudgetBatchSampler(lengths, max_frames=1500, seed=0)
    for batch in s.plan(0):
        assert max(lengths[i] for i in batch) * len(batch) <= 1500
    assert s.padding_waste(0) < 0.10
    assert fixed_size_batches_waste(lengths, 8) > 2 * s.padding_waste(0)


def test_composition_changes_between_epochs_and_is_reproducible():
    lengths = _lengths(500)
    a = FrameBudgetBatchSampler(lengths, max_frames=800, seed=1)
    b = FrameBudgetBatchSampler(lengths, max_frames=800, seed=1)
    e0 = {tuple(sorted(x)) for x in a.plan(0)}
    e1 = {tuple(sorted(x)) for x in a.plan(1)}
    assert len(e0 & e1) < 0.5 * len(e0)  # most batches are new
    assert a.plan(1) == b.plan(1)  # same seed and epoch, same plan (what every rank relies on)
    assert FrameBudgetBatchSampler(lengths, max_frames=800, seed=2).plan(0) != a.plan(0)


def test_uneven_batch_count_is_balanced_by_splitting_not_duplicating():
    lengths = [50] * 7  # budget 100 -> batches of 2: 4 batches (last of 1); world 3 needs a multiple of 3
    samplers = _rank_samplers(lengths, 3, max_frames=100, seed=0)
    ids = [i for s in samplers for b in s for i, _ in b]
    assert sorted(ids) == list(range(7)) and len({len(s) for s in samplers}) == 1
    tiny = _rank_samplers([30], 2, max_frames=100)  # fewer utterances than ranks: minimal repetition
    assert [len(s) for s in tiny] == [1, 1]


def test_fixed_batch_size_eval_order_and_length_limits():
    lengths = [10, 400, 30, None, 20, 700]
    s = FrameBudgetBatchSampler(lengths, batch_size=2, shuffle=False, max_length=600)
    flat = [i for b in s for i, _ in b]
    assert sorted(flat) == [0, 1, 2, 4] and s.num_too_long == 1  # None (unreadable) and the 700-frame one out
    assert [lengths[i] for i in flat] == sorted(lengths[i] for i in flat)  # eval: sorted, deterministic
    with pytest.raises(ValueError, match="exactly one"):
        FrameBudgetBatchSampler(lengths)


def test_curriculum_grows_max_length():
    lengths = list(range(10, 610, 10))
    s = FrameBudgetBatchSampler(lengths, max_frames=2000, curriculum=[[0, 100], [2, 300], [4, 600]])
    counts = []
    for epoch in (0, 1, 2, 4):
        s.set_epoch(epoch)
        idx = [i for b in s for i, _ in b]
        counts.append(len(idx))
        assert max(lengths[i] for i in idx) <= {0: 100, 1: 100, 2: 300, 4: 600}[epoch]
    assert counts == [10, 10, 30, 60]


def test_state_dict_resumes_epoch_and_position():
    lengths = _lengths(100)
    s = FrameBudgetBatchSampler(lengths, max_frames=600, seed=5)
    s.set_epoch(3)
    full = list(s)
    t = FrameBudgetBatchSampler(lengths, max_frames=600, seed=0)
    t.load_state_dict(s.state_dict(), batches_done=2)
    assert list(t) == full[2:]
    assert list(t) == full  # the skip applies once


def test_lightning_set_epoch_reaches_the_batch_sampler():
    from lightning.fabric.utilities.data import _set_sampler_epoch
    from torch.utils.data import DataLoader

    s = FrameBudgetBatchSampler(_lengths(20), max_frames=300)
    loader = DataLoader(list(range(20)), batch_sampler=s, collate_fn=lambda x: x)
    _set_sampler_epoch(loader, 7)
    assert s.epoch == 7
