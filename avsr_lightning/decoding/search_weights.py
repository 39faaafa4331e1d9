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

#: weight tensor (by identity) -> (its storage/version key, row-major copy)
_KN: "WeakIdKeyDictionary" = WeakIdKeyDictionary()


def _key(t: Tensor) -> tuple:
    return t.data_ptr(), t._version, t.dtype, t.device, tuple(t.shape)


def row_major(weight: Tensor) -> Tensor:
    """``weight.t()`` (out, in) -> (in, out) as a contiguous matrix, cached per weight tensor."""
    hit = _KN.get(weight)
    key = _key(weight)
    if hit is not None and hit[0] == key:
        return hit[1]
    with torch.no_grad():
        kn = weight.detach().t().contiguous()
    _KN[weight] = (key, kn)
    return kn


def for_product(weight: Tensor) -> Tensor:
    """The (in, out) matrix to multiply rows by: the cached row-major copy for float32 weights, the
    transposed view for other dtypes (their bf16 products keep the layout the bf16 path was measured with)."""
    return row_major(weight) if weight.dtype == torch.float32 else weight.t()


def uses_row_major(m: nn.Module) -> bool:
    """A plain float32 ``nn.Linear`` wide enough for the row-major product to pay."""
    return type(m) is nn.Linear and m.weight.dtype == torch.float32 and m.out_features >= MIN_OUT_FEATURES
