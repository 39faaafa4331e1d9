"""Data pipeline throughput and batching efficiency (issue 5). Prints JSON.

1. Utterances/s of ONE DataLoader worker (single process, 1 thread, as in a worker) for the full training
   pipeline on 3-s utterances: mp4 decode, visual corruption (occluders + noise/blur, reference
   probabilities), babble at a random SNR, random crop/flip/time mask/cutout, audio normalisation, collate.
   Also the same without corruption, to show what corruption costs. Target: >= 40 utt/s per worker.
2. Padding waste (padded frames / total frames) of FrameBudgetBatchSampler vs shuffled fixed-size batches on
   an LRS3-like length distribution (1-24 s, long-tailed). Target: <= 10 %.

    python benchmarks/data_throughput.py [--utterances 48] [--out results.json]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _make_corpus(root: Path, n: int, frames: int) -> list:
    import cv2

    from avsr_lightning.data.landmarks import Landmarks, write_landmarks
    from avsr_lightning.data.manifest import Utterance
    from avsr_lightning.data.media import write_audio, write_video

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:96, 0:96]
    utts = []
    for i in range(n):
        uid = f"trainval/spk{i % 4}/{50000 + i}"
        video = np.empty((frames, 96, 96), np.uint8)
        for t in range(frames):  # a textured face patch with a moving mouth: realistic H.264 bitrate
            base = 150 + 20 * np.sin(xx / 9.0 + i) * np.cos(yy / 11.0) + rng.normal(0, 2, (96, 96))
            opening = 3 + 6 * (0.5 + 0.5 * np.sin(t / 2.5 + i))
            base[((yy - 60) / opening) ** 2 + ((xx - 48) / 16) ** 2 <= 1] = 45
            video[t] = np.clip(base, 0, 255)
        write_video(root / "Video" / f"{uid}.mp4", video)
        t_audio = np.arange(frames * 640) / 16000
        write_audio(root / "Audio" / f"{uid}.wav", 0.2 * np.sin(2 * np.pi * 180 * t_audio) * (1 + np.sin(7 * t_audio)))
        (root / "Text" / f"{uid}.txt").parent.mkdir(parents=True, exist_ok=True)
        (root / "Text" / f"{uid}.txt").write_text("Text:  THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG\n")
        pts = np.zeros((frames, 68, 2), np.float32)
        pts[:, :, 0], pts[:, :, 1] = 81 + 48 + rng.normal(0, 8, 68), 110 + 60 + rng.normal(0, 5, 68)
        write_landmarks(root / "Transformed_LM" / f"{uid}.npz",
                        Landmarks(pts, np.tile(np.array([[110.0, 81.0]], np.float32), (frames, 1))))
        utts.append(Utterance(uid, None, frames))
    write_audio(root / "noise" / "babble.wav", rng.standard_normal(16000 * 20) * 0.1)
    occ = root / "occlusion_patch"
    (occ / "object_image_sr").mkdir(parents=True)
    (occ / "object_mask_x4").mkdir(parents=True)
    for k in range(8):  # coco_object-like sizes: ~200 px objects, x4 masks
        img = rng.integers(0, 255, (180, 200, 3), dtype=np.uint8)
        cv2.imwrite(str(occ / "object_image_sr" / f"o{k}.jpeg"), cv2.GaussianBlur(img, (9, 9), 3))
        mask = np.zeros((720, 800), np.uint8)
        cv2.ellipse(mask, (400, 360), (300, 250), 0, 0, 360, 255, -1)
        cv2.imwrite(str(occ / "object_mask_x4" / f"o{k}.png"), mask)
    return utts


def _throughput(dataset, n_items: int, batch: int = 4) -> tuple[float, float]:
    """(utterances per wall-clock second, utterances per CPU second of this process)."""
    from avsr_lightning.data.collate import Collator

    collate = Collator(dataset)
    for i in range(min(4, len(dataset))):  # warm-up (imports, noise/occluder loading)
        dataset[(i, 99)]
    start, cpu = time.perf_counter(), time.process_time()
    done = 0
    epoch = 0
    while done < n_items:
        for s in range(0, len(dataset), batch):
            collate([dataset[(i, epoch)] for i in range(s, min(s + batch, len(dataset)))])
            done += min(batch, len(dataset) - s)
        epoch += 1
    return done / (time.perf_counter() - start), done / (time.process_time() - cpu)


def throughput(n: int, frames: int) -> dict:
    import cv2
    import torch

    from avsr_lightning.data.corruption.acoustic import NoiseMixer
    from avsr_lightning.data.corruption.occluders import OccluderBank
    from avsr_lightning.data.corruption.visual import VisualCorruption
    from avsr_lightning.data.dataset import AVDataset
    from avsr_lightning.data.media import read_video
    from avsr_lightning.data.transforms import VideoTransform

    torch.set_num_threads(1)  # what a DataLoader worker gets
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        utts = _make_corpus(root, n, frames)
        mixer = NoiseMixer([root / "noise" / "babble.wav"], snrs=[-5, 0, 5, 10, 15], partial="reference_train")
        visual = VisualCorruption(OccluderBank(root / "occlusion_patch"))
        full = AVDataset(root, utts, video_transform=VideoTransform(train=True), train=True, noise=mixer, visual=visual)
        plain = AVDataset(root, utts, video_transform=VideoTransform(train=True), train=True)
        start, cpu = time.perf_counter(), time.process_time()
        for u in utts:
            read_video(root / "Video" / f"{u.id}.mp4")
        decode = (len(utts) / (time.perf_counter() - start), len(utts) / (time.process_time() - cpu))
        size = sum(p.stat().st_size for p in (root / "Video").rglob("*.mp4")) / len(utts)
        plain_rate, full_rate = _throughput(plain, 2 * n), _throughput(full, 2 * n)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        return {
            "utterance_seconds": frames / 25,
            "utterances": n,
            "mp4_kbytes_per_utterance": round(size / 1024, 1),
            "machine_load_1min": load,
            "cpu_count": os.cpu_count(),
            "note": "wall = utt per elapsed second (depends on machine load); cpu = utt per CPU second of the worker",
            "decode_only_utt_per_s": {"wall": round(decode[0], 1), "cpu": round(decode[1], 1)},
            "train_pipeline_no_corruption_utt_per_s": {"wall": round(plain_rate[0], 1), "cpu": round(plain_rate[1], 1)},
            "train_pipeline_full_utt_per_s": {"wall": round(full_rate[0], 1), "cpu": round(full_rate[1], 1)},
            "target_utt_per_s_per_worker": 40,
        }


def padding_waste(n: int = 20000, max_frames: int = 2400) -> dict:
    from avsr_lightning.data.sampler import FrameBudgetBatchSampler, fixed_size_batches_waste

    rng = np.random.default_rng(0)
    # LRS3-like: most clips 1-6 s, a long tail (pretrain) to 24 s; frames at 25 fps
    seconds = np.clip(rng.lognormal(np.log(3.0), 0.75, n), 1.0, 24.0)
    lengths = np.round(seconds * 25).astype(int)
    bucketed = FrameBudgetBatchSampler(lengths, max_frames=max_frames, seed=0, max_length=600)
    batches = bucketed.plan(0)
    return {
        "length_distribution": {"n": n, "median_s": round(float(np.median(seconds)), 2),
                                "p90_s": round(float(np.percentile(seconds, 90)), 2), "max_s": round(float(seconds.max()), 2)},
        "bucketed_max_frames": max_frames,
        "bucketed_waste": round(bucketed.padding_waste(0), 4),
        "bucketed_waste_epoch1": round(bucketed.padding_waste(1), 4),
        "bucketed_mean_batch_size": round(float(np.mean([len(b) for b in batches])), 2),
        "fixed_batch4_shuffled_waste": round(fixed_size_batches_waste(lengths, 4), 4),
        "fixed_batch8_shuffled_waste": round(fixed_size_batches_waste(lengths, 8), 4),
        "target_waste": 0.10,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--utterances", type=int, default=48)
    parser.add_argument("--frames", type=int, default=75, help="frames per utterance (75 = 3 s)")
    parser.add_argument("--out", type=str, default=None)
    args = parser.parse_args()
    result = {"throughput": throughput(args.utterances, args.frames), "padding": padding_waste()}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
