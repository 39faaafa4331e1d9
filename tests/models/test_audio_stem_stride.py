"""``audio_stem_stride``: a coarser raw-waveform stem that still gives one vector per video frame, keeps the
padding fixes, does the work it promises to save, and leaves the reference default alone."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from avsr_lightning.models.frontends import AudioFrontend
from avsr_lightning.models.resnet import ResNet1dTrunk

from ._tiny import tiny_model
from .test_padding_fixes import FIXES, _short_alone

REPO = Path(__file__).resolve().parents[2]
STRIDES = [4, 5, 8, 10, 16, 20, 40, 80]


@pytest.mark.parametrize("stride", STRIDES)
@pytest.mark.parametrize("frames", [1, 7])
def test_one_vector_per_frame_at_every_allowed_stride(stride, frames):
    trunk = ResNet1dTrunk((4, 8, 8, 16), stem_stride=stride).eval()
    with torch.no_grad():
        out = trunk(torch.randn(2, 1, 640 * frames))
    assert out.shape == (2, 16, frames)
    assert trunk.stage_strides == (stride, stride, 2 * stride, 4 * stride, 8 * stride)


@pytest.mark.parametrize("bad", [1, 2, 3, 6, 32, 160, 0, -4, True, 4.0, "20"])
def test_a_stride_that_cannot_tile_a_frame_is_refused_naming_the_choices(bad):
    with pytest.raises(ValueError, match=r"stem_stride=.*\[4, 5, 8, 10, 16, 20, 40, 80\]"):
        ResNet1dTrunk(stem_stride=bad)


def test_the_default_is_the_reference_stem():
    trunk = ResNet1dTrunk()
    assert trunk.conv1.stride == (4,) and trunk.conv1.kernel_size == (80,) and trunk.conv1.padding == (38,)
    assert trunk.avgpool.kernel_size == (20,)
    assert trunk.stage_strides == (4, 4, 8, 16, 32)


def test_the_parameters_do_not_depend_on_the_stride():
    """Same names and shapes: a stride-4 checkpoint loads into a stride-20 model (and back)."""
    a, b = tiny_model("AVRelScore").state_dict(), tiny_model("AVRelScore", audio_stem_stride=20).state_dict()
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}


def test_stride_20_does_at_most_a_quarter_of_the_frontend_flops():
    """Why the option exists: every stage runs on 5x fewer positions (torch's own FLOP counter)."""
    audio = torch.randn(2, 640 * 25)

    def flops(stride):
        frontend = AudioFrontend((8, 16, 32, 64), stem_stride=stride).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            frontend(audio)
        return counter.get_total_flops()

    assert flops(20) <= flops(4) / 4


@pytest.mark.parametrize("arch", ["AVRelScore", "VCAFE", "Conformer", "Audio"])
def test_every_audio_architecture_takes_the_option_and_keeps_the_padding_fixes(arch):
    """The valid-sample masks follow the coarser strides: a short utterance in a batch equals it alone."""
    model = tiny_model(arch, audio_stem_stride=20, **FIXES.get(arch, dict(mask_padding=True))).eval()
    stems = [m for m in model.modules() if isinstance(m, ResNet1dTrunk)]
    assert stems and all(m.conv1.stride == (20,) for m in stems)
    batched, alone = _short_alone(arch, model)
    torch.testing.assert_close(batched, alone, atol=2e-5, rtol=1e-4)


def test_the_demo_recipes_share_every_model_setting_they_have_in_common():
    """AV, audio-only and video-only demos are one recipe with one stream more or less (docs/demo.md): the
    audio-only model has the AV model's audio stem, and so on for every shared argument."""
    args = {name: yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())["model"]["model"]["init_args"]
            for name in ("demo", "demo_audio", "demo_video")}
    assert args["demo"]["audio_stem_stride"] == args["demo_audio"]["audio_stem_stride"]
    for one in args:
        for other in args:
            for key in args[one].keys() & args[other].keys():
                assert args[one][key] == args[other][key], (one, other, key)
