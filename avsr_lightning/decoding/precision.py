"""Reduced-precision copies of the search modules (decoder, CTC head, LM) for fast decoding.

- ``dtype="bf16"``: the linear layers (and LSTM cells) of a copy of the decoder and the LM hold bfloat16
  weights; embeddings, LayerNorms, the residual stream, the LSTM cell state, every log-softmax and all
  scores stay float32 (the scorers cast each linear layer's input, see ``fast_attention._lin``). The CTC
  head stays float32: it runs once per utterance and its log-softmax feeds the prefix scores. The
  encoder runs under ``torch.autocast`` (its own fp32 islands apply, docs/models.md).
- ``quantize="int8"``: ``torch.ao.quantization.quantize_dynamic`` copies of the decoder, LM and CTC head
  (``nn.Linear`` and LSTM/GRU cells with int8 weights, activations quantised per call); CPU only, as
  torch's dynamic quantised kernels.

Copies are made once per (module, dtype, quantize) and reused while the module's parameters are
unchanged (their storage and version counters are checked on every call), so a test set pays it once.
"""
from __future__ import annotations

import copy
import warnings
import weakref
from dataclasses import dataclass

import torch
from torch import nn

from . import fast_lm, search_weights

DTYPES = ("fp32", "bf16")
QUANTIZE = ("none", "int8")

_COPIES: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()


def check_options(dtype: str, quantize: str, device: torch.device | None = None) -> None:
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    if quantize not in QUANTIZE:
        raise ValueError(f"quantize must be one of {QUANTIZE}, got {quantize!r}")
    if quantize == "int8" and device is not None and device.type != "cpu":
        raise ValueError(f"quantize='int8' uses torch's dynamic-quantised kernels, which run on CPU only; the model "
                         f"is on {device}. Use dtype='bf16' on {device.type}, or move the model to the CPU")


def _version_key(module: nn.Module) -> tuple:
    return tuple(map(search_weights.tensor_key, module.parameters()))


def _bf16_linears(module: nn.Module, kinds: tuple[type, ...]) -> nn.Module:
    out = copy.deepcopy(module)
    for m in out.modules():
        if isinstance(m, kinds):
            m.to(torch.bfloat16)
    return out


def _convert(module: nn.Module, kind: str, dtype: str, quantize: str) -> nn.Module:
    if quantize == "int8":
        specs = {nn.Linear, nn.LSTMCell, nn.GRUCell, nn.LSTM, nn.GRU}
        with warnings.catch_warnings():
            # torch >= 2.9 announces the move of eager dynamic quantisation to torchao; the API still works
            # and is what the pinned torch provides (docs/decoding.md "Fast paths")
            warnings.filterwarnings("ignore", message=".*(deprecated|torchao).*")
            return torch.ao.quantization.quantize_dynamic(copy.deepcopy(module).float(), specs, dtype=torch.qint8)
    if dtype == "bf16":
        if kind == "lm" and not fast_lm.supports(module):
            return copy.deepcopy(module).to(torch.bfloat16)  # GRU LM: all bf16 through RNNLM.step
        return _bf16_linears(module, (nn.Linear, nn.LSTMCell) if kind == "lm" else (nn.Linear,))
    return module


def converted(module: nn.Module | None, kind: str, dtype: str, quantize: str) -> nn.Module | None:
    """``module`` itself for fp32 without quantisation, else its cached reduced-precision copy (eval mode)."""
    if module is None or (dtype == "fp32" and quantize == "none"):
        return module
    if kind == "ctc" and quantize == "none":
        return module  # bf16 path: the CTC head stays float32
    cache = _COPIES.setdefault(module, {})
    key = (kind, dtype, quantize)
    version = _version_key(module)
    hit = cache.get(key)
    if hit is None or hit[0] != version:
        with torch.no_grad():
            hit = (version, _convert(module, kind, dtype, quantize).eval())
        cache[key] = hit
    return hit[1]


@dataclass
class SearchModules:
    """What the search needs from a recognizer, with the decoder and CTC head possibly converted."""

    decoder: nn.Module
    ctc: nn.Module
    vocab_size: int
    sos: int
    eos: int
    blank: int


def search_modules(model: nn.Module, dtype: str, quantize: str) -> nn.Module | SearchModules:
    if dtype == "fp32" and quantize == "none":
        return model
    return SearchModules(converted(model.decoder, "decoder", dtype, quantize),
                         converted(model.ctc, "ctc", dtype, quantize), int(model.vocab_size), int(model.sos),
                         int(model.eos), int(model.blank))
