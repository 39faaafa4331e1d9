"""Scene builder: the challenge's draws in the challenge's order, reproducible, with the spec's distributions."""
from __future__ import annotations

import json
import random
from collections import Counter

import numpy as np
import pytest

from avsr_lightning.data.avse import (
    DatasetSpec,
    SceneBuilderConfig,
    SceneSampler,
    build_challenge_scene_lists,
    build_scenes,
    load_scenes,
)
from avsr_lightning.data.avse.formats import (
    MaskerEntry,
    TargetEntry,
    save_masker_list,
    save_target_list,
    scenes_to_json,
)


def metadata(n_targets=40, seed=0):
    rng = random.Random(seed)
    targets = [TargetEntry(f"trainval/spk{k % 7}/{k:05d}", "train" if k % 5 else "dev", rng.randint(20000, 90000))
               for k in range(n_targets)]
    speech = [MaskerEntry(f"spk{k}", "speech", "train" if k % 3 else "dev", rng.randint(50000, 400000), "speech")
              for k in range(9)]
    # unequal class sizes: balancing must be per class, not per file
    classes = ["Dishwasher"] * 8 + ["Fan"] * 2 + ["Babble"] * 4
    noise = [MaskerEntry(f"N{k:03d}", "noise", "train" if k % 4 else "dev", rng.randint(95000, 300000), c)
             for k, c in enumerate(classes)]
    return targets, {"speech": speech, "noise": noise}


def replay_spec(dataset, n, targets, maskers, rng, start):
    """Spec §2.2 written out independently, with dict rows as in the JSON files."""
    pool = [t for t in targets if t.dataset == dataset]
    rng.shuffle(pool)
    chosen = [pool[j % len(pool)] for j in range(n)]
    groups = {"speech": [list(maskers["speech"])], "noise": []}
    order = []
    for m in maskers["noise"]:
        if m.group not in order:
            order.append(m.group)
    groups["noise"] = [[m for m in maskers["noise"] if m.group == g] for g in order]
    out = []
    for t in chosen:
        rng.choice([1])
        kind = rng.choices(["speech", "noise"], k=1)[0]
        rng.randint(0, 0)
        rng.randint(0, 0)
        while True:
            group = rng.choice(groups[kind])
            ok = [m for m in group if m.dataset == dataset and m.nsamples >= t.nsamples]
            if ok:
                m = rng.choice(ok)
                break
        out.append({"dataset": dataset, "target": t.wavfile, "kind": kind, "name": m.name,
                    "offset": rng.randint(0, m.nsamples - t.nsamples), "nsamples": t.nsamples})
    for j, row in enumerate(out):
        lo, hi = (-15, 5) if row["kind"] == "speech" else (-10, 10)
        row["SNR"] = float(format(rng.uniform(lo, hi), ".4f"))
        row["scene"] = "S%05d" % (start + j)
    return out


def test_builder_replays_the_spec_draw_sequence():
    targets, maskers = metadata()
    rng_a, rng_b = random.Random(0), random.Random(0)
    for ds, n, start in [("train", 50, 1), ("dev", 12, 51)]:  # one generator, train then dev (spec §2.1)
        got = build_scenes(ds, n, targets, maskers, rng_a, start_index=start)
        want = replay_spec(ds, n, targets, maskers, rng_b, start)
        assert [(s.scene, s.target, s.interferer.type, s.interferer.name, s.interferer.offset, s.snr)
                for s in got] == [(w["scene"], w["target"], w["kind"], w["name"], w["offset"], w["SNR"]) for w in want]
    assert rng_a.random() == rng_b.random()  # both consumed exactly the same number of draws


def test_same_seed_same_json_and_challenge_layout(tmp_path):
    targets, maskers = metadata()
    for sub in ("a", "b"):
        d = tmp_path / sub
        save_target_list(d / "target_speech_list.json", targets)
        save_masker_list(d / "masker_speech_list.json", maskers["speech"])
        save_masker_list(d / "masker_noise_list.json", maskers["noise"])
        build_challenge_scene_lists(d, [DatasetSpec("train", 30, 1), DatasetSpec("dev", 8, 31)], seed=0)
    for ds in ("train", "dev"):
        text = (tmp_path / "a" / f"scenes.{ds}.json").read_text()
        assert text == (tmp_path / "b" / f"scenes.{ds}.json").read_text()
    text = (tmp_path / "a" / "scenes.train.json").read_text()
    entry = json.loads(text)[0]
    assert list(entry) == ["dataset", "scene", "target", "duration", "interferer", "SNR", "pre_samples", "post_samples"]
    assert list(entry["interferer"]) == ["type", "time_start", "time_end", "name", "offset"]
    assert entry["interferer"]["time_end"] == entry["duration"] and entry["scene"] == "S00001"
    import re
    assert all(len(m.split(".")[1]) == 4 for m in re.findall(r'"SNR": (-?\d+\.\d+)', text))
    assert len(re.findall(r'"SNR"', text)) == 30
    # different seed -> different scenes; existing files are kept without consuming the generator
    build_challenge_scene_lists(tmp_path / "a", [DatasetSpec("train", 30, 1), DatasetSpec("dev", 8, 31)], seed=1)
    assert (tmp_path / "a" / "scenes.train.json").read_text() == text
    build_challenge_scene_lists(tmp_path / "a", [DatasetSpec("train", 30, 1)], seed=1, overwrite=True)
    assert (tmp_path / "a" / "scenes.train.json").read_text() != text
    assert load_scenes(tmp_path / "b" / "scenes.dev.json")[0].scene == "S00031"


