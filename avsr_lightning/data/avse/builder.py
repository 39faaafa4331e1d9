"""Seeded AVSE scene building with the challenge builder's random draws, in the challenge's order.

The challenge builds scenes with Python's global ``random`` (Mersenne Twister) seeded once with 0
(spec §2.1-2.2). Reproducing its JSON requires the same calls in the same order, including the "no-op"
draws (``choice([1])``, ``randint(0, 0)``) that still consume the generator (spec §6 bug 2). Here every
draw goes through an explicit :class:`random.Random`, which has the same algorithm as the global one, so
``build_scenes(..., rng=random.Random(0))`` replays the challenge exactly.

Per dataset (spec §2.2): shuffle the dataset's targets; then for every scene draw the interferer count, the
types, two zero time draws, the masker (group first, then a file among the group's long-enough files of
that dataset) and the offset; then, in a second pass, the SNR of every scene.

Beyond AVSE1: ``interferer_counts=(1, 2, 3)`` and ``interferer_types=("speech", "noise", "music")`` give
the later editions' multi-interferer scenes (types redrawn while more than ``max_music`` are music).
"""
from __future__ import annotations

import random
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .formats import (
    INTERFERER_TYPES,
    Interferer,
    MaskerEntry,
    Scene,
    TargetEntry,
    load_masker_list,
    load_scenes,
    load_target_list,
    save_scenes,
)

__all__ = ["SceneBuilderConfig", "DatasetSpec", "build_scenes", "build_challenge_scene_lists", "SceneSampler",
           "group_maskers", "round_snr"]


@dataclass(frozen=True)
class SceneBuilderConfig:
    """The builder's distributions (defaults = AVSE1, spec §2.2-2.3 and CFG1).

    Args:
        snr_ranges: per interferer type, the uniform SNR range in dB (speech −15…5, noise −10…10).
        multi_snr_range: SNR range of scenes with more than one interferer (later editions: −10…10 for all).
        interferer_counts: the count is ``rng.choice`` of these (AVSE1: always 1, still one draw).
        interferer_types: population of ``rng.choices`` for the type, in this order (AVSE1: speech, noise).
        max_music: scenes with more music interferers have their types redrawn (later editions: 1).
        target_mode: ``sequential`` (shuffle once, scene j gets target j mod T) or ``random`` (with replacement).
        round_snr: store the SNR rounded to 4 decimals, the value the challenge renderer reads back (§2.6).
    """

    snr_ranges: Mapping[str, tuple[float, float]] = field(
        default_factory=lambda: {"speech": (-15.0, 5.0), "noise": (-10.0, 10.0), "music": (-10.0, 10.0)})
    multi_snr_range: tuple[float, float] = (-10.0, 10.0)
    interferer_counts: tuple[int, ...] = (1,)
    interferer_types: tuple[str, ...] = ("speech", "noise")
    max_music: int = 1
    target_mode: str = "sequential"
    round_snr: bool = True

    def __post_init__(self) -> None:
        bad = [t for t in self.interferer_types if t not in INTERFERER_TYPES]
        if bad or not self.interferer_types:
            raise ValueError(f"interferer_types must be a non-empty subset of {INTERFERER_TYPES}, got {self.interferer_types}")
        if not self.interferer_counts or any(int(c) < 1 for c in self.interferer_counts):
            raise ValueError(f"interferer_counts must be positive integers, got {self.interferer_counts}")
        if self.target_mode not in ("sequential", "random"):
            raise ValueError(f"target_mode must be 'sequential' or 'random', got {self.target_mode!r}")
        for t in self.interferer_types:
            lo, hi = self.snr_ranges.get(t, (None, None))
            if lo is None or lo > hi:
                raise ValueError(f"snr_ranges[{t!r}] must be (low, high) with low <= high, got {self.snr_ranges.get(t)}")
        if "music" in self.interferer_types and self.max_music < 1 and len(self.interferer_types) == 1:
            raise ValueError("max_music=0 with only music interferers can never produce a scene")


@dataclass(frozen=True)
class DatasetSpec:
    """One scene list to build: ``scene`` ids are ``S%05d`` from ``start_index`` (train 1, dev 34526)."""

    name: str
    n_scenes: int
    start_index: int = 1


def round_snr(value: float) -> float:
    """The value the renderer sees: the SNR written with 4 decimals and parsed back (spec §2.6)."""
    return float(format(value, ".4f"))


