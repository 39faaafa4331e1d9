"""``LRSDataModule``: processed LRS2/LRS3 (or any corpus in the same layout) → ``AVBatch`` loaders.

Train: seeded on-the-fly corruption (noise at an SNR from ``train_snrs``, which may include ``null`` for
clean; optional visual corruption), random crop/flip/time mask/cutout, frame-budget batches reshuffled every
epoch. Validation: clean (or ``val_condition``), centre crop. Test: one loader per ``test_conditions`` entry,
each utterance corrupted deterministically from ``(seed, utterance id, condition)``.

Distributed training: the module shards batches itself with :class:`FrameBudgetBatchSampler`, reading rank
and world size from ``self.trainer``. Run DDP with ``Trainer(use_distributed_sampler=False)`` (set in the
recipes' ``trainer:`` section); with Lightning's sampler injection enabled, ``setup`` stops with that fix.

Bad utterances are warned once each, counted per stage and epoch (logged as ``data/<stage>_bad`` etc.) and
the run stops with examples when more than ``max_bad_fraction`` of them fail.
"""
from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any, Optional, Union

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from avsr_lightning.data.bad_items import BadItemTracker, TooManyBadItems
from avsr_lightning.data.collate import CollatedBatch, Collator
from avsr_lightning.data.conditions import Condition
from avsr_lightning.data.corruption.acoustic import NoiseMixer
from avsr_lightning.data.corruption.occluders import OccluderBank
from avsr_lightning.data.dataset import MODALITIES, AVDataset
from avsr_lightning.data.lengths import frame_counts
from avsr_lightning.data.manifest import Utterance, load_split
from avsr_lightning.data.sampler import FrameBudgetBatchSampler
from avsr_lightning.data.transforms import (
    MatchAudioToVideo,
    PipelineContext,
    TestCondition,
    Transform,
    bound_pipeline,
    default_eval_transforms,
    default_train_transforms,
)
from avsr_lightning.data.transforms.stats import corpus_pixel_stats
from avsr_lightning.data.worker_priority import LowPriorityWorkerInit
from avsr_lightning.data.worker_seed import WorkerSeeder, loader_generator
from avsr_lightning.text import CharTokenizer, Tokenizer

log = logging.getLogger(__name__)

ConditionSpec = Union[dict[str, Any], str, None]


