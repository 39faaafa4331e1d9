"""``SyntheticDataModule``: the synthetic audio-visual corpus, generated on first use, read as LRS data.

``prepare_data`` (once per node) writes the corpus into a cache directory keyed by generator version, seed
and size, or completes it if an earlier run was interrupted; from then on the module *is* an
:class:`LRSDataModule` over that directory, with every option of it (noise SNRs, visual corruption,
frame budget, test conditions, modalities, ...).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Union

from avsr_lightning.data.synthetic import VERSION, corpus_metadata, generate_corpus
from avsr_lightning.datamodules.lrs import LRSDataModule


def default_cache_dir() -> Path:
    """``$AVSR_LIGHTNING_CACHE`` or ``$XDG_CACHE_HOME/avsr_lightning`` or ``~/.cache/avsr_lightning``, + ``synthetic``."""
    base = os.environ.get("AVSR_LIGHTNING_CACHE")
    if base is None:
        base = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "avsr_lightning")
    return Path(base) / "synthetic"


def synthetic_corpus_dir(utterances: int, corpus_seed: int, cache_dir: Optional[str] = None) -> Path:
    """Where the corpus for (generator version, seed, size) lives: ``<cache>/<version>-<seed>-<n>``."""
    return Path(cache_dir or default_cache_dir()) / f"{VERSION}-{corpus_seed}-{utterances}"


class SyntheticDataModule(LRSDataModule):
    """LRS data module over a synthetic corpus that it generates when missing.

    Args:
        utterances: corpus size (train + val + test), e.g. 1500 for the demo.
        corpus_seed: seed of the generator (voices' faces, sentences, timing, noise); the data module's own
            ``seed`` (batches, augmentation, test conditions) is separate.
        cache_dir: parent directory of generated corpora; None = :func:`default_cache_dir`.
        root: use exactly this directory for the corpus instead of ``<cache_dir>/<version>-<seed>-<n>``.
        generation_workers: processes used to render the corpus (output does not depend on it).
        cache_decoded: as :class:`LRSDataModule`; default ``auto``: the corpus is small, so decoded clips stay
            in memory after their first read (give ``persistent_workers: true`` with ``num_workers > 0``).
        **kwargs: every other :class:`LRSDataModule` argument (``max_frames``, ``train_snrs``, ``modalities``, ...).
    """

    def __init__(
        self,
        utterances: int = 1500,
        corpus_seed: int = 0,
        cache_dir: Optional[str] = None,
        root: Optional[str] = None,
        generation_workers: int = 0,
        cache_decoded: Union[bool, str] = "auto",
        **kwargs: Any,
    ) -> None:
        if utterances < 3:
            raise ValueError(f"SyntheticDataModule: utterances should be >= 3 (train, val and test), got {utterances}")
        if generation_workers < 0:
            raise ValueError(f"SyntheticDataModule: generation_workers should be >= 0, got {generation_workers}")
        corpus_root = Path(root) if root else synthetic_corpus_dir(utterances, corpus_seed, cache_dir)
        super().__init__(root=str(corpus_root), cache_decoded=cache_decoded, **kwargs)
        self.utterances = utterances
        self.corpus_seed = corpus_seed
        self.generation_workers = generation_workers

    def prepare_data(self) -> None:
        """Generate (or complete) the corpus; Lightning calls this once per node, before ``setup``."""
        generate_corpus(self.root, utterances=self.utterances, seed=self.corpus_seed,
                        workers=self.generation_workers)

    def setup(self, stage: Optional[str] = None) -> None:
        if corpus_metadata(self.root) is None:
            trainer = getattr(self, "trainer", None)
            if trainer is not None and trainer.world_size > 1:
                raise RuntimeError(f"SyntheticDataModule: no finished corpus at {self.root}; prepare_data should have "
                                   f"generated it (is prepare_data_per_node disabled on a node without shared storage?)")
            self.prepare_data()  # used outside a Trainer (scripts, tests): generate on demand
        super().setup(stage)
