"""The one durable-write helper of the project (docs/internals.md, "Durable writes").

Every file the project writes under a final name - checkpoints, corpora, landmarks, renders, reports, LM
and reference exports, sweep results, predictions - goes through :func:`durable_path`:

1. a temporary file in the *same* directory (so the rename never crosses a file system) with a unique
   name (``mkstemp``: two processes writing the same target never share a temp file) that keeps the
   real suffix (PyAV and soundfile choose the container format from it);
2. the caller writes it; the helper flushes it to disk (``fsync`` of the file);
3. ``os.replace`` onto the final name (atomic on POSIX);
4. ``fsync`` of the directory, so the rename itself survives a power loss.

On any failure (including ``KeyboardInterrupt``) the temporary file is removed and the final name is
untouched: a reader sees either the old complete file or the new complete file, never a partial one.

This module imports only the standard library (``torch`` lazily in :func:`torch_save`), so every layer
may use it (tests/test_imports.py).
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

#: test hook: called with the open temp path after the payload is written and before it is fsynced and
#: renamed. The kill test of the checkpoint plugin sets it to block there (tests/training/test_kill.py).
_before_commit: Callable[[Path], None] | None = None


def _fsync_file(path: Path) -> None:
    if path.is_symlink():  # a symlink being committed (e.g. a corpus link): nothing of ours to flush
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


def _match_mode(tmp: Path, target: Path) -> None:
    """``mkstemp`` creates 0600 files: give the result the target's mode, else the usual umask default."""
    if tmp.is_symlink():
        return
    try:
        mode = target.stat().st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~_UMASK
    os.chmod(tmp, mode)


def _fsync_dir(directory: Path) -> None:
    """fsync a directory so a rename in it is durable; a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened; rename durability is the OS's business
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems (e.g. certain network mounts) refuse fsync on a directory
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def durable_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a unique temporary path beside ``path``; on success fsync it, rename it onto ``path``, fsync the dir.

    ``suffix`` (default: the target's own suffix, e.g. ``.mp4``) ends the temporary name, because some
    writers pick the format from the extension. The parent directory is created if needed. On any
    exception the temporary file is removed and the exception propagates.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=(suffix if suffix is not None else path.suffix),
                               dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if _before_commit is not None:
            _before_commit(tmp_path)
        _match_mode(tmp_path, path)
        _fsync_file(tmp_path)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise
    _fsync_dir(path.parent)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Durably write ``data`` to ``path``."""
    with durable_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Durably write ``text`` to ``path``."""
    write_bytes(path, text.encode(encoding))


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2, allow_nan: bool = False,
               **kwargs: Any) -> None:
    """Durably write ``obj`` as JSON (strict by default: NaN/inf raise, since strict parsers reject them)."""
    text = json.dumps(obj, indent=indent, allow_nan=allow_nan, **kwargs)
    write_text(path, text + "\n")


def torch_save(obj: Any, path: str | os.PathLike) -> None:
    """Durably ``torch.save`` ``obj`` to ``path``."""
    import torch

    with durable_path(path) as tmp:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
