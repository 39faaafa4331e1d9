"""Robustness sweep: WER/CER of one or more models over audio SNR x visual condition.

Uses the data module's seeded, on-the-fly test conditions (``LRSDataModule.test_conditions``), so the
same corrupted inputs are produced on every run and for every model; each batch is decoded by all
models before the next is loaded. Writes ``sweep.csv``, ``sweep.md`` (one WER table per model, visual
condition x SNR) and ``sweep.png`` (WER against SNR, one panel per visual condition, one line per
model).

    python -m avsr_lightning.sweep --models '{avrelscore: ckpt/a.ckpt, conformer: ckpt/c.ckpt}' \
        --data configs/data/lrs3_test.yaml --snrs '[null, 15, 10, 5, 0, -5]' \
        --visual '[clean, occlusion, noise, occlusion_noise]' --out_dir sweep_lrs3
"""
from __future__ import annotations

import csv
import io
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

import torch
import yaml
from torch import Tensor, nn

from avsr_lightning.data.conditions import VISUAL_CONDITIONS, Condition
from avsr_lightning.durable import write_bytes
from avsr_lightning.evaluation.metrics import ErrorCounts, corpus_rates, error_counts
from avsr_lightning.text import normalize_transcript

log = logging.getLogger(__name__)

DEFAULT_SNRS: tuple[Optional[float], ...] = (None, 15.0, 10.0, 5.0, 0.0, -5.0)
DEFAULT_VISUAL: tuple[str, ...] = ("clean", "occlusion", "noise", "occlusion_noise")


@dataclass
class SweepRow:
    model: str
    visual: str
    snr: Optional[float]
    wer: float
    cer: float
    utterances: int
    words: int
    reliability_video: Optional[float] = None  # mean reliability score over valid frames (AVRelScore only)
    reliability_audio: Optional[float] = None


def condition_grid(snrs: Sequence[Optional[float]], visual: Sequence[str], noise: str = "babble") -> list[Condition]:
    """Every (visual, snr) pair as a :class:`Condition`, visual-major."""
    if not snrs:
        raise ValueError("sweep: snrs is empty; use [null] for clean audio only")
    bad = [v for v in visual if v not in VISUAL_CONDITIONS]
    if bad or not visual:
        raise ValueError(f"sweep: visual conditions must be a non-empty subset of {list(VISUAL_CONDITIONS)}, got {bad}")
    return [Condition(snr=None if s is None else float(s), noise=noise, visual=v) for v in visual for s in snrs]


def _loaders(datamodule: Any) -> list[Any]:
    datamodule.setup("test")
    loaders = datamodule.test_dataloader()
    return list(loaders) if isinstance(loaders, (list, tuple)) else [loaders]


def _texts(nbest: list[list[Any]], tokenizer: Any) -> list[str]:
    return [normalize_transcript(h[0].text or tokenizer.decode(h[0].tokens)) if h else "" for h in nbest]


