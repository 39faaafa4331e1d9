"""Text data for character LM training: plain text files, one sentence per line.

Each sentence is normalised and tokenised with the recogniser's tokenizer (default: the reference 41
characters) and becomes ``input = [sos] + ids``, ``target = ids + [eos]``. Lines that are empty after
normalisation are skipped and counted; characters outside the vocabulary are counted and reported once.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ..data.manifest import load_split, media_paths, read_transcript
from ..text import CharTokenizer, Tokenizer

log = logging.getLogger(__name__)


def read_sentences(paths: Sequence[str | Path], first_field_is_id: bool = False) -> list[str]:
    """All non-empty lines of the files; ``first_field_is_id`` drops a leading id (``test.ref`` style)."""
    sentences = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"LM text file not found: {path}")
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if first_field_is_id:
                    line = line.split(maxsplit=1)[1] if " " in line else ""
                if line.startswith("Text:"):  # LRS transcript files
                    line = line[len("Text:"):]
                if line.strip():
                    sentences.append(line)
    return sentences


class SentenceDataset(Dataset):
    """Tokenised sentences, truncated to ``max_length`` tokens."""

    def __init__(self, sentences: Sequence[str], tokenizer: Tokenizer, max_length: int = 300) -> None:
        self.items: list[list[int]] = []
        self.skipped = 0
        for s in sentences:
            ids = tokenizer.encode(s)[:max_length]
            if ids:
                self.items.append(ids)
            else:
                self.skipped += 1

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> list[int]:
        return self.items[i]


def collate_sentences(batch: list[list[int]], sos: int, eos: int, ignore_id: int = -1) -> tuple[Tensor, Tensor]:
    """-> inputs (B, L+1) [sos]+ids padded with eos, targets (B, L+1) ids+[eos] padded with ``ignore_id``."""
    longest = max(len(ids) for ids in batch) + 1
    inputs = torch.full((len(batch), longest), eos, dtype=torch.long)
    targets = torch.full((len(batch), longest), ignore_id, dtype=torch.long)
    for b, ids in enumerate(batch):
        seq = torch.tensor(ids, dtype=torch.long)
        inputs[b, 0] = sos
        inputs[b, 1:len(ids) + 1] = seq
        targets[b, :len(ids)] = seq
        targets[b, len(ids)] = eos
    return inputs, targets


def corpus_transcripts(corpus: Any, split: str) -> list[str]:
    """Transcripts of one split of an LRS-layout data module (``LRSDataModule``, ``SyntheticDataModule``).

    ``split`` is ``train``, ``val`` or ``test``: the module's own ``train_split``/``val_split``/``test_split``
    list, so an LM trained on ``train`` never sees the sentences that only val/test utterances speak.
    """
    names = {"train": "train_split", "val": "val_split", "test": "test_split"}
    if split not in names:
        raise ValueError(f"corpus split must be one of {sorted(names)}, got {split!r}")
    rows = load_split(Path(corpus.root), getattr(corpus, names[split]), prefix=getattr(corpus, "split_prefix", None))
    return [u.text if u.text is not None else read_transcript(media_paths(Path(corpus.root), u.id)["text"])
            for u in rows]


class TextDataModule(L.LightningDataModule):
    """Args:
        train_files, val_files, test_files: text files, one sentence per line.
        first_field_is_id: drop the first white-space field of every line (``test.ref`` format).
        batch_size, max_length, num_workers: loader settings; tokenizer: default the reference characters.
        corpus: an LRS-layout data module (e.g. ``SyntheticDataModule`` in YAML by ``class_path``) whose
            transcripts are used as well: ``corpus_train_split`` for training (default ``train``) and
            ``corpus_val_split`` for validation (default ``val``). Its ``prepare_data`` runs first, so the
            synthetic corpus is generated if it is not there yet.
    """

    def __init__(self, train_files: list[str] | None = None, val_files: list[str] | None = None,
                 test_files: list[str] | None = None, batch_size: int = 64, max_length: int = 300,
                 first_field_is_id: bool = False, num_workers: int = 0, tokenizer: Tokenizer | None = None,
                 corpus: L.LightningDataModule | None = None, corpus_train_split: str = "train",
                 corpus_val_split: str | None = "val") -> None:
        super().__init__()
        if not train_files and corpus is None:
            raise ValueError("TextDataModule: train_files is empty and no corpus is given; give at least one text "
                             "file or a corpus data module")
        if batch_size < 1:
            raise ValueError(f"TextDataModule: batch_size must be >= 1, got {batch_size}")
        self.train_files, self.val_files, self.test_files = list(train_files or []), list(val_files or []), test_files
        self.corpus, self.corpus_train_split, self.corpus_val_split = corpus, corpus_train_split, corpus_val_split
        self.batch_size, self.max_length, self.num_workers = batch_size, max_length, num_workers
        self.first_field_is_id = first_field_is_id
        self.tokenizer = tokenizer if tokenizer is not None else CharTokenizer()
        self.datasets: dict[str, SentenceDataset] = {}

    def prepare_data(self) -> None:
        if self.corpus is not None:
            self.corpus.prepare_data()

    def _dataset(self, files: Sequence[str], corpus_split: str | None = None) -> SentenceDataset:
        sentences = read_sentences(files, self.first_field_is_id) if files else []
        where = list(files)
        if self.corpus is not None and corpus_split:
            sentences += corpus_transcripts(self.corpus, corpus_split)
            where.append(f"{self.corpus.root} ({corpus_split} split)")
        ds = SentenceDataset(sentences, self.tokenizer, self.max_length)
        if ds.skipped:
            log.warning("skipped %d empty sentences in %s", ds.skipped, where)
        if len(ds) == 0:
            raise ValueError(f"no usable sentences in {where}")
        return ds

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and "train" not in self.datasets:
            self.datasets["train"] = self._dataset(self.train_files, self.corpus_train_split)
        has_val = bool(self.val_files) or (self.corpus is not None and bool(self.corpus_val_split))
        if stage in (None, "fit", "validate") and "val" not in self.datasets and has_val:
            self.datasets["val"] = self._dataset(self.val_files, self.corpus_val_split)
        if stage in (None, "test") and "test" not in self.datasets:
            if self.test_files:
                self.datasets["test"] = self._dataset(self.test_files)
            else:
                self.datasets["test"] = self._dataset(self.val_files, self.corpus_val_split)
        unknown = getattr(self.tokenizer, "unknown_counts", None)
        if unknown:
            log.warning("characters outside the vocabulary (mapped to <unk>): %s", dict(unknown.most_common(10)))

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        tok = self.tokenizer
        return DataLoader(self.datasets[split], batch_size=self.batch_size, shuffle=shuffle,
                          num_workers=self.num_workers,
                          collate_fn=lambda b: collate_sentences(b, tok.sos, tok.eos))

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False) if "val" in self.datasets else []

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)