def group_maskers(maskers: Sequence[MaskerEntry]) -> list[list[MaskerEntry]]:
    """Balancing groups in first-appearance order, file order kept inside a group (spec §2.2 step 3).

    Speech maskers form one group holding both datasets; the dataset filter applies at selection.
    """
    groups: dict[str, list[MaskerEntry]] = {}
    for m in maskers:
        groups.setdefault("speech" if m.type == "speech" else m.group, []).append(m)
    return list(groups.values())


class _Pool:
    """The balancing groups of one interferer type, seen from one dataset, for fast eligibility tests.

    Every group stays in the list (the challenge draws the group *before* filtering by dataset and length);
    inside a group only the dataset's files are kept, in file order, with their lengths as an array, so
    "the long-enough files of this group" is one vectorised comparison instead of a Python scan.
    """

    def __init__(self, groups: list[list[MaskerEntry]], dataset: str) -> None:
        self.entries = [[m for m in g if m.dataset == dataset] for g in groups]
        self.lengths = [np.array([m.nsamples for m in g], dtype=np.int64) for g in self.entries]
        self.longest = max((int(a.max()) for a in self.lengths if a.size), default=-1)


def _choose_masker(rng: random.Random, pool: _Pool, dataset: str, required: int, kind: str,
                   target: str) -> MaskerEntry:
    # The challenge redraws the group until one has a long-enough file of the dataset, forever if none has
    # one (spec §6 bug 3). Checking first (without drawing) keeps the draw sequence and fails with a reason.
    if pool.longest < required:
        raise ValueError(f"no {kind} masker of dataset {dataset!r} has >= {required} samples "
                         f"(needed for target {target!r}); add longer maskers or drop that target")
    groups = range(len(pool.entries))
    while True:
        g = rng.choice(groups)
        eligible = np.flatnonzero(pool.lengths[g] >= required)  # indices of the eligible files, in file order
        if eligible.size:
            return pool.entries[g][int(rng.choice(eligible))]  # same draw as choice(list of eligible files)


def _draw_types(rng: random.Random, config: SceneBuilderConfig, n: int) -> list[str]:
    while True:
        types = rng.choices(list(config.interferer_types), k=n)
        if types.count("music") <= config.max_music:
            return types


def build_scenes(dataset: str, n_scenes: int, targets: Sequence[TargetEntry],
                 maskers: Mapping[str, Sequence[MaskerEntry]], rng: random.Random,
                 config: SceneBuilderConfig | None = None, start_index: int = 1,
                 id_format: str = "S{:05d}") -> list[Scene]:
    """Build ``n_scenes`` scenes of ``dataset``, drawing from ``rng`` exactly as the challenge builder does.

    Args:
        targets: the whole target list in file order (filtered to ``dataset`` here, order kept).
        maskers: per interferer type, the masker list in file order.
        rng: consumed in place; pass ``random.Random(0)`` once for train then dev to replay the challenge.
    """
    config = config or SceneBuilderConfig()
    pool = [t for t in targets if t.dataset == dataset]
    if not pool:
        raise ValueError(f"no targets of dataset {dataset!r} in the target list")
    pools = {}
    for kind in config.interferer_types:
        if not maskers.get(kind):
            raise ValueError(f"interferer type {kind!r} is enabled but its masker list is empty")
        pools[kind] = _Pool(group_maskers(maskers[kind]), dataset)

    # 1-2. targets (SB1:243-275)
    rng.shuffle(pool)
    if config.target_mode == "sequential":
        chosen = [pool[j % len(pool)] for j in range(n_scenes)]
    else:
        chosen = [rng.choice(pool) for _ in range(n_scenes)]

    # 3. interferers (SB1:135-189, 284-319)
    all_interferers = []
    for target in chosen:
        n = rng.choice(list(config.interferer_counts))
        types = _draw_types(rng, config, n)
        picked = []
        for kind in types:
            start = min(target.nsamples, rng.randint(0, 0))
            end = max(0, target.nsamples - rng.randint(0, 0))
            required = end - start
            masker = _choose_masker(rng, pools[kind], dataset, required, kind, target.wavfile)
            offset = rng.randint(0, masker.nsamples - required)
            picked.append(Interferer(kind, masker.name, offset, start, end))
        all_interferers.append(tuple(picked))

    # 4. SNR, a second pass over the scenes (SB1:277-282)
    scenes = []
    for j, (target, inter) in enumerate(zip(chosen, all_interferers)):
        lo, hi = config.snr_ranges[inter[0].type] if len(inter) == 1 else config.multi_snr_range
        snr = rng.uniform(lo, hi)
        scenes.append(Scene(dataset, id_format.format(start_index + j), target.wavfile, target.nsamples, inter,
                            round_snr(snr) if config.round_snr else snr))
    return scenes


