"""Video frame counts for length bucketing, read from the mp4 headers once and cached per corpus root.

The cache (``<root>/frame_counts.tsv``: ``id<TAB>frames``) is rewritten atomically; a read-only root just
means the counts are recomputed per run (with a warning).
"""
from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

from avsr_lightning.data.atomic import write_text_atomic
from avsr_lightning.data.manifest import Utterance, media_paths

CACHE_NAME = "frame_counts.tsv"


def count_frames(path: str | os.PathLike) -> int:
    """Frames of a video from its container header (decoding only if the header has no count)."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError("file has no video stream")
        stream = container.streams.video[0]
        if stream.frames:
            return int(stream.frames)
        return sum(1 for _ in container.decode(stream))


def _probe(root: Path, uid: str) -> tuple[str, int | None, str | None]:
    path = media_paths(root, uid)["video"]
    if not path.is_file():
        return uid, None, f"{path}: video file is missing"
    try:
        n = count_frames(path)
    except Exception as err:  # noqa: BLE001 - any decoder failure is a bad file, reported by the caller
        return uid, None, f"{path}: video cannot be opened ({type(err).__name__}: {err})"
    if n <= 0:
        return uid, None, f"{path}: video has zero frames"
    return uid, n, None


def _read_cache(path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            uid, _, n = line.partition("\t")
            if n.strip().isdigit():
                counts[uid] = int(n)
    return counts


def frame_counts(root: str | os.PathLike, utterances: Sequence[Utterance], num_threads: int = 8,
                 cache_dir: str | os.PathLike | None = None) -> tuple[list[int | None], dict[str, str]]:
    """(frames per utterance or None, {id: reason} for the ones that cannot be counted)."""
    root = Path(root)
    cache_path = Path(cache_dir or root) / CACHE_NAME
    cache = _read_cache(cache_path)
    todo = [u.id for u in utterances if u.num_frames is None and u.id not in cache]
    errors: dict[str, str] = {}
    if todo:
        with ThreadPoolExecutor(max_workers=max(1, num_threads)) as pool:
            for uid, n, err in pool.map(lambda u: _probe(root, u), todo):
                if n is None:
                    errors[uid] = err or "unknown error"
                else:
                    cache[uid] = n
        new = [u for u in todo if u in cache]
        if new:
            try:
                write_text_atomic(cache_path, "".join(f"{k}\t{v}\n" for k, v in sorted(cache.items())))
            except OSError as err:
                warnings.warn(f"cannot write frame-count cache {cache_path} ({err}); counts are recomputed next run",
                              stacklevel=2)
    lengths = [u.num_frames if u.num_frames is not None else cache.get(u.id) for u in utterances]
    return lengths, errors
