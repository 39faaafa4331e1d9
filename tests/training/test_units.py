"""Unit tests: schedules, error counting (DDP de-duplication), reports, greedy decoders, random data."""
from __future__ import annotations

import json
import math

import pytest
import torch

from avsr_lightning.batch import SAMPLES_PER_FRAME, AVBatch
from avsr_lightning.datamodules.random import RandomAVDataModule
from avsr_lightning.decoding.greedy import AttentionGreedyDecoder, CTCGreedyDecoder, ctc_collapse
from avsr_lightning.evaluation.metrics import ErrorRate, char_errors, word_errors
from avsr_lightning.evaluation.report import condition_name, make_record, write_report
from avsr_lightning.schedules import NoamLR, WarmupCosineLR, noam_lr
from avsr_lightning.text import CharTokenizer


# ------------------------------------------------------------------------------------------ schedules
def test_noam_matches_the_reference_formula_and_peak():
    assert noam_lr(25000) == pytest.approx(3.9528e-4, rel=1e-4)
    assert noam_lr(1) == pytest.approx(256 ** -0.5 * 25000 ** -1.5)
    assert noam_lr(100000) == pytest.approx(256 ** -0.5 * 100000 ** -0.5)
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=123.0)
    sched = NoamLR(opt, d_model=256, warmup_steps=25000)
    seen = []
    for _ in range(3):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([noam_lr(1), noam_lr(2), noam_lr(3)])  # update k uses noam_lr(k)


