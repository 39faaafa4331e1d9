"""Render 96x96 grey lip crops and 68-point landmarks from per-frame mouth parameters.

The mouth is drawn analytically (vectorised numpy, anti-aliased edges): four lip boundaries
(outer/inner, upper/lower) are functions of the column, and every pixel of the column is blended by
where its row lies between them. Opening moves the inner boundaries apart, width stretches the
mouth, rounding narrows and thickens it and hides the teeth. Per-speaker appearance (lip size, skin,
lighting), a slow head translation and pixel noise keep the task from being trivial. Landmarks follow the
processed-LRS convention: (x, y) in the 256x256 aligned frame, the crop's top-left being ``yx_min``.
"""
from __future__ import annotations

import numpy as np

from avsr_lightning.data.synthetic.speakers import Speaker

CROP = 96
#: Top-left [y, x] of the crop in the 256x256 aligned frame: the crop is centred on the reference
#: mean-face mouth centroid (about (x, y) = (129, 158)), as the LRS preprocessing does.
CROP_YX_MIN = (110.0, 81.0)

_INT8_UNIFORM_STD = float(np.sqrt((256**2 - 1) / 12))
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
    """Slow head motion per frame: float32 (num_frames, 2) = dx, dy in pixels (a sum of a constant and a sine)."""
    t = np.arange(num_frames, dtype=np.float64)[:, None]
    freqs = rng.uniform(0.01, 0.06, size=(1, 2))
    phases = rng.uniform(0, 2 * np.pi, size=(1, 2))
    amplitude = np.array([[1.5, 1.0]])
    offset = rng.uniform(-1.5, 1.5, size=(1, 2))
    return (offset + amplitude * np.sin(2 * np.pi * freqs * t + phases)).astype(np.float32)


def _soft_inside(distance: np.ndarray) -> np.ndarray:
    """Coverage of a pixel whose centre is ``distance`` px inside an edge (1-px anti-aliasing)."""
    return np.clip(distance + 0.5, 0.0, 1.0)


#: frames rendered per block: the ~10 full-size float32 buffers of a block stay in the CPU cache (L2)
_BLOCK_FRAMES = 8


