"""Occluder images from the face-occlusion-generation ``coco_object`` layout:
``<dir>/object_image_sr/<name>.jpeg`` (RGB objects) and ``<dir>/object_mask_x4/<name>.png`` (their masks).
"""
from __future__ import annotations

import os
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np

IMAGE_DIR = "object_image_sr"
MASK_DIR = "object_mask_x4"
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


def _augmentation():
    """The reference occluder augmentation (spec §4.5 step 3), in the albumentations 2.x API."""
    import albumentations as A

    return A.Compose([
        A.AdvancedBlur(p=0.5),
        A.OneOf([A.ImageCompression(quality_range=(70, 100), p=0.5)], p=0.5),
        A.Affine(scale=(0.8, 1.2), rotate=(-15, 15), shear=(-8, 8), fit_output=True, p=0.7),
        A.RandomBrightnessContrast(brightness_limit=0.1, contrast_limit=0.1, brightness_by_max=False, p=0.5),
    ])


class OccluderBank:
    """Lists usable occluders once; ``draw(rng, side)`` returns an augmented grey patch and its alpha.

    Decoded occluders are cached (``cache_size`` per worker) and shrunk to ``max_side`` px before augmentation.

    An image without its mask is skipped with one warning naming the file, and counted in
    ``missing_masks``; a directory with no usable pair is a configuration error.
    """

    def __init__(self, directory: str | os.PathLike, augment: bool = True, cache_size: int = 512,
                 max_side: int | None = 128) -> None:
        self.directory = Path(directory)
        image_dir, mask_dir = self.directory / IMAGE_DIR, self.directory / MASK_DIR
        if not image_dir.is_dir():
            raise FileNotFoundError(f"occluder directory {image_dir} does not exist; occluder_dir must contain "
                                    f"{IMAGE_DIR}/ and {MASK_DIR}/ (the coco_object release layout)")
        self.pairs: list[tuple[Path, Path]] = []
        self.missing_masks: list[str] = []
        for image in sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            mask = mask_dir / f"{image.stem}.png"
            if mask.is_file():
                self.pairs.append((image, mask))
            else:
                self.missing_masks.append(str(image))
                warnings.warn(f"occluder {image} has no mask {mask}; skipped", stacklevel=2)
        if not self.pairs:
            raise FileNotFoundError(f"no occluder image with a mask under {self.directory}")
        self.augment = augment
        self.cache_size = cache_size
        self.max_side = max_side
        self._cache: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._pipeline = None

    def __len__(self) -> int:
        return len(self.pairs)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_pipeline"] = None
        state["_cache"] = OrderedDict()
        return state

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """RGB uint8 image (masked) and uint8 mask of the same size; decoded files are kept in an LRU cache
        (decoding the image and its x4 mask costs more than the rest of the corruption)."""
        cached = self._cache.get(index)
        if cached is not None:
            self._cache.move_to_end(index)
            return cached
        import cv2

        image_path, mask_path = self.pairs[index]
        image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
        if image is None or mask is None:
            raise ValueError(f"occluder {image_path} or its mask cannot be read")
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        if mask.shape != image.shape[:2]:
            mask = cv2.resize(mask, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LANCZOS4)
        image = cv2.bitwise_and(image, image, mask=mask)
        if self.max_side and max(image.shape[:2]) > self.max_side:
            # occluders end up <= 45 px: augmenting a 128-px copy instead of the full image keeps the look and
            # costs a fraction (the reference augmented full-size images)
            scale = self.max_side / max(image.shape[:2])
            new_size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
            image = cv2.resize(image, new_size, interpolation=cv2.INTER_AREA)
            mask = cv2.resize(mask, new_size, interpolation=cv2.INTER_AREA)
        if self.cache_size > 0:
            self._cache[index] = (image, mask)
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return image, mask

    def draw(self, rng: np.random.Generator, side: int) -> tuple[np.ndarray, np.ndarray, str]:
        """(grey patch float32 (side, side) in 0..255, alpha float32 (side, side) in 0..1, occluder name)."""
        import cv2

        index = int(rng.integers(0, len(self.pairs)))
        image, mask = self.load(index)
        if self.augment:
            if self._pipeline is None:
                self._pipeline = _augmentation()
            self._pipeline.set_random_seed(int(rng.integers(0, 2**31 - 1)))
            out = self._pipeline(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        image = cv2.resize(image, (side, side), interpolation=cv2.INTER_LANCZOS4)
        mask = cv2.resize(mask, (side, side), interpolation=cv2.INTER_LANCZOS4)
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return grey, mask.astype(np.float32) / 255.0, self.pairs[index][0].stem
