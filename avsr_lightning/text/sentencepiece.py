"""SentencePiece tokenizer behind the :class:`Tokenizer` protocol, for other languages and larger vocabularies.

Id layout matches the character vocabulary's conventions: 0 = ``<blank>`` (CTC), the pieces follow, and the
last id is ``<eos>`` (also sos). ``<unk>`` is SentencePiece's own unknown piece, shifted by one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from avsr_lightning.text.tokenizer import normalize_transcript


class SentencePieceTokenizer:
    def __init__(self, model_path: str | Path, normalize_case: bool = True) -> None:
        import sentencepiece as spm

        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"SentencePiece model not found: {path}; train one with "
                                    "SentencePieceTokenizer.train(text_file, model_prefix, vocab_size)")
        self._sp = spm.SentencePieceProcessor(model_file=str(path))
        self.normalize_case = normalize_case
        self.blank = 0
        self.vocab_size = self._sp.get_piece_size() + 2
        self.eos = self.vocab_size - 1
        self.sos = self.eos
        self.unk = self._sp.unk_id() + 1

    def normalize(self, text: str) -> str:
        return normalize_transcript(text) if self.normalize_case else " ".join(text.split())

    def encode(self, text: str) -> list[int]:
        return [i + 1 for i in self._sp.encode(self.normalize(text), out_type=int)]

    def decode(self, ids: Iterable[int]) -> str:
        pieces = [int(i) - 1 for i in ids if 0 < int(i) < self.eos]
        return " ".join(self._sp.decode(pieces).split())

    @staticmethod
    def train(text_file: str | Path, model_prefix: str | Path, vocab_size: int = 256,
              model_type: str = "unigram") -> Path:
        """Train a model on a text file (one sentence per line) and return the ``.model`` path."""
        import sentencepiece as spm

        spm.SentencePieceTrainer.train(input=str(text_file), model_prefix=str(model_prefix),
                                       vocab_size=vocab_size, model_type=model_type,
                                       character_coverage=1.0, bos_id=-1, eos_id=-1)
        return Path(f"{model_prefix}.model")
