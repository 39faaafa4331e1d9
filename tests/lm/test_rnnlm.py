"""RNN LM: reference semantics (golden rnnlm.pt), ESPnet export/load round trip, vocabulary checks."""
from __future__ import annotations

import json

import pytest
import torch

import avsr_lightning
from avsr_lightning.models.rnnlm import RNNLM
from avsr_lightning.text import CharTokenizer
from avsr_lightning.weights.espnet_lm import export_lm, load_lm


@pytest.fixture()
def golden_lm_files(shared_reference, tmp_path):
    d = torch.load(shared_reference / "golden" / "rnnlm.pt", weights_only=True)
    torch.save(d["state_dict"], tmp_path / "model.pth")
    (tmp_path / "model.json").write_text(json.dumps(d["config"]["model_json"]))
    return d, tmp_path


@torch.no_grad()
def test_golden_score_and_batch_score(golden_lm_files):
    d, root = golden_lm_files
    lm = avsr_lightning.load_lm(root / "model.pth", root / "model.json")
    assert (lm.layers, lm.units, lm.rnn_type) == (1, 32, "lstm")
    s = d["score"]
    state, rows = None, []
    for tok in s["input_tokens"]:
        lp, state = lm.step(tok.view(1), state)
        rows.append(lp[0])
    got = torch.stack(rows)
    torch.testing.assert_close(got, s["log_probs"], atol=1e-5, rtol=1e-5)
    total = float(got.gather(1, s["target_tokens"].view(-1, 1)).sum())
    assert total == pytest.approx(s["sequence_log_prob_incl_eos"], abs=1e-4)
    torch.testing.assert_close(state[0][0], s["final_state"]["h"][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state[1][0], s["final_state"]["c"][0], atol=1e-5, rtol=1e-5)
    b = d["batch_score"]
    state = None
    for k in range(b["prefixes"].size(1)):
        lp, state = lm.step(b["prefixes"][:, k], state)
        torch.testing.assert_close(lp, b["log_probs"][:, k], atol=1e-5, rtol=1e-5)
    # teacher forcing gives the same numbers as stepping
    logits, _ = lm(s["input_tokens"][None])
    torch.testing.assert_close(torch.log_softmax(logits[0], -1), s["log_probs"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("rnn_type,tie", [("gru", False), ("lstm", True)])
def test_export_load_round_trip(tmp_path, rnn_type, tie):
    torch.manual_seed(0)
    lm = RNNLM(41, layers=2, units=16, embed_units=16 if tie else 8, rnn_type=rnn_type, tie_weights=tie).eval()
    pth, js = export_lm(lm, tmp_path / "exp")
    raw = torch.load(pth, weights_only=True)
    assert all(k.startswith("predictor.") for k in raw) and "predictor.rnn.1.weight_hh" in raw
    conf = json.loads(js.read_text())
    assert conf["layer"] == 2 and conf["unit"] == 16 and conf["type"] == rnn_type
    back = load_lm(pth)  # json found beside the weights
    x = torch.randint(0, 41, (3, 7))
    torch.testing.assert_close(back(x)[0], lm(x)[0])
    assert back.rnn_type == rnn_type and (back.lo.weight is back.embed.weight) == tie
    assert not list(tmp_path.glob("exp/*.tmp"))  # atomic writes leave nothing behind


def test_vocabulary_mismatch_names_both(tmp_path):
    lm = RNNLM(30, layers=1, units=8)
    pth, _ = export_lm(lm, tmp_path, char_list=[f"c{i}" for i in range(30)])
    with pytest.raises(ValueError, match=r"(?s)LM .*c29.*model.*<blank>"):
        load_lm(pth, tmp_path / "model.json")
    # same size, different symbols
    symbols = list(CharTokenizer().symbols)
    swapped = symbols[:14] + symbols[15:16] + symbols[14:15] + symbols[16:]
    pth, _ = export_lm(RNNLM(41, layers=1, units=8), tmp_path / "b", char_list=swapped)
    with pytest.raises(ValueError, match="does not match"):
        load_lm(pth)
    with pytest.raises(FileNotFoundError):
        load_lm(tmp_path / "missing.pth")
