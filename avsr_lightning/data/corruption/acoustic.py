"""On-the-fly acoustic corruption: noise at an SNR drawn from a set that may include clean, the reference's
two partial-noise variants, optional volume perturbation.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from avsr_lightning.data.corruption import functional as F

#: Partial-noise options: none; the reference training gating (zero 4 spans of the mixture with prob 0.5,
#: spec §4.3); the AV-RelScore test-set gating (silence 1-5 spans of the noise only, spec §7.2).
PARTIAL_MODES = ("none", "reference_train", "avrelscore")


def _noise_name(path: str | os.PathLike) -> str:
    return Path(path).stem


class NoiseMixer:
    """Mix one of ``noise_files`` into the speech at an SNR drawn uniformly from ``snrs``.

    ``snrs`` entries are dB values or ``None`` for clean (so "no noise" can be part of the training
    distribution; the reference's set has no clean entry, spec §8.11). Noise files are wav/flac or 1-D
    ``.npy`` at 16 kHz, loaded once on first use (per DataLoader worker).
    ``__call__(audio, rng) -> (audio, info)``; ``info`` has ``snr`` (None = clean), ``noise``, ``partial``.
    """

    def __init__(self, noise_files: Sequence[str | os.PathLike], snrs: Sequence[float | None] = (-5, 0, 5, 10, 15),
                 partial: str = "none", partial_prob: float = 0.5, volume_db: tuple[float, float] | None = None,
                 sample_rate: int = 16000) -> None:
        if partial not in PARTIAL_MODES:
            raise ValueError(f"partial must be one of {PARTIAL_MODES}, got {partial!r}")
        if not snrs:
            raise ValueError("snrs must list at least one SNR (use [null] for clean only)")
        self.snrs = [None if s is None else float(s) for s in snrs]
        self.noise_files = [Path(p) for p in noise_files]
        if any(s is not None for s in self.snrs):
            if not self.noise_files:
                raise ValueError("snrs contain noisy entries but no noise_files were given; give noise files "
                                 "(e.g. <root>/noise/babble.wav) or set the SNR list to [null]")
            missing = [str(p) for p in self.noise_files if not p.is_file()]
            if missing:
                raise FileNotFoundError(f"noise files not found: {missing}")
        self.partial = partial
        self.partial_prob = float(partial_prob)
        self.volume_db = volume_db
        self.sample_rate = sample_rate
        self._noises: list[np.ndarray] | None = None

    @property
    def noises(self) -> list[np.ndarray]:
        if self._noises is None:
            from avsr_lightning.data.media import read_audio_any

            self._noises = [read_audio_any(p, self.sample_rate) for p in self.noise_files]
        return self._noises

    def __getstate__(self) -> dict:  # do not ship loaded noise arrays to every worker through pickling
        state = dict(self.__dict__)
        state["_noises"] = None
        return state

    def __call__(self, audio: np.ndarray, rng: np.random.Generator, snr: float | None | str = "draw",
                 noise_index: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Corrupt ``audio``; ``snr="draw"`` samples from ``snrs``, otherwise that SNR is used (None = clean)."""
        if snr == "draw":
            snr = self.snrs[int(rng.integers(0, len(self.snrs)))]
        info: dict[str, Any] = {"snr": snr, "noise": None, "partial": None}
        if self.volume_db is not None:
            gain = float(rng.uniform(*self.volume_db))
            audio = F.change_volume(audio, gain)
            info["volume_db"] = round(gain, 4)
        if snr is None:
            return np.asarray(audio, dtype=np.float32), info
        if noise_index is None:
            noise_index = int(rng.integers(0, len(self.noise_files)))
        noise = F.crop_noise(self.noises[noise_index], len(audio), rng)
        info["noise"] = _noise_name(self.noise_files[noise_index])
        if self.partial == "avrelscore":
            keep = F.partial_noise_keep_mask(len(audio), rng)
            mixed = F.mix_at_snr(audio, noise, float(snr), keep=keep)
            peak = float(mixed.max()) if len(mixed) else 0.0
            if peak > 1.0:  # the protocol's positive-peak normalisation (spec §7.2)
                mixed = mixed / peak
            info["partial"] = "avrelscore"
            info["noisy_fraction"] = round(float(keep.mean()), 4)
            return mixed.astype(np.float32), info
        mixed = F.mix_at_snr(audio, noise, float(snr))
        if self.partial == "reference_train" and rng.random() < self.partial_prob:
            mixed, spans = F.zero_spans(mixed, rng)
            info["partial"] = "reference_train"
        return mixed, info