class LRSDataModule(pl.LightningDataModule):
    """Args (the first ones are fixed by docs/internals.md):
        root: processed corpus root.
        train_split, val_split, test_split: split lists, relative to ``root`` or absolute (``0_600.txt``-style,
            ``val.txt`` with or without the split-dir prefix, ``test.ref``).
        max_frames: padded-frame budget per batch (``B * T_max``); None to use ``batch_size``.
        batch_size: fixed batch size instead of a frame budget.
        num_workers: DataLoader workers per process.
        noise_files: noise wav/npy files; None = ``<root>/noise/babble.wav`` (or ``.npy``) if present.
        train_snrs: training SNRs in dB, drawn uniformly; ``null`` entries mean clean audio.
        visual_corruption: occluders + noise/blur on training clips (spec §4.5).
        occluder_dir: directory with ``object_image_sr/`` and ``object_mask_x4/``; None = ``<root>/occlusion_patch``.
        seed: base seed for batches, training augmentation and test conditions.
        eval_max_frames: frame budget for val/test (default: ``max_frames``).
        max_length: training utterances longer than this many frames are excluded (counted and reported).
        curriculum: ``[[epoch, max_length], ...]`` (e.g. ``[[0, 100], [10, 300], [20, 600]]``); use with
            ``trainer.reload_dataloaders_every_n_epochs: 1`` so the epoch length is recomputed.
        modalities: ``["video", "audio"]``, ``["audio"]`` or ``["video"]``; the unused stream is not decoded.
        train_partial_noise: ``reference_train`` (zero 4 spans of the mixture with prob 0.5, spec §4.3), ``none``
            or ``avrelscore``.
        speed_factors, volume_db: optional speed (both streams) and volume perturbation in training.
        max_text_len: token truncation in train/val (reference 150).
        reference_quirks: reproduce the reference occluder placement quirks (spec §8.8-9).
        val_condition: condition for validation (default clean; the reference validated with training
            augmentation, spec §8.5-6).
        test_conditions: conditions evaluated by ``test``, one loader each, e.g.
            ``[{snr: null, visual: clean}, {snr: 0, visual: occlusion}]`` or names ``babble_snr0__occlusion``.
        test_occluder_size: occluder side in the AV-RelScore protocol (42 LRS3, 30 LRS2, spec §7.1).
        split_prefix: prefix for bare ``spk/utt`` ids (default: inferred from ``<root>/Video``).
        max_bad_fraction: stop when more than this fraction of utterances cannot be loaded.
        bucketed: group utterances of similar length (jittered each epoch); False = random batches as in the
            reference loader (more padding).
        tokenizer: text → ids (default the reference :class:`CharTokenizer`).
        train_transforms: the training pipeline, an ordered list of ``avsr_lightning.data.transforms`` steps
            (``class_path``/``init_args`` in YAML, docs/data.md). None = the pipeline of the flags above
            (``visual_corruption``, ``speed_factors``, ``train_snrs``, ``train_partial_noise``, ``volume_db``,
            88-px crop, LRS mean/std); when given, those flags are not used.
        eval_transforms: the validation/test pipeline; the loader's condition is applied at its
            ``TestCondition`` step (inserted after ``MatchAudioToVideo`` when missing). None = condition,
            88-px centre crop, LRS mean/std, audio normalisation.
        eval_noise_files: val/test noise files; None = ``<root>/noise/eval/*.wav`` when that directory exists
            (noise unheard in training), else the training noise files.
        cache_decoded: keep decoded clips in memory after their first read (``true``, ``false`` or ``auto`` =
            when the split's decoded size is below ``cache_max_gb``). Per process: with ``num_workers > 0``
            use ``persistent_workers: true`` so workers keep their cache across epochs.
        cache_max_gb: the ``auto`` limit per split and process.
        worker_nice: raise the data workers' nice value by this much (0..19): on a machine whose cores all
            run the training step (the 2-core demo) the workers then use the gaps the step leaves instead of
            pre-empting its threads (avsr_lightning/data/worker_priority.py). 0 = unchanged.
    """

    #: the samplers shard batches per rank: the CLI turns Lightning's sampler injection off (docs/training.md)
    shards_own_batches = True

    def __init__(
        self,
        root: str,
        train_split: str = "train.txt",
        val_split: str = "val.txt",
        test_split: str = "test.ref",
        max_frames: Optional[int] = 2400,
        batch_size: Optional[int] = None,
        num_workers: int = 4,
        noise_files: Optional[list[str]] = None,
        train_snrs: list[Optional[float]] = [-5.0, 0.0, 5.0, 10.0, 15.0],  # noqa: B006 - jsonargparse needs a literal
        visual_corruption: bool = False,
        occluder_dir: Optional[str] = None,
        seed: int = 42,
        eval_max_frames: Optional[int] = None,
        max_length: Optional[int] = 600,
        curriculum: Optional[list[list[int]]] = None,
        modalities: list[str] = ["video", "audio"],  # noqa: B006
        train_partial_noise: str = "reference_train",
        speed_factors: Optional[list[float]] = None,
        volume_db: Optional[tuple[float, float]] = None,
        max_text_len: Optional[int] = 150,
        reference_quirks: bool = False,
        val_condition: ConditionSpec = None,
        test_conditions: Optional[list[Union[dict[str, Any], str]]] = None,
        test_occluder_size: int = 42,
        split_prefix: Optional[str] = None,
        max_bad_fraction: float = 0.05,
        pin_memory: Optional[bool] = None,
        persistent_workers: bool = False,
        bucketed: bool = True,
        tokenizer: Optional[Tokenizer] = None,
        train_transforms: Optional[list[Transform]] = None,
        eval_transforms: Optional[list[Transform]] = None,
        eval_noise_files: Optional[list[str]] = None,
        cache_decoded: Union[bool, str] = False,
        cache_max_gb: float = 2.0,
        worker_nice: int = 0,
    ) -> None:
        super().__init__()
        if max_frames is None and batch_size is None:
            raise ValueError("LRSDataModule: give max_frames (frame budget per batch) or batch_size; both are None")
        if max_frames is not None and batch_size is not None:
            raise ValueError(f"LRSDataModule: give max_frames or batch_size, not both (got max_frames={max_frames}, "
                             f"batch_size={batch_size}); set one of them to null")
        if num_workers < 0:
            raise ValueError(f"LRSDataModule: num_workers should be an int >= 0, got {num_workers}")
        if not set(modalities) <= set(MODALITIES) or not modalities:
            raise ValueError(f"LRSDataModule: modalities must be a non-empty subset of {list(MODALITIES)}, got {modalities}")
        if not 0.0 <= max_bad_fraction <= 1.0:
            raise ValueError(f"LRSDataModule: max_bad_fraction must be in [0, 1], got {max_bad_fraction}")
        if not train_snrs:
            raise ValueError("LRSDataModule: train_snrs is empty; use [null] for clean training audio")
        if cache_decoded not in (True, False, "auto"):
            raise ValueError(f"LRSDataModule: cache_decoded must be true, false or auto, got {cache_decoded!r}")
        # transform objects are not hyperparameters (checkpoints load with weights_only=True); the CLI's
        # config.yaml records them
        self.save_hyperparameters(ignore=["tokenizer", "train_transforms", "eval_transforms"])
        self.root = Path(root)
        self.train_split, self.val_split, self.test_split = train_split, val_split, test_split
        self.max_frames, self.batch_size = max_frames, batch_size
        self.eval_max_frames = eval_max_frames if eval_max_frames is not None else max_frames
        self.num_workers = num_workers
        self.noise_files = noise_files
        self.train_snrs = list(train_snrs)
        self.visual_corruption = visual_corruption
        self.occluder_dir = occluder_dir
        self.seed = seed
        self.max_length = max_length
        self.curriculum = curriculum
        self.modalities = list(modalities)
        self.train_partial_noise = train_partial_noise
        self.speed_factors, self.volume_db = speed_factors, volume_db
        self.max_text_len = max_text_len
        self.reference_quirks = reference_quirks
        self.val_condition = Condition.from_any(val_condition)
        self.test_conditions = [Condition.from_any(c) for c in (test_conditions or [None])]
        names = [c.name for c in self.test_conditions]
        if len(set(names)) != len(names):
            raise ValueError(f"LRSDataModule: test_conditions have duplicate names {names}")
        self.test_occluder_size = test_occluder_size
        self.split_prefix = split_prefix
        self.max_bad_fraction = max_bad_fraction
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.persistent_workers = persistent_workers
        self.bucketed = bucketed
        self.train_transforms = list(train_transforms) if train_transforms is not None else None
        if train_transforms is not None and (visual_corruption or speed_factors or volume_db is not None):
            log.warning("LRSDataModule: train_transforms is given, so visual_corruption/speed_factors/volume_db "
                        "are not used; put VisualCorruption/SpeedPerturbation/NoiseMixing(volume_db) in the list")
        self.eval_transforms = list(eval_transforms) if eval_transforms is not None else None
        self.eval_noise_files = eval_noise_files
        self.cache_decoded, self.cache_max_gb = cache_decoded, cache_max_gb
        if not 0 <= worker_nice <= 19:
            raise ValueError(f"LRSDataModule: worker_nice should be in 0..19 (0 = unchanged priority), got {worker_nice}")
        self.worker_nice = worker_nice
        self.tokenizer = tokenizer or CharTokenizer()
        self.datasets: dict[str, Any] = {}
        self.samplers: dict[str, Any] = {}
        self.trackers: dict[str, BadItemTracker] = {}
        self._epoch_key: dict[str, int] = {}

    # ------------------------------------------------------------------------------------------ wiring
    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 1, 0
        world, rank = int(trainer.world_size), int(trainer.global_rank)
        if world > 1 and getattr(trainer._accelerator_connector, "use_distributed_sampler", False):
            raise ValueError("LRSDataModule shards batches itself: run distributed training with "
                             "Trainer(use_distributed_sampler=False) (trainer.use_distributed_sampler: false in YAML)")
        return world, rank

    def _noise_paths(self) -> list[Path]:
        if self.noise_files is not None:
            return [Path(p) if Path(p).is_absolute() else self.root / p for p in self.noise_files]
        for name in ("babble.wav", "babble.npy"):
            if (self.root / "noise" / name).is_file():
                return [self.root / "noise" / name]
        return []

    def _eval_noise_paths(self) -> list[Path]:
        """Val/test noise: ``eval_noise_files``, else ``<root>/noise/eval/*.wav`` (unheard in training), else
        the training noise."""
        if self.eval_noise_files is not None:
            return [Path(p) if Path(p).is_absolute() else self.root / p for p in self.eval_noise_files]
        if self.noise_files is None:
            found = sorted(p for p in (self.root / "noise" / "eval").glob("*") if p.suffix in (".wav", ".npy"))
            if found:
                return found
        return self._noise_paths()

    def _mixer(self, snrs: list[Optional[float]], partial: str,
               files: Optional[list[Path]] = None) -> Optional[NoiseMixer]:
        files = self._noise_paths() if files is None else list(files)
        if all(s is None for s in snrs):
            return None
        if not files:
            raise ValueError(f"LRSDataModule: SNRs {snrs} need noise but no noise file was found; set noise_files "
                             f"or put babble.wav under {self.root / 'noise'}, or use [null] for clean audio")
        return NoiseMixer(files, snrs, partial=partial, volume_db=self.volume_db if partial != "avrelscore" else None)

    def _occluders(self, directory: Optional[str] = None) -> OccluderBank:
        directory = directory or self.occluder_dir
        return OccluderBank(Path(directory) if directory else self.root / "occlusion_patch")

    def _corpus_stats(self) -> dict[str, float]:
        """``pixel_mean``/``pixel_std`` recorded in ``<root>/corpus.json`` (synthetic corpora), else {}."""
        return corpus_pixel_stats(self.root)

    def _pipeline(self, train: bool, condition: Condition) -> list[Transform]:
        """The dataset's bound pipeline: the configured list (or the flags' default), one copy per dataset."""
        if train:
            steps = self.train_transforms
            if steps is None:
                steps = default_train_transforms(self.train_snrs, self.visual_corruption and "video" in self.modalities,
                                                 self.speed_factors, self.train_partial_noise, self.volume_db)
        else:
            steps = self.eval_transforms if self.eval_transforms is not None else default_eval_transforms()
            if not any(isinstance(t, TestCondition) for t in steps):
                at = next((i + 1 for i, t in enumerate(steps) if isinstance(t, MatchAudioToVideo)), 0)
                steps = [*steps[:at], TestCondition(), *steps[at:]]
        context = PipelineContext(root=self.root, seed=self.seed, modalities=tuple(self.modalities), train=train,
                                  condition=condition, noise_files=self._noise_paths(),
                                  eval_noise_files=self._eval_noise_paths() if not train else (),
                                  occluder_dir=self.occluder_dir, reference_quirks=self.reference_quirks,
                                  test_occluder_size=self.test_occluder_size, volume_db=self.volume_db,
                                  make_mixer=self._mixer, make_occluders=self._occluders,
                                  corpus_stats=self._corpus_stats)
        return bound_pipeline(steps, context)

    def _cache_enabled(self, lengths: list[Optional[int]]) -> bool:
        if self.cache_decoded == "auto":
            frames = sum(n for n in lengths if n is not None)
            per_frame = (96 * 96 if "video" in self.modalities else 0) + 4 * 640  # uint8 crops + float32 audio
            enabled = frames * per_frame <= self.cache_max_gb * 1e9
        else:
            enabled = bool(self.cache_decoded)
        if enabled and self.num_workers > 0 and not self.persistent_workers:
            log.warning("LRSDataModule: cache_decoded with num_workers=%d but persistent_workers=false: workers "
                        "restart every epoch and lose their cache; set persistent_workers: true",
                        self.num_workers)
        return enabled

    def _utterances(self, split: str, stage: str) -> list[Utterance]:
        utts = load_split(self.root, split, prefix=self.split_prefix)
        if not utts:
            raise ValueError(f"LRSDataModule: {stage} split {split} (root {self.root}) lists no utterances")
        return utts

    def _counted_frames(self, root: Path, utts: list[Utterance], tracker_key: str,
                        where: str) -> tuple[list[int | None], dict[str, str]]:
        """Frame counts of ``utts`` under ``root``. Files that cannot even be opened are excluded before any
        epoch: recorded in the ``setup/<tracker_key>`` tracker, warned once, and the run stops when more
        than ``max_bad_fraction`` are bad. ``where`` names the split/root in the messages."""
        lengths, errors = frame_counts(root, utts, num_threads=max(2, self.num_workers))
        setup_key = f"setup/{tracker_key}"
        tracker = self.trackers[setup_key] = BadItemTracker(setup_key, self.max_bad_fraction)
        for uid, reason in errors.items():
            path, _, why = reason.partition(": ")
            tracker.record_bad(uid, path, why)
        tracker.record_good(len(utts) - len(errors))
        if errors:
            log.warning("[%s] %d of %d utterances of %s cannot be used and are excluded: %s", tracker_key,
                        len(errors), len(utts), where, dict(tracker.reasons))
        try:
            tracker.check(final=True)
        except TooManyBadItems as err:
            raise TooManyBadItems(f"{err}\n{where}") from None
        return lengths, errors

    def _build(self, stage: str, split: str, train: bool, condition: Condition, tracker_key: str) -> AVDataset:
        utts = self._utterances(split, stage)
        lengths, errors = self._counted_frames(self.root, utts, tracker_key, f"split {split}, root {self.root}")
        utts = [Utterance(u.id, u.text, n) for u, n in zip(utts, lengths)]
        return AVDataset(self.root, utts, self.tokenizer, modalities=self.modalities, train=train, condition=condition,
                         seed=self.seed, max_text_len=self.max_text_len if stage in ("train", "val") else None,
                         transforms=self._pipeline(train, condition), cache_decoded=self._cache_enabled(lengths))

    def _sampler(self, dataset: AVDataset, train: bool) -> FrameBudgetBatchSampler:
        world, rank = self._world()
        lengths = [u.num_frames for u in dataset.utterances]
        budget = self.max_frames if train else self.eval_max_frames
        max_len = self.max_length if train else None
        if budget is not None and not train:
            longest = max((n for n in lengths if n is not None), default=0)
            budget = max(budget, longest)  # never drop an evaluation utterance for being long
        sampler = FrameBudgetBatchSampler(lengths, max_frames=budget, batch_size=self.batch_size if budget is None
                                          else None, shuffle=train, seed=self.seed, num_replicas=world, rank=rank,
                                          max_length=max_len, curriculum=self.curriculum if train else None,
                                          bucketed=self.bucketed or not train)
        if train:
            self._check_trainable(dataset, sampler, max_len, budget)
        return sampler

    def _check_trainable(self, dataset: AVDataset, sampler: FrameBudgetBatchSampler, max_len: Optional[int],
                         budget: Optional[int]) -> None:
        """Report training utterances excluded for length (one warning naming some, counted as the
        ``too_long`` note of the ``setup/train`` tracker) and stop when none is left to train on, instead of
        training nothing and exiting 0 (docs/data.md, "Bad input")."""
        lengths = [u.num_frames for u in dataset.utterances]
        usable = {int(i) for i in sampler.eligible(10**9)} | {int(i) for i in sampler.eligible(0)}
        too_long = [u for i, (u, n) in enumerate(zip(dataset.utterances, lengths)) if n is not None and i not in usable]
        if too_long:
            tracker = self.trackers.get("setup/train")
            if tracker is not None:
                tracker.notes["too_long"] += len(too_long)
            log.warning("%d training utterances longer than max_length=%s (or the batch budget max_frames=%s) "
                        "frames are excluded, e.g. %s", len(too_long), max_len, budget,
                        ", ".join(f"{u.id} ({u.num_frames} frames)" for u in too_long[:5]))
        if len(sampler.eligible(0)) == 0:
            known = [n for n in lengths if n is not None]
            raise ValueError(
                f"LRSDataModule: no training utterance of {self.train_split} (root {self.root}) is left to train on "
                f"in epoch 0: max_length={max_len} (curriculum {self.curriculum}), max_frames={budget}, usable "
                f"lengths {min(known) if known else '-'}..{max(known) if known else '-'} frames over {len(known)} "
                f"utterances. Raise data.max_length / data.max_frames or check the split.")

    def setup(self, stage: Optional[str] = None) -> None:
        if not self.root.is_dir():
            raise FileNotFoundError(f"LRSDataModule: data root {self.root} does not exist; set data.root to the "
                                    f"processed corpus (see docs/data.md)")
        if stage in (None, "fit") and "train" not in self.datasets:
            self.datasets["train"] = self._build("train", self.train_split, True, Condition(), "train")
            self.samplers["train"] = self._sampler(self.datasets["train"], True)
        if stage in (None, "fit", "validate") and "val" not in self.datasets:
            self.datasets["val"] = self._build("val", self.val_split, False, self.val_condition, "val")
            self.samplers["val"] = self._sampler(self.datasets["val"], False)
        if stage in (None, "test") and "test" not in self.datasets:
            self.datasets["test"] = [self._build("test", self.test_split, False, c, f"test/{c.name}")
                                     for c in self.test_conditions]
            self.samplers["test"] = [self._sampler(d, False) for d in self.datasets["test"]]

    def _loader(self, dataset: AVDataset, sampler: FrameBudgetBatchSampler) -> DataLoader:
        # own generator + seeded workers: iterating never draws from the global RNG (exact resume,
        # avsr_lightning/data/worker_seed.py)
        return DataLoader(dataset, batch_sampler=sampler, num_workers=self.num_workers,
                          collate_fn=Collator(dataset, eligible=sampler.eligible(0)),
                          pin_memory=self.pin_memory, persistent_workers=self.persistent_workers and self.num_workers > 0,
                          generator=loader_generator(self.seed),
                          worker_init_fn=LowPriorityWorkerInit(
                              WorkerSeeder(self.seed, sampler.rank, partial(getattr, sampler, "epoch")), self.worker_nice))

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.datasets["train"], self.samplers["train"])

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.datasets["val"], self.samplers["val"])

    def test_dataloader(self) -> Union[DataLoader, list[DataLoader]]:
        loaders = [self._loader(d, s) for d, s in zip(self.datasets["test"], self.samplers["test"])]
        return loaders[0] if len(loaders) == 1 else loaders

    # --------------------------------------------------------------------------------- bad items
    def _stage_key(self, dataloader_idx: int) -> str:
        trainer = self.trainer
        stage = trainer.state.stage.value if trainer is not None and trainer.state.stage is not None else "train"
        if stage in ("validate", "sanity_check"):
            return "val"
        if stage == "test":
            return f"test/{self.test_conditions[min(dataloader_idx, len(self.test_conditions) - 1)].name}"
        return "train"

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Count and warn about the batch's dropped items and notes (main process), then strip the extras."""
        if not isinstance(batch, CollatedBatch):
            return batch
        key = self._stage_key(dataloader_idx)
        if key not in self.trackers:
            # check the fraction after 50 items, or after one pass over a smaller split
            self.trackers[key] = BadItemTracker(key, self.max_bad_fraction, min(50, self._split_size(key)))
        tracker = self.trackers[key]
        trainer = self.trainer
        epoch = int(trainer.current_epoch) if trainer is not None else 0
        if self._epoch_key.get(key, epoch) != epoch:
            self.report(key)
            tracker.reset()
        self._epoch_key[key] = epoch
        for bad in batch.bad_items:
            tracker.record_bad(bad.id, bad.path, bad.reason)
        for note in batch.notes:
            tracker.record_note(note)
        tracker.record_good(len(batch))
        tracker.check()
        return batch.to_avbatch()

    def _split_size(self, key: str) -> int:
        if key.startswith("test/"):
            names = [c.name for c in self.test_conditions]
            dataset = self.datasets.get("test", [None])[names.index(key[5:])] if key[5:] in names else None
        else:
            dataset = self.datasets.get(key)
        return max(1, len(dataset)) if dataset is not None else 50

    def report(self, key: str) -> dict[str, float]:
        """Log one stage's counts (to the trainer's loggers and the Python log) and return them."""
        tracker = self.trackers.get(key)
        if tracker is None:
            return {}
        summary = tracker.summary()
        if tracker.bad or tracker.notes:
            log.warning("[%s] data: %d of %d utterances skipped (%s); notes: %s", key, tracker.bad, tracker.seen,
                        dict(tracker.reasons), dict(tracker.notes))
        trainer = self.trainer
        if trainer is not None and trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics({f"data/{key}_{k}": v for k, v in summary.items()}, step=trainer.global_step)
        return summary

    def skipped_utterances(self, stage: str = "test") -> list[dict[str, str]]:
        """Every utterance of ``stage`` skipped so far, at setup (cannot be opened) or when loaded:
        ``{"id", "condition", "path", "reason"}`` rows (``condition`` is the test condition name), for the
        test reports."""
        rows = []
        for key, tracker in sorted(self.trackers.items()):
            name = key[len("setup/"):] if key.startswith("setup/") else key
            if name != stage and not name.startswith(f"{stage}/"):
                continue
            condition = name.split("/", 1)[1] if "/" in name else name
            rows += [{"id": uid, "condition": condition, "path": path, "reason": reason}
                     for uid, (path, reason) in sorted(tracker.skipped.items())]
        return rows

    @property
    def bad_item_counts(self) -> dict[str, dict[str, float]]:
        return {key: tracker.summary() for key, tracker in self.trackers.items()}

    def teardown(self, stage: Optional[str] = None) -> None:
        for key in list(self.trackers):
            if not key.startswith("setup/"):
                self.report(key)

    # --------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """The training sampler's position: epoch, seed and the batches of the epoch already trained on.

        Saved in every checkpoint (Lightning stores the data module's state), so a resume from a
        checkpoint written at any step continues with the next batch of the same plan (docs/training.md).
        """
        sampler = self.samplers.get("train")
        if sampler is None:
            return {}
        state = sampler.state_dict()
        state["epoch"], state["batches_done"] = self._train_position(sampler)
        return {"train_sampler": state}

    def _train_position(self, sampler: FrameBudgetBatchSampler) -> tuple[int, int]:
        """``(epoch, batches of it consumed by training steps)`` at the time of the checkpoint.

        Lightning's epoch loop counts the batches whose ``training_step`` ran (``batch_progress.current
        .processed``); an epoch whose batches are all consumed (its length, or ``limit_train_batches``)
        resumes at the start of the next epoch.
        """
        trainer = self.trainer
        if trainer is None or trainer.state.fn != "fit":
            return sampler.epoch, 0
        done = int(trainer.fit_loop.epoch_loop.batch_progress.current.processed)
        per_epoch = trainer.num_training_batches
        if done and done >= per_epoch:
            return sampler.epoch + 1, 0
        return sampler.epoch, done

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "train_sampler" in state_dict and "train" in self.samplers:
            state = state_dict["train_sampler"]
            self.samplers["train"].load_state_dict(state, batches_done=int(state.get("batches_done", 0)))

