"""Training-step benchmark: forward + backward of every architecture, fp32 and bf16-mixed side by side,
each time read against the machine's measured limit.

Prints one JSON document. ``machine`` holds the measured GEMM peak (a large square matmul, best of a few,
with the configured threads) for float32 and bfloat16. For each architecture, in one process, the same
weights and batch are stepped (``model.loss`` + ``backward``) in fp32 and under
``torch.autocast(device_type, bfloat16)`` (what ``trainer.precision: bf16-mixed`` does), and each
precision reports:

- ``step_ms_median`` (and all timed steps, and process CPU ms: less inflated on a shared machine);
- ``gflop``: the FLOPs of the step from ``torch.utils.flop_counter`` (forward + backward), split by the
  dtype the work ran in (``gflop_by_dtype``: the fp32 islands and fp32 frontend layers stay fp32);
- ``floor_ms``: sum over dtypes of FLOPs / that dtype's measured peak, the time of the step if every
  FLOP ran at GEMM peak; ``achieved_gflops`` = FLOPs / time; ``fraction_of_floor`` = floor / time;
- ``loss`` and, for bf16, ``loss_rel_diff`` = |loss_bf16 - loss_fp32| / |loss_fp32| (same dropout
  masks: the RNG is re-seeded before each step); ``speedup_vs_fp32``.

Sizes: ``--sizes default`` = the reference sizes (batch 4 x 75 frames, lengths 75/70/60/50, 30 labels);
``--sizes demo`` = the model ``init_args`` of the shipped recipes (configs/demo.yaml -> AVRelScore,
demo_audio.yaml -> Audio, demo_video.yaml -> Video; batch 8 x 58 frames); ``--sizes tiny`` =
configs/model/tiny_<arch>.yaml.

    python benchmarks/train_step.py --threads 2                        # all architectures, default sizes
    python benchmarks/train_step.py --sizes demo --threads 2 --repeats 5
    python benchmarks/train_step.py --threads 2 --malloc both          # allocator: glibc defaults vs retained memory
    python benchmarks/train_step.py --archs Audio --sizes tiny --repeats 1 --quick   # smoke test
    python benchmarks/train_step.py --device cuda                      # same fields, autocast on CUDA
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from machine_peak import gemm_peak  # benchmarks/machine_peak.py: the one GEMM-peak probe
from torch.utils.flop_counter import FlopCounterMode

from avsr_lightning.allocator import retain_freed_memory
from avsr_lightning.primitive_cache import enlarge_primitive_cache

ARCHS = ("AVRelScore", "VCAFE", "Conformer", "Audio", "Video")
REPO = Path(__file__).resolve().parents[1]
DEMO_RECIPES = {"AVRelScore": "configs/demo.yaml", "Audio": "configs/demo_audio.yaml",
                "Video": "configs/demo_video.yaml"}
PRECISIONS = ("fp32", "bf16-mixed")
#: The reference implementation's fp32 step (ms) at default sizes on the idle 2-core CPU, as measured in
#: issue 11 (we cannot run the reference here); the targets are ratios to these.
REFERENCE_FP32_MS = {"AVRelScore": 6780.0, "VCAFE": 5970.0, "Conformer": 6970.0}
TARGETS = {"fp32_vs_reference": 1.1, "bf16_vs_reference_fp32": 2.2, "demo_av_bf16_vs_fp32": 1.2}


def recipe_image(arch: str, sizes: str) -> int | None:
    """The lip crop size the recipe's training pipeline feeds the model (its last ``Resize``/crop), if any."""
    if sizes != "demo" or arch not in DEMO_RECIPES:
        return None
    import yaml

    data = yaml.safe_load((REPO / DEMO_RECIPES[arch]).read_text())["data"]["init_args"]
    size = None
    for t in data.get("train_transforms") or []:
        if t["class_path"].rsplit(".", 1)[-1] in ("Resize", "RandomCrop", "CenterCrop"):
            size = int((t.get("init_args") or {}).get("size", size or 88))
    return size


