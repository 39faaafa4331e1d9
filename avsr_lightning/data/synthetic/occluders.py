"""A procedural occluder bank in the ``coco_object`` layout that ``OccluderBank`` reads
(``occlusion_patch/object_image_sr/<name>.jpeg`` RGB objects on black, ``occlusion_patch/object_mask_x4/<name>.png``
their masks at four times the size), so visual corruption and every visual test condition work on the
synthetic corpus without the COCO release.

Objects are textured polygons, ellipses, hand-like shapes (a palm and fingers) and bars (pens, cups' handles),
each drawn from its own generator ``[seed, 19, index]``: the bank is a pure function of the seed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from avsr_lightning.data.synthetic.writers import _atomic

IMAGE_DIR, MASK_DIR = "object_image_sr", "object_mask_x4"
NUM_OCCLUDERS = 48
IMAGE_SIDE = 96
SHAPES = ("polygon", "ellipse", "hand", "bar")


def _mask_x4(kind: str, rng: np.random.Generator, side: int) -> np.ndarray:
    """uint8 mask (side, side), 255 inside the object."""
    import cv2

    mask = np.zeros((side, side), np.uint8)
    c = side / 2.0
    if kind == "polygon":
        n = int(rng.integers(5, 10))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = rng.uniform(0.25, 0.47, n) * side
        pts = np.stack([c + radii * np.cos(angles), c + radii * np.sin(angles)], 1).astype(np.int32)
        cv2.fillPoly(mask, [pts], 255)
    elif kind == "ellipse":
        axes = (int(rng.uniform(0.2, 0.46) * side), int(rng.uniform(0.15, 0.4) * side))
        cv2.ellipse(mask, (int(c), int(c)), axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
    elif kind == "hand":
        palm = (int(0.2 * side), int(rng.uniform(0.14, 0.2) * side))
        centre = (int(c), int(c + 0.12 * side))
        cv2.ellipse(mask, centre, palm, 0, 0, 360, 255, -1)
        fingers = int(rng.integers(3, 5))
        width = max(2, int(rng.uniform(0.06, 0.085) * side))
        for k in range(fingers):
            x = int(c - 0.15 * side + k * 0.3 * side / max(1, fingers - 1))
            top = int(c - rng.uniform(0.3, 0.44) * side)
            cv2.line(mask, (x, centre[1] - palm[1] // 2), (x, top), 255, width * 2)
            cv2.circle(mask, (x, top), width, 255, -1)
        thumb_angle = float(rng.uniform(0.6, 1.1))
        end = (int(c - 0.2 * side - 0.22 * side * np.cos(thumb_angle)), int(c + 0.15 * side - 0.22 * side * np.sin(thumb_angle)))
        cv2.line(mask, (int(c - 0.15 * side), int(c + 0.18 * side)), end, 255, width * 2)
        angle = float(rng.uniform(-40, 40))
        rot = cv2.getRotationMatrix2D((c, c), angle, 1.0)
        mask = cv2.warpAffine(mask, rot, (side, side), flags=cv2.INTER_NEAREST)
    else:  # bar
        length, width = rng.uniform(0.6, 0.9) * side, rng.uniform(0.08, 0.2) * side
        angle = float(rng.uniform(0, 180))
        box = cv2.boxPoints(((c, c), (length, width), angle)).astype(np.int32)
        cv2.fillPoly(mask, [box], 255)
    return mask


def _texture(rng: np.random.Generator, side: int) -> np.ndarray:
    """RGB uint8 (side, side, 3): a base colour, a linear shading, stripes or speckles."""
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
    base = rng.uniform(20, 235, 3)
    gx, gy = rng.uniform(-60, 60, 2)
    image = base[None, None, :] + (gx * (xx - 0.5) + gy * (yy - 0.5))[..., None]
    if rng.random() < 0.5:
        freq, phase, amp = rng.uniform(3, 12), rng.uniform(0, 2 * np.pi), rng.uniform(10, 50)
        direction = rng.uniform(0, np.pi)
        stripes = np.sin(2 * np.pi * freq * (xx * np.cos(direction) + yy * np.sin(direction)) + phase)
        image += (amp * stripes)[..., None] * rng.uniform(0.5, 1.0, 3)[None, None, :]
    else:
        image += rng.normal(0, rng.uniform(4, 20), (side, side, 1))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def make_occluder(index: int, seed: int, side: int = IMAGE_SIDE) -> tuple[np.ndarray, np.ndarray, str]:
    """(RGB image on black (side, side, 3), mask (4 side, 4 side), kind) of occluder ``index``."""
    import cv2

    rng = np.random.default_rng([seed, 19, index])
    kind = SHAPES[index % len(SHAPES)]
    mask4 = _mask_x4(kind, rng, 4 * side)
    small = cv2.resize(mask4, (side, side), interpolation=cv2.INTER_AREA)
    image = _texture(rng, side)
    image[small < 128] = 0
    return image, mask4, kind


def write_occluders(directory: Path, seed: int, count: int = NUM_OCCLUDERS) -> list[dict]:
    """Write the bank under ``directory`` (existing files are kept: resumable); returns one record per object."""
    import cv2

    records = []
    for index in range(count):
        name = f"synthetic_{index:03d}"
        image_path = directory / IMAGE_DIR / f"{name}.jpeg"
        mask_path = directory / MASK_DIR / f"{name}.png"
        kind = SHAPES[index % len(SHAPES)]
        if not (image_path.exists() and mask_path.exists()):
            image, mask4, kind = make_occluder(index, seed)
            ok_i, jpeg = cv2.imencode(".jpeg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
            ok_m, png = cv2.imencode(".png", mask4)
            if not (ok_i and ok_m):
                raise RuntimeError(f"OpenCV could not encode occluder {name}")
            _atomic(mask_path, lambda tmp: tmp.write_bytes(png.tobytes()))
            _atomic(image_path, lambda tmp: tmp.write_bytes(jpeg.tobytes()))
        records.append({"name": name, "kind": kind})
    return records
