"""Picture of AVRelScore's per-frame reliability scores, logged at every validation.

For the first few utterances of the first validation batch it plots the per-frame mean of the video
and audio reliability scores (``model.reliability``), titled with the utterance's SNR and visual
corruption from ``batch.conditions``. A model that has learnt to trust the clean modality shows the
audio curve dropping on noisy audio and the video curve dropping on occluded frames. The PNG goes to
``<log_dir>/reliability/step_XXXXXXX.png`` (written atomically) and to TensorBoard/wandb when used.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch

from avsr_lightning.batch import AVBatch
from avsr_lightning.durable import durable_path

__all__ = ["ReliabilityPlot", "plot_reliability"]


def _describe(condition: dict[str, Any]) -> str:
    snr = condition.get("snr", "?") if condition else "?"
    snr_text = "clean audio" if snr is None else (f"SNR {snr:g} dB" if isinstance(snr, (int, float)) else "SNR ?")
    visual = condition.get("visual", "?") if condition else "?"
    return f"{snr_text}, video: {visual}"


def plot_reliability(scores: dict[str, torch.Tensor], lengths: torch.Tensor, ids: list[str],
                     conditions: list[dict[str, Any]], title: str = ""):
    """A matplotlib figure with one panel per utterance (Agg backend, no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n = len(ids)
    fig, axes = plt.subplots(n, 1, figsize=(7, 1.9 * n + 0.6), squeeze=False, sharey=True)
    for i, ax in enumerate(axes[:, 0]):
        t = int(lengths[i])
        frames = range(t)
        ax.plot(frames, scores["video"][i, :t].float().cpu().numpy(), label="video", color="tab:blue")
        ax.plot(frames, scores["audio"][i, :t].float().cpu().numpy(), label="audio", color="tab:orange")
        ax.set_ylim(0.0, 1.0)
        ax.set_title(f"{ids[i]} - {_describe(conditions[i] if i < len(conditions) else {})}", fontsize=8)
        ax.set_ylabel("mean score", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel("video frame (25 fps)", fontsize=8)
    axes[0, 0].legend(loc="upper right", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


class ReliabilityPlot(L.Callback):
    """Log the reliability picture of ``num_utterances`` validation utterances (models with ``reliability``)."""

    def __init__(self, num_utterances: int = 4) -> None:
        if num_utterances < 1:
            raise ValueError(f"ReliabilityPlot num_utterances should be an int >= 1, got {num_utterances}")
        self.num_utterances = num_utterances
        self._batch: AVBatch | None = None
        self.last_path: Path | None = None

    def on_validation_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        if (batch_idx == 0 and dataloader_idx == 0 and trainer.is_global_zero and not trainer.sanity_checking
                and isinstance(batch, AVBatch)):
            self._batch = batch

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Trainer.log_dir broadcasts under DDP: every rank must ask, before the rank-0-only work below
        log_dir = trainer.log_dir or trainer.default_root_dir
        batch, self._batch = self._batch, None
        model = getattr(pl_module, "model", pl_module)
        if batch is None or not hasattr(model, "reliability"):
            return
        k = min(self.num_utterances, len(batch))
        with torch.no_grad():
            scores = model.reliability(batch.video[:k], batch.video_lengths[:k], batch.audio[:k],
                                       batch.audio_lengths[:k])
        fig = plot_reliability(scores, batch.video_lengths[:k].cpu(), batch.ids[:k], batch.conditions[:k],
                               title=f"reliability scores, step {trainer.global_step}")
        out_dir = Path(log_dir) / "reliability"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"step_{trainer.global_step:07d}.png"
        with durable_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=90)
        self.last_path = path
        self._log_figure(trainer, fig, path)
        import matplotlib.pyplot as plt

        plt.close(fig)

    @staticmethod
    def _log_figure(trainer: L.Trainer, fig, path: Path) -> None:
        for logger in trainer.loggers:
            experiment = getattr(logger, "experiment", None)
            if hasattr(experiment, "add_figure"):  # TensorBoard
                experiment.add_figure("val/reliability", fig, global_step=trainer.global_step, close=False)
            elif hasattr(logger, "log_image"):  # wandb
                logger.log_image(key="val/reliability", images=[str(path)], step=trainer.global_step)