def test_warmup_cosine_shape():
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    sched = WarmupCosineLR(opt, warmup_steps=4, total_steps=12, min_lr_ratio=0.1)
    lrs = []
    for _ in range(14):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3])
    assert lrs[8] == pytest.approx(1e-4 + 0.9e-3 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lrs[12] == pytest.approx(1e-4) and lrs[13] == pytest.approx(1e-4)


def test_scheduler_counts_updates_not_micro_batches(tmp_path, tr):
    module = tr.tiny_module("Video")
    trainer = tr.tiny_trainer(tmp_path, max_epochs=1, accumulate_grad_batches=2, limit_val_batches=0)
    trainer.fit(module, datamodule=tr.tiny_data())  # 4 micro-batches -> 2 updates
    assert trainer.global_step == 2
    sched = trainer.lr_scheduler_configs[0].scheduler
    assert sched.last_epoch == 2
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(noam_lr(3, 32, 10))


# -------------------------------------------------------------------------------------------- metrics
def test_word_and_char_errors():
    assert word_errors("THE CAT SAT", "the  cat") == (1, 3)  # normalised; a deletion
    assert word_errors("A B", "A X B") == (1, 2)  # an insertion
    assert char_errors("AB CD", "ABCE") == (1, 4)  # spaces removed (reference definition)
    assert word_errors("HELLO", " HELLO ") == (0, 1)  # stray spaces are not empty words


def test_error_rate_counts_each_utterance_once():
    metric = ErrorRate()
    metric.update(["a", "b"], ["ONE TWO", "THREE"], ["ONE", "THREE"])
    metric.update(["a"], ["ONE TWO"], ["ONE"])  # a sampler repeat of "a": must not count twice
    out = metric.compute()
    assert float(out["wer"]) == pytest.approx(100 * 1 / 3)
    assert float(out["cer"]) == pytest.approx(100 * 3 / 11)


def test_report_files(tmp_path):
    records = [make_record("u1", "A B", "A", condition_name({"snr": 0.0, "visual": "clean"})),
               make_record("u2", "C", "C", condition_name({"snr": None, "visual": "clean"})),
               make_record("u3", "D E", "D E", condition_name({"snr": 0.0, "visual": "clean"}))]
    summary = write_report(records, tmp_path)
    assert summary["overall"]["wer"] == pytest.approx(20.0)
    assert summary["conditions"]["snr=0,visual=clean"]["wer"] == pytest.approx(25.0)
    assert summary["conditions"]["snr=clean,visual=clean"]["wer"] == 0.0
    assert (tmp_path / "wer.txt").read_text() == "WER: 20.000, CER: 20.000\n"
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert {r["id"] for r in rows} == {"u1", "u2", "u3"} and rows[0]["word_errors"] in (0, 1)
    assert json.loads((tmp_path / "summary.json").read_text()) == summary


# ------------------------------------------------------------------------------------------- decoders
class _FakeCTC:
    def __init__(self, log_probs):
        self._lp = log_probs

    def log_probs(self, features):
        return self._lp


class _FakeDecoder:
    """Emits a fixed token script per utterance, then eos."""

    def __init__(self, scripts, vocab, eos):
        self.scripts, self.vocab, self.eos, self.calls = scripts, vocab, eos, 0

    def step(self, ys, memory, memory_mask, cache):
        i = ys.shape[1] - 1
        out = torch.full((ys.shape[0], self.vocab), -10.0)
        for b, script in enumerate(self.scripts):
            out[b, script[i] if i < len(script) else self.eos] = -0.1
        self.calls += 1
        return out, cache


class _FakeModel:
    blank, sos, eos = 0, 5, 5

    def __init__(self, lengths, ctc_lp=None, scripts=None):
        self.lengths = lengths
        self.ctc = _FakeCTC(ctc_lp)
        self.decoder = _FakeDecoder(scripts or [], 6, 5)

    def encode(self, video, video_lengths, audio, audio_lengths):
        return torch.zeros(len(self.lengths), int(max(self.lengths)), 4), torch.tensor(self.lengths)


def _batch(lengths):
    t = max(lengths)
    lens = torch.tensor(lengths)
    return AVBatch(None, lens, torch.zeros(len(lengths), t * SAMPLES_PER_FRAME), lens * SAMPLES_PER_FRAME,
                   torch.zeros(len(lengths), 1, dtype=torch.long), torch.ones(len(lengths), dtype=torch.long))


def test_ctc_collapse():
    assert ctc_collapse([0, 3, 3, 0, 3, 4, 4, 0]) == [3, 3, 4]


def test_ctc_greedy_respects_lengths():
    best = torch.tensor([[3, 3, 0, 4, 2], [1, 0, 1, 2, 2]])
    lp = torch.nn.functional.one_hot(best, 6).float().log_softmax(-1)
    hyps = CTCGreedyDecoder()(_FakeModel([5, 3], lp), _batch([5, 3]))
    assert [h[0].tokens for h in hyps] == [[3, 4, 2], [1, 1]]  # 2nd: frames 3-4 are padding


def test_attention_greedy_stops_at_eos_and_at_max_length():
    model = _FakeModel([6, 3], scripts=[[1, 2], [3, 3, 3, 3, 3, 3, 3]])
    hyps = AttentionGreedyDecoder()(model, _batch([6, 3]))
    assert hyps[0][0].tokens == [1, 2]  # own eos
    assert hyps[1][0].tokens == [3, 3, 3]  # cut at its 3 frames
    assert model.decoder.calls == 4  # batched: stops once every utterance has ended


def test_attention_greedy_on_a_real_tiny_model_is_batch_consistent(tr):
    """With the padding fix on, decoding a batch equals decoding each utterance alone."""
    from avsr_lightning.models import Video

    torch.manual_seed(0)
    model = Video(**tr.TINY_MODEL, mask_padding=True).eval()
    batch = next(iter(tr.tiny_data(batch_size=3).val_dataloader()))
    together = [h[0].tokens for h in AttentionGreedyDecoder(CharTokenizer())(model, batch)]
    alone = []
    for i in range(len(batch)):
        t = int(batch.video_lengths[i])
        single = AVBatch(batch.video[i:i + 1, :t], batch.video_lengths[i:i + 1], None, batch.audio_lengths[i:i + 1],
                         batch.targets[i:i + 1], batch.target_lengths[i:i + 1])
        alone.append(AttentionGreedyDecoder()(model, single)[0][0].tokens)
    assert together == alone


# ---------------------------------------------------------------------------------------- random data
def test_random_datamodule_is_seeded_and_well_formed():
    dm = RandomAVDataModule(train_size=6, val_size=3, batch_size=3, min_frames=4, max_frames=9, image_size=16, seed=3)
    a = next(iter(dm.val_dataloader()))
    b = next(iter(RandomAVDataModule(train_size=6, val_size=3, batch_size=3, min_frames=4, max_frames=9,
                                     image_size=16, seed=3).val_dataloader()))
    assert torch.equal(a.video, b.video) and a.texts == b.texts
    assert a.video.shape[0] == 3 and a.video.shape[2:] == (16, 16)
    assert a.audio.shape[1] == a.video.shape[1] * SAMPLES_PER_FRAME
    assert bool((a.video_lengths >= 4).all() and (a.video_lengths <= 9).all())
    tok = CharTokenizer()
    for i, text in enumerate(a.texts):
        n = int(a.target_lengths[i])
        assert tok.decode(a.targets[i, :n].tolist()) == text and bool((a.targets[i, n:] == -1).all())
        assert n <= int(a.video_lengths[i])
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(0)
    first = list(loader.sampler)
    loader.sampler.set_epoch(1)
    assert sorted(first) == list(range(6)) and list(loader.sampler) != first
    loader.sampler.set_epoch(0)
    assert list(loader.sampler) == first
