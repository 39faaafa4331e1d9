"""What the synthetic corpus brings besides utterances: unheard evaluation noise (with its generator metadata),
an occluder bank, and the pixel statistics that a YAML-only pipeline (other crop, corpus mean/std) uses."""
from __future__ import annotations

import json

import numpy as np
import torch

from avsr_lightning.batch import AVBatch
from avsr_lightning.data.corruption.acoustic import NoiseMixer
from avsr_lightning.data.corruption.seeding import generator_for
from avsr_lightning.data.manifest import media_paths
from avsr_lightning.data.media import read_audio, read_video
from avsr_lightning.data.synthetic.corpus import corpus_pixel_statistics, plan_corpus
from avsr_lightning.data.transforms import TestCondition, fit_audio_to_frames, normalize_utterance
from avsr_lightning.datamodules.synthetic import SyntheticDataModule

from .conftest import TINY

VISUAL = ["clean__occlusion", "clean__noise", "clean__blur", "babble_snr0__occlusion_noise"]


def _dm(corpus, **kwargs):
    base = dict(utterances=6, corpus_seed=0, root=str(corpus), batch_size=2, max_frames=None, num_workers=0)
    return SyntheticDataModule(**{**base, **kwargs})


def _as_avbatch(dm, batch):
    return dm.on_before_batch_transfer(batch, 0) if not isinstance(batch, AVBatch) else batch


def test_eval_babble_shares_no_talker_or_sentence_with_training_babble(tiny_corpus):
    meta = json.loads((tiny_corpus / "corpus.json").read_text())
    manifest = json.loads((tiny_corpus / meta["noise_manifest"]).read_text())["files"]
    train, evaluation = manifest["noise/babble.wav"], manifest["noise/eval/babble.wav"]
    assert train["set"] == "train" and evaluation["set"] == "eval"
    assert len(train["talkers"]) >= 4 and len(evaluation["talkers"]) >= 4
    voices = lambda f: {t["voice"] for t in f["talkers"]}  # noqa: E731
    sentences = lambda f: {s for t in f["talkers"] for s in t["sentences"]}  # noqa: E731
    assert voices(train).isdisjoint(voices(evaluation))
    assert sentences(train) and sentences(train).isdisjoint(sentences(evaluation))
    corpus_voices = {s["voice"] for s in meta["speakers"].values()}
    assert corpus_voices.isdisjoint(voices(train) | voices(evaluation))
    # stationary noises: other realisations
    for kind in ("white", "pink", "hum"):
        a, b = read_audio(tiny_corpus / "noise" / f"{kind}.wav"), read_audio(tiny_corpus / "noise" / "eval" / f"{kind}.wav")
        assert manifest[f"noise/{kind}.wav"]["generator"] != manifest[f"noise/eval/{kind}.wav"]["generator"]
        assert not np.array_equal(a, b)


def test_test_loaders_mix_the_eval_noise_and_training_the_training_noise(tiny_corpus):
    dm = _dm(tiny_corpus, modalities=["audio"], train_snrs=[0.0], test_conditions=["babble_snr0__clean"])
    dm.setup("fit")
    dm.setup("test")
    dataset = dm.datasets["test"][0]
    step = next(t for t in dataset.transforms if isinstance(t, TestCondition))
    assert [p.relative_to(tiny_corpus).as_posix() for p in step._mixer.noise_files][0] == "noise/eval/babble.wav"
    train_mixing = next(t for t in dm.datasets["train"].transforms if type(t).__name__ == "NoiseMixing")
    assert [str(p.relative_to(tiny_corpus)) for p in train_mixing._mixer.noise_files] == ["noise/babble.wav"]
    uid = dataset.utterances[0].id
    clean = read_audio(media_paths(tiny_corpus, uid)["audio"])
    clean = fit_audio_to_frames(clean, max(1, int(round(len(clean) / 640))))
    expected = {}
    for name in ("noise/eval/babble.wav", "noise/babble.wav"):
        mixer = NoiseMixer([tiny_corpus / name], [0.0], partial="avrelscore")
        audio, _ = mixer(clean, generator_for(dm.seed, uid, "audio:babble:0"), snr=0.0, noise_index=0)
        expected[name] = normalize_utterance(audio)
    got = dataset[0].audio
    assert torch.equal(got, expected["noise/eval/babble.wav"]) and not torch.equal(got, expected["noise/babble.wav"])


