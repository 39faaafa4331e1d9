"""``RandomAVDataModule``: seeded random audio-visual batches for tests, debugging and benchmarks.

Each utterance is generated from ``(seed, split, index)`` alone, so every process and every epoch sees
the same data without touching the disk, and a resumed run continues on exactly the batches an
uninterrupted run would have seen (the training order depends only on ``seed`` and the epoch).
"""
from __future__ import annotations

import random as _random
from typing import Any, Iterator

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from avsr_lightning.batch import SAMPLES_PER_FRAME, AVBatch
from avsr_lightning.text import CharTokenizer, Tokenizer

__all__ = ["RandomAVDataModule", "RandomAVDataset", "collate_random"]

_SPLIT_OFFSET = {"train": 0, "val": 1_000_003, "test": 2_000_003, "predict": 2_000_003}
_VISUAL = ("clean", "occlusion", "noise", "blur", "occlusion_noise")
_SNRS = (None, 15.0, 5.0, 0.0, -5.0)


class RandomAVDataset(Dataset):
    """``size`` random utterances; item ``i`` depends only on ``(seed, split, i)``."""

    def __init__(self, size: int, split: str, seed: int, tokenizer: Tokenizer, min_frames: int,
                 max_frames: int, image_size: int, modalities: str, test_condition: dict | None = None) -> None:
        self.size, self.split, self.seed, self.tokenizer = size, split, seed, tokenizer
        self.min_frames, self.max_frames, self.image_size = min_frames, max_frames, image_size
        self.modalities, self.test_condition = modalities, test_condition

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict[str, Any]:
        key = self.seed * 10_000_019 + _SPLIT_OFFSET[self.split] + index
        rng = _random.Random(key)
        gen = torch.Generator().manual_seed(key)
        frames = rng.randint(self.min_frames, self.max_frames)
        letters = [i for i in range(2, self.tokenizer.vocab_size) if i not in self._special_ids()]
        n_tokens = rng.randint(1, max(1, frames // 2))
        text = self.tokenizer.decode([rng.choice(letters) for _ in range(n_tokens)]) or "A"
        condition = self.test_condition if self.test_condition is not None else {
            "snr": rng.choice(_SNRS), "noise": "babble", "visual": rng.choice(_VISUAL)}
        return {
            "id": f"{self.split}/spk{index % 7:02d}/{index:05d}",
            "text": text,
            "targets": torch.tensor(self.tokenizer.encode(text), dtype=torch.long),
            "video": torch.randn(frames, self.image_size, self.image_size, generator=gen)
            if "v" in self.modalities else None,
            "audio": torch.randn(frames * SAMPLES_PER_FRAME, generator=gen) if "a" in self.modalities else None,
            "frames": frames,
            "condition": dict(condition),
        }

    def _special_ids(self) -> set[int]:
        tok = self.tokenizer
        return {tok.blank, tok.eos, tok.sos, getattr(tok, "unk", -100)}


def collate_random(items: list[dict[str, Any]]) -> AVBatch:
    """Pad a list of items into an :class:`AVBatch` (zeros for media, -1 for targets)."""
    frames = torch.tensor([it["frames"] for it in items], dtype=torch.long)
    T, B = int(frames.max()), len(items)
    video = audio = None
    if items[0]["video"] is not None:
        h, w = items[0]["video"].shape[1:]
        video = torch.zeros(B, T, h, w)
        for b, it in enumerate(items):
            video[b, : it["frames"]] = it["video"]
    if items[0]["audio"] is not None:
        audio = torch.zeros(B, T * SAMPLES_PER_FRAME)
        for b, it in enumerate(items):
            audio[b, : it["audio"].numel()] = it["audio"]
    target_lengths = torch.tensor([it["targets"].numel() for it in items], dtype=torch.long)
    targets = torch.full((B, int(target_lengths.max())), -1, dtype=torch.long)
    for b, it in enumerate(items):
        targets[b, : it["targets"].numel()] = it["targets"]
    return AVBatch(video=video, video_lengths=frames, audio=audio, audio_lengths=frames * SAMPLES_PER_FRAME,
                   targets=targets, target_lengths=target_lengths, ids=[it["id"] for it in items],
                   texts=[it["text"] for it in items], conditions=[it["condition"] for it in items])


class EpochShuffleSampler(Sampler[int]):
    """A permutation that depends only on ``seed`` and the epoch Lightning sets (resumable by design)."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        gen = torch.Generator().manual_seed(self.seed * 7919 + self.epoch)
        return iter(torch.randperm(self.size, generator=gen).tolist())

    def __len__(self) -> int:
        return self.size


class RandomAVDataModule(L.LightningDataModule):
    """Random tensors shaped like LRS batches.

    Args:
        train_size / val_size / test_size: utterances per split.
        batch_size: utterances per batch.
        min_frames / max_frames: utterance length range in video frames (25 fps).
        image_size: lip-crop side (88 like the real pipeline; smaller for tiny models).
        modalities: ``"av"``, ``"audio"`` or ``"video"`` (the other input is ``None``).
        num_test_loaders: >1 gives several test loaders, one fixed condition each (like per-SNR sets).
        seed: the data depends only on it.
    """

    def __init__(self, train_size: int = 32, val_size: int = 8, test_size: int = 8, batch_size: int = 4,
                 min_frames: int = 8, max_frames: int = 20, image_size: int = 88, modalities: str = "av",
                 num_test_loaders: int = 1, num_workers: int = 0, seed: int = 0) -> None:
        super().__init__()
        if modalities not in ("av", "audio", "video"):
            raise ValueError(f"RandomAVDataModule modalities must be 'av', 'audio' or 'video', got {modalities!r}")
        if not 1 <= min_frames <= max_frames:
            raise ValueError(f"RandomAVDataModule needs 1 <= min_frames <= max_frames, got {min_frames}, {max_frames}")
        self.save_hyperparameters()
        self.tokenizer: Tokenizer = CharTokenizer()

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def _dataset(self, split: str, size: int, condition: dict | None = None) -> RandomAVDataset:
        hp = self.hparams
        return RandomAVDataset(size, split, hp.seed, self.tokenizer, hp.min_frames, hp.max_frames, hp.image_size,
                               hp.modalities, condition)

    def _loader(self, dataset: Dataset, sampler: Sampler | None = None) -> DataLoader:
        # an own generator: creating an iterator then never draws from the global RNG, so the global
        # stream seen by training steps does not depend on when loaders are (re)created - exact resume
        return DataLoader(dataset, batch_size=self.hparams.batch_size, sampler=sampler, shuffle=False,
                          collate_fn=collate_random, num_workers=self.hparams.num_workers,
                          generator=torch.Generator().manual_seed(self.hparams.seed))

    def train_dataloader(self) -> DataLoader:
        dataset = self._dataset("train", self.hparams.train_size)
        return self._loader(dataset, EpochShuffleSampler(len(dataset), self.hparams.seed))

    def val_dataloader(self) -> DataLoader:
        return self._loader(self._dataset("val", self.hparams.val_size))

    def test_dataloader(self) -> DataLoader | list[DataLoader]:
        n = self.hparams.num_test_loaders
        if n == 1:
            return self._loader(self._dataset("test", self.hparams.test_size))
        conditions = [{"snr": _SNRS[i % len(_SNRS)], "noise": "babble", "visual": _VISUAL[i % len(_VISUAL)]}
                      for i in range(n)]
        return [self._loader(self._dataset("test", self.hparams.test_size, c)) for c in conditions]

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self._dataset("predict", self.hparams.test_size))
