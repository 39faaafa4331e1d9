"""``mask_padding`` runs the video frontend's 2-D trunk on valid frames only: it must equal the masked
BatchNorm formulation (same valid outputs, same running statistics, same gradients), with padded
frames returned as zeros."""
from __future__ import annotations

import copy

import torch

from avsr_lightning.models.frontends import VideoFrontend
from avsr_lightning.models.masking import lengths_to_mask, masked_batch_norm


def _masked_reference(frontend: VideoFrontend, video: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The straightforward formulation: trunk over every frame, padding kept out of BatchNorm statistics."""
    b, t = video.shape[:2]
    valid = lengths_to_mask(lengths, t).view(b, 1, t, 1, 1)
    x = video.unsqueeze(1) * valid.to(video.dtype)
    conv, bn, act, pool = frontend.frontend3D
    x = pool(act(masked_batch_norm(bn, conv(x), valid)))
    c, h, w = x.size(1), x.size(3), x.size(4)
    x = x.transpose(1, 2).reshape(b * t, c, h, w)
    return frontend.trunk(x, valid.reshape(b * t, 1, 1, 1)).view(b, t, -1)


def _max_relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """max|a-b| / max|b|: float32 summation-order round-off, not elementwise noise on near-zero entries."""
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def test_valid_frame_trunk_equals_masked_batch_norm():
    torch.manual_seed(0)
    fast = VideoFrontend(widths=(4, 8, 8, 16)).train()
    slow = copy.deepcopy(fast)
    video = torch.randn(3, 9, 40, 40)
    lengths = torch.tensor([9, 5, 2])
    video_fast = video.clone().requires_grad_(True)
    video_slow = video.clone().requires_grad_(True)

    out_fast = fast(video_fast, lengths)
    out_slow = _masked_reference(slow, video_slow, lengths)
    valid = lengths_to_mask(lengths, 9)

    torch.testing.assert_close(out_fast[valid], out_slow[valid], rtol=1e-5, atol=1e-5)
    assert torch.count_nonzero(out_fast[~valid]) == 0
    for (name, a), b in zip(fast.named_buffers(), slow.buffers()):
        torch.testing.assert_close(a.float(), b.float(), rtol=1e-5, atol=1e-6, msg=name)

    weights = torch.randn_like(out_fast) * valid.unsqueeze(-1)
    (out_fast * weights).sum().backward()
    (out_slow * weights).sum().backward()
    # 5e-5: two float32 summation orders of the same sums. Each path is within 2.1e-5 of a float64 run of
    # the valid-frame trunk here (the native BatchNorm path is the farther one; a real mismatch is O(1)).
    assert _max_relative(video_fast.grad, video_slow.grad) < 5e-5
    for (name, a), b in zip(fast.named_parameters(), slow.parameters()):
        assert _max_relative(a.grad, b.grad) < 5e-5, name


def test_all_empty_batch_gives_zeros():
    frontend = VideoFrontend(widths=(4, 8, 8, 16)).train()
    out = frontend(torch.randn(2, 3, 40, 40), torch.tensor([0, 0]))
    assert out.shape == (2, 3, 16) and torch.count_nonzero(out) == 0
