"""LRW frontend checkpoints initialise the frontends of every architecture, strictly."""
from __future__ import annotations

import pytest
import torch

from avsr_lightning.models import ARCHITECTURES, AudioFrontend, VideoFrontend
from avsr_lightning.weights import CheckpointError, load_lrw_frontends

from ..models._tiny import TINY, tiny_model

WIDTHS = TINY["frontend_widths"]


def _lrw_file(tmp_path, frontend: torch.nn.Module, name: str) -> tuple:
    torch.manual_seed(123)
    for p in frontend.parameters():
        p.data.normal_()
    state = dict(frontend.state_dict())
    state["tcn.tcn_trunk.weight"] = torch.zeros(3)  # back-end keys are dropped
    state["tcn_output.bias"] = torch.zeros(2)
    path = tmp_path / name
    torch.save({"model_state_dict": state, "epoch_idx": 7}, path)
    return path, frontend.state_dict()


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_lrw_frontends_reach_every_architecture(tmp_path, arch):
    vpath, vstate = _lrw_file(tmp_path, VideoFrontend(WIDTHS), "video.pth.tar")
    apath, astate = _lrw_file(tmp_path, AudioFrontend(WIDTHS), "audio.pth.tar")
    model = tiny_model(arch)
    report = load_lrw_frontends(model, None if arch == "Audio" else vpath, None if arch == "Video" else apath)
    expected = {"AVRelScore": {"encoders.frontend_vid", "encoders.frontend_aud"},
                "VCAFE": {"encoders.frontend_vid", "encoders.frontend_aud"},
                "Conformer": {"encoder_vid.frontend", "encoder_aud.frontend"},
                "Audio": {"encoder_aud.frontend"}, "Video": {"encoder_vid.frontend"}}[arch]
    assert set(report) == expected
    for name in expected:
        ref = vstate if "vid" in name else astate
        got = model.get_submodule(name).state_dict()
        assert all(torch.equal(got[k], ref[k]) for k in ref)
        assert not any("tcn" in k for k in report[name])


def test_lrw_mismatch_is_reported(tmp_path):
    vpath, _ = _lrw_file(tmp_path, VideoFrontend((8, 8, 8, 16)), "video.pth.tar")
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_lrw_frontends(tiny_model("Video"), video_path=vpath)
    apath, _ = _lrw_file(tmp_path, AudioFrontend(WIDTHS), "audio.pth.tar")
    with pytest.raises(CheckpointError, match="no AudioFrontend"):
        load_lrw_frontends(tiny_model("Video"), audio_path=apath)
