"""Every checkpoint read goes through one reader: weights_only=True, one-line errors naming the file."""
from __future__ import annotations

import pytest
import torch

from avsr_lightning.weights import CheckpointError, read_checkpoint

RAN = []


class _Payload:
    def __reduce__(self):
        return (RAN.append, ("code ran",))


def _one_line(err: BaseException, path) -> str:
    text = str(err)
    assert "\n" not in text and str(path) in text, text
    return text


def test_code_payload_is_refused_without_running(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "x": _Payload()}, path)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    assert "needs code to load" in _one_line(info.value, path)
    assert RAN == []


@pytest.mark.parametrize("kind", ["empty", "truncated", "garbage"])
def test_broken_files_give_one_line_naming_the_file(tmp_path, kind):
    path = tmp_path / f"{kind}.ckpt"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        torch.save({"w": torch.ones(1000)}, path)
        path.write_bytes(path.read_bytes()[:2000])
    else:
        path.write_bytes(b"this is not a checkpoint at all")
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    _one_line(info.value, path)


def test_plugin_loads_reference_format_and_refuses_unsafe_loading(tmp_path):
    from avsr_lightning.callbacks import AtomicCheckpointIO

    path = tmp_path / "ref.pth"
    torch.save({"state_dict": {"encoder.w": torch.ones(2)}}, path)
    ckpt = AtomicCheckpointIO().load_checkpoint(path)
    assert list(ckpt["state_dict"]) == ["model.encoder.w"] and "pytorch-lightning_version" in ckpt
    with pytest.raises(ValueError, match="weights_only=True"):
        AtomicCheckpointIO().load_checkpoint(path, weights_only=False)


def test_load_lm_uses_the_reader(tmp_path):
    from avsr_lightning import load_lm

    (tmp_path / "model.pth").write_bytes(b"")
    (tmp_path / "model.json").write_text('{"layer": 1, "unit": 8}')
    with pytest.raises(CheckpointError, match="model.pth"):
        load_lm(tmp_path / "model.pth")


def test_average_checkpoints_skips_unreadable_files(tmp_path, capsys):
    from avsr_lightning.tools.average_checkpoints import main

    d = tmp_path / "ckpts"
    d.mkdir()
    for step in (1, 2):
        torch.save({"global_step": step, "state_dict": {"model.w": torch.full((2,), float(step))}}, d / f"s{step}.ckpt")
    (d / "broken.ckpt").write_bytes(b"")
    with pytest.warns(UserWarning, match="skipped .*broken.ckpt"):
        main(["--dir", str(d), "--last", "5", "--output", str(tmp_path / "avg.ckpt")])
    assert torch.equal(torch.load(tmp_path / "avg.ckpt", weights_only=True)["state_dict"]["model.w"],
                       torch.full((2,), 1.5))
    for p in d.glob("s*.ckpt"):
        p.write_bytes(b"junk")
    with pytest.raises(SystemExit):
        with pytest.warns(UserWarning):
            main(["--dir", str(d), "--last", "5", "--output", str(tmp_path / "avg2.ckpt")])
    assert "no readable" in capsys.readouterr().err
