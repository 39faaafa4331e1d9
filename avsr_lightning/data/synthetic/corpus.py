"""Generate the synthetic audio-visual corpus in the processed-LRS layout (docs/internals.md).

``generate_corpus(out_dir, utterances, seed)`` plans every utterance from the seed alone (split, speaker,
sentence), then renders each one with its own random generator, so the output does not depend on the
order of work, on the number of workers, or on whether the run was interrupted and resumed: utterances
whose four files already exist are skipped, every file is written atomically, and ``corpus.json`` is
written last as the mark of a finished corpus.

Splits: ``train`` (training speakers, training sentences) and ``val`` (training speakers, held-out
sentences) live under ``trainval/``; ``test`` (held-out speakers, held-out sentences) under ``test/``.

Besides the utterances: training noise ``noise/*.wav``, unheard evaluation noise ``noise/eval/*.wav`` (other
babble talkers and sentences, other realisations; ``noise/manifest.json`` records them), an occluder bank
``occlusion_patch/`` (coco_object layout) and the lip crops' pixel mean/std in ``corpus.json``.
"""
from __future__ import annotations

import json
import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Iterable

import numpy as np

from avsr_lightning.data.synthetic import noise as noise_lib
from avsr_lightning.data.synthetic.lips import render_clip
from avsr_lightning.data.synthetic.occluders import write_occluders
from avsr_lightning.data.synthetic.sentences import held_out_sentences, training_sentences
from avsr_lightning.data.synthetic.speakers import Speaker, speakers
from avsr_lightning.data.synthetic.speech import SAMPLE_RATE, check_available, synthesize
from avsr_lightning.data.synthetic.visemes import mouth_trajectory
from avsr_lightning.data.synthetic.writers import PARTIAL_SUFFIX, write_mp4, write_npz, write_text, write_wav

#: Bump when the generator's output changes; part of the data module's cache key.
VERSION = "6"
FPS = 25
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
NOISE_SECONDS = 30.0
#: training videos decoded to measure the corpus' pixel statistics (evenly spaced over the train split)
STATS_VIDEOS = 64
SPLIT_DIRS = {"train": "trainval", "val": "trainval", "test": "test"}
#: utterances per pool task: few enough that the workers finish together (a task is ~0.5 s of CPU)
UTTERANCES_PER_TASK = 4


@dataclass(frozen=True)
class PlannedUtterance:
    """What one utterance will be: ``relpath`` is ``<split dir>/<speaker>/<utt>`` (no extension)."""

    index: int
    split: str
    speaker_index: int
    text: str

    @property
    def relpath(self) -> str:
        return f"{SPLIT_DIRS[self.split]}/spk{self.speaker_index:02d}/{self.index:05d}"


def split_counts(utterances: int, val_fraction: float, test_fraction: float) -> dict[str, int]:
    """Utterances per split; val and test get at least one each once there are three utterances."""
    if utterances < 1:
        raise ValueError(f"utterances should be >= 1, got {utterances}")
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"val_fraction + test_fraction should be in [0, 1), got {val_fraction} + {test_fraction}")
    floor = 1 if utterances >= 3 else 0
    val = max(floor, round(utterances * val_fraction)) if val_fraction > 0 else 0
    test = max(floor, round(utterances * test_fraction)) if test_fraction > 0 else 0
    return {"train": utterances - val - test, "val": val, "test": test}


def plan_corpus(utterances: int, seed: int, val_fraction: float = 0.1, test_fraction: float = 0.1
                ) -> list[PlannedUtterance]:
    """The utterance list, a pure function of its arguments."""
    rng = np.random.default_rng([seed, 3])
    all_speakers = speakers(seed)
    train_spk = [i for i, s in enumerate(all_speakers) if not s.held_out]
    test_spk = [i for i, s in enumerate(all_speakers) if s.held_out]
    pools = {"train": (train_spk, training_sentences()), "val": (train_spk, held_out_sentences()),
             "test": (test_spk, held_out_sentences())}
    plan, index = [], 0
    for split, count in split_counts(utterances, val_fraction, test_fraction).items():
        spk_pool, sentences = pools[split]
        for k in range(count):
            speaker_index = spk_pool[k % len(spk_pool)]
            plan.append(PlannedUtterance(index, split, speaker_index, sentences[int(rng.integers(len(sentences)))]))
            index += 1
    return plan


def _paths(root: Path, relpath: str) -> dict[str, Path]:
    return {"text": root / "Text" / f"{relpath}.txt", "audio": root / "Audio" / f"{relpath}.wav",
            "landmarks": root / "Transformed_LM" / f"{relpath}.npz", "video": root / "Video" / f"{relpath}.mp4"}


def is_rendered(root: Path, utterance: PlannedUtterance) -> bool:
    return all(p.exists() for p in _paths(root, utterance.relpath).values())


