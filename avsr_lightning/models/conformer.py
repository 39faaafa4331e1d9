"""Conformer encoder (spec §1.4-1.5): Linear input projection + relative positional encoding, then
pre-LayerNorm macaron blocks (half FFN, rel-pos MHSA, convolution module, half FFN, final LayerNorm).

Every LayerNorm uses eps 1e-12 (ESPnet). Reference quirk kept by default (spec §8.13): the convolution
module does not mask padded frames, so the last valid frames of a short utterance see the padding.
``mask_padding=True`` zeroes padded frames before the depthwise convolution and keeps them out of the
BatchNorm training statistics.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .activations import Swish
from .attention import RelPositionMultiHeadAttention, mask_to_bias
from .dropout import Dropout
from .feedforward import PositionwiseFeedForward
from .masking import masked_batch_norm
from .positional import RelPositionalEncoding

LAYER_NORM_EPS = 1e-12


def layer_norm(d_model: int) -> nn.LayerNorm:
    """ESPnet's LayerNorm: eps 1e-12 (it matters for low-variance inputs, golden §3)."""
    return nn.LayerNorm(d_model, eps=LAYER_NORM_EPS)


class ConvolutionModule(nn.Module):
    """pointwise conv (2D) -> GLU -> depthwise conv (k) -> BatchNorm -> Swish -> pointwise conv."""

    def __init__(self, channels: int, kernel_size: int = 31) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"conv_kernel must be odd (symmetric 'same' padding), got {kernel_size}")
        self.pointwise_cov1 = nn.Conv1d(channels, 2 * channels, 1)  # reference spelling
        self.depthwise_conv = nn.Conv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2,
                                        groups=channels)
        self.norm = nn.BatchNorm1d(channels)
        self.activation = Swish()
        self.pointwise_cov2 = nn.Conv1d(channels, channels, 1)

    def forward(self, x: Tensor, valid: Tensor | None = None) -> Tensor:
        """(B, T, C) -> (B, T, C). ``valid`` (B, 1, T) bool: given only by the ``mask_padding`` fix."""
        x = F.glu(self.pointwise_cov1(x.transpose(1, 2)), dim=1)
        if valid is not None:
            x = x * valid.to(x.dtype)
        x = self.activation(masked_batch_norm(self.norm, self.depthwise_conv(x), valid))
        return self.pointwise_cov2(x).transpose(1, 2)


class ConformerBlock(nn.Module):
    """One pre-LN macaron Conformer block with reference attribute names."""

    def __init__(self, d_model: int = 256, heads: int = 4, ffn_dim: int = 2048, conv_kernel: int = 31,
                 dropout: float = 0.1, attention_dropout: float = 0.1) -> None:
        super().__init__()
        # registration order = the reference state-dict order
        self.self_attn = RelPositionMultiHeadAttention(heads, d_model, attention_dropout)
        self.feed_forward = PositionwiseFeedForward(d_model, ffn_dim, dropout)
        self.conv_module = ConvolutionModule(d_model, conv_kernel)
        self.norm_ff = layer_norm(d_model)
        self.norm_mha = layer_norm(d_model)
        # the reference deep-copies the FFN, so both start from the same weights
        self.feed_forward_macaron = copy.deepcopy(self.feed_forward)
        self.norm_ff_macaron = layer_norm(d_model)
        self.norm_conv = layer_norm(d_model)
        self.norm_final = layer_norm(d_model)
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor, pos_emb: Tensor, mask: Tensor | None, mask_bias: Tensor | None = None,
                conv_valid: Tensor | None = None) -> Tensor:
        """x (B, T, D); pos_emb (1, 2T-1, D); mask (B, 1, T) bool True = valid key."""
        x = x + 0.5 * self.dropout(self.feed_forward_macaron(self.norm_ff_macaron(x)))
        h = self.norm_mha(x)
        x = x + self.dropout(self.self_attn(h, h, h, pos_emb, mask, mask_bias=mask_bias))
        x = x + self.dropout(self.conv_module(self.norm_conv(x), conv_valid))
        x = x + 0.5 * self.dropout(self.feed_forward(self.norm_ff(x)))
        return self.norm_final(x)


class ConformerEncoder(nn.Module):
    """``embed`` (Linear + RelPositionalEncoding) -> ``encoders`` (blocks) -> ``after_norm``.

    This is the reference ``Encoder`` without a frontend; the frontend-carrying variants subclass it and
    pass their extra modules as ``before_embed`` / ``after_embed`` so they are registered where the
    reference registers them (state dicts then list keys in the reference order).
    """

    def __init__(self, input_dim: int = 512, d_model: int = 256, heads: int = 4, layers: int = 12,
                 ffn_dim: int = 2048, conv_kernel: int = 31, dropout: float = 0.1,
                 attention_dropout: float = 0.1, mask_padding: bool = False,
                 before_embed: dict[str, nn.Module] | None = None,
                 after_embed: dict[str, nn.Module] | None = None) -> None:
        super().__init__()
        for name, module in (before_embed or {}).items():
            self.add_module(name, module)
        self.embed = nn.Sequential(nn.Linear(input_dim, d_model), RelPositionalEncoding(d_model, dropout))
        for name, module in (after_embed or {}).items():
            self.add_module(name, module)
        self.encoders = nn.ModuleList(
            ConformerBlock(d_model, heads, ffn_dim, conv_kernel, dropout, attention_dropout) for _ in range(layers)
        )
        self.after_norm = layer_norm(d_model)
        self.mask_padding = mask_padding

    def blocks(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """Embed (B, T, input_dim) and run the blocks; no final norm. ``mask`` (B, 1, T) bool."""
        x, pos_emb = self.embed(x)
        # the bias lives in the attention's float32 island under autocast (float32 for bf16 x)
        mask_bias = None if mask is None else mask_to_bias(mask, torch.promote_types(x.dtype, torch.float32))
        conv_valid = mask if (self.mask_padding and mask is not None) else None
        for block in self.encoders:
            x = block(x, pos_emb, mask, mask_bias, conv_valid)
        return x

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """(B, T, input_dim), mask (B, 1, T) -> (B, T, d_model)."""
        return self.after_norm(self.blocks(x, mask))
