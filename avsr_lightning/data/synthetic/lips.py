"""Render 96x96 grey lip crops and 68-point landmarks from per-frame mouth parameters.

The mouth is drawn analytically (vectorised numpy, anti-aliased edges): for every pixel we rotate into the
head's frame and compare its vertical position with four lip boundaries (outer/inner, upper/lower) that
are functions of the horizontal position. Opening moves the inner boundaries apart, width stretches the
mouth, rounding narrows and thickens it and hides the teeth. Per-speaker appearance (lip size, skin,
lighting), a slow head motion and pixel noise keep the task from being trivial. Landmarks follow the
processed-LRS convention: (x, y) in the 256x256 aligned frame, the crop's top-left being ``yx_min``.
"""
from __future__ import annotations

import numpy as np

from avsr_lightning.data.synthetic.speakers import Speaker

CROP = 96
#: Top-left [y, x] of the crop in the 256x256 aligned frame: the crop is centred on the reference
#: mean-face mouth centroid (about (x, y) = (129, 158)), as the LRS preprocessing does.
CROP_YX_MIN = (110.0, 81.0)

_COLUMNS, _ROWS = np.meshgrid(np.arange(CROP, dtype=np.float32), np.arange(CROP, dtype=np.float32))


def _face_template() -> np.ndarray:
    """Points 0-47 of a plausible frontal face in the aligned 256x256 frame (jaw, brows, nose, eyes)."""
    points = np.zeros((68, 2), np.float32)
    theta = np.linspace(np.pi, 0.0, 17)
    points[0:17] = np.stack([128 - 84 * np.cos(theta), 100 + 118 * np.sin(theta) ** 1.3], axis=1)
    points[17:22] = np.stack([np.linspace(58, 114, 5), [74, 67, 65, 66, 70]], axis=1)
    points[22:27] = np.stack([np.linspace(142, 198, 5), [70, 66, 65, 67, 74]], axis=1)
    points[27:31] = np.stack([np.full(4, 128.0), np.linspace(88, 124, 4)], axis=1)
    points[31:36] = np.stack([np.linspace(112, 144, 5), [134, 137, 139, 137, 134]], axis=1)
    for first, cx in ((36, 88.0), (42, 168.0)):
        angles = np.linspace(np.pi, -np.pi, 7)[:6]
        points[first:first + 6] = np.stack([cx - 17 * np.cos(angles), 95 - 6 * np.sin(angles)], axis=1)
    return points


_FACE = _face_template()


def _envelope(u: np.ndarray, half_width, power) -> np.ndarray:
    return np.clip(1.0 - (u / np.maximum(half_width, 1e-3)) ** 2, 0.0, 1.0) ** power


def _lip_boundaries(u: np.ndarray, shape: np.ndarray, speaker: Speaker) -> tuple[np.ndarray, ...]:
    """Vertical offsets (from the mouth centre) of outer-upper, inner-upper, inner-lower, outer-lower lip edges.

    ``shape`` is (..., 3) = opening, width, rounding; its leading dims broadcast against ``u``'s.
    Also returns the outer and inner half widths.
    """
    opening, width, rounding = shape[..., 0], shape[..., 1], shape[..., 2]
    half_width = speaker.mouth_half_width * (0.82 + 0.3 * width - 0.32 * rounding)
    inner_half_width = half_width * (0.82 - 0.22 * rounding)
    gap = speaker.max_opening * opening
    env_inner = _envelope(u, inner_half_width, 0.6 + 0.3 * rounding)
    env_outer = _envelope(u, half_width, 0.5)
    bow = 1.0 - speaker.cupid_bow * np.exp(-(u / (0.14 * half_width)) ** 2)
    inner_up = -0.38 * gap * env_inner
    inner_low = 0.62 * gap * env_inner
    outer_up = inner_up - speaker.upper_lip * (1 + 0.35 * rounding) * env_outer * bow
    outer_low = inner_low + speaker.lower_lip * (1 + 0.3 * rounding) * env_outer
    return outer_up, inner_up, inner_low, outer_low, half_width, inner_half_width


def mouth_landmarks(shapes: np.ndarray, speaker: Speaker) -> np.ndarray:
    """Points 48-67 as (x, y) offsets from the mouth centre in the head's frame: (T, 20, 2) for shapes (T, 3)."""
    shapes = shapes[:, None, :]
    _, _, _, _, half_width, inner_half_width = _lip_boundaries(np.zeros((1, 1)), shapes, speaker)
    outer_x = np.array([[-1, -0.6, -0.25, 0, 0.25, 0.6, 1, 0.6, 0.25, 0, -0.25, -0.6]]) * half_width
    inner_x = np.array([[-1, -0.5, 0, 0.5, 1, 0.5, 0, -0.5]]) * inner_half_width
    ou, _, _, ol, _, _ = _lip_boundaries(outer_x, shapes, speaker)
    _, iu, il, _, _, _ = _lip_boundaries(inner_x, shapes, speaker)
    outer_y = np.concatenate([ou[:, :7], ol[:, 7:]], axis=1)
    inner_y = np.concatenate([iu[:, :5], il[:, 5:]], axis=1)
    xs = np.concatenate([outer_x, inner_x], axis=1)
    ys = np.concatenate([outer_y, inner_y], axis=1)
    return np.stack([xs, ys], axis=-1).astype(np.float32)


