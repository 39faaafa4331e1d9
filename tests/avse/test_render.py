"""Offline renderer: same samples as mix_scene, resumable, parallel-invariant, bad scenes reported."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import soundfile as sf

from avsr_lightning.data.avse import load_scenes, mix_scene
from avsr_lightning.data.avse.render import render_scenes, scene_output_paths
from avsr_lightning.data.avse.scene_io import AVSELayout


def test_render_matches_mix_scene_and_resumes(tmp_path, avse_root, weight_filter):
    scenes = load_scenes(avse_root / "metadata" / "scenes.train.json")
    assert {s.interferer.type for s in scenes} == {"speech", "noise"}
    out = tmp_path / "scenes"
    report = render_scenes(scenes, avse_root, out, weight_filter, video="link")
    assert len(report.rendered) == len(scenes) and not report.skipped and not report.duration_mismatch
    layout = AVSELayout(str(avse_root))
    for scene in scenes[:6]:
        paths = scene_output_paths(out, scene.scene)
        target = sf.read(layout.target_audio_path(scene), dtype="float64")[0]
        masker = sf.read(layout.interferer_paths(scene)[0], dtype="float64")[0]
        expected = mix_scene(target, masker, scene, speech_weight=weight_filter)
        for name in ("mixed", "target", "interferer"):
            data, rate = sf.read(paths[name], dtype="int16")
            assert rate == 16000 and sf.info(paths[name]).subtype == "PCM_16"
            np.testing.assert_array_equal(data, expected[name])
        assert paths["video"].is_symlink() and paths["video"].resolve() == layout.target_video_path(scene).resolve()
    assert not list(out.glob(".*tmp*"))
    stats = json.loads((out / "render_report.json").read_text())
    assert stats["rendered"] == len(scenes) and stats["skipped"] == 0
    # rerun: nothing to do; remove one file: only that scene is redone
    again = render_scenes(scenes, avse_root, out, weight_filter, video="link")
    assert len(again.existing) == len(scenes) and not again.rendered
    scene_output_paths(out, scenes[2].scene)["interferer"].unlink()
    third = render_scenes(scenes, avse_root, out, weight_filter, video="link")
    assert third.rendered == [scenes[2].scene]


def test_parallel_render_is_identical(tmp_path, avse_root, weight_filter):
    scenes = load_scenes(avse_root / "metadata" / "scenes.train.json")[:6]
    render_scenes(scenes, avse_root, tmp_path / "a", weight_filter, video="none", num_workers=0)
    render_scenes(scenes, avse_root, tmp_path / "b", weight_filter, video="none", num_workers=2, chunksize=2)
    for s in scenes:
        for name in ("mixed", "target", "interferer"):
            a = scene_output_paths(tmp_path / "a", s.scene)[name].read_bytes()
            assert a == scene_output_paths(tmp_path / "b", s.scene)[name].read_bytes()


def test_video_copy_drops_audio(tmp_path, avse_root, weight_filter):
    import av

    scene = load_scenes(avse_root / "metadata" / "scenes.train.json")[0]
    render_scenes([scene], avse_root, tmp_path, weight_filter, video="copy")
    path = scene_output_paths(tmp_path, scene.scene)["video"]
    with av.open(str(path)) as c, av.open(str(AVSELayout(str(avse_root)).target_video_path(scene))) as src:
        assert not c.streams.audio and c.streams.video[0].frames == src.streams.video[0].frames


def _bad_tree(tmp_path, avse_root):
    """Copy of the layout with one broken input per scene; returns scenes and expected reasons."""
    root = tmp_path / "root"
    (root / "train" / "interferers" / "noise").mkdir(parents=True)
    (root / "train" / "targets" / "t").mkdir(parents=True)
    rng = np.random.default_rng(0)
    tone = (np.sin(np.arange(40000) * 0.07) * 8000).astype(np.int16)
    sf.write(root / "train/targets/t/ok.wav", tone[:20000], 16000, subtype="PCM_16")
    sf.write(root / "train/targets/t/short.wav", tone[:7999], 16000, subtype="PCM_16")
    sf.write(root / "train/targets/t/silent.wav", np.zeros(20000, np.int16), 16000, subtype="PCM_16")
    nan_target = tone[:20000] / 32768.0
    nan_target[100] = np.nan
    sf.write(root / "train/targets/t/nan.wav", nan_target, 16000, subtype="FLOAT")
    sf.write(root / "train/targets/t/8k.wav", tone[:20000], 8000, subtype="PCM_16")
    noise = (rng.standard_normal(60000) * 3000).astype(np.int16)
    sf.write(root / "train/interferers/noise/n.wav", noise, 16000, subtype="PCM_16")
    sf.write(root / "train/interferers/noise/zeros.wav", np.zeros(60000, np.int16), 16000, subtype="PCM_16")
    sf.write(root / "train/interferers/noise/stereo.wav", np.stack([noise, noise], 1), 16000, subtype="PCM_16")
    sf.write(root / "train/interferers/noise/n8k.wav", noise, 8000, subtype="PCM_16")
    base = load_scenes(avse_root / "metadata" / "scenes.train.json")[0]
    cases = {  # scene id: (target, masker, offset, expected status)
        "S1": ("t/ok", "n", 0, "rendered"),
        "S2": ("t/missing", "n", 0, "missing_file"),
        "S3": ("t/ok", "missing", 0, "missing_file"),
        "S4": ("t/ok", "n", 45000, "offset_past_masker_end"),
        "S5": ("t/short", "n", 0, "target_too_short"),
        "S6": ("t/ok", "zeros", 0, "silent_interferer"),
        "S7": ("t/nan", "n", 0, "non_finite"),
        "S8": ("t/8k", "n", 0, "wrong_sample_rate"),
        "S9": ("t/ok", "n8k", 0, "wrong_sample_rate"),
        "S10": ("t/ok", "stereo", 0, "not_mono"),
        "S11": ("t/silent", "n", 0, "silent_target"),
    }
    scenes = [dataclasses.replace(base, scene=k, dataset="train", target=t, duration=20000, interferers=(
        dataclasses.replace(base.interferer, type="noise", name=m, offset=o),)) for k, (t, m, o, _) in cases.items()]
    return root, scenes, {k: v[3] for k, v in cases.items()}


def test_bad_scenes_are_reported_not_fatal(tmp_path, avse_root, weight_filter):
    root, scenes, expected = _bad_tree(tmp_path, avse_root)
    with pytest.warns(UserWarning, match="skipped scene S2: missing_file"):
        report = render_scenes(scenes, root, tmp_path / "out", weight_filter, video="none")
    got = {s["scene"]: s["reason"] for s in report.skipped}
    got.update({s: "rendered" for s in report.rendered})
    assert got == expected
    assert all(s["detail"] for s in report.skipped)
    stats = json.loads((tmp_path / "out" / "render_report.json").read_text())
    assert stats["skipped_by_reason"]["wrong_sample_rate"] == 2 and stats["rendered"] == 1
    assert sorted(p.name for p in (tmp_path / "out").glob("*.wav")) == ["S1_interferer.wav", "S1_mixed.wav",
                                                                         "S1_target.wav"]
    # a missing target video is reported when a video is requested
    report = render_scenes(scenes[:1], root, tmp_path / "out2", weight_filter, video="link")
    assert report.skipped[0]["reason"] == "missing_file" and "video" in report.skipped[0]["detail"]


def test_duration_mismatch_is_reported(tmp_path, avse_root, weight_filter):
    scene = load_scenes(avse_root / "metadata" / "scenes.train.json")[0]
    wrong = dataclasses.replace(scene, duration=scene.duration + 640)
    report = render_scenes([wrong], avse_root, tmp_path, weight_filter, video="none")
    assert report.rendered == [scene.scene]  # rendered with the decoded length, as the challenge does
    assert report.duration_mismatch == [{"scene": scene.scene, "duration": scene.duration + 640,
                                         "decoded": scene.duration}]
    data = sf.read(scene_output_paths(tmp_path, scene.scene)["interferer"], dtype="int16")[0]
    ramp = (np.cos(np.linspace(np.pi, 2 * np.pi, 8000)) + 1) / 2  # the interferer fades in and out (§7.4)
    assert np.all(np.abs(data[:8000]) <= np.ceil(ramp * 32767) + 1)
    assert np.all(np.abs(data[-8000:]) <= np.ceil(ramp[::-1] * 32767) + 1) and data[0] == 0 and data[-1] == 0
