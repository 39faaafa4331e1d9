"""Every component against the reference's own outputs (shared/reference/golden, README §1-10).

Full tensors are compared, padded positions included, with max|diff| / max|ref| <= 1e-5.
"""
from __future__ import annotations

import pytest
import torch

from avsr_lightning.loss import add_sos_eos, label_smoothing_loss, token_accuracy
from avsr_lightning.models import (
    AudioFrontend,
    ConformerEncoder,
    CTCHead,
    FusionMLP,
    ReliabilityFusion,
    RelPositionalEncoding,
    RelPositionMultiHeadAttention,
    TransformerDecoder,
    VisualContextAttention,
)
from avsr_lightning.models.ctc import ctc_loss

TOL = 1e-5


def assert_close(ours: torch.Tensor, ref: torch.Tensor, tol: float = TOL) -> None:
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    scale = ref.abs().max().clamp_min(1e-12)
    err = float((ours.detach().float() - ref.float()).abs().max() / scale)
    assert err <= tol, f"relative error {err:.3g} > {tol}"


@pytest.fixture(scope="module")
def golden(request):
    shared = request.getfixturevalue("shared_reference")

    def load(name: str) -> dict:
        return torch.load(shared / "golden" / f"{name}.pt", weights_only=True)

    return load


def _strict(module: torch.nn.Module, state: dict) -> torch.nn.Module:
    module.load_state_dict(state, strict=True)
    return module.eval()


def test_relpos_encoding(golden):
    fx = golden("relpos_encoding")
    enc = RelPositionalEncoding(64, 0.1).eval()
    assert enc.state_dict() == {}
    for case in fx["cases"]:
        x_scaled, pos = enc(case["x"])
        assert_close(x_scaled, case["x_scaled"])
        assert_close(pos, case["pos_emb"])


@pytest.mark.parametrize("need_weights", [False, True], ids=["sdpa", "explicit"])
def test_relpos_mhsa(golden, need_weights):
    fx = golden("relpos_mhsa")
    att = _strict(RelPositionMultiHeadAttention(4, 64, 0.1), fx["state_dict"])
    for case in fx["cases"]:
        out = att(case["query"], case["key"], case["value"], case["pos_emb"], case["mask"], need_weights=need_weights)
        if need_weights:
            out, attn = out
            assert_close(attn, case["attn"])
            assert (attn[1, :, :, 5:] == 0).all()  # masked keys are exactly zero
        assert_close(out, case["output"])


def test_conformer_encoder(golden):
    fx = golden("conformer_encoder")
    enc = _strict(ConformerEncoder(512, 64, 4, 2, 128, 7, 0.1, 0.1), fx["state_dict"])
    inp, mid = fx["inputs"], fx["intermediates"]
    x, pos = enc.embed(inp["xs"])
    assert_close(x, mid["embed_x"])
    assert_close(pos, mid["pos_emb"])
    block0 = enc.encoders[0]
    assert_close(enc.blocks(inp["xs"], inp["mask"]), mid["block1_out"])
    assert_close(enc(inp["xs"], inp["mask"]), fx["outputs"]["output"])
    low = fx["low_variance_case"]
    assert_close(enc(low["xs"], low["mask"]), low["output"])
    ln = fx["layer_norm_case"]
    assert_close(enc.after_norm(ln["input"]), ln["output"])
    # first block alone, and its conv module (padding frames are not masked by default)
    assert_close(block0(x, pos, inp["mask"]), mid["block0_out"])
    x1 = x + 0.5 * block0.feed_forward_macaron(block0.norm_ff_macaron(x))
    h = block0.norm_mha(x1)
    x2 = x1 + block0.self_attn(h, h, h, pos, inp["mask"])
    assert_close(block0.conv_module(block0.norm_conv(x2)), mid["block0_conv_module_out"])


def test_conformer_conv_module_sees_padding_by_default(golden):
    fx = golden("conformer_encoder")
    enc = _strict(ConformerEncoder(512, 64, 4, 2, 128, 7, 0.1, 0.1), fx["state_dict"])
    inp = fx["inputs"]
    fixed = _strict(ConformerEncoder(512, 64, 4, 2, 128, 7, 0.1, 0.1, mask_padding=True), fx["state_dict"])
    ref_out, fix_out = enc(inp["xs"], inp["mask"]), fixed(inp["xs"], inp["mask"])
    assert torch.allclose(ref_out[0], fix_out[0], atol=1e-5)  # the full-length utterance is unaffected
    assert not torch.allclose(ref_out[2, :4], fix_out[2, :4], atol=1e-4)  # the short one sees its padding


def _decoder(fx) -> TransformerDecoder:
    return _strict(TransformerDecoder(41, 64, 4, 2, 128, 0.1, 0.1), fx["state_dict"])