def render_utterance(root: Path, utterance: PlannedUtterance, seed: int) -> None:
    """Synthesise, align and render one utterance and write its four files (each atomically)."""
    speaker: Speaker = speakers(seed)[utterance.speaker_index]
    rng = np.random.default_rng([seed, 7, utterance.index])
    speech = synthesize(utterance.text, speaker.voice, rate=speaker.rate, pitch=speaker.pitch,
                        pitch_range=speaker.pitch_range)
    lead = int(rng.uniform(0.12, 0.3) * SAMPLE_RATE)
    trail = int(rng.uniform(0.05, 0.2) * SAMPLE_RATE)
    num_frames = math.ceil((lead + speech.audio.shape[0] + trail) / SAMPLES_PER_FRAME)
    audio = np.zeros(num_frames * SAMPLES_PER_FRAME, np.float32)
    peak = max(float(np.abs(speech.audio).max()), 1e-6)
    voiced = speech.audio * (speaker.loudness * rng.uniform(0.85, 1.0) / peak)
    voiced = voiced[: audio.shape[0] - lead]
    audio[lead: lead + voiced.shape[0]] = voiced
    audio += rng.normal(0.0, 3e-4, audio.shape[0]).astype(np.float32)  # faint room noise: no digital silence
    trajectory = mouth_trajectory(speech.phones, lead / SAMPLE_RATE, num_frames)
    frames, landmarks, yx_min = render_clip(trajectory, speaker, rng)
    paths = _paths(root, utterance.relpath)
    write_text(paths["text"], f"Text:  {utterance.text}\n")
    write_wav(paths["audio"], audio, SAMPLE_RATE)
    write_npz(paths["landmarks"], landmarks=landmarks, yx_min=yx_min)
    write_mp4(paths["video"], frames, fps=FPS)


def _render_job(args: tuple[str, PlannedUtterance, int]) -> str:
    root, utterance, seed = args
    render_utterance(Path(root), utterance, seed)
    return utterance.relpath


def noise_relpath(noise_set: str, kind: str) -> str:
    """``noise/<kind>.wav`` (training) or ``noise/eval/<kind>.wav`` (val/test)."""
    return f"noise/{kind}.wav" if noise_set == "train" else f"noise/{noise_set}/{kind}.wav"


def _finished_noise_manifest(root: Path, seconds: float) -> dict | None:
    """``noise/manifest.json`` if it is finished, for this noise length, with all its files present."""
    try:
        manifest = json.loads((root / "noise" / "manifest.json").read_text())
        if all((root / rel).exists() for rel in manifest["files"]) and manifest.get("seconds") == seconds:
            return manifest
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _noise_jobs(root: Path, seed: int, seconds: float) -> list[tuple[str, int, str, int, int, str, float]]:
    """One job per noise file, in manifest order: (root, seed, set, generator stream, kind index, kind, seconds)."""
    return [(str(root), seed, noise_set, stream, k, kind, seconds)
            for noise_set, stream in (("train", 13), ("eval", 17)) for k, kind in enumerate(noise_lib.NOISE_KINDS)]


def _noise_job(job: tuple[str, int, str, int, int, str, float]) -> tuple[str, dict]:
    """Make and write one noise file (its own generator ``[seed, stream, k]``); returns its manifest entry."""
    root, seed, noise_set, stream, k, kind, seconds = job
    rel = noise_relpath(noise_set, kind)
    talkers: list = []
    audio = noise_lib.make_noise(kind, seconds, np.random.default_rng([seed, stream, k]), noise_set, talkers)
    write_wav(Path(root) / rel, audio, SAMPLE_RATE)
    return rel, {"set": noise_set, "kind": kind, "generator": [seed, stream, k],
                 **({"talkers": talkers} if kind == "babble" else {})}


def _write_noise_manifest(root: Path, seconds: float, entries: Iterable[tuple[str, dict]]) -> dict:
    manifest = {"seconds": seconds, "files": dict(entries)}
    write_text(root / "noise" / "manifest.json", json.dumps(manifest, indent=1, allow_nan=False) + "\n")
    return manifest


def write_noises(root: Path, seed: int, seconds: float = NOISE_SECONDS) -> dict:
    """Training and evaluation noises (each kind from its own generator: ``[seed, 13, k]`` for training,
    ``[seed, 17, k]`` for eval) and ``noise/manifest.json``: per file, its set, kind and, for babble, the
    talkers (voice, rate, pitch, sentences read). A finished manifest with all files present is reused.
    (:func:`generate_corpus` with workers runs the same jobs in its pool, beside the utterances.)"""
    manifest = _finished_noise_manifest(root, seconds)
    if manifest is not None:
        return manifest
    return _write_noise_manifest(root, seconds, [_noise_job(job) for job in _noise_jobs(root, seed, seconds)])


