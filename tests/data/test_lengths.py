"""Frame-count cache: reused while files are unchanged, recomputed when a file changes."""
from __future__ import annotations

import numpy as np

from avsr_lightning.data.lengths import CACHE_NAME, frame_counts
from avsr_lightning.data.manifest import Utterance


def test_cache_is_invalidated_by_file_changes(tmp_path, gen):
    rng = np.random.default_rng(0)
    gen.write_utterance(tmp_path, "a/s/1", 12, rng)
    gen.write_utterance(tmp_path, "a/s/2", 17, rng)
    utts = [Utterance("a/s/1"), Utterance("a/s/2"), Utterance("a/s/3")]
    lengths, errors = frame_counts(tmp_path, utts)
    assert lengths == [12, 17, None] and "missing" in errors["a/s/3"]
    assert (tmp_path / CACHE_NAME).read_text().count("\n") == 2
    (tmp_path / "Video/a/s/2.mp4").write_bytes(b"broken")
    lengths, errors = frame_counts(tmp_path, utts)
    assert lengths == [12, None, None] and "cannot be opened" in errors["a/s/2"]
    gen.write_utterance(tmp_path, "a/s/2", 9, rng)
    assert frame_counts(tmp_path, utts)[0] == [12, 9, None]
