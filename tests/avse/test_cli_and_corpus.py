"""data_prep CLIs and the corpus → AVSE root preparation."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import scipy.io
import soundfile as sf

from avsr_lightning.data.avse import load_masker_list, load_scenes, load_target_list


def _load(repo_root, name):
    spec = importlib.util.spec_from_file_location(name, repo_root / "data_prep" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prepared_root_matches_the_corpus(avse_root, lrs_corpus):
    meta = avse_root / "metadata"
    targets = load_target_list(meta / "target_speech_list.json")
    train_ids = (lrs_corpus / "train.txt").read_text().split()
    assert [t.wavfile for t in targets if t.dataset == "train"] == train_ids
    assert all(t.nsamples == sf.info(lrs_corpus / "Audio" / f"{t.wavfile}.wav").frames for t in targets)
    speech = load_masker_list(meta / "masker_speech_list.json", "speech")
    spk0 = next(m for m in speech if m.name == "spk00_train")
    clips = [sf.read(lrs_corpus / "Audio" / f"{rel}.wav", dtype="int16")[0] for rel in sorted(train_ids)
             if "/spk00/" in rel]
    data = sf.read(avse_root / "maskers_speech" / "spk00_train.wav", dtype="int16")[0]
    joined = np.concatenate(clips)
    assert len(data) == spk0.nsamples >= 6 * 16000
    np.testing.assert_array_equal(data[:len(joined)], joined)  # sorted, bit-exact (then tiled)
    noise = load_masker_list(meta / "masker_noise_list.json", "noise")
    assert {m.group for m in noise} == {"babble", "white"} and {m.dataset for m in noise} == {"train", "dev"}
    assert (avse_root / "train" / "interferers" / "noise" / "white_train.wav").is_file()


def test_build_and_render_clis(tmp_path, repo_root, avse_root, weight_filter, capsys):
    build = _load(repo_root, "avse_build_scenes")
    render = _load(repo_root, "avse_render")
    out = tmp_path / "lists"
    build.main(["--metadata_dir", str(avse_root / "metadata"), "--output_dir", str(out), "--train_scenes", "5",
                "--dev_scenes", "2", "--seed", "3"])
    scenes = load_scenes(out / "scenes.train.json")
    assert [s.scene for s in scenes] == [f"S{k:05d}" for k in range(1, 6)]
    assert [s.scene for s in load_scenes(out / "scenes.dev.json")] == ["S00006", "S00007"]
    mat = tmp_path / "w.mat"
    scipy.io.savemat(mat, {"filt": weight_filter[None, :]})
    capsys.readouterr()
    render.main(["--root", str(avse_root), "--scenes", str(out / "scenes.train.json"), "--speech_weight", str(mat),
                 "--output_dir", str(tmp_path / "wavs"), "--video", "none"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["rendered"] == 5 and summary["skipped"] == 0
    assert len(list((tmp_path / "wavs").glob("*_mixed.wav"))) == 5
