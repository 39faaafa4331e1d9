"""Everyday-English sentences from a small grammar written for this project.

The vocabulary is small (57 words) and chosen so that words differ in what the lips do (bilabial
closures in *MOM*, *BOB*, *PUT*, *BALL*; rounding in *YOU*, *SHOES*, *MOVE*; wide openings in *CAR*,
*FOUND*; spread lips in *SEE*, *KEYS*), which keeps lip reading learnable in minutes on a CPU. Three
templates give 7296 distinct sentences of 5-8 words (about 2-3 s of slowish speech). A fixed,
seed-independent subset of sentences is *held out*: it never appears in training, only in val/test.
"""
from __future__ import annotations

import hashlib
import itertools
from functools import lru_cache

SUBJECTS = ("I", "WE", "YOU", "MOM", "BOB", "THEY", "MY DOG", "THE BOY")
PAST_VERBS = ("SAW", "MOVED", "FOUND", "BOUGHT", "WASHED", "LOST", "FIXED", "PUT AWAY")
IMPERATIVES = ("MOVE", "FIND", "BRING", "WASH", "FIX", "PICK UP")
OBJECTS = (
    "THE BALL", "A BOOK", "THE MAP", "SOME FOOD", "THE CUP", "MY SHOES", "THE PHONE", "A FISH",
    "THE CAR", "YOUR HAT", "THE KEYS", "A BOX",
)
TIMES = ("TODAY", "AT NOON", "AGAIN", "NOW", "ON MONDAY", "LAST WEEK", "THIS MORNING", "AT HOME")
QUESTION_VERBS = ("SEE", "MOVE", "FIND", "WASH", "FIX", "WANT")

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
