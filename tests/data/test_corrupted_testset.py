"""Seeded corrupted test sets: byte-identical across runs, different across seeds, equal to on-the-fly."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np

from avsr_lightning.data.conditions import Condition
from avsr_lightning.data.corrupted_testset import build_corrupted_testset, protocol_conditions
from avsr_lightning.data.corruption.acoustic import NoiseMixer
from avsr_lightning.data.dataset import AVDataset
from avsr_lightning.data.manifest import load_split
from avsr_lightning.data.media import read_audio

CONDITIONS = ["babble_snr0__clean", "clean__occlusion_noise", "babble_snr5__occlusion"]


def _digest(directory):
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_byte_identical_across_runs_and_different_across_seeds(tmp_path, corpus):
    kw = dict(conditions=CONDITIONS, occluder_size=30, progress=False)
    build_corrupted_testset(corpus, tmp_path / "a", seed=3, **kw)
    build_corrupted_testset(corpus, tmp_path / "b", seed=3, workers=2, **kw)  # parallel: same bytes
    build_corrupted_testset(corpus, tmp_path / "c", seed=4, **kw)
    a, b, c = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    assert a == b and len(a) > 3 * 3 * 4
    changed = {k for k in a if a[k] != c.get(k)}
    for cond in CONDITIONS:
        assert any(k.startswith(f"{cond}/Video") or k.startswith(f"{cond}/Audio") for k in changed), cond
    rows = [json.loads(x) for x in (tmp_path / "a" / "babble_snr0__clean" / "manifest.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == sorted(u.id for u in load_split(corpus, "test.ref"))
    assert all(r["snr"] == 0.0 and r["noise"] == "babble" and r["partial"] == "avrelscore" for r in rows)
    occl = [json.loads(x) for x in (tmp_path / "a" / "clean__occlusion_noise" / "manifest.jsonl").read_text().splitlines()]
    assert all(r["occlusion"] and r["noise_segments"] and r["noise"] is None for r in occl) and all(o["size"] == 30 for r in occl for o in r["occlusion"])
    # the written set is a processed corpus: it loads with its own test.ref
    ds = AVDataset(tmp_path / "a" / "babble_snr5__occlusion", load_split(tmp_path / "a" / "babble_snr5__occlusion",
                                                                          "test.ref"))
    assert all(not hasattr(ds[i], "reason") for i in range(len(ds)))


def test_offline_audio_equals_on_the_fly_condition(tmp_path, corpus):
    build_corrupted_testset(corpus, tmp_path / "o", conditions=["babble_snr0__clean"], seed=11, progress=False)
    cond = Condition.from_any("babble_snr0__clean")
    mixer = NoiseMixer([corpus / "noise" / "babble.wav"], snrs=[0.0], partial="avrelscore")
    utts = load_split(corpus, "test.ref")
    ds = AVDataset(corpus, utts, modalities=["audio"], noise=mixer, condition=cond, seed=11, normalize_audio=False)
    for i, u in enumerate(utts):
        online = ds[i].audio.numpy()
        offline = read_audio(tmp_path / "o" / cond.name / "Audio" / f"{u.id}.wav")
        n = min(len(online), len(offline))
        assert np.abs(online[:n] - offline[:n]).max() < 2e-4  # equal up to 16-bit quantisation
        assert ds[i].condition["name"] == cond.name


def test_protocol_grid_and_cli(tmp_path, corpus):
    names = [c.name for c in protocol_conditions("lrs2")]
    assert names == ["clean__occlusion", "clean__noise", "clean__occlusion_noise"] + [
        f"babble_snr{s}__clean" for s in (0, 5, 10, 15)]
    assert len(protocol_conditions("lrs3", grid=True)) == 3 + 5 + 15
    proc = subprocess.run([sys.executable, "data_prep/make_corrupted_testset.py", "--root", str(corpus), "--out_root",
                           str(tmp_path / "cli"), "--conditions", "[clean__noise]", "--seed", "1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "cli" / "clean__noise" / "manifest.jsonl").read_text().count("\n") == 3
