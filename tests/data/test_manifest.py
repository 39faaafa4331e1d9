"""Split lists in every format the reference ships (and the real ones when ../shared is present)."""
from __future__ import annotations

import pytest

from avsr_lightning.data.manifest import load_split, parse_split_lines, read_split, read_transcript


def test_formats_and_line_endings(tmp_path):
    (tmp_path / "Video" / "trainval" / "spkA").mkdir(parents=True)
    (tmp_path / "Video" / "trainval" / "spkA" / "50001.mp4").write_bytes(b"")
    (tmp_path / "val.txt").write_bytes(b"spkA/50001\rspkA/50002\r")
    (tmp_path / "val_crlf.txt").write_bytes(b"spkA/50001\r\nspkA/50002\r\n\r\n")
    (tmp_path / "test.ref").write_text("test/s/00002 WE REALLY DON'T\ntest/s/00004 AT SOME POINT\n")
    (tmp_path / "0_600.txt").write_text("pretrain/x/00001\ntrainval/x/50001\npretrain/x/00001\n")
    val = load_split(tmp_path, "val.txt")
    assert [u.id for u in val] == ["trainval/spkA/50001", "trainval/spkA/50002"]  # prefix inferred from Video/
    assert [u.id for u in load_split(tmp_path, "val_crlf.txt", prefix="main")] == ["main/spkA/50001", "main/spkA/50002"]
    ref = read_split(tmp_path / "test.ref")
    assert ref[0].id == "test/s/00002" and ref[0].text == "WE REALLY DON'T"
    train = load_split(tmp_path, str(tmp_path / "0_600.txt"))
    assert [u.id for u in train] == ["pretrain/x/00001", "trainval/x/50001"]  # duplicates removed
    with pytest.raises(FileNotFoundError, match="split list"):
        load_split(tmp_path, "missing.txt")


def test_parse_strips_extensions_and_comments():
    assert parse_split_lines("# c\nmain/a/1.mp4\n\n") == [("main/a/1", None)]


def test_transcript_reader(tmp_path):
    (tmp_path / "a.txt").write_text("Text:  hello World \nConf: 3\n")
    assert read_transcript(tmp_path / "a.txt") == "hello World"
    (tmp_path / "e.txt").write_text("")
    assert read_transcript(tmp_path / "e.txt") == ""
    with pytest.raises(FileNotFoundError):
        read_transcript(tmp_path / "none.txt")


def test_real_reference_split_lists(shared_reference):
    data = shared_reference / "data"
    lrs3_val = read_split(data / "LRS3" / "val.txt", prefix="trainval")
    assert len(lrs3_val) == 1000 and lrs3_val[0].id == "trainval/yXTtHmj1sr0/50002"
    lrs2_val = read_split(data / "LRS2" / "val.txt", prefix="main")
    assert len(lrs2_val) == 1082 and lrs2_val[0].id.startswith("main/6300370419826092098/")
    for corpus, n in (("LRS2", 1243), ("LRS3", 1321)):
        ref = read_split(data / corpus / "test.ref")
        assert len(ref) == n and all(u.text for u in ref)
    assert read_split(data / "LRS3" / "test.ref")[0].text == "WE REALLY DON'T WALK ANYMORE"
    lrs3_train = read_split(data / "LRS3" / "0_600.txt")
    assert len(lrs3_train) == 138153
    assert {u.id.split("/")[0] for u in lrs3_train} == {"pretrain", "trainval"}
    assert not {u.id for u in lrs3_val} & {u.id for u in lrs3_train}  # val does not overlap training
    assert len(read_split(data / "LRS2" / "0_100.txt")) == 61111
