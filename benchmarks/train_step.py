"""Training-step benchmark: forward + backward of every architecture at default (reference) sizes.

Prints one JSON document: per architecture the median wall-clock (and process CPU) milliseconds of
``model.loss(...)`` + ``backward()`` on a batch of 4 x 75 frames (3 s at 25 fps, audio 640 samples per frame, lengths
75/70/60/50, 30 labels), and the peak memory the step adds (CUDA: ``max_memory_allocated``; CPU: the
growth of the process' peak RSS, measured in a fresh subprocess per architecture so runs don't mix).
A ``components`` section times the rel-pos self-attention side by side: the fast path
(``scaled_dot_product_attention`` with the relative term as an additive bias) against the reference
formulation (explicit scores, min-fill, softmax, zero-fill), same weights, same inputs.

    python benchmarks/train_step.py                       # all architectures, CPU
    python benchmarks/train_step.py --archs AVRelScore --repeats 5 --device cuda
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

ARCHS = ("AVRelScore", "VCAFE", "Conformer", "Audio", "Video")


def _batch(device: torch.device, batch: int, frames: int) -> dict:
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([frames, frames - 5, frames - 15, frames - 25][:batch]).clamp_min(1)
    if batch > 4:
        lengths = torch.full((batch,), frames)
    video = torch.randn(batch, frames, 88, 88, generator=g)
    audio = torch.randn(batch, 640 * frames, generator=g)
    targets = torch.randint(1, 40, (batch, 30), generator=g)
    out = dict(video=video, video_lengths=lengths, audio=audio, audio_lengths=lengths * 640, targets=targets,
               target_lengths=torch.full((batch,), 30))
    return {k: v.to(device) for k, v in out.items()}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def bench_arch(arch: str, device: torch.device, repeats: int, warmup: int, batch: int, frames: int) -> dict:
    from avsr_lightning.models import ARCHITECTURES

    torch.manual_seed(0)
    model = ARCHITECTURES[arch]().to(device).train()
    data = _batch(device, batch, frames)
    video = None if arch == "Audio" else data["video"]
    audio = None if arch == "Video" else data["audio"]

    def step() -> float:
        out = model.loss(video, data["video_lengths"], audio, data["audio_lengths"], data["targets"],
                         data["target_lengths"])
        out["loss"].backward()
        model.zero_grad(set_to_none=True)
        return out["loss"]

    base_rss = _rss_mb()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base_cuda = torch.cuda.memory_allocated(device)
    for _ in range(warmup):
        step()
    times, cpu_times = [], []
    for _ in range(repeats):
        _sync(device)
        start, cpu_start = time.perf_counter(), time.process_time()
        loss = step()
        _sync(device)
        times.append((time.perf_counter() - start) * 1000.0)
        cpu_times.append((time.process_time() - cpu_start) * 1000.0)
    result = {
        "arch": arch, "device": str(device), "batch": batch, "frames": frames,
        "params": sum(p.numel() for p in model.parameters()),
        "fwd_bwd_ms_median": round(sorted(times)[len(times) // 2], 1),
        "fwd_bwd_ms_all": [round(t, 1) for t in times],
        # CPU time of all threads: on a shared machine wall time inflates, this much less so
        "fwd_bwd_process_cpu_ms_median": round(sorted(cpu_times)[len(cpu_times) // 2], 1),
        "loss": round(float(loss), 4),
    }
    if device.type == "cuda":
        result["peak_step_memory_mb"] = round((torch.cuda.max_memory_allocated(device) - base_cuda) / 2**20, 1)
    else:
        result["peak_step_memory_mb"] = round(_rss_mb() - base_rss, 1)
        result["peak_rss_mb"] = round(_rss_mb(), 1)
    return result


def bench_attention(device: torch.device, repeats: int, batch: int, frames: int) -> dict:
    """Rel-pos MHSA (d=256, 4 heads) on AVRelScore's 2T tokens: SDPA path vs the reference formulation."""
    from avsr_lightning.models import RelPositionalEncoding, RelPositionMultiHeadAttention

    torch.manual_seed(0)
    att = RelPositionMultiHeadAttention(4, 256, 0.0).to(device).train()
    tokens = 2 * frames
    x = torch.randn(batch, tokens, 256, device=device, requires_grad=True)
    _, pos = RelPositionalEncoding(256, 0.0)(x)
    lengths = torch.tensor([tokens - 10 * i for i in range(batch)], device=device)
    mask = (torch.arange(tokens, device=device) < lengths[:, None]).unsqueeze(1)

    def run(explicit: bool) -> float:
        times = []
        for i in range(repeats + 1):
            _sync(device)
            start = time.perf_counter()
            out = att(x, x, x, pos, mask, need_weights=explicit)
            out = out[0] if explicit else out
            out.sum().backward()
            _sync(device)
            if i:
                times.append((time.perf_counter() - start) * 1000.0)
        return sorted(times)[len(times) // 2]

    fast, ref = run(False), run(True)
    with torch.no_grad():
        diff = (att(x, x, x, pos, mask) - att(x, x, x, pos, mask, need_weights=True)[0]).abs().max().item()
    return {"component": "rel_pos_mhsa fwd+bwd", "tokens": tokens, "sdpa_ms": round(fast, 2),
            "reference_formulation_ms": round(ref, 2), "speedup": round(ref / fast, 2), "max_abs_diff": diff}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", nargs="+", default=list(ARCHS), choices=ARCHS)
    parser.add_argument("--repeats", type=int, default=2, help="timed steps per architecture (median reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--frames", type=int, default=75)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args._worker:
        print(json.dumps(bench_arch(args._worker, device, args.repeats, args.warmup, args.batch, args.frames)))
        return
    results = []
    for arch in args.archs:  # one process per architecture: clean peak-RSS accounting
        cmd = [sys.executable, os.path.abspath(__file__), "--_worker", arch, "--repeats", str(args.repeats),
               "--warmup", str(args.warmup), "--batch", str(args.batch), "--frames", str(args.frames),
               "--device", args.device] + (["--threads", str(args.threads)] if args.threads else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            results.append({"arch": arch, "error": proc.stderr.strip().splitlines()[-1:]})
            continue
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    report = {"torch": torch.__version__, "threads": torch.get_num_threads(), "results": results,
              "components": [bench_attention(device, max(3, args.repeats), args.batch, args.frames)]}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
