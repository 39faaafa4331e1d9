"""Word and character error counts, and a DDP-correct corpus error-rate metric.

Definitions follow the reference scorer (spec §5.5): corpus-level rates (summed edit distance over
summed reference length, ×100); WER on words, CER on characters with spaces removed. Unlike the
reference, both sides go through :func:`normalize_transcript` first, so stray spaces in a hypothesis
never count as empty words.

:class:`ErrorRate` is a torchmetrics ``Metric`` whose states are per-utterance rows (id hash, errors,
reference length). They are concatenated across ranks and de-duplicated by utterance id before summing,
so an utterance that a distributed sampler repeated to even out ranks is still counted exactly once.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
from rapidfuzz.distance import Levenshtein
from torch import Tensor
from torchmetrics import Metric

from avsr_lightning.text import normalize_transcript

__all__ = ["ErrorCounts", "error_counts", "word_errors", "char_errors", "corpus_rates", "utterance_key",
           "ErrorRate"]


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(word edit distance, reference words) after normalisation."""
    ref = normalize_transcript(reference).split()
    hyp = normalize_transcript(hypothesis).split()
    return Levenshtein.distance(ref, hyp), len(ref)


def char_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(character edit distance, reference characters), spaces removed (reference definition)."""
    ref = normalize_transcript(reference).replace(" ", "")
    hyp = normalize_transcript(hypothesis).replace(" ", "")
    return Levenshtein.distance(ref, hyp), len(ref)


@dataclass(frozen=True)
class ErrorCounts:
    word_errors: int
    words: int
    char_errors: int
    chars: int


def error_counts(reference: str, hypothesis: str) -> ErrorCounts:
    we, nw = word_errors(reference, hypothesis)
    ce, nc = char_errors(reference, hypothesis)
    return ErrorCounts(we, nw, ce, nc)


def corpus_rates(counts: Iterable[ErrorCounts]) -> dict[str, float]:
    """``{"wer", "cer"}`` in percent plus the totals, for reports."""
    counts = list(counts)
    we = sum(c.word_errors for c in counts)
    nw = sum(c.words for c in counts)
    ce = sum(c.char_errors for c in counts)
    nc = sum(c.chars for c in counts)
    return {"wer": 100.0 * we / max(1, nw), "cer": 100.0 * ce / max(1, nc), "utterances": len(counts),
            "word_errors": we, "words": nw, "char_errors": ce, "chars": nc}


def utterance_key(utt_id: str) -> int:
    """A stable 63-bit integer for an utterance id (stable across processes, unlike ``hash``)."""
    digest = hashlib.blake2b(utt_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


class ErrorRate(Metric):
    """Corpus WER and CER (percent) over ``update(ids, references, hypotheses)`` calls.

    ``compute()`` returns ``{"wer": tensor, "cer": tensor}``; rows with a repeated id count once.
    """

    full_state_update = False
    higher_is_better = False
    is_differentiable = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("keys", default=[], dist_reduce_fx="cat")
        self.add_state("rows", default=[], dist_reduce_fx="cat")

    def update(self, ids: Sequence[str], references: Sequence[str], hypotheses: Sequence[str]) -> None:
        if not (len(ids) == len(references) == len(hypotheses)):
            raise ValueError(f"ErrorRate.update: got {len(ids)} ids, {len(references)} references and "
                             f"{len(hypotheses)} hypotheses; they must match")
        if not ids:
            return
        counts = [error_counts(r, h) for r, h in zip(references, hypotheses)]
        self.keys.append(torch.tensor([utterance_key(i) for i in ids], dtype=torch.long, device=self.device))
        self.rows.append(torch.tensor([[c.word_errors, c.words, c.char_errors, c.chars] for c in counts],
                                      dtype=torch.long, device=self.device))

    def compute(self) -> dict[str, Tensor]:
        keys, rows = self.keys, self.rows
        if isinstance(keys, list):  # not synced (single process) or nothing seen
            if not keys:
                nan = torch.tensor(float("nan"), device=self.device)
                return {"wer": nan, "cer": nan.clone()}
            keys, rows = torch.cat(keys), torch.cat(rows)
        _, first = _first_occurrence(keys)
        total = rows[first].sum(0).double()
        return {"wer": 100.0 * total[0] / total[1].clamp_min(1), "cer": 100.0 * total[2] / total[3].clamp_min(1)}


def _first_occurrence(keys: Tensor) -> tuple[Tensor, Tensor]:
    """Unique keys and the index of the first row holding each."""
    unique, inverse = torch.unique(keys, return_inverse=True)
    positions = torch.arange(keys.numel(), device=keys.device)
    first = torch.full((unique.numel(),), keys.numel(), dtype=torch.long, device=keys.device)
    first = first.scatter_reduce(0, inverse, positions, reduce="amin")
    return unique, first
