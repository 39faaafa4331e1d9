"""Same seed -> byte-identical files; different seed -> different corpus; interrupted runs complete."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from avsr_lightning.data.synthetic import corpus as corpus_module
from avsr_lightning.data.synthetic import generate_corpus

from .conftest import TINY


def _digests(root: Path, pattern: str) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob(pattern))}


def test_same_seed_gives_identical_files_and_other_seed_differs(tiny_corpus, tmp_path):
    again = generate_corpus(tmp_path / "again", **TINY)
    for pattern in ("*.wav", "*.mp4", "*.npz", "*.txt", "test.ref"):
        assert _digests(again, pattern) == _digests(tiny_corpus, pattern), pattern
    other = generate_corpus(tmp_path / "other", **{**TINY, "seed": 1, "utterances": 3})
    other_wavs = _digests(other, "*.wav")
    assert set(other_wavs.values()).isdisjoint(_digests(tiny_corpus, "*.wav").values())
    assert (other / "train.txt").read_text() != (tiny_corpus / "train.txt").read_text() or \
        _digests(other, "*.txt") != _digests(tiny_corpus, "*.txt")


def test_interrupted_generation_resumes_to_the_same_corpus(tiny_corpus, tmp_path, monkeypatch):
    out = tmp_path / "resumed"
    real_render = corpus_module.render_utterance
    calls = []

    def crash_on_third(root, utterance, seed):
        calls.append(utterance.relpath)
        if len(calls) == 3:
            # half-written leftovers of a killed process
            (root / "Video" / f"{utterance.relpath}.mp4").parent.mkdir(parents=True, exist_ok=True)
            (root / "Video" / f".{Path(utterance.relpath).name}.mp4.123.partial").write_bytes(b"junk")
            raise KeyboardInterrupt
        real_render(root, utterance, seed)

    monkeypatch.setattr(corpus_module, "render_utterance", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        generate_corpus(out, **TINY)
    assert not (out / "corpus.json").exists()
    monkeypatch.setattr(corpus_module, "render_utterance", real_render)
    # a deleted file of a finished utterance is regenerated too
    first = calls[0]
    (out / "Audio" / f"{first}.wav").unlink()
    rendered = []
    monkeypatch.setattr(corpus_module, "render_utterance",
                        lambda root, u, seed: (rendered.append(u.relpath), real_render(root, u, seed)))
    generate_corpus(out, **TINY)
    assert first in rendered and calls[1] not in rendered  # only missing work is redone
    assert not list(out.rglob("*.partial"))
    for pattern in ("*.wav", "*.mp4", "*.npz", "*.txt", "*.ref", "corpus.json"):
        assert _digests(out, pattern) == _digests(tiny_corpus, pattern), pattern


def test_a_finished_corpus_is_not_regenerated_and_a_different_one_is_refused(tiny_corpus, monkeypatch):
    monkeypatch.setattr(corpus_module, "render_utterance", lambda *a: pytest.fail("should not render"))
    assert generate_corpus(tiny_corpus, **TINY) == tiny_corpus
    with pytest.raises(ValueError, match="different synthetic corpus"):
        generate_corpus(tiny_corpus, **{**TINY, "seed": 5})


def test_worker_pool_gives_the_same_corpus(tiny_corpus, tmp_path):
    """With workers the noises are made in the pool beside the utterances: same files, same manifest."""
    pooled = generate_corpus(tmp_path / "pooled", **{**TINY, "workers": 2})
    for pattern in ("*.wav", "*.mp4", "*.npz", "*.txt", "*.ref", "*.json", "*.jpeg", "*.png"):
        assert _digests(pooled, pattern) == _digests(tiny_corpus, pattern), pattern
