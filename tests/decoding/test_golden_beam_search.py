"""The batched search reproduces the reference BatchBeamSearch (golden ``beam_search.pt``, README §12)."""
from __future__ import annotations

import pytest
import torch

from avsr_lightning.decoding.beam_search import BatchBeamSearch
from avsr_lightning.decoding.ctc_prefix import CTCPrefixScorer
from avsr_lightning.decoding.fast_attention import CachedAttentionScorer
from avsr_lightning.decoding.fast_lm import FusedLSTMLMScorer
from avsr_lightning.decoding.scorers import (
    AttentionScorer,
    CTCScorer,
    LengthBonus,
    RNNLMScorer,
    SearchContext,
)
from avsr_lightning.models.ctc import CTCHead
from avsr_lightning.models.decoder import TransformerDecoder
from avsr_lightning.models.rnnlm import RNNLM

TOL = 1e-4


@pytest.fixture(scope="module")
def golden(shared_reference):
    return torch.load(shared_reference / "golden" / "beam_search.pt", weights_only=True)


@pytest.fixture(scope="module")
def modules(golden):
    c = golden["config"]["decoder"]
    dec = TransformerDecoder(c["odim"], c["attention_dim"], c["attention_heads"], c["num_blocks"],
                             c["linear_units"]).eval()
    dec.load_state_dict(golden["decoder_state_dict"])
    ctc = CTCHead(golden["config"]["ctc"]["odim"], golden["config"]["ctc"]["eprojs"]).eval()
    ctc.load_state_dict(golden["ctc_state_dict"])
    j = golden["config"]["lm_model_json"]
    lm = RNNLM(41, j["layer"], j["unit"], j["embed_unit"], j["type"]).eval()
    lm.load_state_dict({k.removeprefix("predictor."): v for k, v in golden["lm_state_dict"].items()})
    return dec, ctc, lm


def run(golden, modules, name, utterances, cached=True, fused_lm=False, compact=True):
    dec, ctc, lm = modules
    res = golden["results"][name]
    cfg = res["config"]
    xs = [golden["encoder_outputs"][u] for u in utterances]
    t = max(x.shape[0] for x in xs)
    memory = torch.randn(len(xs), t, xs[0].shape[1])  # random padding: it must not matter
    for i, x in enumerate(xs):
        memory[i, :x.shape[0]] = x
    lengths = torch.tensor([x.shape[0] for x in xs])
    beam = cfg["beam_size"]
    scorers = {"decoder": CachedAttentionScorer(dec, beam) if cached else AttentionScorer(dec)}
    if cfg["use_lm"]:
        scorers["lm"] = FusedLSTMLMScorer(lm) if fused_lm else RNNLMScorer(lm)
    scorers["length_bonus"] = LengthBonus(41)
    scorers["ctc"] = CTCScorer(ctc.log_probs(memory), lengths, 0, 40)
    search = BatchBeamSearch(scorers, res["weights"], cfg["beam_size"], 41, 40, 40, compact=compact)
    assert search.full == res["full_scorers"] and search.part == res["part_scorers"]
    assert search.do_pre_beam == res["do_pre_beam"] and search.pre_beam_size == res["pre_beam_size"]
    return res, search(SearchContext(memory, lengths, lengths.new_zeros(0)), lengths)


def check(ref, got):
    assert len(got) == ref["num_ended"]
    for r, g in zip(ref["nbest"], got):
        assert g.yseq == r["yseq"]
        assert g.tokens(40, 40) == [t for t in r["tokens"] if t != 40]
        assert abs(g.score - r["score"]) < TOL
        assert g.reached_maxlen == r["reached_maxlen"]
        for k, v in r["scores"].items():
            assert abs(g.scores[k] - v) < TOL, k
    # every ended hypothesis, as a set keyed by tokens (yseq without sos and the final eos)
    ae = ref["all_ended"]
    expect = sorted(zip(map(tuple, ae["tokens"]), ae["score"], ae["scores"]["ctc"]))
    found = sorted((tuple(g.yseq[1:-1]), g.score, g.scores["ctc"]) for g in got)
    assert [e[0] for e in expect] == [f[0] for f in found]
    assert max(abs(e[1] - f[1]) for e, f in zip(expect, found)) < TOL
    assert max(abs(e[2] - f[2]) for e, f in zip(expect, found)) < TOL


CONFIGS = ["beam10_default", "beam40_default", "beam10_nolm", "beam40_nolm", "beam10_ctc0.3", "beam40_ctc0.3"]


@pytest.mark.parametrize("name", CONFIGS)
def test_all_configs_batched(golden, modules, name):
    """All three utterances (T = 14, 22, 30) decoded in one padded batch."""
    res, out = run(golden, modules, name, [0, 1, 2])
    for u in range(3):
        check(res["utterances"][u], out[u])


@pytest.mark.parametrize("name", ["beam10_default", "beam40_default"])
def test_generic_decoder_step_scorer(golden, modules, name):
    """The same results through the plain ``decoder.step`` contract (any decoder implementing it)."""
    res, out = run(golden, modules, name, [0, 1, 2], cached=False)
    for u in range(3):
        check(res["utterances"][u], out[u])


@pytest.mark.parametrize("name", ["beam10_default", "beam40_default", "beam40_ctc0.3"])
@pytest.mark.parametrize("compact", [True, False])
def test_fast_paths(golden, modules, name, compact):
    """The fused LSTM LM scorer, with and without compaction (the decode() defaults use both)."""
    res, out = run(golden, modules, name, [0, 1, 2], fused_lm=True, compact=compact)
    for u in range(3):
        check(res["utterances"][u], out[u])


def test_one_utterance_alone(golden, modules):
    res, out = run(golden, modules, "beam40_default", [2])
    check(res["utterances"][2], out[0])
    assert res["utterances"][2]["stop"]["end_detected"]


def test_ctc_prefix_scores_along_best_path(golden):
    for entry in golden["ctc_prefix_scores"]:
        x = entry["ctc_log_probs"]
        scorer = CTCPrefixScorer(x[None], torch.tensor([x.shape[0]]), 0, 40)
        h2u = torch.zeros(1, dtype=torch.long)
        state, last = scorer.initial_state(h2u), torch.tensor([40])
        for k in range(len(entry["tokens"]) + 1):
            cand = scorer.score(state, last, k, h2u)
            ref, got = entry["log_psi"][k], cand.log_psi[0]
            assert torch.equal(ref <= -1e9, got <= -1e9)
            valid = ref > -1e9
            torch.testing.assert_close(got[valid], ref[valid], atol=1e-4, rtol=0)
            assert float(state.log_psi[0]) == pytest.approx(float(entry["prefix_log_psi"][k]), abs=1e-4)
            if k < len(entry["tokens"]):
                tok = entry["tokens"][k]
                state = cand.select(torch.tensor([0]), torch.tensor([tok]))
                r = entry["r_after_token"][k]
                ok = r > -1e9
                torch.testing.assert_close(state.r[:, :, 0][ok], r[ok], atol=1e-4, rtol=0)
                last = torch.tensor([tok])
        assert float(cand.log_psi[0, 40]) == pytest.approx(entry["log_p_ctc_full_sequence"], abs=1e-4)
