"""Synthetic corpus generator throughput, stage by stage (JSON on stdout).

For ``--utterances`` planned utterances, times each stage of ``render_utterance`` side by side in this one
process: eSpeak NG synthesis (forked per utterance for determinism, and in-process for comparison),
viseme trajectory, lip rendering, H.264 encoding, and the whole utterance with its four files. Reported
per utterance by wall clock and by this process's CPU time (the machine may be shared).

    python benchmarks/synthetic_generation.py [--utterances 20]
"""
from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from avsr_lightning.data.synthetic import corpus, lips, speakers, speech, visemes
from avsr_lightning.data.synthetic.writers import write_mp4


def _timed(fn, items) -> dict[str, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for item in items:
        fn(item)
    n = max(len(items), 1)
    return {"wall_ms": 1000 * (time.perf_counter() - wall) / n, "cpu_ms": 1000 * (time.process_time() - cpu) / n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=20)
    args = parser.parse_args()
    plan = corpus.plan_corpus(args.utterances, seed=0, val_fraction=0.0, test_fraction=0.0)
    cast = speakers.speakers(0)
    synth = speech.Synthesizer.shared()
    said = {u.index: synth.synthesize(u.text, cast[u.speaker_index].voice, cast[u.speaker_index].rate)
            for u in plan}
    frames_of = {i: math.ceil((s.duration + 0.3) / 0.04) for i, s in said.items()}
    trajectories = {u.index: visemes.mouth_trajectory(said[u.index].phones, 0.2, frames_of[u.index]) for u in plan}
    rendered = {u.index: lips.render_clip(trajectories[u.index], cast[u.speaker_index], np.random.default_rng(0))[0]
                for u in plan}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        stages = {
            "synthesis_forked": _timed(lambda u: synth.synthesize(u.text, cast[u.speaker_index].voice,
                                                                 cast[u.speaker_index].rate), plan),
            "synthesis_in_process": _timed(lambda u: synth._synthesize_here(u.text, cast[u.speaker_index].voice,
                                                                           cast[u.speaker_index].rate, 50, 50), plan),
            "visemes": _timed(lambda u: visemes.mouth_trajectory(said[u.index].phones, 0.2, frames_of[u.index]), plan),
            "render_lips": _timed(lambda u: lips.render_clip(trajectories[u.index], cast[u.speaker_index],
                                                             np.random.default_rng(0)), plan),
            "encode_h264": _timed(lambda u: write_mp4(out / f"{u.index}.mp4", rendered[u.index]), plan),
            "utterance_total": _timed(lambda u: corpus.render_utterance(out / "corpus", u, 0), plan),
        }
    total = stages["utterance_total"]
    print(json.dumps({
        "utterances": len(plan),
        "mean_frames": float(np.mean(list(frames_of.values()))),
        "stages_per_utterance": stages,
        "utterances_per_s_wall": 1000.0 / total["wall_ms"],
        "utterances_per_s_cpu": 1000.0 / max(total["cpu_ms"], 1e-9),
    }, indent=2))


if __name__ == "__main__":
    main()
