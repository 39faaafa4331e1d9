"""Pure corruption operations. Every random draw comes from an explicit ``numpy.random.Generator``; no
global RNG is touched, so the same generator state always gives the same output.

Audio is float32 (N,) at 16 kHz; video is uint8 (T, H, W) grey.
"""
from __future__ import annotations

import numpy as np

# ----------------------------------------------------------------------------------------------- audio


def crop_noise(noise: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``length``-sample excerpt of ``noise``, tiled first if the noise is shorter."""
    noise = np.asarray(noise, dtype=np.float32)
    if len(noise) == 0:
        raise ValueError("noise signal is empty")
    if len(noise) < length:
        noise = np.tile(noise, int(np.ceil(length / len(noise))) + 1)
    start = int(rng.integers(0, len(noise) - length + 1))
    return noise[start:start + length]


def scale_to_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Noise scaled so that RMS(speech) / RMS(noise) = 10^(snr/20). Power- and RMS-based definitions agree
    (spec §4.3 vs §7.2). Silent noise is returned unchanged (zeros); silent speech gives zero noise."""
    p_speech = float(np.mean(np.square(speech, dtype=np.float64))) if len(speech) else 0.0
    p_noise = float(np.mean(np.square(noise, dtype=np.float64))) if len(noise) else 0.0
    if p_noise <= 0.0:
        return np.zeros_like(noise, dtype=np.float32)
    gain = np.sqrt(p_speech / p_noise / (10.0 ** (snr_db / 10.0)))
    return (noise * gain).astype(np.float32)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float, keep: np.ndarray | None = None) -> np.ndarray:
    """``speech + noise`` at ``snr_db`` (SNR measured on the full noise excerpt, before gating).

    ``keep`` (bool, same length) gates the noise: False samples are noise-free (partial noise, spec §7.2).
    """
    speech = np.asarray(speech, dtype=np.float32)
    if len(noise) != len(speech):
        raise ValueError(f"noise has {len(noise)} samples, speech has {len(speech)}: crop the noise first")
    scaled = scale_to_snr(speech, noise, snr_db)
    if keep is not None:
        scaled = scaled * keep
    return (speech + scaled).astype(np.float32)


