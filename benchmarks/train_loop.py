"""Lightning training-loop overhead: utterances/s of ``Trainer.fit`` vs a bare PyTorch loop.

Both loops train the same model (same initial weights) on the same pre-built batches with the same
optimizer and Noam schedule, in the same process, alternating several rounds. For every step each
loop keeps its fastest time over the rounds (robust to other processes on a shared machine). The
Lightning run includes what a real run has: logging every step, the RNG callback, the non-finite-loss
check; checkpointing and validation are off so only the loop itself is compared.

    python benchmarks/train_loop.py [--arch Video] [--steps 30] [--rounds 3] [--threads 1]

Prints JSON: utterances/s of each loop and the overhead in percent (target < 5%).
"""
from __future__ import annotations

import argparse
import json
import time
import warnings

import lightning as L
import torch
from torch.utils.data import DataLoader

from avsr_lightning import models
from avsr_lightning.callbacks import RNGStateCallback
from avsr_lightning.datamodules.random import RandomAVDataModule
from avsr_lightning.lightning_module import AVSRModule, _reference_adam
from avsr_lightning.schedules import NoamLR

SIZES = dict(d_model=64, heads=4, encoder_layers=2, ffn_dim=256, decoder_layers=1, decoder_ffn_dim=256,
             conv_kernel=15, frontend_widths=(16, 16, 32, 64))


def _identity(x):
    return x


class _FixedBatches(L.LightningDataModule):
    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def train_dataloader(self):
        # the same pre-collated batches, one per step, no worker or collate cost
        return DataLoader(self.batches, batch_size=None, shuffle=False, collate_fn=_identity)


def _model(arch: str, state=None):
    model = getattr(models, arch)(**SIZES)
    if state is not None:
        model.load_state_dict(state)
    return model


def bare_loop(arch, state, batches) -> list[float]:
    """Seconds per step (step i = from the start of step i to the start of step i+1)."""
    model = _model(arch, state).train()
    opt = _reference_adam(model.parameters())
    sched = NoamLR(opt, d_model=SIZES["d_model"], warmup_steps=25000)
    stamps = [time.perf_counter()]
    for batch in batches:
        out = model.loss(*batch.model_inputs(), batch.targets, batch.target_lengths)
        if torch.isfinite(out["loss"]):  # the same check (and host sync) as AVSRModule
            opt.zero_grad(set_to_none=True)
            out["loss"].backward()
            opt.step()
            sched.step()
        stamps.append(time.perf_counter())
    return [b - a for a, b in zip(stamps, stamps[1:])]


class _StepTimer(L.Callback):
    """Seconds per step measured like the bare loop: batch start to next batch start (end of fit last)."""

    def __init__(self):
        self.stamps: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.stamps.append(time.perf_counter())

    def on_train_end(self, trainer, pl_module):
        self.stamps.append(time.perf_counter())


def lightning_loop(arch, state, batches) -> list[float]:
    module = AVSRModule(_model(arch, state),
                        scheduler=lambda opt: NoamLR(opt, d_model=SIZES["d_model"], warmup_steps=25000))
    timer = _StepTimer()
    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        limit_val_batches=0, log_every_n_steps=1, callbacks=[timer, RNGStateCallback()])
    trainer.fit(module, datamodule=_FixedBatches(batches))
    return [b - a for a, b in zip(timer.stamps, timer.stamps[1:])]


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="Video")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--frames", type=int, default=40, help="max frames per utterance (25 fps)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    modalities = {"Audio": "audio", "Video": "video"}.get(args.arch, "av")
    dm = RandomAVDataModule(train_size=args.steps * args.batch_size, batch_size=args.batch_size,
                            min_frames=args.frames // 2, max_frames=args.frames, image_size=88,
                            modalities=modalities, seed=0)
    batches = list(dm.train_dataloader())
    torch.manual_seed(0)
    state = _model(args.arch).state_dict()
    bare_loop(args.arch, state, batches[:2])  # warm-up (allocator, kernels)
    lightning_loop(args.arch, state, batches[:2])
    utts = [len(b) for b in batches]
    bare, light = [], []
    for _ in range(args.rounds):  # alternate, so both loops see the same machine load
        bare.append(bare_loop(args.arch, state, batches))
        light.append(lightning_loop(args.arch, state, batches))
    # Per step, the fastest of the rounds (least disturbed by other processes), then summed over steps:
    # the same batches in both loops, so the ratio isolates the loop overhead.
    # The first and last step are left out of the steady-state rate (Lightning's fit start/teardown
    # falls into them); the whole-round rates below include everything.
    steady = range(1, len(batches) - 1)
    bare_best = [min(r[i] for r in bare) for i in steady]
    light_best = [min(r[i] for r in light) for i in steady]
    bare_rate = sum(utts[i] for i in steady) / sum(bare_best)
    light_rate = sum(utts[i] for i in steady) / sum(light_best)
    result = {
        "arch": args.arch, "sizes": SIZES, "steps": len(batches), "batch_size": args.batch_size,
        "max_frames": args.frames, "threads": args.threads, "rounds": args.rounds,
        "bare_utt_per_s": round(bare_rate, 3), "lightning_utt_per_s": round(light_rate, 3),
        "lightning_overhead_percent": round(100.0 * (bare_rate / light_rate - 1.0), 2),
        "median_step_ms": {"bare": round(1000 * _median(bare_best), 2),
                           "lightning": round(1000 * _median(light_best), 2)},
        "median_step_overhead_percent": round(100.0 * (_median(light_best) / _median(bare_best) - 1.0), 2),
        "whole_round_utt_per_s": {"bare": [round(sum(utts) / sum(r), 3) for r in bare],
                                  "lightning": [round(sum(utts) / sum(r), 3) for r in light]},
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
