"""Everyday-English sentences from a small grammar written for this project.

The vocabulary is small (56 words) and built around *homophenes*: words the lips cannot tell apart,
because they differ only in voicing or nasality (*MOM, BOB, POP*; *THE BAT, THE MAT, THE PAN*; *A FAN,
A VAN*; *PACKED, BAGGED*) or only in what the tongue does (*BEN, MEG, PEG*; *SOLD, TOLD*; *THE CUP,
THE TUB*). Every slot of the grammar has such groups, so lip reading alone leaves a share of the words
ambiguous (as on real faces) and the audio is needed to resolve them, while the rest of the vocabulary
(rounding in *MOVE, SHOES*, wide openings in *FOUND, NOW*, spread lips in *SEE, PICK UP*) keeps the lips
informative. That is what gives the demo something to fuse: the lips narrow a word down, the audio picks
it (measured results in docs/demo.md). Three templates give 9492 distinct sentences of 5-7 words (about
2-3 s of slowish speech). A fixed, seed-independent subset of sentences is *held out*: it never appears
in training, only in val/test.
"""
from __future__ import annotations

import hashlib
import itertools
from functools import lru_cache

SUBJECTS = ("I", "MOM", "BOB", "POP", "PAT", "MATT", "BEN", "MEG", "PEG")
PAST_VERBS = ("FOUND", "MOVED", "PACKED", "BAGGED", "MADE", "PAID", "SOLD", "TOLD")
IMPERATIVES = ("MOVE", "FIND", "WASH", "PACK", "BAG", "PICK UP")
OBJECTS = (
    "THE BAT", "THE MAT", "THE PAN", "THE MAP", "THE MOP", "THE BED", "THE PEN", "A FAN", "A VAN",
    "THE BIN", "THE PIN", "THE CUP", "THE TUB", "MY SHOES",
)
TIMES = ("TODAY", "AT NOON", "AGAIN", "NOW", "ON MONDAY", "LAST WEEK", "THIS MORNING", "AT HOME")
QUESTION_VERBS = ("SEE", "MOVE", "FIND", "WASH", "PACK", "BAG")

#: One sentence in this many is held out of training (by a stable hash, independent of the seed).
HELD_OUT_EVERY = 8


def _stable_bucket(sentence: str, buckets: int) -> int:
    return int.from_bytes(hashlib.sha1(sentence.encode()).digest()[:4], "little") % buckets


@lru_cache(maxsize=1)
def all_sentences() -> tuple[str, ...]:
    """Every sentence of the grammar, sorted (upper case, single spaces, LRS transcript style)."""
    statements = (f"{s} {v} {o} {t}" for s, v, o, t in itertools.product(SUBJECTS, PAST_VERBS, OBJECTS, TIMES))
    requests = (f"PLEASE {v} {o} {t}" for v, o, t in itertools.product(IMPERATIVES, OBJECTS, TIMES))
    questions = (f"DID {s} {v} {o}" for s, v, o in itertools.product(SUBJECTS, QUESTION_VERBS, OBJECTS))
    return tuple(sorted(set(itertools.chain(statements, requests, questions))))


@lru_cache(maxsize=1)
def _partition() -> tuple[tuple[str, ...], tuple[str, ...]]:
    train, held_out = [], []
    for sentence in all_sentences():
        (held_out if _stable_bucket(sentence, HELD_OUT_EVERY) == 0 else train).append(sentence)
    return tuple(train), tuple(held_out)


def training_sentences() -> tuple[str, ...]:
    """Sentences used for the train split."""
    return _partition()[0]


def held_out_sentences() -> tuple[str, ...]:
    """Sentences used only for val and test (never in training)."""
    return _partition()[1]


def vocabulary() -> tuple[str, ...]:
    """The sorted set of words the grammar can produce."""
    return tuple(sorted({w for s in all_sentences() for w in s.split()}))
