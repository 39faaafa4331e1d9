"""``DataError``: the one base class of "this file is bad" errors in the data layer.

Why a type of its own: the dataset turns data problems into counted, named skips (docs/data.md, "Bad input"),
but a bug in transform code must raise. Catching ``ValueError``/``RuntimeError`` cannot tell the two apart;
catching ``DataError`` (and ``FileNotFoundError``) can. Readers convert decoder failures of corrupt files
(PyAV, soundfile, numpy's npz reader, the restricted pickle reader) into a subclass of this error.
"""
from __future__ import annotations

import os


class DataError(ValueError):
    """A data file is missing, unreadable, truncated or inconsistent with its siblings.

    ``DataError(path, reason)``, or ``DataError("<path>: <reason>")`` (split at the first ``": "``).
    ``path`` names the offending file and ``reason`` says what is wrong in a few user-facing words.
    Subclasses ``ValueError`` so callers that caught the older ``ValueError``-based errors still work.
    """

    def __init__(self, path: str | os.PathLike, reason: str | None = None) -> None:
        if reason is None:
            path, _, reason = str(path).partition(": ")
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason
