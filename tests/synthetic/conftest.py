"""A tiny synthetic corpus shared by the tests of this folder (generated once per session)."""
from __future__ import annotations

from pathlib import Path

import pytest

#: Small enough to generate in a few seconds, large enough for every split (4 train, 1 val, 1 test).
TINY = dict(utterances=6, seed=0, noise_seconds=2.0, progress=False)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    from avsr_lightning.data.synthetic import generate_corpus

    return generate_corpus(tmp_path_factory.mktemp("synthetic") / "corpus", **TINY)
