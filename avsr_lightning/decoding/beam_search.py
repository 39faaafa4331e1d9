"""Batched joint CTC/attention one-pass beam search (the reference ``BatchBeamSearch``, many utterances).

All hypotheses of all utterances live in one set of tensors. Beam slot k of active utterance g is slot
``g * beam + k``; only *live* hypotheses are rows of the scorers' tensors (``compact=True``, the
default): one row per utterance at step 0, and a hypothesis that ended or an utterance that finished
is never scored again. One step scores every (live hypothesis, token) pair with every scorer, scatters
the weighted sums into the (utterance, slot x token) grid (dead slots at -inf, exactly what scoring
them would give) and takes the ``beam`` best expansions per utterance with one ``topk``; there is no
Python loop over hypotheses or tokens.

Rules that decide the numbers, as in the reference (golden README §12, spec §5.3):

- maxlen = number of valid encoder frames; the loop runs i = 0 .. maxlen-1; minlen is not enforced.
- weighted score = sum of the full scorers (insertion order) + the partial (CTC) scorer + score(h);
  scorers with weight 0 are dropped.
- pre-beam: when ``int(pre_beam_ratio * beam) < vocab`` and a partial scorer exists, CTC is computed
  only for each hypothesis' top tokens by the decoder score (eos always gets its real CTC score).
- expansions ending in eos move to the ended list in top-k order, *without* any final score; at
  i = maxlen-1 eos is appended unscored to every running hypothesis.
- end detection (maxlenratio = 0): stop when, for m = 0, 1, 2, the best ended hypothesis with
  len(yseq) = i - m (sos and eos counted) exists and is more than 10 below the best ended score.
- result: ended hypotheses sorted by raw score (stable, no length normalisation).

Host-device synchronisations per step: the number of live rows and whether some utterance finished.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import Tensor

from .scorers import Scorer, SearchContext

#: end detection margin of the reference (``np.log(1 * np.exp(-10))``)
END_DETECT_MARGIN = -10.0
END_DETECT_WINDOW = 3


@dataclass
class SearchResult:
    """One ended hypothesis: full ``yseq`` (sos ... eos), weighted ``score``, unweighted per-scorer sums."""

    yseq: list[int]
    score: float
    scores: dict[str, float] = field(default_factory=dict)
    reached_maxlen: bool = False

    def tokens(self, sos: int, eos: int) -> list[int]:
        """Token ids without the leading sos and any eos."""
        return [t for t in self.yseq[1:] if t != eos and t != sos]


class BatchBeamSearch:
    """Joint CTC/attention beam search over a batch of utterances.

    Args:
        scorers: name -> scorer (insertion order is the order the full scores are summed in).
        weights: name -> weight; scorers with weight 0 (or missing) are not used.
        beam_size, vocab_size, sos, eos: search sizes and special tokens.
        pre_beam_ratio: pre-beam size = ``int(ratio * beam_size)``; used when smaller than the vocabulary.
        pre_beam_score_key: ``"decoder"`` (the decoder's own score) or ``"full"`` (weighted full scores).
        end_detect: apply the reference end detection (its maxlenratio = 0 behaviour).
        compact: score only live hypotheses (one row per utterance at step 0; hypotheses that ended
            and utterances that finished are dropped from the running batch). ``False`` scores every
            beam slot every step, dead ones at -inf (the former behaviour, kept for benchmarks and the
            equivalence test); the results are the same either way.
    """

    def __init__(self, scorers: dict[str, Scorer], weights: dict[str, float], beam_size: int, vocab_size: int,
                 sos: int, eos: int, pre_beam_ratio: float = 1.5, pre_beam_score_key: str | None = "decoder",
                 end_detect: bool = True, compact: bool = True) -> None:
        if beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {beam_size}")
        self.scorers = {k: s for k, s in scorers.items() if s is not None and weights.get(k, 0.0) != 0.0}
        if not self.scorers:
            raise ValueError("no scorer has a non-zero weight")
        self.weights = {k: float(weights[k]) for k in self.scorers}
        self.full = [k for k, s in self.scorers.items() if not s.partial]
        self.part = [k for k, s in self.scorers.items() if s.partial]
        self.beam, self.vocab_size, self.sos, self.eos = beam_size, vocab_size, sos, eos
        self.pre_beam_size = int(pre_beam_ratio * beam_size)
        if pre_beam_score_key == "decoder" and "decoder" not in self.full:
            pre_beam_score_key = "full"
        self.pre_beam_score_key = pre_beam_score_key
        self.do_pre_beam = (pre_beam_score_key is not None and self.pre_beam_size < vocab_size
                            and len(self.part) > 0 and len(self.full) > 0)
        self.end_detect = end_detect
        self.compact = bool(compact)
        self.names = list(self.scorers)

    # ------------------------------------------------------------------ one step
    def _expand(self, yseq: Tensor, score: Tensor, states: dict, ctx: SearchContext) -> tuple[Tensor, dict, dict]:
        n = yseq.size(0)
        weighted = torch.zeros(n, self.vocab_size, device=yseq.device)
        raw: dict[str, Tensor] = {}
        cands: dict = {}
        for k in self.full:
            raw[k], cands[k] = self.scorers[k].score(yseq, states[k], ctx)
            weighted += self.weights[k] * raw[k]
        scoring_ids = None
        if self.do_pre_beam:
            pre = raw[self.pre_beam_score_key] if self.pre_beam_score_key in raw else weighted
            scoring_ids = torch.topk(pre, self.pre_beam_size, dim=1)[1]
        for k in self.part:
            raw[k], cands[k] = self.scorers[k].score(yseq, states[k], ctx, scoring_ids)
            weighted += self.weights[k] * raw[k]
        weighted += score.unsqueeze(1)
        return weighted, raw, cands

    # ------------------------------------------------------------------ the search
    @torch.no_grad()
    def __call__(self, scorer_ctx: SearchContext, maxlens: Tensor) -> list[list[SearchResult]]:
        """Decode every utterance of ``scorer_ctx.memory``; ``maxlens`` (B,) long = steps allowed per
        utterance (the valid encoder frames). Returns per utterance its ended hypotheses, best first
        (an empty list for maxlen 0)."""
        device = scorer_ctx.memory.device
        batch, beam, vocab = maxlens.numel(), self.beam, self.vocab_size
        maxlens_host = [int(m) for m in maxlens.tolist()]
        active_host = [b for b in range(batch) if maxlens_host[b] > 0]
        records: list[tuple[Tensor, ...]] = []
        if not active_host:
            return [[] for _ in range(batch)]
        active = torch.tensor(active_host, device=device, dtype=torch.long)
        a = len(active_host)
        # The slot grid is (active utterance g, beam slot k), flat g * beam + k. Only live hypotheses are
        # rows of the scorers' tensors: ``row_slot`` (N,) is the slot of every row (compact: one row per
        # utterance at the start; without compaction every slot, dead ones scored at -inf).
        if self.compact:
            row_slot = torch.arange(a, device=device) * beam
            score = torch.zeros(a, device=device)
        else:
            row_slot = torch.arange(a * beam, device=device)
            score = torch.full((a, beam), float("-inf"), device=device)
            score[:, 0] = 0.0
            score = score.view(-1)
        slot_utt = active.repeat_interleave(beam)  # slot -> utterance of the original batch
        ctx = SearchContext(scorer_ctx.memory, scorer_ctx.memory_lengths, slot_utt.index_select(0, row_slot), 0,
                            row_slot, beam, a)
        yseq = torch.full((row_slot.numel(), 1), self.sos, dtype=torch.long, device=device)
        acc = torch.zeros(row_slot.numel(), len(self.names), device=device)
        states = {k: s.init_state(ctx) for k, s in self.scorers.items()}
        maxlen_dev = maxlens.to(device).index_select(0, active)
        longest = max(maxlens_host) + 3
        best_by_len = torch.full((a, longest), float("-inf"), device=device)
        best_ended = torch.full((a,), float("-inf"), device=device)
        base = torch.arange(a, device=device).unsqueeze(1) * beam
        i = 0
        while a > 0:
            ctx.prefix_length = i
            n = row_slot.numel()
            weighted, raw, cands = self._expand(yseq, score, states, ctx)
            if n == a * beam:  # every slot is a row (no compaction, or a full beam): rows are in slot order
                grid = weighted
                slot_row = None
            else:
                grid = weighted.new_full((a * beam, vocab), float("-inf")).index_copy_(0, row_slot, weighted)
                slot_row = torch.zeros(a * beam, dtype=torch.long, device=device)
                slot_row.index_copy_(0, row_slot, torch.arange(n, device=device))
            top_score, top_idx = grid.view(a, beam * vocab).topk(beam, dim=1)
            prev = torch.div(top_idx, vocab, rounding_mode="floor")
            token = (top_idx - prev * vocab).view(-1)
            src_slot = (base + prev).view(-1)
            # -inf expansions (fewer live candidates than slots) point at any row; they are never live
            src = src_slot if slot_row is None else slot_row.index_select(0, src_slot)
            score = top_score.view(-1)
            gained = torch.stack([raw[k] for k in self.names], dim=2)[src, token]  # (slots, scorers)
            acc = acc.index_select(0, src) + gained
            yseq = torch.cat([yseq.index_select(0, src), token.unsqueeze(1)], dim=1)
            live = torch.isfinite(score)
            at_max = (maxlen_dev == i + 1).repeat_interleave(beam)
            chose_eos = token == self.eos
            ended = live & (chose_eos | at_max)
            records.append((slot_utt, ended, score, acc, yseq, at_max))
            # end detection bookkeeping: best ended score per (utterance, length i + 2)
            ended_scores = torch.where(ended & ~at_max, score, float("-inf")).view(a, beam).amax(1)
            ended_any = torch.where(ended, score, float("-inf")).view(a, beam).amax(1)
            best_by_len[:, i + 2] = ended_scores
            best_ended = torch.maximum(best_ended, ended_any)
            score = torch.where(ended, float("-inf"), score)
            running = torch.isfinite(score)
            finished = at_max.view(a, beam)[:, 0] | ~running.view(a, beam).any(1)
            if self.end_detect and i >= END_DETECT_WINDOW - 1:
                # every one of the lengths i - 2 .. i has an ended hypothesis far below the best ended one
                window = best_by_len[:, i - END_DETECT_WINDOW + 1:i + 1]
                far = torch.isfinite(window) & (window - best_ended.unsqueeze(1) < END_DETECT_MARGIN)
                finished = finished | far.all(1)
            i += 1
            keep_slot = ~finished.repeat_interleave(beam)
            if self.compact:
                keep_slot = keep_slot & running
            next_slots = keep_slot.nonzero().view(-1)  # host sync: the number of rows of the next step
            if next_slots.numel() == 0:
                break
            src_next, token_next = src.index_select(0, next_slots), token.index_select(0, next_slots)
            states = {k: self.scorers[k].select(cands[k], src_next, token_next) for k in self.names}
            yseq, score, acc = (yseq.index_select(0, next_slots), score.index_select(0, next_slots),
                                acc.index_select(0, next_slots))
            row_slot = next_slots
            if bool(finished.any()):  # drop finished utterances from the slot grid
                keep_utt = (~finished).nonzero().view(-1)
                new_group = torch.cumsum((~finished).long(), 0) - 1  # old group -> new group
                groups = torch.div(row_slot, beam, rounding_mode="floor")
                row_slot = new_group.index_select(0, groups) * beam + (row_slot - groups * beam)
                a = keep_utt.numel()
                states = {k: self.scorers[k].compact(states[k], keep_utt) for k in self.names}
                slot_utt = slot_utt.view(-1, beam).index_select(0, keep_utt).view(-1)
                maxlen_dev = maxlen_dev.index_select(0, keep_utt)
                best_by_len = best_by_len.index_select(0, keep_utt)
                best_ended = best_ended.index_select(0, keep_utt)
                base = torch.arange(a, device=device).unsqueeze(1) * beam
            ctx.hyp_to_utt = slot_utt.index_select(0, row_slot)
            ctx.row_slot, ctx.groups = row_slot, a
        return self._collect(records, batch)

    def _collect(self, records: Sequence[tuple[Tensor, ...]], batch: int) -> list[list[SearchResult]]:
        """Ended hypotheses per utterance in the reference order (step, then top-k rank), stably sorted."""
        results: list[list[SearchResult]] = [[] for _ in range(batch)]
        for utt, ended, score, acc, yseq, at_max in records:
            rows = ended.nonzero().view(-1).cpu()
            if rows.numel() == 0:
                continue
            utt_l = utt.cpu()[rows].tolist()
            score_l = score.cpu()[rows].tolist()
            acc_l = acc.cpu()[rows].tolist()
            yseq_l = yseq.cpu()[rows].tolist()
            max_l = at_max.cpu()[rows].tolist()
            for u, s, sc, ys, reached in zip(utt_l, score_l, acc_l, yseq_l, max_l):
                if reached:
                    ys = ys + [self.eos]
                results[u].append(SearchResult(ys, s, dict(zip(self.names, sc)), reached))
        for u in range(batch):
            results[u].sort(key=lambda h: h.score, reverse=True)
        return results
