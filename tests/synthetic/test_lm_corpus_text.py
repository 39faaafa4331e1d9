"""The demo LM trains on the corpus' training transcripts only; the demo LM recipe parses."""
from __future__ import annotations

import sys
from pathlib import Path

from avsr_lightning.data.manifest import load_split, media_paths, read_transcript
from avsr_lightning.datamodules import LRSDataModule
from avsr_lightning.lm.data import TextDataModule, corpus_transcripts
from avsr_lightning.text import normalize_transcript

REPO = Path(__file__).resolve().parents[2]


def _texts(root: Path, split: str) -> set[str]:
    return {normalize_transcript(u.text or read_transcript(media_paths(root, u.id)["text"]))
            for u in load_split(root, split)}


def test_lm_text_comes_from_the_training_split_only(tiny_corpus):
    corpus = LRSDataModule(root=str(tiny_corpus), max_frames=None, batch_size=2, num_workers=0, train_snrs=[None])
    train = {normalize_transcript(t) for t in corpus_transcripts(corpus, "train")}
    assert train == _texts(tiny_corpus, "train.txt")
    held_out = _texts(tiny_corpus, "val.txt") | _texts(tiny_corpus, "test.ref")
    assert train and not (train & held_out), "held-out sentences must never reach the LM's training text"

    data = TextDataModule(corpus=corpus, batch_size=2)
    data.prepare_data()
    data.setup("fit")
    assert len(data.datasets["train"]) == len(load_split(tiny_corpus, "train.txt"))
    assert len(data.datasets["val"]) == len(load_split(tiny_corpus, "val.txt"))


def test_demo_lm_recipe_parses(monkeypatch):
    from lightning.pytorch.cli import LightningCLI

    from avsr_lightning.lm.module import RNNLMModule

    monkeypatch.setattr(sys, "argv", sys.argv[:1])
    cli = LightningCLI(RNNLMModule, TextDataModule, run=False,
                       args=["--config", str(REPO / "configs" / "lm" / "demo_char_rnnlm.yaml"),
                             "--data.corpus.init_args.root", "/nonexistent/never-generated"])
    assert type(cli.datamodule.corpus).__name__ == "SyntheticDataModule"
    assert cli.datamodule.corpus_train_split == "train"
