"""Raw LRS2/LRS3 (videos + 68-point landmark files + mean face) → the processed layout.

    python data_prep/preprocess_lrs.py --raw_root /data/LRS3 --landmark_root /data/LRS3_landmarks \
        --mean_face ../shared/reference/data/20words_mean_face.npy --out_root /data/LRS3_processed --workers 8

Resumable (finished clips are skipped), atomic, with a failure log; see docs/data.md.
"""
from __future__ import annotations

from typing import Optional


def main(raw_root: str, out_root: str, mean_face: str, landmark_root: Optional[str] = None,
         splits: Optional[list[str]] = None, workers: int = 4, detector: Optional[str] = None,
         overwrite: bool = False, log_file: Optional[str] = None, limit: Optional[int] = None,
         convert_pickles: bool = False) -> int:
    """Preprocess a raw corpus.

    Args:
        raw_root: raw LRS tree with ``main|pretrain|trainval|test/<spk>/<utt>.{mp4,txt}``.
        out_root: processed corpus root to write (``Video/ Audio/ Text/ Transformed_LM/``).
        mean_face: (68, 2) ``.npy`` mean face in a 256x256 frame (``20words_mean_face.npy``).
        landmark_root: tree of per-clip ``.pkl``/``.npz`` landmarks (default: ``raw_root``).
        splits: split directories to process (default: all present).
        workers: worker processes (0 = in-process).
        detector: for clips without landmark files: a built-in tracker by name (``mediapipe``, ``haar`` or
            ``auto``; the ``[faces]`` extra, docs/transcribe.md) or ``package.module:factory``. The tracked
            points go through the same alignment and crop as released landmarks.
        overwrite: re-process clips whose outputs exist.
        log_file: failure log (default ``<out_root>/preprocess_failures.log``).
        limit: process only the first N clips (a dry run).
        convert_pickles: instead of preprocessing, convert ``Transformed_LM/**/*.pkl`` under ``out_root`` (an
            existing reference-processed corpus) to ``.npz`` with the restricted unpickler.
    Returns the process exit code: 0, or 1 if any clip failed.
    """
    if convert_pickles:
        from pathlib import Path

        from avsr_lightning.data.landmarks import convert_pickle_tree

        converted, errors = convert_pickle_tree(Path(out_root) / "Transformed_LM")
        print(f"converted {converted} landmark pickles; {len(errors)} failed")
        for err in errors:
            print(f"  {err}")
        return 1 if errors else 0
    from avsr_lightning.data.preprocess import preprocess_corpus

    if detector is not None and ":" not in detector:
        from avsr_lightning.faces.detector import clip_detector_spec

        detector = clip_detector_spec(detector, mean_face)

    report = preprocess_corpus(raw_root, out_root, mean_face, landmark_root=landmark_root, splits=splits,
                               workers=workers, detector=detector, overwrite=overwrite, log_file=log_file,
                               limit=limit)
    return 1 if report.failed else 0


if __name__ == "__main__":
    from jsonargparse import CLI

    raise SystemExit(CLI(main, as_positional=False))
