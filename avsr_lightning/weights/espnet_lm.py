"""ESPnet-format character RNN LM files (spec §5.4): ``model.pth`` + ``model.json``.

``model.pth`` is a bare state dict with ``predictor.*`` keys (``predictor.embed.weight``,
``predictor.rnn.{l}.weight_ih|weight_hh|bias_ih|bias_hh``, ``predictor.lo.weight|bias``);
``model.json`` is a dict with ``layer``, ``unit``, ``type`` (lstm|gru), optional ``embed_unit``,
``dropout_rate``, ``emb_dropout_rate``, ``tie_weights``, and (written by us) ``char_list``. Files from
ESPnet snapshots (``{"model": state_dict}``) load too. Loading never executes code from the file.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import torch

from .. import durable
from ..models.rnnlm import RNNLM
from ..text import CharTokenizer
from .lm_config import read_lm_config
from .load import read_checkpoint

PREFIX = "predictor."


def _read_json(path: str | os.PathLike) -> dict[str, Any]:
    return read_lm_config(path)  # one-line LMConfigError naming the file and the field


def _vocab_symbols(vocab: Sequence[str] | CharTokenizer | int | None) -> list[str] | int | None:
    if isinstance(vocab, CharTokenizer):
        return list(vocab.symbols)
    if vocab is None or isinstance(vocab, int):
        return vocab
    return list(vocab)


def load_lm(pth: str | os.PathLike, json_path: str | os.PathLike | None = None,
            vocab: Sequence[str] | CharTokenizer | int | None = None,
            map_location: str | torch.device = "cpu") -> RNNLM:
    """Load an ESPnet-format RNN LM as an :class:`RNNLM` in eval mode.

    Args:
        pth: ``model.pth`` (state dict with ``predictor.*`` keys).
        json_path: its ``model.json``; default: ``model.json`` next to ``pth``.
        vocab: the recogniser's vocabulary (symbol list, tokenizer or size); default the reference 41
            characters. A mismatch with the LM (output size, or the json's ``char_list``) raises
            ``ValueError`` naming both vocabularies.
    """
    pth = Path(pth)
    json_path = Path(json_path) if json_path is not None else pth.with_name("model.json")
    if not pth.is_file():
        raise FileNotFoundError(f"LM weights not found: {pth}")
    if not json_path.is_file():
        raise FileNotFoundError(f"LM config not found: {json_path} (pass json_path=...)")
    conf = _read_json(json_path)
    state = read_checkpoint(pth)  # weights_only=True, one-line errors naming the file
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if isinstance(state, dict):
        state = {k: (v.to(map_location) if isinstance(v, torch.Tensor) else v) for k, v in state.items()}
    if not isinstance(state, dict) or f"{PREFIX}embed.weight" not in state:
        raise ValueError(f"{pth}: not an ESPnet RNN LM state dict (no '{PREFIX}embed.weight' key)")
    state = {k[len(PREFIX):]: v for k, v in state.items() if k.startswith(PREFIX)}
    n_vocab, embed_units = state["embed.weight"].shape
    model_symbols = _vocab_symbols(vocab)
    if model_symbols is None:
        model_symbols = list(CharTokenizer().symbols)
    model_size = model_symbols if isinstance(model_symbols, int) else len(model_symbols)
    lm_symbols = conf.get("char_list")
    if n_vocab != model_size or (lm_symbols is not None and not isinstance(model_symbols, int)
                                 and list(lm_symbols) != model_symbols):
        lm_desc = lm_symbols if lm_symbols is not None else f"{n_vocab} symbols (no char_list in {json_path.name})"
        model_desc = model_symbols if not isinstance(model_symbols, int) else f"{model_symbols} symbols"
        raise ValueError(f"LM vocabulary does not match the model vocabulary.\n  LM ({pth}): {lm_desc}\n"
                         f"  model: {model_desc}")
    rnn_type = str(conf.get("type", "lstm")).lower()
    rnn_layers = [int(k.split(".")[1]) for k in state if k.startswith("rnn.") and k.split(".")[1].isdigit()]
    if ("layer" not in conf and not rnn_layers) or ("unit" not in conf and "lo.weight" not in state):
        raise ValueError(f"{pth}: has no predictor.rnn.* / predictor.lo.weight tensors and {json_path} gives no "
                         f"layer/unit; not an ESPnet RNN LM")
    layers = int(conf.get("layer", 1 + max(rnn_layers, default=0)))
    units = int(conf.get("unit", state["lo.weight"].shape[1] if "lo.weight" in state else 0))
    lm = RNNLM(vocab_size=n_vocab, layers=layers, units=units, embed_units=int(conf.get("embed_unit") or units),
               rnn_type=rnn_type, dropout=float(conf.get("dropout_rate", 0.0)),
               emb_dropout=float(conf.get("emb_dropout_rate", 0.0)), tie_weights=bool(conf.get("tie_weights", False)))
    if lm.embed_units != embed_units:
        raise ValueError(f"{json_path}: embed_unit={lm.embed_units} but {pth} has embeddings of width {embed_units}")
    try:
        missing, unexpected = lm.load_state_dict(state, strict=False)
    except RuntimeError as err:  # tensor shapes disagree with the config
        first = str(err).strip().splitlines()[-1].strip()
        raise ValueError(f"{pth} does not fit {json_path} (layer={layers}, unit={units}, type={rnn_type}): "
                         f"{first}") from None
    if lm.lo.weight is lm.embed.weight:
        missing = [k for k in missing if k != "lo.weight"]
    if missing or unexpected:
        raise ValueError(f"{pth} does not fit {json_path} (layer={layers}, unit={units}, type={rnn_type}): "
                         f"missing {missing}, unexpected {unexpected}")
    return lm.eval()


def export_lm(lm: RNNLM, out_dir: str | os.PathLike, char_list: Sequence[str] | None = None) -> tuple[Path, Path]:
    """Write ``out_dir/model.pth`` (``predictor.*`` keys) and ``out_dir/model.json``; both atomically."""
    out = Path(out_dir)
    state = {f"{PREFIX}{k}": v.detach().cpu().clone() for k, v in lm.state_dict().items()}
    conf = {
        "backend": "pytorch", "model_module": "default", "type": lm.rnn_type, "layer": lm.layers,
        "unit": lm.units, "embed_unit": lm.embed_units, "dropout_rate": lm.dropout[0].p,
        "emb_dropout_rate": lm.embed_drop.p, "tie_weights": lm.lo.weight is lm.embed.weight,
        "char_list": list(char_list) if char_list is not None else list(CharTokenizer().symbols)[:lm.vocab_size],
    }
    if len(conf["char_list"]) != lm.vocab_size:
        raise ValueError(f"char_list has {len(conf['char_list'])} symbols but the LM has {lm.vocab_size} outputs")
    pth, js = out / "model.pth", out / "model.json"
    durable.torch_save(state, pth)
    durable.write_text(js, json.dumps(conf, indent=2, allow_nan=False))
    return pth, js