def _soft_band(v: np.ndarray, lo, hi, cols, below: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``soft_inside(min(v - lo, hi - v)) * cols`` into ``out``, in place, the renderer's float32 operations
    in their order; ``below`` is left holding ``v - lo``."""
    np.subtract(v, lo, out=below)
    np.subtract(hi, v, out=out)
    np.minimum(below, out, out=out)
    np.add(out, 0.5, out=out)
    np.clip(out, 0.0, 1.0, out=out)
    np.multiply(out, cols, out=out)
    return out


def render_frames(shapes: np.ndarray, speaker: Speaker, motion: np.ndarray, rng: np.random.Generator,
                  brightness: float = 0.0) -> np.ndarray:
    """uint8 (T, 96, 96) crops for mouth ``shapes`` (T, 3) = opening, width, rounding and ``motion`` (T, 2).

    The lip boundaries are functions of the column only, so they are computed per column (T, 1, 96) and
    compared with the rows (T, 96, 1): the per-pixel work is a few comparisons and blends. That per-pixel
    work runs on blocks of :data:`_BLOCK_FRAMES` frames in preallocated buffers (``out=``), so it stays in
    the cache instead of streaming ~50 clip-sized temporaries through memory, and the lip and mouth terms
    only on the rows where a lip can be (elsewhere they add exactly zero); every computed pixel goes through
    exactly the same float32 operations in the same order as the plain whole-clip expressions written
    in the comments (the corpus bytes depend on it).
    """
    num_frames = shapes.shape[0]
    shapes = shapes.astype(np.float32)[:, None, None, :]  # (T, 1, 1, 3)
    cx = CROP / 2 + motion[:, 0, None, None]  # (T, 1, 1)
    cy = speaker.mouth_y + motion[:, 1, None, None]
    u = _COLUMNS[None, :1, :] - cx  # (T, 1, 96): position along the mouth
    v = _ROWS[None, :, :1] - cy  # (T, 96, 1): position below the mouth centre
    outer_up, inner_up, inner_low, outer_low, half_width, inner_half_width = _lip_boundaries(u, shapes, speaker)
    gx, gy = speaker.light_gradient
    skin0 = speaker.skin + brightness + gx * (_COLUMNS - CROP / 2) + gy * (_ROWS - CROP / 2)  # (96, 96)
    # nostrils at the top edge (separable Gaussians) and a shadow under the lower lip: cues for head motion
    nostril_rows = np.exp(-(((_ROWS[None, :, :1] - 7.0 - motion[:, 1, None, None]) / 3.0) ** 2))
    nostril_cols = sum(np.exp(-(((u - side * 10.0) / 5.0) ** 2)) for side in (-1.0, 1.0))
    shadow_cols = _envelope(u, half_width * 0.8, 1.0)
    # per-frame row / column factors of the per-pixel terms below
    nostril_rows_45 = 45.0 * nostril_rows  # (T, 96, 1)
    lips_cols = _soft_inside(half_width - np.abs(u))  # (T, 1, 96)
    lower_mid = 0.5 * (inner_low + outer_low)
    mouth_cols = _soft_inside(inner_half_width - np.abs(u))
    opening, rounding = shapes[..., 0], shapes[..., 2]
    teeth_height = np.minimum(0.3 * speaker.max_opening * opening, 4.5) * np.maximum(0.0, 1.0 - 1.2 * rounding)
    teeth_edge = inner_up + teeth_height  # (T, 1, 96)
    tongue_depth = np.maximum(speaker.max_opening * opening, 1.0)  # (T, 1, 1)
    highlight_width = 0.3 * speaker.lower_lip
    # uniform pixel noise with the speaker's standard deviation (uniform int8 draws are ~10x cheaper than
    # normals), drawn for the whole clip in one call (the random stream must not depend on the blocks)
    noise = rng.integers(-128, 128, size=(num_frames, CROP, CROP), dtype=np.int8)
    noise_scale = np.float32(speaker.noise_std / _INT8_UNIFORM_STD)
    frames = np.empty((num_frames, CROP, CROP), np.uint8)
    # rows that may hold lips (or the mouth, which lies between the lips) in some frame: elsewhere the lip
    # and mouth terms are exactly zero and the image is exactly the skin. A 2-row margin on float64 bounds
    # keeps the float32 rounding of the edges inside the rows that are computed.
    lips_top = (cy[:, 0, 0] + outer_up.min(axis=(1, 2))).astype(np.float64) - 0.5 - 2.0
    lips_bottom = (cy[:, 0, 0] + outer_low.max(axis=(1, 2))).astype(np.float64) + 0.5 + 2.0
    block = min(_BLOCK_FRAMES, num_frames)
    skin, image = (np.empty((block, CROP, CROP), np.float32) for _ in range(2))
    flat = [np.empty(block * CROP * CROP, np.float32) for _ in range(4)]  # contiguous per-row-range buffers
    for first in range(0, num_frames, block):
        t = slice(first, min(first + block, num_frames))
        n = t.stop - t.start
        sk, im = skin[:n], image[:n]
        vt = v[t]
        a_, b_ = flat[0][: n * CROP * CROP].reshape(n, CROP, CROP), flat[1][: n * CROP * CROP].reshape(n, CROP, CROP)
        # skin = skin0 - 45 * nostril_rows * nostril_cols - 18 * exp(-(((v - outer_low - 6) / 5) ** 2)) * shadow_cols
        np.subtract(vt, outer_low[t], out=a_)
        np.subtract(a_, 6.0, out=a_)
        np.divide(a_, 5.0, out=a_)
        np.square(a_, out=a_)
        np.negative(a_, out=a_)
        np.exp(a_, out=a_)
        np.multiply(18.0, a_, out=a_)
        np.multiply(a_, shadow_cols[t], out=a_)
        np.multiply(nostril_rows_45[t], nostril_cols[t], out=sk)
        np.subtract(skin0, sk, out=sk)
        np.subtract(sk, a_, out=sk)
        im[...] = sk
        r0 = int(np.clip(np.floor(lips_top[t].min()), 0, CROP))
        r1 = int(np.clip(np.ceil(lips_bottom[t].max()) + 1, r0, CROP))
        if r1 > r0:
            rows, m = slice(r0, r1), r1 - r0
            a_, b_, c_, d_ = (buffer[: n * m * CROP].reshape(n, m, CROP) for buffer in flat)
            vr, skr = vt[:, rows], sk[:, rows]
            # lips_alpha = soft_inside(min(v - outer_up, outer_low - v)) * lips_cols
            _soft_band(vr, outer_up[t], outer_low[t], lips_cols[t], below=b_, out=a_)
            # highlight = 22 * exp(-(((v - lower_mid) / highlight_width) ** 2))
            # image = skin + lips_alpha * (highlight - lip_contrast)
            np.subtract(vr, lower_mid[t], out=b_)
            np.divide(b_, highlight_width, out=b_)
            np.square(b_, out=b_)
            np.negative(b_, out=b_)
            np.exp(b_, out=b_)
            np.multiply(22.0, b_, out=b_)
            np.subtract(b_, speaker.lip_contrast, out=b_)
            np.multiply(a_, b_, out=b_)
            np.add(skr, b_, out=d_)
            # mouth_alpha = soft_inside(min(v - inner_up, inner_low - v)) * mouth_cols; a_ keeps v - inner_up
            _soft_band(vr, inner_up[t], inner_low[t], mouth_cols[t], below=a_, out=b_)  # (the tongue uses it)
            # tongue = 30 * clip((v - inner_up) / tongue_depth, 0, 1); teeth = soft_inside(teeth_edge - v) * 170
            np.divide(a_, tongue_depth[t], out=a_)
            np.clip(a_, 0.0, 1.0, out=a_)
            np.multiply(30.0, a_, out=a_)
            np.subtract(teeth_edge[t], vr, out=c_)
            np.add(c_, 0.5, out=c_)
            np.clip(c_, 0.0, 1.0, out=c_)
            np.multiply(c_, 170.0, out=c_)
            # interior = 22 + max(teeth, tongue) + 0.2 * (skin - speaker.skin)
            # image = image + mouth_alpha * (interior - image)
            np.maximum(c_, a_, out=c_)
            np.add(22.0, c_, out=c_)
            np.subtract(skr, speaker.skin, out=a_)
            np.multiply(0.2, a_, out=a_)
            np.add(c_, a_, out=c_)
            np.subtract(c_, d_, out=c_)
            np.multiply(b_, c_, out=c_)
            np.add(d_, c_, out=im[:, rows])
        # image = image + noise * noise_scale; frames = clip(rint(image), 0, 255) as uint8
        a_ = flat[0][: n * CROP * CROP].reshape(n, CROP, CROP)
        np.multiply(noise[t], noise_scale, out=a_)  # int8 -> float32 exactly, then the product
        np.add(im, a_, out=im)
        np.rint(im, out=im)
        np.clip(im, 0.0, 255.0, out=im)
        frames[t] = im
    return frames


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
    landmarks = np.empty((num_frames, 68, 2), np.float32)
    landmarks[:, :48] = _FACE[None, :48] + motion[:, None, :]
    centre = np.stack([CROP / 2 + motion[:, 0] + x_min, speaker.mouth_y + motion[:, 1] + y_min], -1)  # (T, 2)
    landmarks[:, 48:] = mouth_landmarks(trajectory, speaker) + centre[:, None, :]
    yx_min = np.tile(np.array(CROP_YX_MIN, np.float32), (num_frames, 1))
    return frames, landmarks, yx_min