def test_decoder_teacher_forcing_and_incremental(golden):
    fx = golden("decoder")
    dec, inp = _decoder(fx), fx["inputs"]
    ys_in, ys_out = add_sos_eos(inp["ys_pad"], 40, 40, -1)
    assert torch.equal(ys_in, inp["ys_in"]) and torch.equal(ys_out, inp["ys_out"])
    logits = dec(inp["ys_in"], None, inp["memory"], inp["memory_lengths"])
    assert_close(logits, fx["outputs"]["logits"])
    assert_close(logits.log_softmax(-1), fx["outputs"]["log_softmax"])
    cache = None
    for k in range(4):
        logp, cache = dec.step(inp["ys_in"][:, :k + 1], inp["memory"], inp["memory_mask"], cache)
        assert_close(logp, fx["incremental"]["log_probs"][:, k])
        for layer, ref in zip(cache, fx["incremental"]["cache_after_step"][k]):
            assert_close(layer, ref)


def test_decoder_batch_score(golden):
    fx = golden("decoder")
    dec, bs = _decoder(fx), fx["batch_score"]
    cache = None
    for k in range(4):
        logp, cache = dec.step(bs["prefixes"][:, :k + 1], bs["xs"], None, cache)
        assert_close(logp, bs["log_probs"][:, k])
    for h, states in enumerate(bs["final_states"]):
        for layer, ref in zip(cache, states):
            assert_close(layer[h], ref)


def test_ctc(golden):
    fx = golden("ctc")
    head = _strict(CTCHead(41, 64), fx["state_dict"])
    inp = fx["inputs"]
    tl = (inp["ys_pad"] != -1).sum(1)
    assert_close(head.log_probs(inp["hs_pad"]), fx["outputs"]["log_probs"])
    assert_close(head.loss(inp["hs_pad"], inp["hlens"], inp["ys_pad"], tl), fx["outputs"]["loss"])
    inf = fx["infeasible_case"]
    tl = (inf["ys_pad"] != -1).sum(1)
    assert_close(head.loss(inp["hs_pad"], inf["hlens"], inf["ys_pad"], tl), inf["loss"])
    assert_close(ctc_loss(head.log_probs(inp["hs_pad"]), inf["hlens"], inf["ys_pad"], tl), inf["loss"])


def test_hybrid_loss_e2e(golden):
    from avsr_lightning.loss import HybridCTCAttentionLoss

    fx, e2e = golden("loss"), golden("loss")["e2e"]
    dec = _decoder(golden("decoder"))
    head = _strict(CTCHead(41, 64), golden("ctc")["state_dict"])
    lengths = e2e["hs_mask"].view(2, -1).sum(1)
    assert torch.equal(lengths, e2e["hs_len"])
    pred = dec(e2e["ys_in"], None, e2e["hs_pad"], lengths)
    assert_close(pred, e2e["pred_pad"])
    tl = (e2e["ys_pad"] != -1).sum(1)
    loss_ctc = head.loss(e2e["hs_pad"], lengths, e2e["ys_pad"], tl)
    out = HybridCTCAttentionLoss(fx["config"]["mtlalpha"], fx["config"]["smoothing"])(loss_ctc, pred, e2e["ys_out"])
    assert_close(out["loss_att"], e2e["loss_att"])
    assert_close(out["loss_ctc"], e2e["loss_ctc"])
    assert_close(out["loss"], e2e["loss"])
    assert abs(float(out["acc"]) - e2e["acc"]) < 1e-7


def test_label_smoothing_random(golden):
    ls = golden("loss")["label_smoothing_random"]
    assert_close(label_smoothing_loss(ls["logits"], ls["targets"], 0.1), ls["loss"])
    assert_close(label_smoothing_loss(ls["logits"], ls["targets"], 0.1, length_normalized=True),
                 ls["loss_normalize_length_true"])
    assert float(token_accuracy(ls["logits"], ls["targets"])) == ls["acc"]


def test_avrelscore_scoring(golden):
    fx = golden("avrelscore_scoring")
    fusion = _strict(ReliabilityFusion(32, 64, 7), fx["state_dict"])
    inp = fx["inputs"]
    out, mask, s_v, s_a = fusion(inp["v"], inp["a"], inp["v_len"])
    assert_close(out, fx["outputs"]["out"])
    assert torch.equal(mask, fx["outputs"]["mask"])
    assert_close(s_v, fx["intermediates"]["score_vid"])
    assert_close(s_a, fx["intermediates"]["score_aud"])


def test_vcafe_masking(golden):
    fx = golden("vcafe_masking")
    vca = _strict(VisualContextAttention(512, 0.3), fx["state_dict"])
    inp, mid = fx["inputs"], fx["intermediates"]
    m = vca.enhancement_mask(inp["aud"], inp["vid"], inp["v_len"])
    assert_close(m, mid["mask_sigmoid"])
    assert (m[1, 5:] == 0).all()
    assert_close(vca(inp["aud"], inp["vid"], inp["v_len"]), fx["outputs"]["output"])


def test_conformer_fusion(golden):
    fx = golden("conformer_fusion")
    fusion = _strict(FusionMLP(256, 1024), fx["state_dict"])
    assert_close(fusion(fx["inputs"]["x"]), fx["outputs"]["output"])


def test_audio_frontend(golden):
    fx = golden("audio_frontend")
    front = AudioFrontend()
    front.load_state_dict(fx["state_dict"], strict=True)  # float16 values cast exactly to float32
    front.eval()
    inp = fx["inputs"]
    assert_close(front(inp["waveform"]), fx["outputs"]["output"])
    assert_close(front(inp["waveform_uncut"]), fx["outputs"]["output_uncut"])
