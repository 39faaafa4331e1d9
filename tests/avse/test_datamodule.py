"""AVSEDataModule on a tiny generated corpus: aligned batches, correct labels, per-epoch scenes, bad scenes."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from avsr_lightning.batch import AVBatch
from avsr_lightning.data.avse import load_scenes, mix_scene
from avsr_lightning.data.avse.scene_io import AVSELayout
from avsr_lightning.data.dataset import BadItem
from avsr_lightning.data.manifest import read_transcript
from avsr_lightning.datamodules.avse import AVSEDataModule
from avsr_lightning.text import CharTokenizer, normalize_transcript


def make_dm(avse_root, lrs_corpus, weight_filter, tmp_path, **kw):
    import scipy.io

    mat = tmp_path / "weight.mat"
    scipy.io.savemat(mat, {"filt": weight_filter[None, :]})
    args = dict(avse_root=str(avse_root), lrs_root=str(lrs_corpus), speech_weight=str(mat), batch_size=3,
                max_frames=None, num_workers=0, normalize_audio=False, seed=3)
    args.update(kw)
    return AVSEDataModule(**args)


def test_fixed_mode_batches_are_aligned_labelled_and_exact(avse_root, lrs_corpus, weight_filter, tmp_path):
    dm = make_dm(avse_root, lrs_corpus, weight_filter, tmp_path)
    dm.setup("fit")
    tok = CharTokenizer()
    scenes = {s.scene: s for s in load_scenes(avse_root / "metadata" / "scenes.train.json")}
    seen = 0
    for raw in dm.train_dataloader():
        batch = dm.on_before_batch_transfer(raw, 0)
        assert isinstance(batch, AVBatch)
        assert batch.audio.shape[1] == 640 * batch.video.shape[1]
        assert torch.equal(batch.audio_lengths, 640 * batch.video_lengths)
        assert batch.video.shape[2:] == (88, 88)
        for k, uid in enumerate(batch.ids):
            scene = scenes[batch.conditions[k]["scene"]]
            assert uid == f"{scene.scene}/{scene.target}"
            text = normalize_transcript(read_transcript(lrs_corpus / "Text" / f"{scene.target}.txt"))
            n = int(batch.target_lengths[k])
            assert batch.texts[k] == text and tok.decode(batch.targets[k, :n].tolist()) == text
            assert (batch.targets[k, n:] == -1).all()
            assert batch.conditions[k]["snr"] == scene.snr
            frames = int(batch.video_lengths[k])
            layout = AVSELayout(str(avse_root))
            import soundfile as sf
            t = sf.read(layout.target_audio_path(scene), dtype="float64")[0]
            m = sf.read(layout.interferer_paths(scene)[0], dtype="float64")[0]
            mixed = mix_scene(t, m, scene, speech_weight=weight_filter)["mixed"].astype(np.float32) / 32768
            expected = np.zeros(frames * 640, np.float32)
            expected[:min(len(mixed), frames * 640)] = mixed[:frames * 640]
            np.testing.assert_array_equal(batch.audio[k, :frames * 640].numpy(), expected)
            seen += 1
    assert seen == len(scenes)
    assert dm.bad_item_counts["train"]["bad"] == 0


def _audio(ds, index, epoch):
    item = ds[(index, epoch)]
    assert not isinstance(item, BadItem), item
    return item.audio.numpy(), item.condition


def test_fixed_vs_sampled_epochs(avse_root, lrs_corpus, weight_filter, tmp_path):
    fixed = make_dm(avse_root, lrs_corpus, weight_filter, tmp_path)
    fixed.setup("fit")
    ds = fixed.datasets["train"]
    for i in range(3):
        np.testing.assert_array_equal(_audio(ds, i, 0)[0], _audio(ds, i, 5)[0])
    sampled = make_dm(avse_root, lrs_corpus, weight_filter, tmp_path, train_mode="sample")
    sampled.setup("fit")
    ds = sampled.datasets["train"]
    targets = [t["wavfile"] for t in json.loads((avse_root / "metadata" / "target_speech_list.json").read_text())
               if t["dataset"] == "train"]
    assert sorted(ds.targets) == sorted(targets)  # every train target once per epoch
    differ = 0
    for i in range(len(ds)):
        a0, c0 = _audio(ds, i, 0)
        a1, c1 = _audio(ds, i, 1)
        np.testing.assert_array_equal(a0, _audio(ds, i, 0)[0])  # same epoch -> same mixture
        differ += not np.array_equal(a0, a1)
        assert ds.scene_at(i, 0).target == ds.targets[i] == ds.scene_at(i, 1).target
    assert differ == len(ds)
    again = make_dm(avse_root, lrs_corpus, weight_filter, tmp_path, train_mode="sample")
    again.setup("fit")
    assert again.datasets["train"].scene_at(2, 4) == ds.scene_at(2, 4)  # seeded per epoch, not per process
    # the sampled scenes follow the builder's ranges
    scenes = [ds.scene_at(i, e) for e in range(5) for i in range(len(ds))]
    assert {s.interferer.type for s in scenes} == {"speech", "noise"}
    assert all((-15 <= s.snr <= 5) if s.interferer.type == "speech" else (-10 <= s.snr <= 10) for s in scenes)


def test_crop_after_full_length_mixing(avse_root, lrs_corpus, weight_filter, tmp_path):
    full = make_dm(avse_root, lrs_corpus, weight_filter, tmp_path)
    crop = make_dm(avse_root, lrs_corpus, weight_filter, tmp_path, crop_frames=12)
    full.setup("fit")
    crop.setup("fit")
    for i in range(4):
        whole, item = full.datasets["train"][(i, 2)], crop.datasets["train"][(i, 2)]
        assert item.num_frames == 12 and item.video.shape[0] == 12 and item.audio.shape[0] == 12 * 640
        start = item.condition.get("crop_start", 0)
        np.testing.assert_array_equal(item.audio.numpy(), whole.audio.numpy()[start * 640:(start + 12) * 640])


def test_bad_scenes_are_skipped_and_counted(avse_root, lrs_corpus, weight_filter, tmp_path):
    from avsr_lightning.data.avse import save_scenes

    scenes = load_scenes(avse_root / "metadata" / "scenes.dev.json")
    good = scenes[0]
    bad = [
        dataclasses.replace(good, scene="B1", interferers=(dataclasses.replace(good.interferer, name="nope"),)),
        dataclasses.replace(good, scene="B2", interferers=(dataclasses.replace(good.interferer, offset=10 ** 9),)),
        dataclasses.replace(good, scene="B3", target="trainval/spk09/00000"),  # no lip crops: excluded at setup
    ]
    path = tmp_path / "scenes.bad.json"
    save_scenes(path, [good, *bad])
    dm = make_dm(avse_root, lrs_corpus, weight_filter, tmp_path, val_scenes=str(path), max_bad_fraction=1.0)
    dm.setup("validate")
    assert dm.bad_item_counts["setup/val"]["bad"] == 1
    items = [dm.datasets["val"][(i, 0)] for i in range(len(dm.datasets["val"]))]
    reasons = {x.id.split("/")[0]: x.reason for x in items if isinstance(x, BadItem)}
    assert reasons["B1"].startswith("missing_file (scene B1)")
    assert reasons["B2"].startswith("offset_past_masker_end (scene B2)")
    batches = [dm.on_before_batch_transfer(b, 0) for b in dm.val_dataloader()]
    assert sum(len(b) for b in batches) == 1
    assert dm.bad_item_counts["train"]["bad"] == 2  # no trainer attached: counted under the default stage key


def test_bad_config_fails_fast(avse_root, lrs_corpus, weight_filter, tmp_path):
    with pytest.raises(ValueError, match="train_mode must be one of"):
        make_dm(avse_root, lrs_corpus, weight_filter, tmp_path, train_mode="online")
    dm = make_dm(tmp_path / "missing", lrs_corpus, weight_filter, tmp_path)
    with pytest.raises(FileNotFoundError, match="avse_root"):
        dm.setup("fit")


def test_eval_conditions_group_by_interferer_and_snr_band(avse_root, lrs_corpus, weight_filter, tmp_path):
    dm = make_dm(avse_root, lrs_corpus, weight_filter, tmp_path)
    dm.setup("validate")
    ds = dm.datasets["val"]
    for i in range(len(ds)):
        scene, item = ds.scene_at(i), ds[(i, 0)]
        low = np.floor(scene.snr / 5) * 5
        assert item.condition == {"interferer": scene.interferer.type, "snr": low + 2.5, "visual": "clean"}
        assert low <= scene.snr < low + 5 and item.id == f"{scene.scene}/{scene.target}"


def _write_landmarks_and_occluders(lrs_corpus, directory):
    import cv2

    from avsr_lightning.data.landmarks import Landmarks, write_landmarks
    from avsr_lightning.data.media import read_video

    for video in (lrs_corpus / "Video").rglob("*.mp4"):
        rel = video.relative_to(lrs_corpus / "Video").with_suffix("")
        n = len(read_video(video))
        points = np.zeros((n, 68, 2), np.float32)
        angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
        points[:, :, 0], points[:, :, 1] = 129 + 30 * np.cos(angles), 130 + 30 * np.sin(angles)
        points[:, 48:68, 0] = 129 + 14 * np.cos(angles[:20] * 3.4)
        points[:, 48:68, 1] = 170 + 5 * np.sin(angles[:20] * 3.4)
        path = lrs_corpus / "Transformed_LM" / f"{rel}.npz"
        if not path.exists():
            write_landmarks(path, Landmarks(points, np.tile(np.array([[110.0, 81.0]], np.float32), (n, 1))))
    rng = np.random.default_rng(7)
    (directory / "object_image_sr").mkdir(parents=True)
    (directory / "object_mask_x4").mkdir(parents=True)
    for i in range(2):
        cv2.imwrite(str(directory / "object_image_sr" / f"obj{i}.jpeg"), np.full((64, 64, 3), rng.integers(0, 255, 3), np.uint8))
        mask = np.zeros((256, 256), np.uint8)
        cv2.circle(mask, (128, 128), 100, 255, -1)
        cv2.imwrite(str(directory / "object_mask_x4" / f"obj{i}.png"), mask)
    return directory


def test_visual_corruption_on_cropped_scenes(avse_root, lrs_corpus, weight_filter, tmp_path):
    occluders = _write_landmarks_and_occluders(lrs_corpus, tmp_path / "occ")
    dm = make_dm(avse_root, lrs_corpus, weight_filter, tmp_path, visual_corruption=True, occluder_dir=str(occluders),
                 crop_frames=12, normalize_audio=True)
    dm.setup("fit")
    ds = dm.datasets["train"]
    kinds = set()
    for epoch in range(2):
        for i in range(6):
            item = ds[(i, epoch)]
            assert not isinstance(item, BadItem), item
            assert item.video.shape == (12, 88, 88) and item.audio.shape == (12 * 640,)
            kinds.add(item.condition["visual"])
    assert "clean" in kinds and len(kinds) > 1


def test_sampled_multi_interferer_scenes(avse_root, lrs_corpus, weight_filter, tmp_path):
    dm = make_dm(avse_root, lrs_corpus, weight_filter, tmp_path, train_mode="sample", interferer_counts=[2, 3],
                 multi_snr=(-5.0, 5.0))
    dm.setup("fit")
    ds = dm.datasets["train"]
    for i in range(4):
        item = ds[(i, 1)]
        assert not isinstance(item, BadItem), item
        scene = ds.scene_at(i, 1)
        assert len(scene.interferers) in (2, 3) and -5 <= scene.snr <= 5
        assert item.condition["interferer"] == "+".join(x.type for x in scene.interferers)