@torch.no_grad()
def run_sweep(models: Mapping[str, nn.Module], datamodule: Any, decoder: Callable, snrs: Sequence[Optional[float]],
              visual: Sequence[str], noise: str = "babble", device: Union[str, torch.device] = "cpu",
              max_batches: Optional[int] = None) -> list[SweepRow]:
    """Decode the test split under every condition with every model; return one row per (model, condition).

    ``datamodule`` must accept a list of :class:`Condition` in ``test_conditions`` before ``setup``
    (``LRSDataModule`` and ``SyntheticDataModule`` do) and yield ``AVBatch`` (after its
    ``on_before_batch_transfer``) with one test loader per condition.
    """
    from avsr_lightning.text import CharTokenizer

    grid = condition_grid(snrs, visual, noise)
    datamodule.test_conditions = grid
    loaders = _loaders(datamodule)
    if len(loaders) != len(grid):
        raise ValueError(f"sweep: the data module gave {len(loaders)} test loaders for {len(grid)} conditions")
    tokenizer = getattr(datamodule, "tokenizer", None) or CharTokenizer()
    device = torch.device(device)
    for m in models.values():
        m.to(device).eval()
    rows = []
    for idx, (condition, loader) in enumerate(zip(grid, loaders)):
        counts: dict[str, list[ErrorCounts]] = {name: [] for name in models}
        scores: dict[str, list[Tensor]] = {name: [] for name in models}
        for b, batch in enumerate(loader):
            if max_batches is not None and b >= max_batches:
                break
            hook = getattr(datamodule, "on_before_batch_transfer", None)
            if hook is not None:
                batch = hook(batch, idx)
            batch = batch.to(device)
            refs = [normalize_transcript(t) for t in batch.texts]
            for name, model in models.items():
                hyps = _texts(decoder(model, batch), tokenizer)
                counts[name].extend(error_counts(r, h) for r, h in zip(refs, hyps))
                if callable(getattr(model, "reliability", None)) and batch.video is not None \
                        and batch.audio is not None:
                    scores[name].append(_mean_reliability(model, batch))
        for name in models:
            rates = corpus_rates(counts[name])
            rel = torch.stack(scores[name]).sum(0) if scores[name] else None  # (video sum, audio sum, frames)
            rows.append(SweepRow(name, condition.visual, condition.snr, float(rates["wer"]), float(rates["cer"]),
                                 len(counts[name]), sum(c.words for c in counts[name]),
                                 None if rel is None else float(rel[0] / rel[2]),
                                 None if rel is None else float(rel[1] / rel[2])))
            log.info("%s %s: WER %.2f", name, condition.name, rows[-1].wer)
    return rows


def _mean_reliability(model: nn.Module, batch: Any) -> Tensor:
    """(sum of video scores, sum of audio scores, number of frames) over the batch's valid frames."""
    out = model.reliability(*batch.model_inputs())
    valid = (torch.arange(out["video"].size(1), device=out["video"].device)[None, :]
             < batch.video_lengths.to(out["video"].device)[:, None]).float()
    return torch.stack([(out["video"] * valid).sum(), (out["audio"] * valid).sum(), valid.sum()]).double().cpu()


# ----------------------------------------------------------------------------------------- writing
def _atomic_write_bytes(path: Path, data: bytes) -> None:
    write_bytes(path, data)


def _snr_label(snr: Optional[float]) -> str:
    return "clean" if snr is None else f"{snr:g} dB"


def to_csv(rows: Iterable[SweepRow]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["model", "visual", "snr", "wer", "cer", "utterances", "words", "reliability_video",
                     "reliability_audio"])
    for r in rows:
        writer.writerow([r.model, r.visual, "clean" if r.snr is None else f"{r.snr:g}", f"{r.wer:.3f}",
                         f"{r.cer:.3f}", r.utterances, r.words,
                         "" if r.reliability_video is None else f"{r.reliability_video:.4f}",
                         "" if r.reliability_audio is None else f"{r.reliability_audio:.4f}"])
    return buf.getvalue()


def to_markdown(rows: Sequence[SweepRow], metrics: Sequence[str] = ("wer", "cer")) -> str:
    """Per metric, one table per visual condition: rows = model, columns = audio SNR, cells = rate (%);
    then the mean reliability scores of the models that have them."""
    out = ["# Robustness sweep", ""]
    models = list(dict.fromkeys(r.model for r in rows))
    snrs = list(dict.fromkeys(r.snr for r in rows))
    visuals = list(dict.fromkeys(r.visual for r in rows))
    header = ["| model \\ audio | " + " | ".join(_snr_label(s) for s in snrs) + " |", "|---|" + "---|" * len(snrs)]
    for metric in metrics:
        cell = {(r.model, r.visual, r.snr): getattr(r, metric) for r in rows}
        for v in visuals:
            out += [f"## {metric.upper()} (%), visual: {v}", "", *header]
            for m in models:
                vals = [cell.get((m, v, s)) for s in snrs]
                out.append(f"| {m} | " + " | ".join("-" if x is None else f"{x:.2f}" for x in vals) + " |")
            out.append("")
    scored = [m for m in models if any(r.model == m and r.reliability_video is not None for r in rows)]
    for m in scored:
        rel = {(r.visual, r.snr): r for r in rows if r.model == m}
        out += [f"## Reliability scores of {m} (video / audio, mean over frames)", "", *header]
        for v in visuals:
            vals = [rel.get((v, s)) for s in snrs]
            out.append(f"| {v} | " + " | ".join(
                "-" if r is None or r.reliability_video is None
                else f"{r.reliability_video:.3f} / {r.reliability_audio:.3f}" for r in vals) + " |")
        out.append("")
    utt = {r.utterances for r in rows}
    out.append(f"Utterances per condition: {', '.join(str(u) for u in sorted(utt))}.")
    return "\n".join(out) + "\n"


