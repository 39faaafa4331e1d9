"""Checkpoint interchange: reference manifests, reference/bare/Lightning files, export round trip, safety."""
from __future__ import annotations

import json
import pickle

import pytest
import torch

from avsr_lightning.models import ARCHITECTURES
from avsr_lightning.weights import (
    CheckpointError,
    load_model,
    load_strict,
    save_reference_checkpoint,
    to_reference_state_dict,
)

from ..models._tiny import EXTRA, TINY, tiny_model


def _distinct_like(shapes: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    """A tensor per name whose values identify it: a ramp for small tensors, a per-name constant
    (a broadcast view, no memory) for the few multi-million-value ones. No RNG: fast for 85M values."""
    out = {}
    for i, (name, shape) in enumerate(shapes.items()):
        n = int(torch.Size(shape).numel())
        if name.endswith("num_batches_tracked"):
            out[name] = torch.tensor(i + 7)
        elif n > 1_000_000:
            out[name] = torch.tensor(float(i)).expand(shape)
        else:
            out[name] = torch.arange(n, dtype=torch.float32).mul_(1.0 / max(n, 1)).add_(i).view(shape)
    return out


@pytest.mark.parametrize("arch", ["AVRelScore", "VCAFE", "Conformer"])
def test_reference_manifest_loads_strictly_and_exports_identically(shared_reference, arch):
    manifest = json.loads((shared_reference / "state_dicts" / f"{arch}.json").read_text())
    assert manifest["architecture"] == arch
    state = _distinct_like(manifest["state_dict"])
    with torch.device("meta"):  # skip the default initialisation: every tensor is overwritten
        model = ARCHITECTURES[arch]()
    model = model.to_empty(device="cpu")
    load_strict(model, state, source=f"{arch} manifest")
    exported = to_reference_state_dict(model)
    assert list(exported) == list(manifest["state_dict"])  # same names, same order
    for name, tensor in state.items():
        assert torch.equal(exported[name], tensor), name
    assert sum(p.numel() for p in model.parameters()) == manifest["total_params"]


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_reference_file_round_trip(tmp_path, arch):
    model = tiny_model(arch)
    for m in model.modules():  # non-default running statistics must survive too
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-1, 1)
    path = tmp_path / "ref.pth"
    save_reference_checkpoint(model, path)
    assert set(torch.load(path, weights_only=True)) == {"state_dict"}
    loaded = load_model(path, arch=arch)  # sizes are read off the tensor shapes
    assert not loaded.training
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    re_exported = to_reference_state_dict(loaded)
    assert all(torch.equal(re_exported[k], v) for k, v in model.state_dict().items())


def test_bare_state_dict_and_overrides(tmp_path):
    model = tiny_model("AVRelScore")
    path = tmp_path / "bare.pt"
    torch.save(model.state_dict(), path)
    loaded = load_model(path, arch="AVRelScore", mask_padding=True, packed_positions=True)
    assert loaded.encoders.mask_padding and loaded.encoders.packed_positions
    assert torch.equal(loaded.ctc.ctc_lo.weight, model.ctc.ctc_lo.weight)


def test_lightning_checkpoint(tmp_path):
    model = tiny_model("VCAFE")
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    hparams = {"model": {"class_path": "avsr_lightning.models.VCAFE", "init_args": {**TINY, **EXTRA.get("VCAFE", {})}}}
    path = tmp_path / "ours.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": hparams, "epoch": 3}, path)
    loaded = load_model(path)  # the saved class wins over the default arch
    assert type(loaded).__name__ == "VCAFE"
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


def test_mismatch_names_the_keys(tmp_path):
    state = tiny_model("AVRelScore").state_dict()
    state["encoders.bogus.weight"] = torch.zeros(1)
    del state["decoder.after_norm.bias"]
    with pytest.raises(CheckpointError) as err:
        load_strict(tiny_model("AVRelScore"), state)
    msg = str(err.value)
    assert "encoders.bogus.weight" in msg and "decoder.after_norm.bias" in msg
    assert "1 missing" in msg and "1 unexpected" in msg


def test_wrong_architecture_is_named(tmp_path):
    path = tmp_path / "vcafe.pth"
    save_reference_checkpoint(tiny_model("VCAFE"), path)
    with pytest.raises(CheckpointError, match="holds a VCAFE model"):
        load_model(path, arch="AVRelScore")


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickle_needing_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": {"x": _Evil()}}, f)
    with pytest.raises(CheckpointError, match="needs code"):
        load_model(path)
    assert "must never run" not in capsys.readouterr().out


def test_lrw_checkpoint_is_pointed_to_lrw_loader(tmp_path):
    path = tmp_path / "lrw.pth.tar"
    torch.save({"model_state_dict": {"tcn.x": torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError, match="load_lrw_frontends"):
        load_model(path)


def test_random_init_is_eval_mode():
    import avsr_lightning

    model = avsr_lightning.load_model(None, arch="Audio", **TINY)  # the lazy public API
    assert not model.training and type(model).__name__ == "Audio"
    with pytest.raises(ValueError, match="unknown architecture"):
        load_model(None, arch="Nope")


def test_lightning_checkpoint_without_model_hparams_falls_back_to_shapes(tmp_path):
    model = tiny_model("Audio")
    path = tmp_path / "ours.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                "hyper_parameters": {"freeze_frontends_steps": 0}}, path)
    loaded = load_model(path, arch="Audio")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