def test_distributions_match_the_spec():
    targets, maskers = metadata(n_targets=300, seed=1)
    scenes = build_scenes("train", 6000, targets, maskers, random.Random(7))
    kinds = Counter(s.interferer.type for s in scenes)
    assert abs(kinds["speech"] / len(scenes) - 0.5) < 0.03  # Bernoulli(0.5), not an exact split
    noise = [s for s in scenes if s.interferer.type == "noise"]
    by_name = {m.name: m for m in maskers["noise"]}
    classes = Counter(by_name[s.interferer.name].group for s in noise)
    for c in ("Dishwasher", "Fan", "Babble"):  # uniform over classes although class sizes are 8:2:4
        assert abs(classes[c] / len(noise) - 1 / 3) < 0.04, classes
    dish = Counter(s.interferer.name for s in noise if by_name[s.interferer.name].group == "Dishwasher")
    assert len(dish) == sum(m.dataset == "train" and m.group == "Dishwasher" for m in maskers["noise"])
    assert max(dish.values()) / min(dish.values()) < 1.6  # uniform within class
    speech_by = {m.name: m for m in maskers["speech"]}
    rel = []
    for s in scenes:
        m = (speech_by if s.interferer.type == "speech" else by_name)[s.interferer.name]
        assert m.dataset == "train" and m.nsamples >= s.duration
        assert 0 <= s.interferer.offset <= m.nsamples - s.duration
        rel.append(s.interferer.offset / max(1, m.nsamples - s.duration))
        lo, hi = (-15, 5) if s.interferer.type == "speech" else (-10, 10)
        assert lo <= s.snr <= hi and s.snr == round(s.snr, 4)
    assert abs(np.mean(rel) - 0.5) < 0.02 and abs(np.var(rel) - 1 / 12) < 0.01  # offset uniform
    sp = np.array([s.snr for s in scenes if s.interferer.type == "speech"])
    assert abs(sp.mean() + 5) < 0.4 and abs(sp.std() - 20 / np.sqrt(12)) < 0.3
    # sequential targets: every train target used equally often
    uses = Counter(s.target for s in scenes)
    assert max(uses.values()) - min(uses.values()) <= 1


def test_multi_interferer_config():
    targets, maskers = metadata(n_targets=60)
    maskers["music"] = [MaskerEntry(f"song{k}", "music", "train", 500000, "music") for k in range(3)]
    cfg = SceneBuilderConfig(interferer_counts=(1, 2, 3), interferer_types=("speech", "noise", "music"))
    scenes = build_scenes("train", 900, targets, maskers, random.Random(3), cfg)
    counts = Counter(len(s.interferers) for s in scenes)
    assert set(counts) == {1, 2, 3} and min(counts.values()) > 200
    assert all(sum(i.type == "music" for i in s.interferers) <= 1 for s in scenes)
    assert all(-10 <= s.snr <= 10 for s in scenes if len(s.interferers) > 1)
    text = scenes_to_json(scenes[:20])
    assert '"interferers"' in text and json.loads(text)


def test_sampler_is_seeded_per_epoch():
    targets, maskers = metadata()
    sampler = SceneSampler("train", targets, maskers, seed=5)
    e0, e0b, e1 = sampler.scenes_for_epoch(0), sampler.scenes_for_epoch(0), sampler.scenes_for_epoch(1)
    assert e0 == e0b and e0 != e1
    assert sorted(s.target for s in e0) == sorted(t.wavfile for t in targets if t.dataset == "train")
    assert SceneSampler("train", targets, maskers, seed=6).scenes_for_epoch(0) != e0


def test_unreachable_masker_length_fails_instead_of_hanging():
    targets, maskers = metadata()
    long_target = [TargetEntry("trainval/x/1", "train", 10 ** 7)]
    with pytest.raises(ValueError, match="no .* masker of dataset 'train' has >= 10000000"):
        build_scenes("train", 1, long_target, maskers, random.Random(0),
                     SceneBuilderConfig(interferer_types=("noise",)))
    with pytest.warns(UserWarning, match="left out"):
        sampler = SceneSampler("train", targets + long_target, maskers)
    assert sampler.excluded_targets == ["trainval/x/1"]