def _panels(rows: Sequence[SweepRow], path: Path, ylabel: str,
            draw: Callable[[Any, list[SweepRow], Callable[[Optional[float]], float]], None]) -> None:
    """One panel per visual condition, audio SNR on x (clean audio at the right); ``draw(ax, rows_of_panel,
    x_of_snr)`` adds the lines; the PNG is written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    visuals = list(dict.fromkeys(r.visual for r in rows))
    numeric = sorted({r.snr for r in rows if r.snr is not None})
    clean_x = (numeric[-1] + 5.0) if numeric else 0.0
    fig, axes = plt.subplots(1, len(visuals), figsize=(4.0 * len(visuals), 3.4), sharey=True, squeeze=False)
    for ax, v in zip(axes[0], visuals):
        draw(ax, [r for r in rows if r.visual == v], lambda snr: clean_x if snr is None else snr)
        ticks = numeric + ([clean_x] if any(r.snr is None for r in rows) else [])
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:g}" for t in numeric] + (["clean"] if len(ticks) > len(numeric) else []))
        ax.set_title(f"visual: {v}")
        ax.set_xlabel("audio SNR (dB)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    _atomic_write_bytes(path, buf.getvalue())


def plot(rows: Sequence[SweepRow], path: Path, metric: str = "wer") -> None:
    """``metric`` (wer or cer) against SNR, one panel per visual condition, one line per model."""
    def draw(ax, panel, x):
        for m in dict.fromkeys(r.model for r in rows):
            pts = sorted((x(r.snr), getattr(r, metric)) for r in panel if r.model == m)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=m)

    _panels(rows, path, f"{metric.upper()} (%)", draw)


def plot_reliability(rows: Sequence[SweepRow], path: Path) -> bool:
    """Mean video and audio reliability scores against SNR, one panel per visual condition, for every model
    that has them (AVRelScore). Returns False (and writes nothing) when no model has scores."""
    scored = [r for r in rows if r.reliability_video is not None]
    if not scored:
        return False
    models = list(dict.fromkeys(r.model for r in scored))

    def draw(ax, panel, x):
        for m in models:
            pts = sorted((x(r.snr), r.reliability_video, r.reliability_audio) for r in panel if r.model == m)
            label = "" if len(models) == 1 else f"{m} "
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="s", label=f"{label}video score")
            ax.plot([p[0] for p in pts], [p[2] for p in pts], marker="o", label=f"{label}audio score")

    _panels(scored, path, "mean reliability score", draw)
    return True


def write_outputs(rows: Sequence[SweepRow], out_dir: Union[str, Path], metric: str = "wer") -> dict[str, Path]:
    """``sweep.csv``, ``sweep.md``, ``sweep.png`` (``metric`` against SNR) and, when a model has reliability
    scores, ``reliability.png`` in ``out_dir`` (each written atomically)."""
    if metric not in ("wer", "cer"):
        raise ValueError(f"sweep: metric must be 'wer' or 'cer', got {metric!r}")
    out = Path(out_dir)
    paths = {"csv": out / "sweep.csv", "markdown": out / "sweep.md", "plot": out / "sweep.png"}
    _atomic_write_bytes(paths["csv"], to_csv(rows).encode())
    _atomic_write_bytes(paths["markdown"], to_markdown(rows).encode())
    plot(rows, paths["plot"], metric)
    if plot_reliability(rows, out / "reliability.png"):
        paths["reliability"] = out / "reliability.png"
    return paths


# ----------------------------------------------------------------------------------------- CLI
def _with_recipe_data(args: list[str]) -> list[str]:
    """``--recipe FILE`` -> ``--data <FILE's data section>`` placed first, so later ``--data.*`` and ``--config``
    values still override it (one source for the data pipeline: the recipe the models were trained with)."""
    if "--recipe" not in args:
        return args
    i = args.index("--recipe")
    if i + 1 >= len(args):
        raise ValueError("sweep: --recipe needs a recipe file, e.g. --recipe configs/demo.yaml")
    path = Path(args[i + 1])
    if not path.is_file():
        raise FileNotFoundError(f"sweep: --recipe {path}: no such file")
    data = (yaml.safe_load(path.read_text()) or {}).get("data")
    if not isinstance(data, dict):
        raise ValueError(f"sweep: --recipe {path} has no data section (class_path/init_args of a data module)")
    return ["--data", json.dumps(data)] + args[:i] + args[i + 2:]


def _load_models(models: Mapping[str, str], arch: Optional[str]) -> dict[str, nn.Module]:
    from avsr_lightning.weights.load import load_model

    if not models:
        raise ValueError("sweep: give at least one model, e.g. --models '{name: path/to/checkpoint.ckpt}'")
    return {name: load_model(path, arch=arch) for name, path in models.items()}


def main(args: Optional[list[str]] = None) -> list[SweepRow]:
    from jsonargparse import ActionConfigFile, ArgumentParser
    from lightning.pytorch import LightningDataModule

    from avsr_lightning.allocator import retain_freed_memory
    from avsr_lightning.decoding.api import BeamSearchDecoder
    from avsr_lightning.decoding.greedy import AttentionGreedyDecoder, CTCGreedyDecoder
    from avsr_lightning.primitive_cache import enlarge_primitive_cache

    retain_freed_memory()  # no page faults per batch for large CPU tensors (avsr_lightning/allocator.py)
    enlarge_primitive_cache()  # no oneDNN kernel rebuilt per batch shape (avsr_lightning/primitive_cache.py)
    parser = ArgumentParser(prog="python -m avsr_lightning.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", type=Optional[str], default=None,
                        help="a training recipe (e.g. configs/demo.yaml) whose data section is the sweep's data: "
                             "the models are evaluated through the pipeline they were trained with")
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_argument("--models", type=dict[str, str], required=True,
                        help="name -> checkpoint (ours or the reference's); several are compared")
    parser.add_argument("--arch", type=Optional[str], default=None,
                        help="architecture of reference-format checkpoints (default: detected from their tensors)")
    parser.add_subclass_arguments(LightningDataModule, "data", help="an LRSDataModule/SyntheticDataModule config")
    parser.add_argument("--decoder", type=Union[BeamSearchDecoder, CTCGreedyDecoder, AttentionGreedyDecoder],
                        default=None, help="default: BeamSearchDecoder() (beam 40, CTC 0.1, no LM)")
    parser.add_argument("--snrs", type=list[Optional[float]], default=list(DEFAULT_SNRS))
    parser.add_argument("--visual", type=list[str], default=list(DEFAULT_VISUAL))
    parser.add_argument("--noise", type=str, default="babble")
    parser.add_argument("--device", type=str, default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--max_batches", type=Optional[int], default=None, help="per condition (quick looks)")
    parser.add_argument("--out_dir", type=str, default="sweep")
    parser.add_argument("--metric", type=str, default="wer", help="rate plotted in sweep.png: wer or cer")
    cfg = parser.parse_args(_with_recipe_data(list(sys.argv[1:] if args is None else args)))
    init = parser.instantiate_classes(cfg)
    decoder = init.decoder if init.decoder is not None else BeamSearchDecoder(lm_weight=0.0)
    models = _load_models(cfg.models, cfg.arch)
    rows = run_sweep(models, init.data, decoder, cfg.snrs, cfg.visual, cfg.noise, cfg.device, cfg.max_batches)
    paths = write_outputs(rows, cfg.out_dir, cfg.metric)
    print(to_markdown(rows))
    print("written: " + ", ".join(str(p) for p in paths.values()))
    return rows


if __name__ == "__main__":  # pragma: no cover
    main()
