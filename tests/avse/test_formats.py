"""Challenge JSON formats: round trips, the 4-decimal SNR writer, and errors naming file, entry and field."""
from __future__ import annotations

import json

import pytest

from avsr_lightning.data.avse import (
    AVSEFormatError,
    load_masker_list,
    load_scenes,
    load_target_list,
    save_scenes,
)
from avsr_lightning.data.avse.formats import dumps_challenge_json, parse_scene

ENTRY = {"dataset": "train", "scene": "S00042", "target": {"name": "trainval/0akiEFwtkyA/50003"}, "duration": 131755,
         "interferer": {"type": "noise", "time_start": 0, "time_end": 131755, "name": "CIN_dishwasher_001",
                        "offset": 2410337}, "SNR": -3.1416, "pre_samples": 0, "post_samples": 0}


def test_scene_round_trip_is_byte_identical(tmp_path):
    second = json.loads(json.dumps(ENTRY))
    second["scene"], second["SNR"] = "S00043", 5.0
    path = tmp_path / "scenes.train.json"
    path.write_text(dumps_challenge_json([ENTRY, second]))
    scenes = load_scenes(path)
    assert scenes[0].interferer.offset == 2410337 and scenes[1].snr == 5.0
    save_scenes(tmp_path / "again.json", scenes)
    assert (tmp_path / "again.json").read_text() == path.read_text()
    assert '"SNR": 5.0000' in path.read_text()


def test_writer_matches_json_dumps_without_floats():
    obj = [{"a": 1, "b": [1, 2, {"c": "x/y"}], "d": {}, "e": [], "f": None, "g": True}]
    assert dumps_challenge_json(obj) == json.dumps(obj, indent=2)


def test_metadata_lists(tmp_path):
    (tmp_path / "t.json").write_text(json.dumps([{"wavfile": "trainval/a/00001", "dataset": "train", "nsamples": 5}]))
    (tmp_path / "n.json").write_text(json.dumps([{"ID": "N1", "class": "Fan", "dataset": "dev", "nsamples": 9,
                                                  "type": "noise"}]))
    (tmp_path / "s.json").write_text(json.dumps([{"speaker": "abc", "dataset": "train", "nsamples": 7}]))
    assert load_target_list(tmp_path / "t.json")[0].wavfile == "trainval/a/00001"
    assert load_masker_list(tmp_path / "n.json", "noise")[0].group == "Fan"
    assert load_masker_list(tmp_path / "s.json", "speech")[0].name == "abc"


@pytest.mark.parametrize("mutate,message", [
    (lambda e: e.pop("SNR"), "entry 1: missing field 'SNR'"),
    (lambda e: e["interferer"].update(offset=-3), "entry 1: field 'interferer.offset' must be >= 0"),
    (lambda e: e["interferer"].update(type="wind"), "entry 1: field 'interferer.type' must be one of"),
    (lambda e: e["target"].pop("name"), "entry 1: missing field 'target.name'"),
    (lambda e: e.update(SNR="3"), "entry 1: field 'SNR' must be int or float"),
    (lambda e: e.pop("interferer"), "entry 1 (scene S00042): missing field 'interferer'"),
    (lambda e: e["interferer"].update(offset=1.5), "field 'interferer.offset' must be int"),
])
def test_scene_errors_name_file_entry_and_field(tmp_path, mutate, message):
    bad = json.loads(json.dumps(ENTRY))
    mutate(bad)
    good = dict(ENTRY, scene="S00001")
    path = tmp_path / "scenes.dev.json"
    path.write_text(json.dumps([good, bad]))
    with pytest.raises(AVSEFormatError) as info:
        load_scenes(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_file_level_errors(tmp_path):
    with pytest.raises(AVSEFormatError, match="file not found"):
        load_scenes(tmp_path / "nope.json")
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(AVSEFormatError, match="not valid JSON"):
        load_target_list(tmp_path / "x.json")
    (tmp_path / "y.json").write_text(json.dumps([ENTRY, ENTRY]))
    with pytest.raises(AVSEFormatError, match="repeats id 'S00042'"):
        load_scenes(tmp_path / "y.json")
    (tmp_path / "z.json").write_text(json.dumps([{"wavfile": "a", "dataset": "train", "nsamples": "5"}]))
    with pytest.raises(AVSEFormatError, match=r"z.json, entry 0: field 'nsamples' must be int"):
        load_target_list(tmp_path / "z.json")
    (tmp_path / "w.json").write_text(json.dumps([{"ID": "N1", "dataset": "dev", "nsamples": 9}]))
    with pytest.raises(AVSEFormatError, match="missing field 'class'"):
        load_masker_list(tmp_path / "w.json", "noise")


def test_later_edition_interferers_list():
    entry = {k: v for k, v in ENTRY.items() if k != "interferer"}
    entry["interferers"] = [{"type": "music", "name": "song.wav", "offset": 3, "position": 2},
                            {"type": "speech", "name": "spk", "offset": 0}]
    scene = parse_scene(entry)
    assert [i.name for i in scene.interferers] == ["song", "spk"] and scene.to_json()["interferers"][1]["type"] == "speech"
