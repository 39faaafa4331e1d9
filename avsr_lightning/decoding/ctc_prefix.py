"""Vectorised CTC prefix scores (Watanabe et al. 2017, Alg. 2; batched as in Seki et al. 2019).

For a prefix h (sos + L tokens) and every candidate token c, the prefix probability
psi(h.c) = sum over alignments of the frames whose labelling starts with h.c. It is computed for all
hypotheses of all utterances and all (or the pre-beam selected) candidate tokens at once; the only loop
is over time frames, which the recursion makes inherently sequential.

State per hypothesis: the forward variables ``r`` (T, 2, N) = [log r^n_t(h), log r^b_t(h)] and the
prefix score ``log psi(h)`` (N,) stored when h was selected. Numbers follow the reference
(``CTCPrefixScoreTH``): log-zero is the finite constant -1e10, padded frames of shorter utterances
become "blank with probability one", eos scores the complete sequence log(r^n_{T-1} + r^b_{T-1}) at the
utterance's own last frame, and blank is never a candidate.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

LOG_ZERO = -1e10


@dataclass
class CTCPrefixState:
    """Selected-hypothesis state: forward variables (T, 2, N) and log psi(h) (N,)."""

    r: Tensor
    log_psi: Tensor

    def index_select(self, idx: Tensor) -> "CTCPrefixState":
        return CTCPrefixState(self.r.index_select(2, idx), self.log_psi.index_select(0, idx))


@dataclass
class CTCPrefixCandidates:
    """Result of scoring: log psi(h.c) for every (hypothesis, token) and the forward variables of the
    scored tokens, (T, 2, N, S) with S = V, or S = pre-beam size plus the map token -> column."""

    log_psi: Tensor  # (N, V)
    r: Tensor  # (T, 2, N, S)
    column_of_token: Tensor | None  # (N, V) long, -1 = not scored; None when S = V

    def select(self, hyp_idx: Tensor, token: Tensor) -> CTCPrefixState:
        """State of the new hypotheses h.c for source hypotheses ``hyp_idx`` and tokens ``token`` (M,)."""
        if self.column_of_token is None:
            column = token
        else:
            column = self.column_of_token[hyp_idx, token].clamp_min(0)
        r = self.r[:, :, hyp_idx, column]  # (T, 2, M)
        return CTCPrefixState(r, self.log_psi[hyp_idx, token])


class CTCPrefixScorer:
    """CTC prefix scores for hypotheses over a batch of utterances.

    Args:
        log_probs: (B, T, V) CTC log-posteriors (any float dtype; computed in float32).
        lengths: (B,) valid frames per utterance.
        blank, eos: token ids.
        joint: run the forward recursion on one joint [phi | r^n | r^b] tensor, two kernels per frame
            instead of four plus their indexing (:meth:`_forward_joint`; the same values). ``False`` is the
            former loop (the benchmarks' ``before``).
    """

    def __init__(self, log_probs: Tensor, lengths: Tensor, blank: int, eos: int, joint: bool = False) -> None:
        self.joint = joint
        x = log_probs.float()
        b, t, v = x.shape
        self.blank, self.eos, self.vocab_size, self.num_frames = blank, eos, v, t
        lengths = lengths.to(x.device).long()
        padded = torch.arange(t, device=x.device).unsqueeze(0) >= lengths.unsqueeze(1)  # (B, T)
        filler = torch.full((v,), LOG_ZERO, dtype=x.dtype, device=x.device)
        filler[blank] = 0.0
        x = torch.where(padded.unsqueeze(-1), filler, x)
        self.x = x.transpose(0, 1).contiguous()  # (T, B, V)
        self.end_frames = (lengths - 1).clamp_min(0)  # (B,)

    def initial_state(self, hyp_to_utt: Tensor) -> CTCPrefixState:
        """State of the sos prefix for hypotheses belonging to utterances ``hyp_to_utt`` (N,)."""
        xb = self.x[:, :, self.blank].index_select(1, hyp_to_utt)  # (T, N)
        r = torch.stack([torch.full_like(xb, LOG_ZERO), torch.cumsum(xb, 0)], dim=1)
        return CTCPrefixState(r, torch.zeros(hyp_to_utt.numel(), dtype=xb.dtype, device=xb.device))

    def score(self, state: CTCPrefixState, last_token: Tensor, prefix_length: int, hyp_to_utt: Tensor,
              scoring_ids: Tensor | None = None) -> CTCPrefixCandidates:
        """log psi(h.c) for all hypotheses h (N,) and tokens c.

        ``prefix_length`` is the number of tokens of h after sos (the same for all, the search is
        synchronous); ``last_token`` (N,) the last token of h (sos at the start); ``scoring_ids`` (N, S)
        restricts the computation to a pre-beam, every other token then gets log-zero (eos excepted).
        """
        t_total, v = self.num_frames, self.vocab_size
        n = hyp_to_utt.numel()
        x_utt = self.x.index_select(1, hyp_to_utt)  # (T, N, V)
        xb = x_utt[:, :, self.blank]  # (T, N)
        if scoring_ids is None:
            x_c = x_utt
            is_last = torch.arange(v, device=x_c.device).unsqueeze(0) == last_token.unsqueeze(1)
            column_of_token = None
        else:
            s = scoring_ids.size(1)
            x_c = torch.gather(x_utt, 2, scoring_ids.unsqueeze(0).expand(t_total, n, s))
            is_last = scoring_ids == last_token.unsqueeze(1)
            column_of_token = torch.full((n, v), -1, dtype=torch.long, device=x_c.device)
            column_of_token.scatter_(1, scoring_ids, torch.arange(s, device=x_c.device).expand(n, s))
        r_prev = state.r
        r_sum = torch.logsumexp(r_prev, dim=1)  # (T, N): log(r^n + r^b) of h
        # phi_t = r^b_t(h) if c repeats the last label of h, else r^n_t(h) + r^b_t(h)
        log_phi = torch.where(is_last.unsqueeze(0), r_prev[:, 1].unsqueeze(-1), r_sum.unsqueeze(-1))
        start = max(prefix_length, 1)
        if self.joint:
            r = self._forward_joint(x_c, xb, log_phi, start, prefix_length == 0)
        else:
            # forward variables of h.c, written in place: r[t, 0] = log r^n_t, r[t, 1] = log r^b_t
            r = torch.full((t_total, 2) + tuple(x_c.shape[1:]), LOG_ZERO, dtype=x_c.dtype, device=x_c.device)
            if prefix_length == 0:
                r[0, 0] = x_c[0]
            xb_c = xb.unsqueeze(-1)
            for t in range(start, t_total):
                rn_prev, rb_prev = r[t - 1, 0], r[t - 1, 1]
                torch.logaddexp(rn_prev, rb_prev, out=r[t, 1])
                r[t, 1] += xb_c[t]
                torch.logaddexp(rn_prev, log_phi[t - 1], out=r[t, 0])
                r[t, 0] += x_c[t]
        # psi = r^n_{start-1} + sum_{t >= start} phi_{t-1} x_t(c)
        if start < t_total:
            terms = torch.cat([(log_phi[start - 1:t_total - 1] + x_c[start:]), r[start - 1, 0].unsqueeze(0)], 0)
        else:
            terms = r[start - 1, 0].unsqueeze(0)
        psi_scored = torch.logsumexp(terms, dim=0)  # (N, S)
        if scoring_ids is None:
            log_psi = psi_scored
        else:
            log_psi = torch.full((n, v), LOG_ZERO, dtype=psi_scored.dtype, device=psi_scored.device)
            log_psi.scatter_(1, scoring_ids, psi_scored)
        end = self.end_frames.index_select(0, hyp_to_utt)
        log_psi[:, self.eos] = r_sum.gather(0, end.unsqueeze(0)).squeeze(0)
        log_psi[:, self.blank] = LOG_ZERO
        return CTCPrefixCandidates(log_psi, r, column_of_token)

    @staticmethod
    def _forward_joint(x_c: Tensor, xb: Tensor, log_phi: Tensor, start: int, from_sos: bool) -> Tensor:
        """The forward variables (T, 2, N, S) of h.c, as a view of one (T, 3, N, S) tensor ``w`` holding
        [phi, r^n, r^b] per frame. The two recursions

            r^n_t = logaddexp(r^n_{t-1}, phi_{t-1}) + x_t(c),   r^b_t = logaddexp(r^n_{t-1}, r^b_{t-1}) + x_t(blank)

        share their first operand, and the second operands ``w[t-1, 0::2]`` and the results ``w[t, 1:]``
        are each one strided view: one ``logaddexp`` and one add per frame, on per-frame views made once."""
        t_total = x_c.size(0)
        w = torch.full((t_total, 3) + tuple(x_c.shape[1:]), LOG_ZERO, dtype=x_c.dtype, device=x_c.device)
        w[:, 0] = log_phi
        if from_sos:
            w[0, 1] = x_c[0]
        emit = torch.stack([x_c, xb.unsqueeze(-1).expand_as(x_c)], 1).unbind(0)  # (2, N, S) per frame
        rn, phi_rb, out = w[:, 1].unbind(0), w[:, 0::2].unbind(0), w[:, 1:].unbind(0)
        for t in range(start, t_total):
            torch.logaddexp(rn[t - 1], phi_rb[t - 1], out=out[t])
            out[t].add_(emit[t])
        return w[:, 1:]
