"""``AVSEDataModule``: AVSR training on AVSE challenge scenes mixed on the fly.

Each item is one scene: the mixture is rendered in the worker with the challenge's exact mixing
(:func:`avsr_lightning.data.avse.mix_scene`, full length, then optionally cropped), the video is the target's
lip crops from a processed LRS3 tree and the label is the target's transcript. Training uses either the fixed
scene list (``train_mode: fixed``; the challenge's ``scenes.train.json``, so the mixtures equal the rendered
challenge files) or fresh scenes every epoch (``train_mode: sample``; the challenge builder's distributions,
seeded by ``(seed, epoch)``). Validation and test always use fixed lists (default ``scenes.dev.json``).

Everything else is :class:`~avsr_lightning.datamodules.lrs.LRSDataModule`: frame-budget batches sharded per
rank (run DDP with ``use_distributed_sampler: false``), collate, visual corruption, and bad items counted and
reported per stage (a scene that cannot be mixed is one bad item naming the scene and the reason).

``SyntheticAVSEDataModule`` builds an AVSE-style root from the synthetic corpus (for the CPU demo).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

from avsr_lightning.data.avse.builder import (
    DatasetSpec,
    SceneBuilderConfig,
    SceneSampler,
    build_challenge_scene_lists,
)
from avsr_lightning.data.avse.dataset import AVSEDataset
from avsr_lightning.data.avse.formats import load_masker_list, load_scenes, load_target_list
from avsr_lightning.data.avse.scene_io import AVSELayout, SceneMixer
from avsr_lightning.data.conditions import Condition
from avsr_lightning.data.corruption.visual import VisualCorruption
from avsr_lightning.data.manifest import Utterance
from avsr_lightning.data.transforms import VideoTransform
from avsr_lightning.datamodules.lrs import LRSDataModule
from avsr_lightning.text import Tokenizer

log = logging.getLogger(__name__)

TRAIN_MODES = ("fixed", "sample")
_MASKER_FILES = {"speech": "masker_speech_list.json", "noise": "masker_noise_list.json",
                 "music": "masker_music_list.json"}


class AVSEDataModule(LRSDataModule):
    """Args:
        avse_root: the challenge data root (``metadata/``, ``<dataset>/targets``, ``<dataset>/interferers``).
        lrs_root: processed LRS3 tree (``Video/``, ``Text/``, landmarks) holding the targets' lip crops.
        speech_weight: the challenge's ``speech_weight.mat``; ``approximate`` uses a designed stand-in (not
            challenge-exact; demos only).
        train_mode: ``fixed`` (the ``train_scenes`` list) or ``sample`` (fresh scenes every epoch).
        train_scenes, val_scenes, test_scenes: scene lists, relative to ``avse_root`` or absolute
            (``test_scenes`` None = ``val_scenes``).
        metadata_dir: metadata lists for ``sample`` mode, relative to ``avse_root``.
        sample_dataset: the metadata ``dataset`` sampled scenes draw targets and maskers from.
        interferer_counts, interferer_types, speech_snr, noise_snr, music_snr, multi_snr: the builder's
            distributions in ``sample`` mode (defaults = AVSE1: one speech or noise interferer).
        target_audio: template of the decoded target wav (``{root}`` = avse_root, ``{lrs_root}``,
            ``{dataset}``, ``{name}``); the challenge default is ``<root>/<dataset>/targets/<name>.wav``.
        interferer_audio: template of a masker wav (``{root}``, ``{dataset}``, ``{type}``, ``{name}``).
        crop_frames: crop training items to this many frames *after* full-length mixing (None = whole).
        exact_mixing: the challenge's exact weighted RMS (True) or the Parseval form (within §7.3 tolerance).
        normalize_audio: per-utterance zero-mean/unit-variance of the mixture (the LRS pipeline's input).
        report_snr_step: validation/test items report ``snr`` as the centre of this dB band, so reports group
            scenes by interferer type and SNR band (the scene id is in the item id); null = exact SNR.
        The remaining arguments are :class:`LRSDataModule`'s (frame budget, workers, visual corruption, ...).
    """

    def __init__(
        self,
        avse_root: str,
        lrs_root: str,
        speech_weight: str,
        train_mode: str = "fixed",
        train_scenes: Optional[str] = "metadata/scenes.train.json",
        val_scenes: str = "metadata/scenes.dev.json",
        test_scenes: Optional[str] = None,
        metadata_dir: str = "metadata",
        sample_dataset: str = "train",
        interferer_counts: list[int] = [1],  # noqa: B006 - jsonargparse needs a literal
        interferer_types: list[str] = ["speech", "noise"],  # noqa: B006
        speech_snr: tuple[float, float] = (-15.0, 5.0),
        noise_snr: tuple[float, float] = (-10.0, 10.0),
        music_snr: tuple[float, float] = (-10.0, 10.0),
        multi_snr: tuple[float, float] = (-10.0, 10.0),
        target_audio: str = "{root}/{dataset}/targets/{name}.wav",
        interferer_audio: str = "{root}/{dataset}/interferers/{type}/{name}.wav",
        crop_frames: Optional[int] = None,
        exact_mixing: bool = True,
        normalize_audio: bool = True,
        report_snr_step: Optional[float] = 5.0,
        max_frames: Optional[int] = 2400,
        batch_size: Optional[int] = None,
        num_workers: int = 4,
        visual_corruption: bool = False,
        occluder_dir: Optional[str] = None,
        seed: int = 42,
        eval_max_frames: Optional[int] = None,
        max_length: Optional[int] = 600,
        modalities: list[str] = ["video", "audio"],  # noqa: B006
        max_text_len: Optional[int] = 150,
        reference_quirks: bool = False,
        max_bad_fraction: float = 0.05,
        pin_memory: Optional[bool] = None,
        persistent_workers: bool = False,
        tokenizer: Optional[Tokenizer] = None,
        worker_nice: int = 0,
    ) -> None:
        if train_mode not in TRAIN_MODES:
            raise ValueError(f"AVSEDataModule: train_mode must be one of {TRAIN_MODES}, got {train_mode!r}")
        if train_mode == "fixed" and not train_scenes:
            raise ValueError("AVSEDataModule: train_mode 'fixed' needs train_scenes (a scenes.<dataset>.json); "
                             "or use train_mode: sample")
        if crop_frames is not None and crop_frames < 1:
            raise ValueError(f"AVSEDataModule: crop_frames must be >= 1 or null, got {crop_frames}")
        super().__init__(root=lrs_root, max_frames=max_frames, batch_size=batch_size, num_workers=num_workers,
                         train_snrs=[None], visual_corruption=visual_corruption, occluder_dir=occluder_dir, seed=seed,
                         eval_max_frames=eval_max_frames, max_length=max_length, modalities=modalities,
                         max_text_len=max_text_len, reference_quirks=reference_quirks,
                         max_bad_fraction=max_bad_fraction, pin_memory=pin_memory,
                         persistent_workers=persistent_workers, tokenizer=tokenizer, worker_nice=worker_nice)
        self.avse_root = Path(avse_root)
        self.lrs_root = Path(lrs_root)
        self.speech_weight = speech_weight
        self.train_mode = train_mode
        self.train_scenes, self.val_scenes = train_scenes, val_scenes
        self.test_scenes = test_scenes or val_scenes
        self.metadata_dir = metadata_dir
        self.sample_dataset = sample_dataset
        self.builder_config = SceneBuilderConfig(
            snr_ranges={"speech": tuple(speech_snr), "noise": tuple(noise_snr), "music": tuple(music_snr)},
            multi_snr_range=tuple(multi_snr), interferer_counts=tuple(interferer_counts),
            interferer_types=tuple(interferer_types))
        self.layout = AVSELayout(str(self.avse_root), target_audio.replace("{lrs_root}", str(self.lrs_root)),
                                 interferer=interferer_audio)
        self.crop_frames = crop_frames
        self.exact_mixing = exact_mixing
        self.normalize_audio = normalize_audio
        self.report_snr_step = report_snr_step
        self._mixer: SceneMixer | None = None

    # ------------------------------------------------------------------------------------------ building
    def _path(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else self.avse_root / path

    def mixer(self) -> SceneMixer:
        if self._mixer is None:
            self._mixer = SceneMixer(self.layout, self.speech_weight, exact=self.exact_mixing)
        return self._mixer

    def _frame_counts(self, targets: list[str], key: str) -> tuple[dict[str, int], set[str]]:
        """Video frames per target; targets whose lip crops cannot be read are excluded and reported."""
        unique = sorted(set(targets))
        counts, errors = self._counted_frames(Path(self.lrs_root), [Utterance(t) for t in unique], key,
                                              f"target lip crops, LRS root: {self.lrs_root}")
        return {t: n for t, n in zip(unique, counts) if n is not None}, set(errors)

    def _fixed_dataset(self, scenes_file: str, train: bool, key: str) -> AVSEDataset:
        path = self._path(scenes_file)
        scenes = load_scenes(path)
        if not scenes:
            raise ValueError(f"AVSEDataModule: {key} scene list {path} is empty")
        counts, bad = self._frame_counts([s.target for s in scenes], key)
        scenes = [s for s in scenes if s.target not in bad]
        return self._dataset(scenes=scenes, num_frames=[counts[s.target] for s in scenes], train=train)

    def _sampled_dataset(self) -> AVSEDataset:
        meta = self._path(self.metadata_dir)
        targets = [t for t in load_target_list(meta / "target_speech_list.json") if t.dataset == self.sample_dataset]
        if not targets:
            raise ValueError(f"AVSEDataModule: no targets of dataset {self.sample_dataset!r} in "
                             f"{meta / 'target_speech_list.json'}; set sample_dataset")
        maskers = {k: load_masker_list(meta / _MASKER_FILES[k], k) for k in self.builder_config.interferer_types}
        counts, bad = self._frame_counts([t.wavfile for t in targets], "train")
        targets = [t for t in targets if t.wavfile not in bad]
        sampler = SceneSampler(self.sample_dataset, targets, maskers, self.builder_config, seed=self.seed)
        names = [t.wavfile for t in sampler.targets if t.dataset == self.sample_dataset]
        return self._dataset(sampler=sampler, targets=names, num_frames=[counts[n] for n in names], train=True)

    def _dataset(self, train: bool, **source: Any) -> AVSEDataset:
        visual = None
        if train and self.visual_corruption and "video" in self.modalities:
            visual = VisualCorruption(self._occluders(), reference_quirks=self.reference_quirks)
        return AVSEDataset(self.lrs_root, self.mixer(), tokenizer=self.tokenizer,
                           video_transform=VideoTransform(train=train), modalities=self.modalities, train=train,
                           visual=visual, seed=self.seed, crop_frames=self.crop_frames if train else None,
                           max_text_len=self.max_text_len if train else None, normalize_audio=self.normalize_audio,
                           report_snr_step=self.report_snr_step, **source)

    def setup(self, stage: Optional[str] = None) -> None:
        for name, path in (("avse_root", self.avse_root), ("lrs_root", self.lrs_root)):
            if not path.is_dir():
                raise FileNotFoundError(f"AVSEDataModule: {name} {path} does not exist; see docs/avse.md")
        if stage in (None, "fit") and "train" not in self.datasets:
            self.datasets["train"] = (self._sampled_dataset() if self.train_mode == "sample"
                                      else self._fixed_dataset(self.train_scenes, True, "train"))
            self.samplers["train"] = self._sampler(self.datasets["train"], True)
        if stage in (None, "fit", "validate") and "val" not in self.datasets:
            self.datasets["val"] = self._fixed_dataset(self.val_scenes, False, "val")
            self.samplers["val"] = self._sampler(self.datasets["val"], False)
        if stage in (None, "test") and "test" not in self.datasets:
            self.test_conditions = [Condition()]
            self.datasets["test"] = [self._fixed_dataset(self.test_scenes, False, f"test/{Condition().name}")]
            self.samplers["test"] = [self._sampler(self.datasets["test"][0], False)]


class SyntheticAVSEDataModule(AVSEDataModule):
    """AVSE-style scenes over the synthetic corpus: generates the corpus, its AVSE root and scene lists.

    The corpus is the one :class:`~avsr_lightning.datamodules.synthetic.SyntheticDataModule` uses (same cache);
    targets are its train/val utterances, speech maskers its speakers' concatenated speech, noise maskers its
    noise files (one class each). Scene lists are built with the challenge builder (seed ``scene_seed``).

    Args:
        utterances, corpus_seed, cache_dir, generation_workers: the synthetic corpus (as SyntheticDataModule).
        avse_root: where to write the AVSE tree (default ``<corpus>/avse``).
        train_scene_count, dev_scene_count: sizes of the built fixed lists.
        scene_seed: seed of the scene builder.
        **kwargs: every :class:`AVSEDataModule` argument (``speech_weight`` defaults to ``approximate``).
    """

    def __init__(self, utterances: int = 1500, corpus_seed: int = 0, cache_dir: Optional[str] = None,
                 generation_workers: int = 0, avse_root: Optional[str] = None, train_scene_count: int = 2000,
                 dev_scene_count: int = 100, scene_seed: int = 0, speech_weight: str = "approximate",
                 **kwargs: Any) -> None:
        from avsr_lightning.datamodules.synthetic import synthetic_corpus_dir

        corpus = synthetic_corpus_dir(utterances, corpus_seed, cache_dir)
        super().__init__(avse_root=avse_root or str(corpus / "avse"), lrs_root=str(corpus),
                         speech_weight=speech_weight, **kwargs)
        self.utterances, self.corpus_seed = utterances, corpus_seed
        self.generation_workers = generation_workers
        self.train_scene_count, self.dev_scene_count, self.scene_seed = train_scene_count, dev_scene_count, scene_seed

    def prepare_data(self) -> None:
        from avsr_lightning.data.avse.corpus import prepare_avse_root
        from avsr_lightning.data.synthetic import generate_corpus

        generate_corpus(self.lrs_root, utterances=self.utterances, seed=self.corpus_seed,
                        workers=self.generation_workers)
        meta = self.avse_root / "metadata"
        if not (meta / "scenes.dev.json").is_file():
            prepare_avse_root(self.lrs_root, self.avse_root)
            build_challenge_scene_lists(meta, [DatasetSpec("train", self.train_scene_count, 1),
                                               DatasetSpec("dev", self.dev_scene_count, self.train_scene_count + 1)],
                                        seed=self.scene_seed, config=self.builder_config)

    def setup(self, stage: Optional[str] = None) -> None:
        if not (self.avse_root / "metadata" / "scenes.dev.json").is_file():
            trainer = getattr(self, "trainer", None)
            if trainer is not None and trainer.world_size > 1:
                raise RuntimeError(f"SyntheticAVSEDataModule: no AVSE root at {self.avse_root}; prepare_data should "
                                   "have built it")
            self.prepare_data()
        super().setup(stage)
