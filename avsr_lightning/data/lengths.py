"""Video frame counts for length bucketing, read from the mp4 headers once and cached per corpus root.

The cache (``<root>/frame_counts.tsv``: ``id<TAB>frames<TAB>bytes<TAB>mtime_ns``) is rewritten atomically and
an entry is trusted only while the file's size and mtime are unchanged; a read-only root just means the
counts are recomputed per run (with a warning).
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


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _probe(root: Path, uid: str, cache: dict[str, tuple[int, int, int]]) -> tuple[str, tuple[int, int, int] | None,
                                                                                   str | None]:
    path = media_paths(root, uid)["video"]
    stamp = _stamp(path)
    if stamp is None:
        return uid, None, f"{path}: video file is missing"
    cached = cache.get(uid)
    if cached is not None and cached[1:] == stamp:
        return uid, cached, None
    try:
        n = count_frames(path)
    except Exception as err:  # noqa: BLE001 - any decoder failure is a bad file, reported by the caller
        return uid, None, f"{path}: video cannot be opened ({type(err).__name__}: {err})"
    if n <= 0:
        return uid, None, f"{path}: video has zero frames"
    return uid, (n, *stamp), None


def _read_cache(path: Path) -> dict[str, tuple[int, int, int]]:
    counts: dict[str, tuple[int, int, int]] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split("\t")
            if len(parts) == 4 and all(p.isdigit() for p in parts[1:]):
                counts[parts[0]] = (int(parts[1]), int(parts[2]), int(parts[3]))
    return counts


def frame_counts(root: str | os.PathLike, utterances: Sequence[Utterance], num_threads: int = 8,
                 cache_dir: str | os.PathLike | None = None) -> tuple[list[int | None], dict[str, str]]:
    """(frames per utterance or None, {id: reason} for the ones that cannot be counted)."""
    root = Path(root)
    cache_path = Path(cache_dir or root) / CACHE_NAME
    cache = _read_cache(cache_path)
    todo = [u.id for u in utterances if u.num_frames is None]
    errors: dict[str, str] = {}
    changed = False
    if todo:
        with ThreadPoolExecutor(max_workers=max(1, num_threads)) as pool:
            for uid, entry, err in pool.map(lambda u: _probe(root, u, cache), todo):
                if entry is None:
                    errors[uid] = err or "unknown error"
                    changed |= cache.pop(uid, None) is not None
                elif cache.get(uid) != entry:
                    cache[uid] = entry
                    changed = True
        if changed:
            try:
                write_text_atomic(cache_path, "".join(f"{k}\t{v[0]}\t{v[1]}\t{v[2]}\n" for k, v in sorted(cache.items())))
            except OSError as err:
                warnings.warn(f"cannot write frame-count cache {cache_path} ({err}); counts are recomputed next run",
                              stacklevel=2)
    lengths = [u.num_frames if u.num_frames is not None else
               (cache[u.id][0] if u.id in cache and u.id not in errors else None) for u in utterances]
    return lengths, errors
