"""Generate the synthetic audio-visual corpus (processed-LRS layout) for the CPU demo and the tests.

    python -m data_prep.make_synthetic_corpus --out DIR --utterances 2000 --seed 0 [--workers 2]

Resumable: rerun the same command after an interrupt and it completes the corpus.
"""
from __future__ import annotations

import sys

from avsr_lightning.data.synthetic import SpeechSynthesisUnavailable, generate_corpus


def make_synthetic_corpus(out: str, utterances: int = 2000, seed: int = 0, workers: int = 0,
                          val_fraction: float = 0.1, test_fraction: float = 0.1) -> str:
    """Write (or complete) the corpus at ``out``.

    Args:
        out: output directory.
        utterances: total utterances (train + val + test).
        seed: everything follows from it; the same seed gives byte-identical audio.
        workers: parallel rendering processes (0 = in this process).
        val_fraction: share of utterances in val (training speakers, held-out sentences).
        test_fraction: share in test (held-out speakers, held-out sentences).
    """
    root = generate_corpus(out, utterances=utterances, seed=seed, workers=workers,
                           val_fraction=val_fraction, test_fraction=test_fraction)
    print(f"synthetic corpus ready at {root}")
    return str(root)


def main(argv: list[str] | None = None) -> int:
    from jsonargparse import CLI

    try:
        CLI(make_synthetic_corpus, args=argv, as_positional=False)
    except SpeechSynthesisUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
