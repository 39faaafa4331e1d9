"""Linear-layer weights of the search kept as row-major ``(in_features, out_features)`` matrices.

Why: every beam step multiplies a few dozen hypothesis rows by each weight of the decoder and the LM.
``nn.Linear`` stores its weight as ``(out, in)`` and multiplies by its transpose; for such few-row
products the CPU GEMMs are much faster when the weight already is a row-major ``(in, out)`` matrix
(measured on the 2-core CPU, 40 rows, 16 weights in rotation: fp32 650 -> 2600 85 -> 140 GFLOP/s,
256 -> 2048 95 -> 131; no difference at training's hundreds of rows; docs/decoding.md, "Fast paths").
The products gave the same bits in every measured shape. Only float32 weights (MKL's GEMM) are copied:
bf16 products (oneDNN) were mixed in a micro-benchmark and not faster in whole batched decodes, so
the bf16 path keeps its layout.

A copy is made once per weight and reused while the weight is unchanged (same storage, same version
counter), so searches do not pay for it; the price is a second copy of the decoder's and the LM's
weights in memory. Narrow layers (fewer than :data:`MIN_OUT_FEATURES` outputs, e.g. the 41-token output
layers) keep ``nn.Linear``: there the transposed read was as fast or faster.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.weak import WeakIdKeyDictionary

#: layers with fewer outputs than this keep nn.Linear's own product
MIN_OUT_FEATURES = 256

#: weight tensor (by identity) -> (its tensor_key, the matrix to multiply by)
_KN: "WeakIdKeyDictionary" = WeakIdKeyDictionary()


def tensor_key(t: Tensor) -> tuple:
    """What identifies a tensor's current values for a cache of derived copies: its storage, version
    counter (bumped by every in-place write: optimizer steps, ``load_state_dict``), dtype, device, shape."""
    return t.data_ptr(), t._version, t.dtype, t.device, tuple(t.shape)


def layout(weight: Tensor) -> Tensor:
    """(out, in) -> the (in, out) matrix to multiply rows by: a row-major copy for float32 weights, the
    transposed view for other dtypes (their bf16 products keep the layout the bf16 path was measured with).
    Not cached: for matrices that are built and cached by the caller (the fused q/k/v weight)."""
    with torch.no_grad():
        return weight.detach().t().contiguous() if weight.dtype == torch.float32 else weight.t()


def for_product(weight: Tensor) -> Tensor:
    """:func:`layout` of a parameter, cached per weight tensor until the weight changes."""
    hit = _KN.get(weight)
    key = tensor_key(weight)
    if hit is not None and hit[0] == key:
        return hit[1]
    kn = layout(weight)
    _KN[weight] = (key, kn)
    return kn


def uses_row_major(m: nn.Module) -> bool:
    """A plain float32 ``nn.Linear`` wide enough for the row-major product to pay."""
    return type(m) is nn.Linear and m.weight.dtype == torch.float32 and m.out_features >= MIN_OUT_FEATURES
