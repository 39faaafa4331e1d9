"""Greedy decoders: fast, batched, used for validation WER and as the default test decoder.

Both follow the decoder contract ``decoder(model, batch) -> list[list[Hypothesis]]`` (one 1-best list
per utterance). Unlike the reference's validation decoding (forced to the reference length and cut at
the first ``<eos>``, spec §8.7), the attention decoder stops at ``<eos>`` on its own and is bounded only
by the number of input frames, as in the reference beam search.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from avsr_lightning.batch import AVBatch
from avsr_lightning.decoding.hypothesis import Hypothesis
from avsr_lightning.text import Tokenizer

__all__ = ["CTCGreedyDecoder", "AttentionGreedyDecoder", "ctc_collapse"]


def ctc_collapse(best: Sequence[int], blank: int = 0) -> list[int]:
    """Best path -> tokens: merge repeats, then drop blanks."""
    out, previous = [], None
    for t in best:
        if t != previous and t != blank:
            out.append(t)
        previous = t
    return out


def _text(tokenizer: Tokenizer | None, tokens: list[int]) -> str:
    return tokenizer.decode(tokens) if tokenizer is not None else ""


class CTCGreedyDecoder:
    """Best-path CTC decoding over the encoder output (one device->host copy per batch).

    ``tokenizer`` only fills :attr:`Hypothesis.text`; without it the text is left for the caller.
    """

    def __init__(self, tokenizer: Tokenizer | None = None) -> None:
        self.tokenizer = tokenizer

    @torch.no_grad()
    def __call__(self, model, batch: AVBatch) -> list[list[Hypothesis]]:
        features, lengths = model.encode(*batch.model_inputs())
        log_probs = model.ctc.log_probs(features)  # (B, T, V)
        best_scores, best = log_probs.max(-1)  # (B, T)
        valid = torch.arange(best.shape[1], device=best.device)[None, :] < lengths[:, None]
        totals = (best_scores * valid).sum(-1)
        best, lengths, totals = best.cpu(), lengths.cpu(), totals.float().cpu()
        out = []
        for b in range(best.shape[0]):
            tokens = ctc_collapse(best[b, : int(lengths[b])].tolist(), model.blank)
            score = float(totals[b])
            out.append([Hypothesis(tokens, score, _text(self.tokenizer, tokens), {"ctc": score})])
        return out


class AttentionGreedyDecoder:
    """Batched autoregressive argmax decoding with the incremental decoder API.

    Each utterance stops at its first ``<eos>``; it is forced to stop after ``max_len_ratio`` × its
    number of encoder frames (1.0 = the reference beam search's ``maxlen``).
    """

    def __init__(self, tokenizer: Tokenizer | None = None, max_len_ratio: float = 1.0) -> None:
        if max_len_ratio <= 0:
            raise ValueError(f"AttentionGreedyDecoder max_len_ratio must be > 0, got {max_len_ratio}")
        self.tokenizer = tokenizer
        self.max_len_ratio = max_len_ratio

    @torch.no_grad()
    def __call__(self, model, batch: AVBatch) -> list[list[Hypothesis]]:
        memory, lengths = model.encode(*batch.model_inputs())
        B, T = memory.shape[:2]
        device = memory.device
        memory_mask = (torch.arange(T, device=device)[None, :] < lengths[:, None])[:, None, :]
        max_lens = (lengths.float() * self.max_len_ratio).ceil().long().clamp_min(1)
        steps = int(max_lens.max())  # one sync, before the loop
        ys = torch.full((B, 1), model.sos, dtype=torch.long, device=device)
        finished = torch.zeros(B, dtype=torch.bool, device=device)
        scores = torch.zeros(B, device=device)
        cache = None
        for i in range(steps + 1):
            log_probs, cache = model.decoder.step(ys, memory, memory_mask, cache)
            token = log_probs.argmax(-1)
            token = torch.where(max_lens <= i, torch.full_like(token, model.eos), token)
            step_score = log_probs.gather(1, token[:, None]).squeeze(1)
            scores = scores + torch.where(finished, torch.zeros_like(step_score), step_score.float())
            token = torch.where(finished, torch.full_like(token, model.eos), token)
            ys = torch.cat([ys, token[:, None]], dim=1)
            finished = finished | (token == model.eos)
            if bool(finished.all()):
                break
        return self._hypotheses(ys[:, 1:].cpu(), scores.cpu(), model.eos)

    def _hypotheses(self, ys: Tensor, scores: Tensor, eos: int) -> list[list[Hypothesis]]:
        out = []
        for b in range(ys.shape[0]):
            row = ys[b].tolist()
            tokens = row[: row.index(eos)] if eos in row else row
            score = float(scores[b])
            out.append([Hypothesis(tokens, score, _text(self.tokenizer, tokens), {"decoder": score})])
        return out
