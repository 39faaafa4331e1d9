"""Bookkeeping of bad utterances: one warning per item, counts per epoch, and a hard stop when too many fail.

Lives in the main process (the data module feeds it from each batch), so counts from all DataLoader
workers end up in one place.
"""
from __future__ import annotations

import logging
import warnings
from collections import Counter
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


class TooManyBadItems(RuntimeError):
    """More than ``max_bad_fraction`` of the utterances seen could not be loaded."""


@dataclass
class BadItemTracker:
    """Counts bad items and non-fatal notes for one stage; ``check`` raises past ``max_bad_fraction``."""

    stage: str
    max_bad_fraction: float = 0.05
    min_items_for_check: int = 50
    seen: int = 0
    bad: int = 0
    reasons: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    #: id -> (path, reason) of every skipped utterance, for the test reports (docs/data.md, "Bad input")
    skipped: dict = field(default_factory=dict)
    _warned: set = field(default_factory=set)

    def record_bad(self, uid: str, path: str, reason: str) -> None:
        if uid in self.skipped:  # met again (e.g. tried as a replacement in the same epoch): counted once
            return
        self.bad += 1
        self.seen += 1
        self.reasons[reason.split(" (")[0]] += 1
        self.skipped.setdefault(uid, (str(path), reason))
        message = f"[{self.stage}] skipping utterance {uid}: {path}: {reason}"
        if len(self.examples) < 10:
            self.examples.append(message)
        if uid not in self._warned:
            self._warned.add(uid)
            warnings.warn(message, stacklevel=2)

    def record_good(self, count: int = 1) -> None:
        self.seen += count

    def record_note(self, note: str) -> None:
        kind = note.split(":", 1)[0]
        self.notes[kind] += 1
        key = ("note", note)
        if key not in self._warned and len(self._warned) < 10_000:
            self._warned.add(key)
            log.warning("[%s] %s", self.stage, note)

    @property
    def fraction(self) -> float:
        return self.bad / self.seen if self.seen else 0.0

    def check(self, final: bool = False) -> None:
        if (final or self.seen >= self.min_items_for_check) and self.fraction > self.max_bad_fraction:
            raise TooManyBadItems(
                f"[{self.stage}] {self.bad} of {self.seen} utterances ({self.fraction:.1%}) could not be loaded, more "
                f"than max_bad_fraction={self.max_bad_fraction}. Fix the data (re-run preprocessing) or raise "
                f"max_bad_fraction. Reasons: {dict(self.reasons)}. Examples:\n  " + "\n  ".join(self.examples))

    def summary(self) -> dict[str, float]:
        out = {"seen": float(self.seen), "bad": float(self.bad), "bad_fraction": self.fraction}
        out.update({f"note_{k}": float(v) for k, v in self.notes.items()})
        return out

    def reset(self) -> None:
        self.seen = self.bad = 0
        self.reasons.clear()
        self.notes.clear()
        self.skipped.clear()
