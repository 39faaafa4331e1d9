"""Scorers for the batched beam search.

Every scorer works on all N = (utterances x beam) hypotheses at once:

- ``init_state(ctx)``: state for the start hypotheses (sos), one row per hypothesis slot;
- ``score(yseq, state, ctx, scoring_ids)``: (N, V) unweighted scores of every next token, plus a
  *candidate* state holding whatever is needed to build the state of any expansion;
- ``select(candidate, src, token)``: the state of the new hypotheses ``yseq[src] + token`` (any number
  of rows: the search passes only the hypotheses that stay live);
- ``compact(state, keep_utt)``: after utterances finished, keep the per-utterance parts of the state
  for the active utterances ``keep_utt`` (indices into the previous step's groups); per-row state
  was already reduced by ``select``.

``partial = True`` marks scorers that honour ``scoring_ids`` (the pre-beam), i.e. the CTC prefix scorer;
they are evaluated after the pre-beam, as in the reference search.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from ..models.rnnlm import RNNLM
from .ctc_prefix import CTCPrefixCandidates, CTCPrefixScorer, CTCPrefixState


@dataclass
class SearchContext:
    """What the scorers may read: the encoder output and which utterance each hypothesis row belongs to."""

    memory: Tensor  # (B, T, D)
    memory_lengths: Tensor  # (B,)
    hyp_to_utt: Tensor  # (N,) long, row -> utterance of the original batch
    prefix_length: int = 0  # tokens after sos in every running hypothesis (synchronous search)
    row_slot: Tensor | None = None  # (N,) long, row -> slot g * beam + k of the active-utterance grid
    beam: int = 0  # slots per utterance in that grid
    groups: int = 0  # active utterances (groups of the grid)


class Scorer(Protocol):
    name: str
    partial: bool

    def init_state(self, ctx: SearchContext) -> Any: ...

    def score(self, yseq: Tensor, state: Any, ctx: SearchContext,
              scoring_ids: Tensor | None = None) -> tuple[Tensor, Any]: ...

    def select(self, candidate: Any, src: Tensor, token: Tensor) -> Any: ...

    def compact(self, state: Any, keep_utt: Tensor) -> Any: ...


def _lengths_mask(lengths: Tensor, t: int) -> Tensor:
    return torch.arange(t, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


class AttentionScorer:
    """The Transformer decoder's next-token log-probabilities via ``decoder.step`` with its layer cache."""

    partial = False

    def __init__(self, decoder: nn.Module, name: str = "decoder") -> None:
        self.decoder, self.name = decoder, name

    def init_state(self, ctx: SearchContext) -> dict[str, Any]:
        memory = ctx.memory.index_select(0, ctx.hyp_to_utt)
        lengths = ctx.memory_lengths.index_select(0, ctx.hyp_to_utt)
        # no mask when nothing is padded: identical to the reference's batch-1 call (mask None)
        mask = None
        if bool(ctx.memory_lengths.min() < ctx.memory.size(1)):
            mask = _lengths_mask(lengths, memory.size(1)).unsqueeze(1)
        return {"memory": memory, "mask": mask, "cache": None}

    def score(self, yseq: Tensor, state: dict[str, Any], ctx: SearchContext,
              scoring_ids: Tensor | None = None) -> tuple[Tensor, dict[str, Any]]:
        log_probs, cache = self.decoder.step(yseq, state["memory"], state["mask"], state["cache"])
        return log_probs.float(), {**state, "cache": cache}

    def select(self, candidate: dict[str, Any], src: Tensor, token: Tensor) -> dict[str, Any]:
        return {
            "memory": candidate["memory"].index_select(0, src),
            "mask": None if candidate["mask"] is None else candidate["mask"].index_select(0, src),
            "cache": [c.index_select(0, src) for c in candidate["cache"]],
        }

    def compact(self, state: dict[str, Any], keep_utt: Tensor) -> dict[str, Any]:
        return state


class CTCScorer:
    """CTC prefix scores log psi(h.c) - log psi(h), vectorised over utterances x beam x vocabulary."""

    partial = True

    def __init__(self, ctc_log_probs: Tensor, lengths: Tensor, blank: int, eos: int, name: str = "ctc",
                 joint: bool = False) -> None:
        self.impl = CTCPrefixScorer(ctc_log_probs, lengths, blank, eos, joint=joint)
        self.name = name

    def init_state(self, ctx: SearchContext) -> CTCPrefixState:
        return self.impl.initial_state(ctx.hyp_to_utt)

    def score(self, yseq: Tensor, state: CTCPrefixState, ctx: SearchContext,
              scoring_ids: Tensor | None = None) -> tuple[Tensor, CTCPrefixCandidates]:
        cand = self.impl.score(state, yseq[:, -1], ctx.prefix_length, ctx.hyp_to_utt, scoring_ids)
        return cand.log_psi - state.log_psi.unsqueeze(1), cand

    def select(self, candidate: CTCPrefixCandidates, src: Tensor, token: Tensor) -> CTCPrefixState:
        return candidate.select(src, token)

    def compact(self, state: CTCPrefixState, keep_utt: Tensor) -> CTCPrefixState:
        return state


class RNNLMScorer:
    """Shallow fusion with an :class:`RNNLM`: the last token of each hypothesis is fed with its state.

    Works with any ``RNNLM`` (LSTM or GRU, float or dynamic-quantised modules); the log-softmax the
    search ranks on is float32."""

    partial = False

    def __init__(self, lm: RNNLM, name: str = "lm") -> None:
        self.lm, self.name = lm, name

    def init_state(self, ctx: SearchContext) -> Any:
        # built here, not by ``lm.zero_state``: a quantised LM has no float weight to take the dtype from
        n = ctx.hyp_to_utt.numel()
        h = ctx.memory.new_zeros(self.lm.layers, n, self.lm.units, dtype=_lm_dtype(self.lm))
        return h, (torch.zeros_like(h) if self.lm.rnn_type == "lstm" else None)

    def score(self, yseq: Tensor, state: Any, ctx: SearchContext,
              scoring_ids: Tensor | None = None) -> tuple[Tensor, Any]:
        log_probs, new_state = self.lm.step(yseq[:, -1], state)
        return log_probs.float(), new_state

    def select(self, candidate: Any, src: Tensor, token: Tensor) -> Any:
        return RNNLM.select_state(candidate, src)

    def compact(self, state: Any, keep_utt: Tensor) -> Any:
        return state


def _lm_dtype(lm: nn.Module) -> torch.dtype:
    """Dtype of the LM's recurrent state: its embedding's (float32 for a dynamic-quantised LM)."""
    return lm.embed.weight.dtype


class LengthBonus:
    """+1 for every token (weighted by the length bonus / "penalty" of the reference)."""

    partial = False

    def __init__(self, vocab_size: int, name: str = "length_bonus") -> None:
        self.vocab_size, self.name = vocab_size, name

    def init_state(self, ctx: SearchContext) -> None:
        return None

    def score(self, yseq: Tensor, state: None, ctx: SearchContext,
              scoring_ids: Tensor | None = None) -> tuple[Tensor, None]:
        return torch.ones(1, 1, device=yseq.device).expand(yseq.size(0), self.vocab_size), None

    def select(self, candidate: None, src: Tensor, token: Tensor) -> None:
        return None

    def compact(self, state: None, keep_utt: Tensor) -> None:
        return None
