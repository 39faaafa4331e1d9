"""``transcribe`` throughput (JSON): seconds of video processed per second, per stage, on CPU.

A clip of ``--seconds`` (default 60) is built from scikit-image's astronaut photograph (the face moving by
small affine motions inside a 640x360 frame, 25 fps, H.264) with tone-burst audio (1.5 s on, 0.5 s off,
AAC 16 kHz), then transcribed by :class:`avsr_lightning.transcribe.Transcriber` with the demo model
(``configs/demo.yaml`` sizes; random weights unless ``--ckpt_path``). Stages (``Transcriber.timings``):

- ``read``: demux + decode + 25-fps/16-kHz resampling + RGB conversion (PyAV);
- ``track``: face detection / mesh every ``--stride`` frames + grey conversion;
- ``crop``: landmark filling/smoothing, alignment to the mean face and the 96x96 crops;
- ``encode``: the model's encoder on the batched segments;
- ``search``: beam search (or greedy) + CTC forced alignment.

Targets (docs/transcribe.md): ``track + crop`` >= 4x real time on one core; the whole command <= 30 s for a
60-s clip with the demo model on 2 cores. Random weights make the beam search run long (degenerate
hypotheses); pass the trained demo checkpoint with ``--ckpt_path`` for the end-to-end number.

    python benchmarks/transcribe.py --threads 1                       # stages, 60-s clip
    python benchmarks/transcribe.py --threads 2 --ckpt_path runs/demo/.../last.ckpt
    python benchmarks/transcribe.py --quick                           # smoke test (4 s, tiny model)
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def build_clip(path: Path, seconds: float, width: int = 640, height: int = 360) -> Path:
    import av
    import cv2
    from skimage.data import astronaut

    image = astronaut()
    n = int(round(seconds * 25))
    t = np.arange(int(seconds * 16000)) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) * ((t % 2.0) < 1.5)).astype(np.float32)[None]
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=Fraction(25))
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"preset": "veryfast", "crf": "23"}
        aus = c.add_stream("aac", rate=16000, layout="mono")
        for k in range(n):
            s = k / 25
            m = cv2.getRotationMatrix2D((256.0, 256.0), 3 * np.sin(np.pi * s), 0.6)
            m[:, 2] += (width / 2 - 256 + 20 * np.sin(0.8 * s), height / 2 - 256 + 10 * np.cos(0.6 * s))
            frame = cv2.warpAffine(image, m, (width, height), borderMode=cv2.BORDER_REFLECT)
            for p in vs.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        for start in range(0, audio.shape[1], 1024):
            fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[:, start:start + 1024]), format="fltp",
                                            layout="mono")
            fr.sample_rate, fr.pts = 16000, start
            for p in aus.encode(fr):
                c.mux(p)
        for p in aus.encode():
            c.mux(p)
    return path


def demo_model(quick: bool):
    import yaml

    from avsr_lightning.weights import build_model

    if quick:
        return build_model("AVRelScore", d_model=32, heads=2, encoder_layers=1, ffn_dim=64, decoder_layers=1,
                           decoder_ffn_dim=64, conv_kernel=3, frontend_widths=(8, 8, 16, 16), scorer_hidden=16,
                           scorer_kernel=3).eval()
    spec = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())["model"]["model"]
    return build_model(spec["class_path"], **(spec.get("init_args") or {})).eval()


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ckpt_path", default=None, help="trained model (default: demo sizes, random weights)")
    p.add_argument("--mean_face", default=str(REPO.parent / "shared" / "reference" / "data" / "20words_mean_face.npy"))
    p.add_argument("--beam_size", type=int, default=40)
    p.add_argument("--greedy", action="store_true", help="CTC greedy instead of the beam search")
    p.add_argument("--stride", type=int, default=2)
    p.add_argument("--max_seconds", type=float, default=15.0, help="longest segment (the command's default)")
    p.add_argument("--detector", default="auto")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="smoke test: 4-s clip, tiny model, beam 2")
    p.add_argument("--output", default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    if args.quick:
        args.seconds, args.beam_size = min(args.seconds, 4.0), 2

    import torch

    torch.set_num_threads(args.threads)
    from avsr_lightning.decoding import BeamSearchDecoder, CTCGreedyDecoder
    from avsr_lightning.transcribe import Transcriber
    from avsr_lightning.weights import load_model

    model = load_model(args.ckpt_path) if args.ckpt_path else demo_model(args.quick)
    decoder = CTCGreedyDecoder() if args.greedy else BeamSearchDecoder(beam_size=args.beam_size, lm_weight=0.0)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        clip = build_clip(Path(tmp) / "clip.mp4", args.seconds)
        for _ in range(args.repeats):
            tr = Transcriber(model, decoder, mean_face=np.load(args.mean_face), detector=args.detector,
                             stride=args.stride, max_seconds=args.max_seconds, log=lambda m: None)
            t0 = time.perf_counter()
            result = tr.transcribe(clip)
            total = time.perf_counter() - t0
            runs.append((total, tr.timings.as_dict(), result))
    total, stages, result = min(runs, key=lambda r: r[0])
    duration = result["duration"]
    out = {
        "clip_seconds": duration, "threads": args.threads, "model": "checkpoint" if args.ckpt_path else
        ("tiny" if args.quick else "demo sizes, random weights"), "decoder": "greedy" if args.greedy else
        f"beam {args.beam_size}", "stride": args.stride, "segments": len(result["segments"]),
        "total_s": round(total, 3), "realtime_x": round(duration / total, 2),
        "stages_s": {k: round(v, 3) for k, v in stages.items()},
        "stages_realtime_x": {k: round(duration / v, 2) if v > 0 else None for k, v in stages.items()},
        "track_plus_crop_realtime_x": round(duration / max(stages["track"] + stages["crop"], 1e-9), 2),
        "face_in_every_segment": all(s["source"] == "audio-visual" for s in result["segments"]),
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
