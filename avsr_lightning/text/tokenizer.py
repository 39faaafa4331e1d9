"""The reference 41-symbol character vocabulary and the tokenizer protocol.

Index layout (spec §1.12): ``<blank>``=0, ``<unk>``=1, ``'``=2, digits 3-12, ``<space>``=13, ``A``-``Z``
14-39, ``<eos>``=40 (also used as sos). Characters outside it become ``<unk>`` and are *counted*, so a
corpus with lower-case or punctuated transcripts shows up in the logs instead of silently losing text.
"""
from __future__ import annotations

import re
import string
from collections import Counter
from typing import Iterable, Protocol, Sequence, runtime_checkable

REFERENCE_CHARS: tuple[str, ...] = (
    ("<blank>", "<unk>", "'") + tuple(string.digits) + ("<space>",) + tuple(string.ascii_uppercase) + ("<eos>",)
)

_SPACES = re.compile(r"\s+")


def normalize_transcript(text: str) -> str:
    """Upper-case and collapse runs of white space to one space, stripped at both ends.

    This is the one text normalisation used for references *and* hypotheses before WER/CER, so stray
    spaces in a hypothesis never count as empty words (the reference scorer's defect, spec §5.5).
    """
    return _SPACES.sub(" ", text.upper()).strip()


@runtime_checkable
class Tokenizer(Protocol):
    """What models, data and decoders need from a tokenizer."""

    vocab_size: int
    blank: int
    sos: int
    eos: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Iterable[int]) -> str: ...


class CharTokenizer:
    """The reference character vocabulary (41 symbols by default).

    ``unknown_counts`` counts every character that mapped to ``<unk>``; data modules log it.
    """

    def __init__(self, symbols: Sequence[str] | None = None) -> None:
        self.symbols: list[str] = list(symbols) if symbols is not None else list(REFERENCE_CHARS)
        for required in ("<blank>", "<unk>", "<space>", "<eos>"):
            if required not in self.symbols:
                raise ValueError(f"CharTokenizer symbols must contain {required!r}; got {self.symbols[:5]}...")
        self._index = {s: i for i, s in enumerate(self.symbols)}
        self.blank = self._index["<blank>"]
        self.unk = self._index["<unk>"]
        self.space = self._index["<space>"]
        self.eos = self._index["<eos>"]
        self.sos = self.eos
        self.vocab_size = len(self.symbols)
        self.unknown_counts: Counter[str] = Counter()

    def __len__(self) -> int:
        return self.vocab_size

    def normalize(self, text: str) -> str:
        return normalize_transcript(text)

    def encode(self, text: str) -> list[int]:
        """Normalise, then map characters to ids (space -> ``<space>``, unknown -> ``<unk>``, counted)."""
        ids = []
        for ch in self.normalize(text):
            if ch == " ":
                ids.append(self.space)
                continue
            idx = self._index.get(ch)
            if idx is None or ch.startswith("<"):
                self.unknown_counts[ch] += 1
                idx = self.unk
            ids.append(idx)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text; blank, sos/eos are dropped and spaces normalised."""
        out = []
        for i in ids:
            i = int(i)
            if i in (self.blank, self.eos) or i < 0 or i >= self.vocab_size:
                continue
            sym = self.symbols[i]
            out.append(" " if i == self.space else sym)
        return normalize_transcript("".join(out))

    def token_to_symbol(self, i: int) -> str:
        return self.symbols[int(i)]
