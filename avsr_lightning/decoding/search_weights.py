"""The search's few-row products ``rows @ W^T``: each weight of the decoder and the LM multiplied by the
route measured fastest for it (:class:`Matrix`).

Why: every beam step multiplies a few dozen hypothesis rows by each weight of the decoder and the LM, and
for such products the route matters more than for training's hundreds of rows:

- float32 on CPU: oneDNN's linear kernel on ``nn.Linear``'s own ``(out, in)`` weight. On the 2-core AMD
  Zen 5 CPU of session 23 MKL's GEMM (``torch.addmm``) ran at under half of oneDNN's speed on every step
  shape (40 rows, 2 threads: 256 -> 2048 471 vs 134 us; 650 -> 2600 865 vs 416 us); on the Intel AMX CPU
  of session 22 oneDNN was about as fast as the row-major MKL product below (docs/decoding.md, "Fast paths").
- float32 elsewhere (GPUs; CPU builds without oneDNN): ``torch.addmm`` on a row-major ``(in, out)`` copy.
  With ``nn.Linear``'s transposed read MKL was 1.2-1.6x slower on the Intel CPU of session 21 (40 rows,
  fp32 650 -> 2600 85 -> 140 GFLOP/s, 256 -> 2048 95 -> 131); the two layouts gave the same bits.
- bf16: ``torch.addmm`` on the transposed view (oneDNN underneath), the layout the bf16 path was measured in.

What is derived from a weight (the row-major copy) is made once and reused while the weight is unchanged
(same storage, same version counter), so searches do not pay for it. Narrow layers (fewer than
:data:`MIN_OUT_FEATURES` outputs, e.g. the 41-token output layers) keep ``nn.Linear``: there the other
routes were no faster.
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


def _onednn_linear_available() -> bool:
    try:
        return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    except (AttributeError, RuntimeError):
        return False


#: multiply float32 search rows on CPU through oneDNN's linear kernel (set False to use MKL's GEMM with the
#: row-major copies everywhere, as before session 23; cached matrices follow the setting)
ONEDNN_FP32 = _onednn_linear_available()


def _linear_flop(x_shape, w_shape, *args, **kwargs) -> int:
    rows = 1
    for d in x_shape[:-1]:
        rows *= d
    return 2 * rows * x_shape[-1] * w_shape[0]


#: FLOP formulas for ``torch.utils.flop_counter.FlopCounterMode(custom_mapping=...)``: the counter does not
#: know oneDNN's linear op (benchmarks/decode.py passes these)
FLOP_FORMULAS = ({torch.ops.mkldnn._linear_pointwise: _linear_flop} if ONEDNN_FP32 else {})


class Matrix:
    """A weight of the search as the right-hand side of few-row products ``x @ W^T (+ b)``, by the route of
    its dtype and device (module docstring): oneDNN's linear kernel for float32 on CPU, ``torch.addmm`` on a
    row-major copy for other float32, on the transposed view for bf16. For inputs that record a gradient
    (never in a search) the oneDNN route, which has no derivative, is skipped."""

    __slots__ = ("weight", "kn", "onednn")

    def __init__(self, weight: Tensor) -> None:
        w = weight.detach()
        self.onednn = ONEDNN_FP32 and w.dtype == torch.float32 and w.device.type == "cpu"
        self.weight = w.contiguous() if self.onednn else w
        self.kn = self.weight.t() if self.onednn else layout(w)

    @property
    def dtype(self) -> torch.dtype:
        return self.weight.dtype

    def mm(self, x: Tensor, bias: Tensor | None = None) -> Tensor:
        """``x @ W^T + bias`` (bias 1-D or None)."""
        if self.onednn and x.dtype == torch.float32 and not (x.requires_grad and torch.is_grad_enabled()):
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, bias, "none", [], "")
        return torch.mm(x, self.kn) if bias is None else torch.addmm(bias, x, self.kn)

    def acc(self, acc: Tensor, x: Tensor) -> Tensor:
        """``acc + x @ W^T`` for a full (rows, out) accumulator of the weight's dtype."""
        if self.onednn and x.dtype == torch.float32 and not (x.requires_grad and torch.is_grad_enabled()):
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, None, "none", [], "").add_(acc)
        return torch.addmm(acc, x, self.kn)


def for_product(weight: Tensor) -> Matrix:
    """:class:`Matrix` of a parameter, cached per weight tensor until the weight changes."""
    hit = _KN.get(weight)
    key = tensor_key(weight) + (ONEDNN_FP32,)
    if hit is not None and hit[0] == key:
        return hit[1]
    kn = Matrix(weight)
    _KN[weight] = (key, kn)
    return kn


def uses_row_major(m: nn.Module) -> bool:
    """A plain float32 ``nn.Linear`` wide enough for the search's own product (:class:`Matrix`) to pay."""
    return type(m) is nn.Linear and m.weight.dtype == torch.float32 and m.out_features >= MIN_OUT_FEATURES