def partial_noise_keep_mask(length: int, rng: np.random.Generator, max_spans: int = 5,
                            min_span: int = 800) -> np.ndarray:
    """AV-RelScore test protocol gating (spec §7.2): r ~ U{1..max_spans} distinct starts in [0, N - N/(2r)],
    span lengths ~ U{min_span..N/(2r)}; the noise is *removed* on those spans. Returns keep (True = noisy).

    Short clips (where the reference's range is empty and it crashes, spec §8.25) clamp the minimum span.
    """
    keep = np.ones(length, dtype=bool)
    if length < 2:
        return keep
    r = int(rng.integers(1, max_spans + 1))
    max_len = max(1, length // (2 * r))
    lo = min(min_span, max_len)
    high_start = max(1, length - max_len)
    starts = rng.choice(high_start, size=min(r, high_start), replace=False)
    for start in np.sort(starts):
        span = int(rng.integers(lo, max_len + 1))
        keep[int(start):int(start) + span] = False
    return keep


def zero_spans(audio: np.ndarray, rng: np.random.Generator, num_spans: int = 4,
               max_fraction: float = 1 / 8) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The reference *training* gating (spec §4.3): zero ``num_spans`` spans of the mixture (speech and noise),
    distinct starts in [0, N), lengths ~ U{0..N*max_fraction-1}. Returns (audio, spans)."""
    out = np.array(audio, dtype=np.float32, copy=True)
    n = len(out)
    if n < num_spans:
        return out, []
    starts = rng.choice(n, size=num_spans, replace=False)
    spans = []
    for start in starts:
        span = int(rng.integers(0, max(1, int(n * max_fraction))))
        out[int(start):int(start) + span] = 0.0
        spans.append((int(start), span))
    return out, spans


def change_volume(audio: np.ndarray, gain_db: float) -> np.ndarray:
    return (np.asarray(audio, dtype=np.float32) * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32)


def speed_perturb(audio: np.ndarray | None, frames: np.ndarray | None, factor: float,
                  sample_rate: int = 16000) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Play both streams ``factor`` times faster, keeping them in sync: audio is resampled, video frames are
    picked at the new rate (nearest earlier frame)."""
    if factor == 1.0:
        return audio, frames
    if audio is not None:
        from avsr_lightning.data.media import resample

        orig = int(round(sample_rate * factor / 100.0))
        audio = resample(audio, orig, sample_rate // 100)
    if frames is not None:
        n_out = max(1, int(round(len(frames) / factor)))
        idx = np.minimum((np.arange(n_out) * factor).astype(np.int64), len(frames) - 1)
        frames = frames[idx]
    return audio, frames


# ----------------------------------------------------------------------------------------------- video


def choose_segments(num_frames: int, freq: int, rng: np.random.Generator,
                    single_fraction: tuple[float, float] = (0.1, 0.5),
                    multi_fraction: tuple[float, float] = (0.3, 0.5)) -> list[tuple[int, int]]:
    """(start, length) frame segments as in the reference (spec §4.5):

    - freq 1: length ~ U{floor(a L)..floor(b L)}, start ~ U{0..L-length};
    - freq > 1: segment g = L // freq; for segment j: length ~ U{floor(0.3L)..floor(0.5L)},
      start ~ U{0..g j + g - length}; if the start falls before g j, or the range is empty, fall back to
      (g j, g // 2) (the reference's try/except control flow, spec §8.10).
    """
    L = int(num_frames)
    if L <= 0:
        return []
    if freq <= 1:
        lo, hi = int(np.floor(single_fraction[0] * L)), int(np.floor(single_fraction[1] * L))
        length = int(rng.integers(lo, max(lo, hi) + 1))
        start = int(rng.integers(0, L - length + 1))
        return [(start, length)]
    g = L // freq
    lo, hi = int(np.floor(multi_fraction[0] * L)), int(np.floor(multi_fraction[1] * L))
    segments = []
    for j in range(freq):
        length = int(rng.integers(lo, max(lo, hi) + 1))
        upper = g * j + g - length
        start = int(rng.integers(0, upper + 1)) if upper >= 0 else -1
        if start < g * j:
            start, length = g * j, g // 2
        segments.append((start, length))
    return segments


def overlay(frame: np.ndarray, patch: np.ndarray, alpha: np.ndarray, row: int, col: int) -> np.ndarray:
    """Alpha-blend ``patch`` (h, w) float onto ``frame`` (H, W) uint8 with its top-left at (row, col),
    clipped to the frame (a patch fully outside leaves the frame unchanged, unlike the reference, §8.25)."""
    H, W = frame.shape
    h, w = patch.shape
    r0, c0 = max(row, 0), max(col, 0)
    r1, c1 = min(row + h, H), min(col + w, W)
    if r0 >= r1 or c0 >= c1:
        return frame
    pr, pc = r0 - row, c0 - col
    a = alpha[pr:pr + r1 - r0, pc:pc + c1 - c0]
    region = frame[r0:r1, c0:c1].astype(np.float32)
    blended = a * patch[pr:pr + r1 - r0, pc:pc + c1 - c0] + (1.0 - a) * region
    out = frame.copy()
    out[r0:r1, c0:c1] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out


def occlude(frames: np.ndarray, patch: np.ndarray, alpha: np.ndarray, frame_indices: np.ndarray,
            positions: np.ndarray) -> np.ndarray:
    """Overlay one occluder on ``frames[frame_indices[k]]`` at ``positions[k] = (row, col)`` (top-left).

    Same result as :func:`overlay` frame by frame, but blended for the whole segment at once with one fancy
    index (a Python loop per frame cost more than the blending itself).
    """
    out = np.array(frames, copy=True)
    frame_indices = np.asarray(frame_indices, dtype=np.int64).reshape(-1)
    if len(frame_indices) == 0:
        return out
    positions = np.asarray(positions, dtype=np.int64).reshape(-1, 2)
    H, W = out.shape[1:]
    h, w = patch.shape
    rows, cols = positions[:, 0], positions[:, 1]
    visible = (rows < H) & (rows + h > 0) & (cols < W) & (cols + w > 0)
    if not visible.all():  # a patch fully outside leaves its frame unchanged
        frame_indices, rows, cols = frame_indices[visible], rows[visible], cols[visible]
        if len(frame_indices) == 0:
            return out
    alpha = np.asarray(alpha, dtype=np.float32)
    weighted = alpha * np.asarray(patch, dtype=np.float32)
    keep = np.float32(1.0) - alpha
    r = rows[:, None, None] + np.arange(h)[None, :, None]
    c = cols[:, None, None] + np.arange(w)[None, None, :]
    flat = (frame_indices[:, None, None] * H + r) * W + c  # (n, h, w) indices into the flat video
    if rows.min() < 0 or cols.min() < 0 or rows.max() + h > H or cols.max() + w > W:
        # partly outside: blend only the in-frame pixels (a clipped index would write a pixel twice)
        valid = (r >= 0) & (r < H) & (c >= 0) & (c < W)
        flat = flat[valid]
        weighted = np.broadcast_to(weighted, valid.shape)[valid]
        keep = np.broadcast_to(keep, valid.shape)[valid]
    view = out.reshape(-1)
    region = view.take(flat).astype(np.float32)
    view.put(flat, np.clip(np.rint(weighted + keep * region), 0, 255).astype(np.uint8))
    return out


def gaussian_pixel_noise(frames: np.ndarray, variance: float, rng: np.random.Generator,
                         fast: bool = False) -> np.ndarray:
    """``x/255 + N(0, variance)``, clipped to [0, 1], back to uint8 (skimage ``random_noise`` 'gaussian').

    float32 throughout and in place (the normal draw is the only full-size temporary). ``fast=True`` draws
    the same N(0, 1) float32 noise with torch's vectorised sampler (~2.5x faster than numpy's ziggurat, the
    largest cost of visual corruption) from a torch generator seeded by one draw of ``rng``: as
    deterministic, but its bits may depend on the CPU's vector unit, so the reproducible test protocol keeps
    the numpy path."""
    if fast:
        import torch

        generator = torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))
        x = torch.randn(frames.shape, generator=generator, dtype=torch.float32).numpy()
    else:
        x = rng.standard_normal(frames.shape, dtype=np.float32)
    x *= np.float32(np.sqrt(max(variance, 0.0)))
    x += frames.astype(np.float32) * np.float32(1.0 / 255.0)
    np.clip(x, 0.0, 1.0, out=x)
    x *= np.float32(255.0)
    np.rint(x, out=x)
    return x.astype(np.uint8)


def gaussian_blur(frames: np.ndarray, sigma: float, kernel_size: int = 7) -> np.ndarray:
    """Per-frame Gaussian blur with a ``kernel_size`` square kernel (reflect-101 border, like torchvision).

    The frames are blurred in one OpenCV call as the channels of one (H, W, T) image (channels are filtered
    independently, so this equals blurring frame by frame); OpenCV caps channels at 512, hence the chunks."""
    import cv2

    frames = np.asarray(frames)
    if frames.ndim != 3 or len(frames) == 0:
        return np.array(frames, copy=True)
    out = np.empty_like(frames)
    for s in range(0, len(frames), 512):
        stack = np.ascontiguousarray(frames[s:s + 512].transpose(1, 2, 0))
        blurred = cv2.GaussianBlur(stack, (kernel_size, kernel_size), sigmaX=float(sigma), sigmaY=float(sigma),
                                   borderType=cv2.BORDER_REFLECT_101)
        out[s:s + 512] = blurred.reshape(stack.shape).transpose(2, 0, 1)
    return out