def head_motion(num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Slow head motion per frame: (num_frames, 3) = dx, dy (pixels), angle (radians)."""
    t = np.arange(num_frames, dtype=np.float64)[:, None]
    freqs = rng.uniform(0.01, 0.06, size=(1, 3))
    phases = rng.uniform(0, 2 * np.pi, size=(1, 3))
    amplitude = np.array([[1.5, 1.0, 0.05]])
    offset = rng.uniform(-1.5, 1.5, size=(1, 3)) * np.array([[1.0, 1.0, 0.02]])
    return (offset + amplitude * np.sin(2 * np.pi * freqs * t + phases)).astype(np.float32)


def _soft_inside(distance: np.ndarray) -> np.ndarray:
    """Coverage of a pixel whose centre is ``distance`` px inside an edge (1-px anti-aliasing)."""
    return np.clip(distance + 0.5, 0.0, 1.0)


def render_frames(shapes: np.ndarray, speaker: Speaker, motion: np.ndarray, rng: np.random.Generator,
                  brightness: float = 0.0) -> np.ndarray:
    """uint8 (T, 96, 96) crops for mouth ``shapes`` (T, 3) = opening, width, rounding and ``motion`` (T, 3)."""
    shapes = shapes.astype(np.float32)[:, None, None, :]  # (T, 1, 1, 3) broadcasts against the pixel grid
    dx, dy, angle = (motion[:, k, None, None].astype(np.float32) for k in range(3))
    cx, cy = CROP / 2 + dx, speaker.mouth_y + dy
    cos, sin = np.cos(angle), np.sin(angle)
    x, y = _COLUMNS - cx, _ROWS - cy
    u = cos * x + sin * y  # head frame: u along the mouth, v downwards
    v = -sin * x + cos * y
    outer_up, inner_up, inner_low, outer_low, half_width, inner_half_width = _lip_boundaries(u, shapes, speaker)
    gx, gy = speaker.light_gradient
    skin = speaker.skin + brightness + gx * (_COLUMNS - CROP / 2) + gy * (_ROWS - CROP / 2)
    # shadow under the lower lip and nostrils at the top edge: cues for head motion
    skin = skin - 18.0 * np.exp(-(((v - outer_low - 6.0) / 5.0) ** 2)) * _envelope(u, half_width * 0.8, 1.0)
    for side in (-1.0, 1.0):
        skin = skin - 45.0 * np.exp(-(((u - side * 10.0) / 5.0) ** 2 + ((v + cy - 7.0) / 3.0) ** 2))
    lips_alpha = _soft_inside(np.minimum(v - outer_up, outer_low - v)) * _soft_inside(half_width - np.abs(u))
    lower_mid = 0.5 * (inner_low + outer_low)
    highlight = 22.0 * np.exp(-(((v - lower_mid) / (0.3 * speaker.lower_lip)) ** 2))
    lip_value = skin - speaker.lip_contrast + highlight
    image = skin * (1 - lips_alpha) + lip_value * lips_alpha
    mouth_alpha = _soft_inside(np.minimum(v - inner_up, inner_low - v)) * _soft_inside(inner_half_width - np.abs(u))
    opening, rounding = shapes[..., 0], shapes[..., 2]
    teeth_height = np.minimum(0.3 * speaker.max_opening * opening, 4.5) * np.maximum(0.0, 1.0 - 1.2 * rounding)
    teeth = _soft_inside(inner_up + teeth_height - v) * 170.0
    tongue = 30.0 * np.clip((v - inner_up) / np.maximum(speaker.max_opening * opening, 1.0), 0, 1)
    interior = 22.0 + np.maximum(teeth, tongue) + 0.2 * (skin - speaker.skin)
    image = image * (1 - mouth_alpha) + interior * mouth_alpha
    image = image + rng.standard_normal(size=image.shape, dtype=np.float32) * np.float32(speaker.noise_std)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def render_clip(trajectory: np.ndarray, speaker: Speaker, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render a clip.

    Args:
        trajectory: float (T, 3) mouth parameters per frame (see :mod:`visemes`).

    Returns:
        frames uint8 (T, 96, 96); landmarks float32 (T, 68, 2) as (x, y) in the 256x256 aligned frame;
        yx_min float32 (T, 2) as [y_min, x_min] of the crop in that frame.
    """
    num_frames = trajectory.shape[0]
    motion = head_motion(num_frames, rng)
    brightness = float(rng.uniform(-12, 12))
    frames = render_frames(trajectory, speaker, motion, rng, brightness)
    y_min, x_min = CROP_YX_MIN
    angle = motion[:, 2]
    rotation = np.stack([np.stack([np.cos(angle), -np.sin(angle)], -1),
                         np.stack([np.sin(angle), np.cos(angle)], -1)], -2)  # (T, 2, 2)
    centre = np.stack([CROP / 2 + motion[:, 0] + x_min, speaker.mouth_y + motion[:, 1] + y_min], -1)  # (T, 2)
    face_centre = np.array([CROP / 2 + x_min, speaker.mouth_y + y_min], np.float32)
    local = np.concatenate([np.broadcast_to(_FACE[:48] - face_centre, (num_frames, 48, 2)),
                            mouth_landmarks(trajectory, speaker)], axis=1)  # (T, 68, 2)
    landmarks = np.einsum("tij,tkj->tki", rotation, local) + centre[:, None, :]
    yx_min = np.tile(np.array(CROP_YX_MIN, np.float32), (num_frames, 1))
    return frames, landmarks.astype(np.float32), yx_min
