"""The configurable transform pipeline gives, for a fixed seed, exactly the tensors of the composition that
was hard-wired into AVDataset before it existed (kept below, explicitly, as the reference): from the flags,
and from the explicit pipelines the LRS recipes spell out in YAML. Any change of order or parameter fails.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import yaml
from jsonargparse import ArgumentParser
from lightning.pytorch import LightningDataModule

from avsr_lightning.data.conditions import apply_condition
from avsr_lightning.data.corruption import functional as F
from avsr_lightning.data.corruption.acoustic import NoiseMixer
from avsr_lightning.data.corruption.occluders import OccluderBank
from avsr_lightning.data.corruption.seeding import generator_for
from avsr_lightning.data.corruption.visual import VisualCorruption
from avsr_lightning.data.dataset import Sample, load_utterance_landmarks
from avsr_lightning.data.manifest import media_paths
from avsr_lightning.data.media import read_audio, read_video
from avsr_lightning.data.transforms import VideoTransform, fit_audio_to_frames, normalize_utterance
from avsr_lightning.datamodules.lrs import LRSDataModule

CONDITIONS = ["clean__clean", "babble_snr0__occlusion_noise", "babble_snr5__blur", "babble_snr-5__occlusion"]
SPEED = [0.9, 1.0, 1.1]


def old_composition(root, uid, train, epoch, seed, mixer, visual, condition, speed_factors):
    """AVDataset._load's composition before the pipeline (decoding aside), step for step."""
    paths = media_paths(root, uid)
    frames, audio = read_video(paths["video"]), read_audio(paths["audio"])
    rng = generator_for(seed, uid, f"train:{epoch}") if train else None
    needs_landmarks = visual is not None and visual.needs_landmarks and (
        train or condition.visual in ("occlusion", "occlusion_noise"))
    landmarks = load_utterance_landmarks(paths) if needs_landmarks else None
    cond = {}
    if train:
        cond = {"snr": None, "noise": None, "visual": "clean"}
        if visual is not None:
            frames, info = visual(frames, landmarks, rng)
            cond["visual"] = info["visual"]
        if speed_factors:
            factor = float(speed_factors[int(rng.integers(0, len(speed_factors)))])
            audio, frames = F.speed_perturb(audio, frames, factor)
            cond["speed"] = factor
    num_frames = len(frames)
    audio = fit_audio_to_frames(audio, num_frames)
    if train and mixer is not None:
        audio, info = mixer(audio, rng)
        cond.update({"snr": info["snr"], "noise": info["noise"]})
        if info.get("partial"):
            cond["partial"] = info["partial"]
    if not train:
        frames, audio, _ = apply_condition(condition, uid, seed, frames, audio, landmarks, mixer, visual)
        cond = {"name": condition.name, "snr": condition.snr,
                "noise": condition.noise if condition.snr is not None else None, "visual": condition.visual}
    video = VideoTransform(train=train)(frames, rng if train else None)
    return video, normalize_utterance(audio), num_frames, cond


def old_objects(root, train, condition, snrs, occluder_size=42):
    """The NoiseMixer / VisualCorruption the data module built before the pipeline."""
    bank = OccluderBank(root / "occlusion_patch")
    if train:
        return NoiseMixer([root / "noise" / "babble.wav"], snrs, partial="reference_train"), VisualCorruption(bank)
    mixer = NoiseMixer([root / "noise" / "babble.wav"], [condition.snr], partial="avrelscore") \
        if condition.snr is not None else None
    visual = None
    if condition.visual != "clean":
        occ = condition.visual in ("occlusion", "occlusion_noise")
        visual = VisualCorruption.avrelscore_test(bank if occ else None, occluder_size)
    return mixer, visual


def build_data(data_cfg: dict) -> LightningDataModule:
    """Instantiate a YAML ``data:`` section as LightningCLI does (subclass mode: class_path/init_args)."""
    parser = ArgumentParser()
    parser.add_subclass_arguments(LightningDataModule, "data")
    return parser.instantiate(parser.parse_object({"data": data_cfg})).data


def recipe_data(repo_root, name: str, corpus, **overrides) -> LightningDataModule:
    cfg = copy.deepcopy(yaml.safe_load((repo_root / "configs" / name).read_text())["data"])
    cfg["init_args"].update(root=str(corpus), train_split="train.txt", num_workers=0, **overrides)
    return build_data(cfg)


def assert_same(sample: Sample, expected) -> None:
    video, audio, num_frames, cond = expected
    assert isinstance(sample, Sample), sample
    assert sample.num_frames == num_frames
    assert torch.equal(sample.video, video) and torch.equal(sample.audio, audio)
    assert sample.condition == cond


def _check_module(dm: LRSDataModule, corpus, snrs, speed, epochs=(0, 3)) -> None:
    dm.setup("fit")
    dm.setup("test")
    train = dm.datasets["train"]
    mixer, visual = old_objects(corpus, True, None, snrs)
    for epoch in epochs:
        for i in range(len(train)):
            uid = train.utterances[i].id
            assert_same(train[(i, epoch)], old_composition(corpus, uid, True, epoch, dm.seed, mixer, visual, None,
                                                           speed))
    for dataset, condition in zip(dm.datasets["test"], dm.test_conditions):
        mixer, visual = old_objects(corpus, False, condition, snrs, dm.test_occluder_size)
        for i in range(len(dataset)):
            uid = dataset.utterances[i].id
            assert_same(dataset[i], old_composition(corpus, uid, False, 0, dm.seed, mixer, visual, condition, None))