def test_visual_corruption_trains_and_every_visual_condition_loads(tiny_corpus):
    from avsr_lightning.models import AVRelScore

    dm = _dm(tiny_corpus, visual_corruption=True, train_snrs=[None, 0.0], test_conditions=VISUAL)
    dm.setup("fit")
    dm.setup("test")
    assert dm.datasets["train"][(0, 0)].condition["visual"] in ("clean", "occlusion_noise")
    visuals = {dm.datasets["train"][(i, e)].condition["visual"] for i in range(4) for e in range(4)}
    assert "occlusion_noise" in visuals  # the bank is found and used
    batch = _as_avbatch(dm, next(iter(dm.train_dataloader())))
    model = AVRelScore(d_model=32, heads=2, encoder_layers=1, ffn_dim=64, decoder_layers=1, decoder_ffn_dim=64,
                       conv_kernel=3, frontend_widths=(4, 4, 8, 8), scorer_hidden=16, scorer_kernel=3)
    out = model(batch.video, batch.video_lengths, batch.audio, batch.audio_lengths, batch.targets,
                batch.target_lengths)
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    for dataset, condition in zip(dm.datasets["test"], dm.test_conditions):
        sample = dataset[0]
        assert sample.condition["visual"] == condition.visual, sample
        assert sample.video.shape[-2:] == (88, 88)
    occluded = dm.datasets["test"][0][0].video
    plain = _dm(tiny_corpus, test_conditions=["clean__clean"])
    plain.setup("test")
    assert not torch.equal(occluded, plain.datasets["test"][0][0].video)


def test_pixel_statistics_are_recorded_and_a_yaml_pipeline_uses_them(tiny_corpus):
    meta = json.loads((tiny_corpus / "corpus.json").read_text())
    plan = plan_corpus(TINY["utterances"], TINY["seed"])
    assert corpus_pixel_statistics(tiny_corpus, plan) == {"pixel_mean": meta["pixel_mean"],
                                                          "pixel_std": meta["pixel_std"]}
    frames = np.concatenate([read_video(media_paths(tiny_corpus, u.relpath)["video"]) for u in plan
                             if u.split == "train"]) / 255.0
    assert abs(frames.mean() - meta["pixel_mean"]) < 1e-5 and abs(frames.std() - meta["pixel_std"]) < 1e-5
    from jsonargparse import ArgumentParser
    from lightning.pytorch import LightningDataModule

    steps = "avsr_lightning.data.transforms."
    cfg = {"class_path": "avsr_lightning.datamodules.SyntheticDataModule",
           "init_args": {"utterances": 6, "root": str(tiny_corpus), "batch_size": 2, "max_frames": None,
                         "num_workers": 0, "train_snrs": [None],
                         "train_transforms": [{"class_path": steps + "Resize", "init_args": {"size": 56}},
                                              {"class_path": steps + "RandomCrop", "init_args": {"size": 48}},
                                              {"class_path": steps + "Normalize",
                                               "init_args": {"mean": None, "std": None}}],
                         "eval_transforms": [{"class_path": steps + "CenterCrop", "init_args": {"size": 64}},
                                             {"class_path": steps + "Normalize",
                                              "init_args": {"mean": None, "std": None}}]}}
    parser = ArgumentParser()
    parser.add_subclass_arguments(LightningDataModule, "data")
    dm = parser.instantiate(parser.parse_object({"data": cfg})).data
    dm.setup("fit")
    val = _as_avbatch(dm, next(iter(dm.val_dataloader())))
    assert val.video.shape[-2:] == (64, 64)
    raw = read_video(media_paths(tiny_corpus, val.ids[0])["video"])[:, 16:80, 16:80] / 255.0
    expected = (raw - meta["pixel_mean"]) / meta["pixel_std"]
    assert torch.allclose(val.video[0, : len(raw)], torch.from_numpy(expected).float(), atol=1e-4)
    from avsr_lightning.models import AVRelScore

    model = AVRelScore(d_model=32, heads=2, encoder_layers=1, ffn_dim=64, decoder_layers=1, decoder_ffn_dim=64,
                       conv_kernel=3, frontend_widths=(4, 4, 8, 8), scorer_hidden=16, scorer_kernel=3)
    train = _as_avbatch(dm, next(iter(dm.train_dataloader())))
    assert train.video.shape[-2:] == (48, 48)
    out = model(train.video, train.video_lengths, train.audio, train.audio_lengths, train.targets,
                train.target_lengths)
    assert torch.isfinite(out["loss"])  # the video frontend takes the 48-px inputs
