"""An AVSE-style data root built from a processed LRS-layout corpus (the synthetic corpus, or LRS3 itself).

Writes what the challenge's setup produces (spec §1.1): ``metadata/`` (target, speech-masker and
noise-masker lists), ``maskers_speech/<speaker>.wav`` (each speaker's clips concatenated in sorted order),
``maskers_noise/<ID>.wav`` and per dataset the ``targets``/``targets_video``/``interferers/{speech,noise}``
links. Target names are the corpus relpaths (``trainval/spk00/00012``), so the challenge layout resolves
``targets/<name>.wav`` to the corpus's own decoded audio.

Differences from the challenge's ``create_speech_maskers.py`` (on purpose, spec §6 bugs 9-11): clips are
concatenated in sorted order (reproducible on any machine) and written bit-exactly (no 1-LSB attenuation).
Short speech maskers can be tiled to ``min_masker_seconds`` so that tiny corpora still cover every target.
"""
from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from avsr_lightning.durable import durable_path

from .audio_io import write_wav_int16
from .formats import MaskerEntry, TargetEntry, save_masker_list, save_target_list
from .mixing import SAMPLE_RATE

__all__ = ["prepare_avse_root", "read_split_ids"]


def read_split_ids(path: str | os.PathLike) -> list[str]:
    """Relpaths of a split list (``train.txt``: one per line; ``test.ref``: ``relpath TRANSCRIPT``)."""
    ids = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            ids.append(line.split()[0])
    return ids


def _pcm16(path: Path) -> np.ndarray:
    data, rate = sf.read(str(path), dtype="int16", always_2d=True)
    if rate != SAMPLE_RATE or data.shape[1] != 1:
        raise ValueError(f"{path}: expected 16 kHz mono audio, got {rate} Hz with {data.shape[1]} channel(s)")
    return data[:, 0]


def _relink(link: Path, target: Path) -> None:
    with durable_path(link) as tmp:
        tmp.unlink()
        os.symlink(os.path.abspath(target), tmp)


def prepare_avse_root(corpus_root: str | os.PathLike, avse_root: str | os.PathLike,
                      splits: Sequence[tuple[str, str]] = (("train", "train.txt"), ("dev", "val.txt")),
                      noise_files: Sequence[str | os.PathLike] | None = None, dev_noise_fraction: float = 0.3,
                      min_masker_seconds: float = 20.0) -> Path:
    """Create the AVSE tree for ``corpus_root`` under ``avse_root``; returns the metadata folder.

    Args:
        splits: ``(avse dataset, split list file)`` pairs, relative to ``corpus_root``.
        noise_files: default ``<corpus_root>/noise/*.wav``; each becomes one noise class, its first
            ``1 - dev_noise_fraction`` going to train and the rest to dev (distinct files per dataset).
        min_masker_seconds: speech maskers shorter than this are tiled up to it (0 disables).
    """
    corpus_root, avse_root = Path(corpus_root), Path(avse_root)
    meta = avse_root / "metadata"
    meta.mkdir(parents=True, exist_ok=True)
    targets: list[TargetEntry] = []
    speech: list[MaskerEntry] = []
    for dataset, split_file in splits:
        ids = read_split_ids(corpus_root / split_file)
        if not ids:
            raise ValueError(f"{corpus_root / split_file}: empty split list")
        by_speaker: dict[str, list[str]] = defaultdict(list)
        for rel in ids:
            info = sf.info(str(corpus_root / "Audio" / f"{rel}.wav"))
            targets.append(TargetEntry(rel, dataset, int(info.frames)))
            by_speaker[Path(rel).parent.name].append(rel)
        for speaker in sorted(by_speaker):
            clips = np.concatenate([_pcm16(corpus_root / "Audio" / f"{rel}.wav") for rel in sorted(by_speaker[speaker])])
            minimum = int(min_masker_seconds * SAMPLE_RATE)
            if 0 < len(clips) < minimum:
                clips = np.tile(clips, -(-minimum // len(clips)))
            name = f"{speaker}_{dataset}"
            write_wav_int16(_mkparent(avse_root / "maskers_speech" / f"{name}.wav"), clips)
            speech.append(MaskerEntry(name, "speech", dataset, int(len(clips)), "speech"))
        _relink(avse_root / dataset / "targets", corpus_root / "Audio")
        _relink(avse_root / dataset / "targets_video", corpus_root / "Video")
        _relink(avse_root / dataset / "interferers" / "speech", avse_root / "maskers_speech")
        _relink(avse_root / dataset / "interferers" / "noise", avse_root / "maskers_noise")
    files = sorted((corpus_root / "noise").glob("*.wav")) if noise_files is None else [Path(p) for p in noise_files]
    if not files:
        raise ValueError(f"no noise files: pass noise_files or put wavs in {corpus_root / 'noise'}")
    noise: list[MaskerEntry] = []
    datasets = [d for d, _ in splits]
    for path in files:
        audio = _pcm16(path)
        cut = int(round(len(audio) * (1 - dev_noise_fraction))) if len(datasets) > 1 else len(audio)
        parts = {datasets[0]: audio[:cut]}
        for other in datasets[1:]:
            parts[other] = audio[cut:]
        for dataset, part in parts.items():
            name = f"{path.stem}_{dataset}"
            write_wav_int16(_mkparent(avse_root / "maskers_noise" / f"{name}.wav"), part)
            noise.append(MaskerEntry(name, "noise", dataset, int(len(part)), path.stem))
    save_target_list(meta / "target_speech_list.json", targets)
    save_masker_list(meta / "masker_speech_list.json", speech)
    save_masker_list(meta / "masker_noise_list.json", noise)
    return meta


def _mkparent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