def test_flag_arguments_give_the_old_tensors(corpus):
    snrs = [-5.0, 0.0, 5.0, 10.0, 15.0]
    dm = LRSDataModule(str(corpus), num_workers=0, max_frames=120, visual_corruption=True, speed_factors=SPEED,
                       train_snrs=snrs, test_conditions=CONDITIONS, seed=3)
    _check_module(dm, corpus, snrs, SPEED)


@pytest.mark.parametrize("recipe", ["avrelscore_lrs3.yaml", "vcafe_lrs2.yaml", "conformer_lrs3.yaml",
                                    "data/lrs2.yaml"])
def test_lrs_recipes_spell_out_the_old_pipeline(repo_root, corpus, recipe):
    dm = recipe_data(repo_root, recipe, corpus, batch_size=None, max_frames=120, test_conditions=CONDITIONS)
    assert dm.train_transforms is not None and dm.eval_transforms is not None  # explicit in the YAML
    snrs = [-5.0, 0.0, 5.0, 10.0, 15.0]
    _check_module(dm, corpus, snrs, None, epochs=(1,))


def test_speed_perturbation_in_yaml_matches_the_flag(repo_root, corpus):
    cfg = copy.deepcopy(yaml.safe_load((repo_root / "configs" / "avrelscore_lrs3.yaml").read_text())["data"])
    steps = cfg["init_args"]["train_transforms"]
    at = next(i for i, s in enumerate(steps) if s["class_path"].endswith("MatchAudioToVideo"))
    steps.insert(at, {"class_path": "avsr_lightning.data.transforms.SpeedPerturbation",
                      "init_args": {"factors": SPEED}})
    cfg["init_args"].update(root=str(corpus), train_split="train.txt", num_workers=0, batch_size=None,
                            max_frames=120, test_conditions=CONDITIONS[:1])
    dm = build_data(cfg)
    dm.setup("fit")
    mixer, visual = old_objects(corpus, True, None, [-5.0, 0.0, 5.0, 10.0, 15.0])
    for i in range(len(dm.datasets["train"])):
        uid = dm.datasets["train"].utterances[i].id
        assert_same(dm.datasets["train"][(i, 2)], old_composition(corpus, uid, True, 2, 1, mixer, visual, None, SPEED))


def test_cache_gives_identical_outputs_and_decodes_once(corpus, monkeypatch):
    import avsr_lightning.data.dataset as dataset_module

    kwargs = dict(num_workers=0, max_frames=120, visual_corruption=True, test_conditions=CONDITIONS[1:2])
    plain, cached = LRSDataModule(str(corpus), **kwargs), LRSDataModule(str(corpus), cache_decoded=True, **kwargs)
    for dm in (plain, cached):
        dm.setup("fit")
        dm.setup("test")
    reads = []
    real_read_video = dataset_module.read_video
    monkeypatch.setattr(dataset_module, "read_video", lambda *a, **k: (reads.append(a[0]), real_read_video(*a, **k))[1])
    for epoch in range(3):
        for i in range(len(plain.datasets["train"])):
            a, b = plain.datasets["train"][(i, epoch)], cached.datasets["train"][(i, epoch)]
            assert torch.equal(a.video, b.video) and torch.equal(a.audio, b.audio) and a.condition == b.condition
            assert a.notes == b.notes
    for i in range(len(plain.datasets["test"][0])):
        for _ in range(2):
            a, b = plain.datasets["test"][0][i], cached.datasets["test"][0][i]
            assert torch.equal(a.video, b.video) and torch.equal(a.audio, b.audio)
    n_train, n_test = len(plain.datasets["train"]), len(plain.datasets["test"][0])
    # plain: every call decodes; cached: each utterance once
    assert len(reads) == 2 * (3 * n_train + 2 * n_test) - (2 * n_train + n_test)
    auto = LRSDataModule(str(corpus), cache_decoded="auto", **kwargs)
    auto.setup("fit")
    assert auto.datasets["train"].cache_decoded
    tiny = LRSDataModule(str(corpus), cache_decoded="auto", cache_max_gb=1e-6, **kwargs)
    tiny.setup("fit")
    assert not tiny.datasets["train"].cache_decoded


def test_crop_size_and_statistics_come_from_yaml(corpus):
    cfg = {"class_path": "avsr_lightning.datamodules.LRSDataModule",
           "init_args": {"root": str(corpus), "train_split": "train.txt", "num_workers": 0, "batch_size": 2,
                         "max_frames": None, "train_snrs": [None],
                         "train_transforms": [
                             {"class_path": "avsr_lightning.data.transforms.RandomCrop", "init_args": {"size": 64}},
                             {"class_path": "avsr_lightning.data.transforms.Normalize",
                              "init_args": {"mean": 0.5, "std": 0.25}}],
                         "eval_transforms": [
                             {"class_path": "avsr_lightning.data.transforms.CenterCrop", "init_args": {"size": 72}},
                             {"class_path": "avsr_lightning.data.transforms.Normalize",
                              "init_args": {"mean": 0.0, "std": 1.0}}]}}
    dm = build_data(cfg)
    dm.setup("fit")
    batch = dm.on_before_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert batch.video.shape[-2:] == (64, 64)
    val = dm.on_before_batch_transfer(next(iter(dm.val_dataloader())), 0)
    assert val.video.shape[-2:] == (72, 72)
    uid = val.ids[0]
    frames = read_video(media_paths(corpus, uid)["video"])
    expected = torch.from_numpy(frames[:, 12:84, 12:84].astype(np.float32)) / 255.0
    assert torch.allclose(val.video[0, : len(frames)], expected, atol=1e-6)
