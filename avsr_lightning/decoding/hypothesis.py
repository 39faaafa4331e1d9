"""A decoded hypothesis: what every decoder (greedy or beam) returns per utterance."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Hypothesis:
    """One hypothesis.

    ``tokens`` are vocabulary ids without sos/eos; ``score`` is the total weighted score used to rank
    (log domain, higher is better); ``scores`` holds the unweighted per-scorer sums (e.g. ``decoder``,
    ``ctc``, ``lm``, ``length_bonus``) so scores stay comparable with the reference search.
    """

    tokens: list[int]
    score: float
    text: str = ""
    scores: dict[str, float] = field(default_factory=dict)
