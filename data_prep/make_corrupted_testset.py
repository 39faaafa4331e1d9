"""Reproducible AV-RelScore corrupted test sets (spec §7), one processed-layout corpus per condition.

    python data_prep/make_corrupted_testset.py --root /data/LRS3_processed --out_root /data/LRS3_corrupted \
        --protocol lrs3 --seed 0 --occluder_dir /data/occlusion_patch --noise_files [/data/noise/babble.wav]

Same seed, same bytes. Evaluate a set with ``--data.root <out_root>/<condition>``, or skip the files and use
``--data.test_conditions`` for the identical on-the-fly corruption (docs/data.md).
"""
from __future__ import annotations

from typing import Optional


def main(root: str, out_root: str, split: str = "test.ref", protocol: str = "lrs3", grid: bool = False,
         conditions: Optional[list[str]] = None, seed: int = 0, noise_files: Optional[list[str]] = None,
         occluder_dir: Optional[str] = None, occluder_size: Optional[int] = None, workers: int = 0) -> int:
    """Write corrupted copies of a processed test split.

    Args:
        root: processed corpus root holding the clean test split.
        out_root: output directory; one sub-directory per condition.
        split: split list relative to ``root`` (or absolute).
        protocol: ``lrs2`` (SNR 0..15 dB, 30 px occluders) or ``lrs3`` (SNR -5..15 dB, 42 px occluders).
        grid: also write every (SNR x visual corruption) pair.
        conditions: explicit condition names instead of the protocol (``babble_snr0__clean``,
            ``clean__occlusion_noise``, ``babble_snr5__occlusion``).
        seed: global seed; every draw is seeded from (seed, utterance id, condition).
        noise_files: noise wav/npy files (default ``<root>/noise/babble.wav``).
        occluder_dir: ``coco_object`` directory with ``object_image_sr/`` and ``object_mask_x4/``
            (default ``<root>/occlusion_patch``).
        occluder_size: occluder side in pixels (default from the protocol).
        workers: worker processes (0 = in-process).
    Returns 0, or 1 if any utterance failed (listed in ``<out_root>/failures.log``).
    """
    from avsr_lightning.data.corrupted_testset import build_corrupted_testset

    report = build_corrupted_testset(root, out_root, split, conditions=conditions, protocol=protocol, grid=grid,
                                     seed=seed, noise_files=noise_files, occluder_dir=occluder_dir,
                                     occluder_size=occluder_size, workers=workers)
    return 1 if report.failed else 0


if __name__ == "__main__":
    from jsonargparse import CLI

    raise SystemExit(CLI(main, as_positional=False))
