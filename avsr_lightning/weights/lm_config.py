"""Reading and validating an ESPnet-format LM ``model.json`` (docs/decoding.md, "Language model files").

Why a checker of its own: a hand-edited or foreign ``model.json`` (``"layer": "two"``, a truncated file, a
list without a config object) used to surface as a raw ``ValueError``/``JSONDecodeError`` from deep inside
the loader. Here every problem is one line naming the file, the field and what is expected.
"""
from __future__ import annotations

import json
import os
from typing import Any


class LMConfigError(ValueError):
    """``model.json`` is not valid JSON or a field has the wrong type/value; the message names both."""


#: field -> (accepted python types, description of the expected value)
_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "layer": ((int,), "a positive integer (number of RNN layers)"),
    "unit": ((int,), "a positive integer (RNN width)"),
    "embed_unit": ((int, type(None)), "a positive integer or null"),
    "type": ((str,), '"lstm" or "gru"'),
    "dropout_rate": ((int, float), "a number in [0, 1)"),
    "emb_dropout_rate": ((int, float), "a number in [0, 1)"),
    "tie_weights": ((bool,), "true or false"),
    "char_list": ((list,), "a list of strings"),
}


def read_lm_config(path: str | os.PathLike) -> dict[str, Any]:
    """The validated config dict of ``path``; fields that are absent are left out (the loader infers
    ``layer``/``unit`` from the weights and uses ESPnet's defaults for the rest)."""
    try:
        with open(path, encoding="utf-8") as f:
            conf = json.load(f)
    except UnicodeDecodeError as err:
        raise LMConfigError(f"{path}: not a UTF-8 JSON file ({err.reason}); give the LM's model.json") from None
    except json.JSONDecodeError as err:
        raise LMConfigError(f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); "
                            f"give the LM's model.json") from None
    if isinstance(conf, list):  # the [idim, odim, args] form of some ESPnet model.json files
        conf = next((c for c in conf if isinstance(c, dict)), None)
    if not isinstance(conf, dict):
        raise LMConfigError(f"{path}: expected a JSON object with layer/unit/type, got {type(conf).__name__}")
    for key, (types, expected) in _FIELDS.items():
        if key not in conf:
            continue
        value = conf[key]
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if ok and key in ("layer", "unit", "embed_unit") and value is not None:
            ok = value >= 1
        if ok and key == "type":
            ok = value.lower() in ("lstm", "gru")
        if ok and key.endswith("dropout_rate"):
            ok = 0.0 <= float(value) < 1.0
        if ok and key == "char_list":
            ok = all(isinstance(c, str) for c in value)
        if not ok:
            raise LMConfigError(f"{path}: field {key!r} is {value!r}, expected {expected}")
    return conf