def corpus_pixel_statistics(root: Path, plan: list[PlannedUtterance], limit: int = STATS_VIDEOS) -> dict[str, float]:
    """Mean and std of the decoded lip crops / 255 over up to ``limit`` evenly spaced training videos."""
    from avsr_lightning.data.media import read_video
    from avsr_lightning.data.transforms.stats import pixel_stats

    train = [u for u in plan if u.split == "train"] or list(plan)
    step = max(1, len(train) // limit)
    chosen = train[::step][:limit]
    return pixel_stats(read_video(_paths(root, u.relpath)["video"]) for u in chosen)


def write_split_files(root: Path, plan: Iterable[PlannedUtterance]) -> None:
    by_split: dict[str, list[PlannedUtterance]] = {"train": [], "val": [], "test": []}
    for utterance in plan:
        by_split[utterance.split].append(utterance)
    write_text(root / "train.txt", "".join(f"{u.relpath}\n" for u in by_split["train"]))
    write_text(root / "val.txt", "".join(f"{u.relpath}\n" for u in by_split["val"]))
    write_text(root / "test.ref", "".join(f"{u.relpath} {u.text}\n" for u in by_split["test"]))


def remove_partial_files(root: Path) -> int:
    """Delete temporary files left by an interrupted run; returns how many."""
    leftovers = [p for p in root.rglob(f"*{PARTIAL_SUFFIX}") if p.is_file()]
    for path in leftovers:
        path.unlink()
    return len(leftovers)


def corpus_metadata(root: Path) -> dict | None:
    """Contents of ``corpus.json`` if the corpus at ``root`` is finished, else None."""
    try:
        return json.loads((Path(root) / "corpus.json").read_text())
    except (OSError, ValueError):
        return None


def generate_corpus(out_dir: str | os.PathLike, utterances: int = 2000, seed: int = 0, workers: int = 0,
                    val_fraction: float = 0.1, test_fraction: float = 0.1, progress: bool = True,
                    noise_seconds: float = NOISE_SECONDS) -> Path:
    """Write (or complete) the synthetic corpus at ``out_dir`` and return its path.

    Args:
        utterances: total number of utterances over train, val and test.
        seed: everything (appearance, sentences, timing, noise) follows from it.
        workers: processes rendering in parallel (0 = in this process). The output does not depend on it.
        val_fraction, test_fraction: share of utterances in val and test.
        progress: show a tqdm progress bar.
        noise_seconds: length of each noise recording in ``noise/``.
    """
    check_available()
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    done = corpus_metadata(root)
    requested = {"version": VERSION, "seed": seed, "utterances": utterances,
                 "val_fraction": val_fraction, "test_fraction": test_fraction}
    # noise length is not part of a corpus' identity: a finished corpus is reused whatever its noise length
    if done is not None and all(done.get(k) == v for k, v in requested.items()):
        return root
    if done is not None:
        raise ValueError(f"{root} already holds a different synthetic corpus ({ {k: done.get(k) for k in requested} }); "
                         f"choose another out_dir or delete it")
    remove_partial_files(root)
    plan = plan_corpus(utterances, seed, val_fraction, test_fraction)
    todo = [u for u in plan if not is_rendered(root, u)]
    from tqdm.auto import tqdm

    bar = tqdm(total=len(plan), initial=len(plan) - len(todo), desc="synthetic corpus", unit="utt",
               disable=not progress)
    if workers > 0 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            # the noises (babble: a few seconds of synthesis each) first, so they run beside the utterances
            # instead of after them on one core; longest first (babble) for the balance at the end
            noise = None
            if _finished_noise_manifest(root, noise_seconds) is None:
                jobs = _noise_jobs(root, seed, noise_seconds)
                order = sorted(range(len(jobs)), key=lambda i: jobs[i][5] != "babble")
                noise = {i: pool.submit(_noise_job, jobs[i]) for i in order}
            for _ in pool.map(_render_job, [(str(root), u, seed) for u in todo], chunksize=UTTERANCES_PER_TASK):
                bar.update(1)
            if noise is not None:
                _write_noise_manifest(root, noise_seconds, [noise[i].result() for i in range(len(noise))])
    else:
        for utterance in todo:
            render_utterance(root, utterance, seed)
            bar.update(1)
    bar.close()
    write_noises(root, seed, noise_seconds)  # a no-op when the pool wrote them
    occluders = write_occluders(root / "occlusion_patch", seed)
    stats = corpus_pixel_statistics(root, plan)
    write_split_files(root, plan)
    counts = {split: sum(u.split == split for u in plan) for split in ("train", "val", "test")}
    metadata = {**requested, "noise_seconds": noise_seconds, "counts": counts, "sample_rate": SAMPLE_RATE, "fps": FPS,
                "speakers": {s.speaker_id: {"voice": s.voice, "rate": s.rate, "pitch": s.pitch,
                                            "held_out": s.held_out} for s in speakers(seed)},
                "noise": [noise_relpath("train", k) for k in noise_lib.NOISE_KINDS],
                "eval_noise": [noise_relpath("eval", k) for k in noise_lib.NOISE_KINDS],
                "noise_manifest": "noise/manifest.json",
                "occluders": {"dir": "occlusion_patch", "count": len(occluders)},
                **stats}
    write_text(root / "corpus.json", json.dumps(metadata, indent=2, allow_nan=False) + "\n")
    return root