def model_kwargs(arch: str, sizes: str) -> dict | None:
    """init_args of the recipe for ``sizes`` (None: no such recipe for this architecture)."""
    if sizes == "default":
        return {}
    import yaml

    path = REPO / (DEMO_RECIPES.get(arch, "") if sizes == "demo" else f"configs/model/tiny_{arch.lower()}.yaml")
    if not path.is_file():
        return None
    model = yaml.safe_load(path.read_text())["model"]["model"]
    if model["class_path"].rsplit(".", 1)[-1] != arch:
        raise ValueError(f"{path} configures {model['class_path']}, not {arch}")
    return dict(model.get("init_args") or {})


def _batch(device: torch.device, batch: int, frames: int, image: int) -> dict:
    g = torch.Generator().manual_seed(0)
    if batch == 4:
        lengths = torch.tensor([frames, frames - 5, frames - 15, frames - 25]).clamp_min(1)
    else:  # spread lengths over [frames/2, frames], the longest first
        lengths = torch.linspace(frames, max(1, frames // 2), batch).round().long()
    video = torch.randn(batch, frames, image, image, generator=g)
    audio = torch.randn(batch, 640 * frames, generator=g)
    for i, n in enumerate(lengths.tolist()):  # zero padding, as the collate does
        video[i, n:] = 0
        audio[i, 640 * n:] = 0
    targets = torch.randint(1, 40, (batch, 30), generator=g)
    out = dict(video=video, video_lengths=lengths, audio=audio, audio_lengths=lengths * 640, targets=targets,
               target_lengths=torch.full((batch,), 30))
    return {k: v.to(device) for k, v in out.items()}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


class DtypeFlopCounter(FlopCounterMode):
    """``FlopCounterMode`` that also buckets every counted op by the dtype of its first tensor argument."""

    def __init__(self) -> None:
        super().__init__(display=False)
        self.by_dtype: dict[str, int] = defaultdict(int)

    def _count_flops(self, func_packet, out, args, kwargs):  # noqa: ANN001 (torch's private signature)
        if func_packet in self.flop_registry:
            flops = self.flop_registry[func_packet](*args, **kwargs, out_val=out)
            first = next((a for a in args if isinstance(a, torch.Tensor)), None)
            self.by_dtype[str(first.dtype).replace("torch.", "") if first is not None else "?"] += flops
        return super()._count_flops(func_packet, out, args, kwargs)


def bench_arch(arch: str, kwargs: dict, device: torch.device, repeats: int, warmup: int, batch: int, frames: int,
               image: int, peaks: dict[str, float], channels_last: int = 0, packed_dropout: bool = False,
               bf16_min_channels: str = "default") -> dict:
    from avsr_lightning.models import ARCHITECTURES, ResNet2dTrunk
    from avsr_lightning.models.dropout import set_packed_dropout
    from avsr_lightning.models.precision import set_bf16_min_channels

    torch.manual_seed(0)
    model = ARCHITECTURES[arch](**kwargs).to(device).train()
    for module in model.modules():  # opt-in layout of the video 2-D trunk (docs/models.md "Speed")
        if isinstance(module, ResNet2dTrunk):
            module.channels_last_stages = channels_last
    set_packed_dropout(model, packed_dropout)  # opt-in dropout masks (models/dropout.py)
    if bf16_min_channels != "default":  # the per-stage bf16 rule of the video trunk (models/precision.py)
        set_bf16_min_channels(model, None if bf16_min_channels == "none" else int(bf16_min_channels))
    data = _batch(device, batch, frames, image)
    video = None if arch == "Audio" else data["video"]
    audio = None if arch == "Video" else data["audio"]

    def step(precision: str) -> torch.Tensor:
        torch.manual_seed(1)  # same dropout masks in both precisions
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision != "fp32"):
            out = model.loss(video, data["video_lengths"], audio, data["audio_lengths"], data["targets"],
                             data["target_lengths"])
        out["loss"].backward()
        model.zero_grad(set_to_none=True)
        return out["loss"].detach()

    result: dict = {"arch": arch, "device": str(device), "batch": batch, "frames": frames,
                    "channels_last_stages": channels_last, "packed_dropout": packed_dropout,
                    "bf16_min_channels": bf16_min_channels,
                    "lengths": data["video_lengths"].tolist(), "model_kwargs": kwargs,
                    "params": sum(p.numel() for p in model.parameters())}
    state = {k: v.clone() for k, v in model.state_dict().items()}  # BN running stats move every step
    prepared: dict = {}
    for precision in PRECISIONS:  # FLOPs, warm-up and the compared loss, one precision after the other
        model.load_state_dict(state)
        counter = DtypeFlopCounter()
        with counter:
            step(precision)
        for _ in range(warmup):
            step(precision)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        model.load_state_dict(state)
        loss = step(precision)  # the compared loss: same weights and RNG in both precisions
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
        prepared[precision] = (counter, loss, peak_mb)
    # timed steps alternate between the precisions, so a slow phase of a shared machine hits both alike and
    # the ratio is measured side by side (the steps' own BatchNorm updates do not change their cost)
    times: dict = {p: [] for p in PRECISIONS}
    cpu_times: dict = {p: [] for p in PRECISIONS}
    for _ in range(repeats):
        for precision in PRECISIONS:
            _sync(device)
            start, cpu_start = time.perf_counter(), time.process_time()
            step(precision)
            _sync(device)
            times[precision].append((time.perf_counter() - start) * 1000.0)
            cpu_times[precision].append((time.process_time() - cpu_start) * 1000.0)
    for precision in PRECISIONS:
        counter, loss, peak_mb = prepared[precision]
        flops = counter.get_total_flops()
        by_dtype = {k: round(v / 1e9, 2) for k, v in sorted(counter.by_dtype.items())}
        floor_s = sum(v / 1e9 / peaks.get(k, peaks["float32"]) for k, v in counter.by_dtype.items())
        median = statistics.median(times[precision])
        entry = {
            "step_ms_median": round(median, 1), "step_ms_min": round(min(times[precision]), 1),
            "step_ms_all": [round(t, 1) for t in times[precision]],
            "process_cpu_ms_median": round(statistics.median(cpu_times[precision]), 1),
            "gflop": round(flops / 1e9, 2), "gflop_by_dtype": by_dtype,
            "achieved_gflops": round(flops / 1e9 / (median / 1000.0), 1),
            "floor_ms": round(floor_s * 1000.0, 1), "fraction_of_floor": round(floor_s * 1000.0 / median, 3),
            "loss": round(float(loss), 5),
        }
        if peak_mb is not None:
            entry["peak_memory_mb"] = round(peak_mb, 1)
        result[precision] = entry
    fp32, bf16 = result["fp32"], result["bf16-mixed"]
    bf16["loss_rel_diff"] = round(abs(bf16["loss"] - fp32["loss"]) / max(abs(fp32["loss"]), 1e-12), 5)
    bf16["speedup_vs_fp32"] = round(fp32["step_ms_median"] / bf16["step_ms_median"], 3)
    reference = REFERENCE_FP32_MS.get(arch) if (batch, frames, image, kwargs) == (4, 75, 88, {}) else None
    if reference is not None and device.type == "cpu":
        result["reference_fp32_ms"] = reference
        fp32["speedup_vs_reference"] = round(reference / fp32["step_ms_median"], 3)
        bf16["speedup_vs_reference_fp32"] = round(reference / bf16["step_ms_median"], 3)
        result["targets"] = {
            f"fp32 >= {TARGETS['fp32_vs_reference']}x reference": fp32["speedup_vs_reference"] >= TARGETS["fp32_vs_reference"],
            f"bf16 >= {TARGETS['bf16_vs_reference_fp32']}x reference fp32":
                bf16["speedup_vs_reference_fp32"] >= TARGETS["bf16_vs_reference_fp32"],
            "bf16 loss within 1 %": bf16["loss_rel_diff"] <= 0.01}
    elif kwargs and arch in DEMO_RECIPES and kwargs == model_kwargs(arch, "demo"):  # a shipped demo recipe: bf16 must never be slower, the demo AV at least 1.2x
        need = TARGETS["demo_av_bf16_vs_fp32"] if arch == "AVRelScore" else 1.0
        result["targets"] = {f"bf16 >= {need}x fp32": bf16["speedup_vs_fp32"] >= need}
    if device.type == "cpu":
        result["peak_rss_mb"] = round(_rss_mb(), 1)
    return result


def _min_channels(value: str) -> str:
    """``--bf16-min-channels``: 'default', 'none' or a width >= 0 (argparse type: a bad value fails at once)."""
    if value in ("default", "none") or (value.isdigit() and int(value) >= 0):
        return value
    raise argparse.ArgumentTypeError(f"expected 'default', 'none' or a channel width >= 0, got {value!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", nargs="+", default=list(ARCHS), choices=ARCHS)
    parser.add_argument("--sizes", default="default", choices=("default", "demo", "tiny"))
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per precision, alternating fp32 and bf16 (median reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch", type=int, default=None, help="default: 4 (default sizes), 8 (demo/tiny)")
    parser.add_argument("--frames", type=int, default=None, help="default: 75 (default sizes), 58 (demo/tiny)")
    parser.add_argument("--image", type=int, default=None,
                        help="lip crop size (default: 88; --sizes demo: the recipe's own, e.g. 44)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--channels-last", type=int, default=0, choices=range(5),
                        help="leading video-trunk stages in channels-last layout (opt-in; 0 = off)")
    parser.add_argument("--malloc", default="retain", choices=("retain", "system", "both"),
                        help="host allocator of the step processes (avsr_lightning/allocator.py): retain freed "
                             "memory (what the CLI does), glibc's defaults, or both, one process each, side by side")
    parser.add_argument("--packed-dropout", action="store_true",
                        help="dropout masks from packed random bits (the AVSRModule's packed_dropout option)")
    parser.add_argument("--bf16-min-channels", default="default", type=_min_channels,
                        help="video-trunk stages narrower than this stay fp32 under bf16: 'default' (the models' "
                             "rule, avsr_lightning/models/precision.py), 'none' (plain autocast) or a width")
    parser.add_argument("--quick", action="store_true", help="smoke test: small GEMM for the peak, no warm-up")
    parser.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_peaks", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    default_sizes = args.sizes == "default"
    batch = args.batch or (4 if default_sizes else 8)
    frames = args.frames or (75 if default_sizes else 58)
    warmup = 0 if args.quick else args.warmup
    if args._worker:
        malloc = retain_freed_memory()  # AVSR_LIGHTNING_MALLOC is set by the parent process
        enlarge_primitive_cache()  # as the CLI does (avsr_lightning/primitive_cache.py)
        kwargs = model_kwargs(args._worker, args.sizes)
        image = args.image or recipe_image(args._worker, args.sizes) or 88
        print(json.dumps({**bench_arch(args._worker, kwargs, device, args.repeats, warmup, batch, frames, image,
                                       json.loads(args._peaks), args.channels_last, args.packed_dropout,
                                       args.bf16_min_channels),
                          "malloc": malloc}))
        return
    n = 1024 if args.quick else 4096
    probes = {"float32": gemm_peak(device, torch.float32, n), "bfloat16": gemm_peak(device, torch.bfloat16, n)}
    peaks = {k: v["gflops"] for k, v in probes.items()}
    results = []
    mallocs = ("system", "retain") if args.malloc == "both" else (args.malloc,)
    runs = [(arch, malloc) for arch in args.archs for malloc in mallocs]
    for arch, malloc in runs:  # one process per architecture (and allocator): clean peak-RSS accounting
        if model_kwargs(arch, args.sizes) is None:
            results.append({"arch": arch, "skipped": f"no {args.sizes} recipe for {arch}"})
            continue
        cmd = [sys.executable, os.path.abspath(__file__), "--_worker", arch, "--sizes", args.sizes,
               "--repeats", str(args.repeats), "--warmup", str(warmup), "--batch", str(batch),
               "--frames", str(frames), *(["--image", str(args.image)] if args.image else []), "--device", args.device,
               "--threads", str(args.threads), "--channels-last", str(args.channels_last),
               *(["--packed-dropout"] if args.packed_dropout else []),
               "--bf16-min-channels", args.bf16_min_channels, "--_peaks", json.dumps(peaks)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                              env={**os.environ, "AVSR_LIGHTNING_MALLOC": malloc})
        if proc.returncode != 0:
            results.append({"arch": arch, "error": proc.stderr.strip().splitlines()[-3:]})
            continue
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    report = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": args.device,
              "sizes": args.sizes,
              "machine": {"gemm_n": n, "gemm_peak_gflops": {k: round(v, 1) for k, v in peaks.items()},
                          "gemm_peak_probe": probes},
              "results": results}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