def _load_maskers(metadata_dir: Path, config: SceneBuilderConfig) -> dict[str, list[MaskerEntry]]:
    files = {"speech": "masker_speech_list.json", "noise": "masker_noise_list.json", "music": "masker_music_list.json"}
    return {kind: load_masker_list(metadata_dir / files[kind], kind) for kind in config.interferer_types}


def build_challenge_scene_lists(metadata_dir: str | Path, datasets: Sequence[DatasetSpec] = (
        DatasetSpec("train", 34525, 1), DatasetSpec("dev", 3365, 34526)), seed: int = 0,
        config: SceneBuilderConfig | None = None, overwrite: bool = False,
        output_dir: str | Path | None = None) -> dict[str, Path]:
    """The challenge driver (spec §2.1): one generator seeded once, datasets in order, files written.

    Like the challenge, an existing ``scenes.<dataset>.json`` is kept and skipped *without* consuming the
    generator (so dev depends on whether train was built in the same run, spec §6 bug 1), unless
    ``overwrite``. Returns the path of every scene list, built or kept.
    """
    metadata_dir = Path(metadata_dir)
    output_dir = Path(output_dir) if output_dir else metadata_dir
    config = config or SceneBuilderConfig()
    targets = load_target_list(metadata_dir / "target_speech_list.json")
    maskers = _load_maskers(metadata_dir, config)
    rng = random.Random(seed)
    out = {}
    for spec in datasets:
        path = output_dir / f"scenes.{spec.name}.json"
        out[spec.name] = path
        if path.exists() and not overwrite:
            load_scenes(path)  # still validate what is kept
            continue
        save_scenes(path, build_scenes(spec.name, spec.n_scenes, targets, maskers, rng, config, spec.start_index))
    return out


class SceneSampler:
    """Fresh scenes every epoch from the builder's distributions, reproducible from ``(seed, epoch)``.

    Each epoch is an independent call of :func:`build_scenes` with its own generator, so any worker or rank
    can rebuild epoch ``e`` on its own, and the same seed gives the same scenes on every machine.
    By default every target of the dataset appears once per epoch (``sequential`` mode, ``n_scenes`` = T).
    """

    def __init__(self, dataset: str, targets: Sequence[TargetEntry], maskers: Mapping[str, Sequence[MaskerEntry]],
                 config: SceneBuilderConfig | None = None, seed: int = 0, n_scenes: int | None = None) -> None:
        self.dataset = dataset
        self.maskers = {k: list(v) for k, v in maskers.items()}
        self.config = config or SceneBuilderConfig()
        # Targets no masker of some enabled type can cover would stop the builder; leave them out, counted.
        longest = {k: max((m.nsamples for m in self.maskers.get(k, []) if m.dataset == dataset), default=-1)
                   for k in self.config.interferer_types}
        coverable = [t.dataset != dataset or all(t.nsamples <= n for n in longest.values()) for t in targets]
        self.targets = [t for t, ok in zip(targets, coverable) if ok]
        self.excluded_targets = [t.wavfile for t, ok in zip(targets, coverable) if not ok]
        if self.excluded_targets:
            warnings.warn(f"SceneSampler: {len(self.excluded_targets)} target(s) of {dataset!r} are longer than every "
                          f"masker of some interferer type and are left out, e.g. {self.excluded_targets[0]!r}")
        self.seed = int(seed)
        self.n_scenes = n_scenes if n_scenes is not None else sum(t.dataset == dataset for t in self.targets)
        if self.n_scenes <= 0:
            raise ValueError(f"SceneSampler: no scenes to sample for dataset {dataset!r} (n_scenes={self.n_scenes})")

    def generator(self, epoch: int) -> random.Random:
        # A string seed is hashed with SHA-512 by CPython: stable across processes and PYTHONHASHSEED.
        return random.Random(f"avse-scenes:{self.seed}:{int(epoch)}")

    def scenes_for_epoch(self, epoch: int) -> list[Scene]:
        return build_scenes(self.dataset, self.n_scenes, self.targets, self.maskers, self.generator(epoch),
                            self.config, start_index=1, id_format=f"E{int(epoch):04d}S{{:05d}}")
