"""The one durable-write helper (avsr_lightning/durable.py): fsyncs, cleans up, unique temps, sole renamer."""
from __future__ import annotations

import ast
import os
import threading
from pathlib import Path

import pytest
import torch

from avsr_lightning import durable

ROOT = Path(__file__).resolve().parents[1]


def test_fsyncs_file_and_directory(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def counting(fd):
        synced.append(os.path.isdir(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else None)
        return real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    durable.write_text(tmp_path / "a.txt", "hello")
    assert (tmp_path / "a.txt").read_text() == "hello"
    assert synced.count(False) >= 1, "the temp file was not fsynced"
    assert synced.count(True) >= 1, "the directory was not fsynced after the rename"


def test_fsync_comes_before_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    durable.torch_save({"w": torch.ones(3)}, tmp_path / "x.pt")
    assert events.index("fsync") < events.index("replace") < len(events) - 1  # file fsync, rename, dir fsync
    assert torch.equal(torch.load(tmp_path / "x.pt", weights_only=True)["w"], torch.ones(3))


def test_failure_leaves_no_temp_and_keeps_old_file(tmp_path):
    target = tmp_path / "out.wav"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with durable.durable_path(target) as tmp:
            assert tmp.parent == tmp_path and tmp.suffix == ".wav"  # same dir, real suffix kept
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]


def test_keyboard_interrupt_also_cleans_up(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with durable.durable_path(tmp_path / "k.json") as tmp:
            tmp.write_text("{")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_unique_temp_names_under_concurrency(tmp_path):
    seen, lock, barrier = [], threading.Lock(), threading.Barrier(8)

    def writer(i):
        with durable.durable_path(tmp_path / "same.txt") as tmp:
            with lock:
                seen.append(tmp.name)
            barrier.wait(timeout=10)  # all eight temps exist at the same time
            tmp.write_text(f"writer {i}")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 8
    assert (tmp_path / "same.txt").read_text().startswith("writer ")
    assert [p.name for p in tmp_path.iterdir()] == ["same.txt"]


def test_write_json_is_strict(tmp_path):
    durable.write_json(tmp_path / "a.json", {"x": 1})
    assert (tmp_path / "a.json").read_text().strip() == '{\n  "x": 1\n}'
    with pytest.raises(ValueError):
        durable.write_json(tmp_path / "b.json", {"x": float("nan")})
    assert not (tmp_path / "b.json").exists()


def _renames(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("replace", "rename"):
            base = node.func.value
            if isinstance(base, ast.Name) and base.id in ("os", "shutil"):
                lines.append(node.lineno)
    return lines


def test_only_the_helper_renames_files():
    """Every writer goes through avsr_lightning/durable.py: nobody else calls os.replace/os.rename."""
    helper = ROOT / "avsr_lightning" / "durable.py"
    offenders = []
    for folder in ("avsr_lightning", "data_prep"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path != helper:
                offenders += [f"{path.relative_to(ROOT)}:{n}" for n in _renames(path)]
    assert not offenders, "use avsr_lightning.durable instead of renaming by hand:\n" + "\n".join(offenders)
    assert _renames(helper), "the checker must see the helper's own os.replace"


def test_result_has_the_usual_permissions(tmp_path):
    durable.write_text(tmp_path / "new.txt", "x")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o666 & ~mask
    (tmp_path / "old.txt").write_text("y")
    os.chmod(tmp_path / "old.txt", 0o640)
    durable.write_text(tmp_path / "old.txt", "z")
    assert (tmp_path / "old.txt").stat().st_mode & 0o777 == 0o640
