"""Split lists of the processed LRS layout and the :class:`Utterance` records built from them.

Accepted list formats (examples in ``shared/reference/data``):

- ``0_600.txt``-style: one relative path per line (``pretrain/00j9bKdiOjk/00001``);
- ``val.txt``: ``<spk>/<utt>`` without the split directory (the reference adds ``main/`` or ``trainval/``),
  possibly with CR-only line endings (LRS3);
- ``test.ref``: ``<relpath> <TRANSCRIPT>``.

Only the first token is the id; the rest of the line, if any, is the reference transcript.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from avsr_lightning.data.errors import DataError

#: Split directories of the processed layout, in the order tried when a list omits them.
KNOWN_SPLIT_DIRS: tuple[str, ...] = ("main", "trainval", "test", "pretrain")


@dataclass(frozen=True)
class Utterance:
    """One row of a split: ``id`` is the relative path without extension (``trainval/spk/50001``)."""

    id: str
    text: str | None = None  # transcript from a test.ref; None = read Text/<id>.txt
    num_frames: int | None = None  # video frames, when known (for bucketing)


def parse_split_lines(text: str) -> list[tuple[str, str | None]]:
    """``(id, transcript or None)`` per non-empty line; LF, CRLF and CR-only endings all work."""
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(maxsplit=1)
        uid = parts[0].strip("/")
        for ext in (".mp4", ".wav", ".txt"):
            if uid.endswith(ext):
                uid = uid[: -len(ext)]
        rows.append((uid, parts[1].strip() if len(parts) > 1 else None))
    return rows


def read_split(path: str | os.PathLike, prefix: str | None = None) -> list[Utterance]:
    """Read a split list. ``prefix`` (e.g. ``"trainval"``) is prepended to ids of the form ``spk/utt``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split list {path} does not exist; give an existing file (absolute or relative to root)")
    rows = parse_split_lines(path.read_bytes().decode("utf-8", errors="replace"))
    utterances = []
    for uid, text in rows:
        if prefix and uid.count("/") == 1:
            uid = f"{prefix}/{uid}"
        utterances.append(Utterance(uid, text))
    return utterances


def infer_prefix(root: str | os.PathLike, ids: Sequence[str], candidates: Iterable[str] = KNOWN_SPLIT_DIRS,
                 probe: int = 20) -> str | None:
    """The split directory under ``<root>/Video`` that holds bare ``spk/utt`` ids, or None if ids are full.

    Probes the first ``probe`` bare ids against each candidate and picks the one with most hits.
    """
    bare = [uid for uid in ids if uid.count("/") == 1][:probe]
    if not bare:
        return None
    root = Path(root)
    best, best_hits = None, 0
    for cand in candidates:
        hits = sum((root / "Video" / cand / f"{uid}.mp4").is_file() for uid in bare)
        if hits > best_hits:
            best, best_hits = cand, hits
    return best


def load_split(root: str | os.PathLike, split: str | os.PathLike, prefix: str | None = None) -> list[Utterance]:
    """Resolve ``split`` (relative to ``root`` or absolute) and read it; bare ids get ``prefix`` or an inferred one."""
    path = Path(split)
    if not path.is_absolute():
        path = Path(root) / path
    utterances = read_split(path)
    if prefix is None:
        prefix = infer_prefix(root, [u.id for u in utterances])
    if prefix:
        utterances = [Utterance(f"{prefix}/{u.id}", u.text) if u.id.count("/") == 1 else u for u in utterances]
    return drop_duplicates(utterances, path)


def drop_duplicates(utterances: Sequence[Utterance], source: str | os.PathLike) -> list[Utterance]:
    """Keep the first row of each id; one warning with the count, naming ids whose transcripts differ.

    Why keep-first: a split list with a repeated id is usually a concatenation mistake, and training on an
    utterance twice per epoch (or scoring it twice) would silently change the results (docs/data.md).
    """
    first: dict[str, Utterance] = {}
    duplicates, conflicting = 0, []
    for u in utterances:
        kept = first.get(u.id)
        if kept is None:
            first[u.id] = u
            continue
        duplicates += 1
        if u.text is not None and kept.text is not None and u.text != kept.text:
            conflicting.append(f"{u.id} ({kept.text!r} kept, {u.text!r} dropped)")
    if duplicates:
        message = f"{source}: {duplicates} duplicate id row(s) dropped (the first row of each id is kept)"
        if conflicting:
            message += f"; transcripts differ for {len(conflicting)}: " + ", ".join(conflicting[:5])
        warnings.warn(message, stacklevel=3)
    return list(first.values())


def media_paths(root: str | os.PathLike, uid: str) -> dict[str, Path]:
    """Paths of one utterance's files in the processed layout."""
    root = Path(root)
    return {
        "video": root / "Video" / f"{uid}.mp4",
        "audio": root / "Audio" / f"{uid}.wav",
        "text": root / "Text" / f"{uid}.txt",
        "landmarks": root / "Transformed_LM" / f"{uid}.npz",
        "landmarks_pkl": root / "Transformed_LM" / f"{uid}.pkl",
    }


def read_transcript(path: str | os.PathLike) -> str:
    """The transcript of an LRS ``.txt`` file: the first line after ``Text:`` (or the whole first line)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: transcript file is missing")
    try:
        first = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as err:  # unreadable (permissions, I/O error): a bad file, not a bug
        raise DataError(path, f"transcript cannot be read ({err})") from err
    line = first[0] if first else ""
    if line.startswith("Text:"):
        line = line[len("Text:"):]
    return line.strip()
