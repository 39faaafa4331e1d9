"""``torch.compile`` is opt-in (the ``CompileModel`` callback): off by default, and the callback compiles
exactly the Conformer blocks and decoder layers, in place. Actual compilation takes far longer than a
CPU test may; the speed is measured with benchmarks/train_step.py (docs/models.md, "Speed")."""
from __future__ import annotations

import pytest
from torch import nn

from avsr_lightning.callbacks.compile import CompileModel
from avsr_lightning.lightning_module import AVSRModule
from avsr_lightning.models import ConformerBlock, DecoderLayer

from ._tiny import tiny_model


def _compiled(module: nn.Module) -> bool:
    return getattr(module, "_compiled_call_impl", None) is not None


def test_nothing_is_compiled_by_default():
    module = AVSRModule(tiny_model("AVRelScore"))
    assert not any(_compiled(m) for m in module.modules())


def test_callback_compiles_blocks_in_place(monkeypatch):
    calls = []
    monkeypatch.setattr(nn.Module, "compile", lambda self, **kw: calls.append((type(self), kw)))
    module = AVSRModule(tiny_model("Conformer"))  # two encoders (1 block each at tiny sizes) + decoder
    callback = CompileModel()
    callback.setup(None, module, "fit")
    callback.setup(None, module, "validate")  # once only
    blocks = [m for m in module.model.modules() if isinstance(m, (ConformerBlock, DecoderLayer))]
    assert len(calls) == len(blocks) == len(callback.compiled) > 0
    assert {t for t, _ in calls} == {ConformerBlock, DecoderLayer}
    assert all(kw == {"dynamic": True, "mode": None, "backend": "inductor"} for _, kw in calls)
    with pytest.raises(ValueError, match="frontend"):
        CompileModel(targets=("frontend",))
