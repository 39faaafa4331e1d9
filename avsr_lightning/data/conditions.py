"""Named test conditions and the one function that applies them, shared by the on-the-fly test loaders and
``data_prep/make_corrupted_testset.py`` so both produce the same corruption for the same seed.

Every draw is seeded from (seed, utterance id, condition part): the audio part and the visual part have
separate streams, so ``snr=0 + occlusion`` and ``snr=0 + clean`` share the same noise excerpt.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np

from avsr_lightning.data.corruption.acoustic import NoiseMixer
from avsr_lightning.data.corruption.seeding import generator_for
from avsr_lightning.data.corruption.visual import VISUAL_CONDITIONS, VisualCorruption
from avsr_lightning.data.landmarks import Landmarks


@dataclass(frozen=True)
class Condition:
    """One evaluation condition: ``snr`` in dB or None (clean audio), ``noise`` name, ``visual`` condition."""

    snr: float | None = None
    noise: str = "babble"
    visual: str = "clean"
    name: str | None = None

    def __post_init__(self) -> None:
        if self.visual not in VISUAL_CONDITIONS:
            raise ValueError(f"visual must be one of {VISUAL_CONDITIONS}, got {self.visual!r}")
        if self.name is None:
            object.__setattr__(self, "name", self.default_name())

    def default_name(self) -> str:
        audio = "clean" if self.snr is None else f"{self.noise}_snr{self.snr:g}"
        return f"{audio}__{self.visual}"

    @property
    def label(self) -> str:
        """For people: ``babble 0 dB, clean video``, ``clean audio, occlusion video``."""
        audio = "clean audio" if self.snr is None else f"{self.noise} {self.snr:g} dB"
        return f"{audio}, {self.visual.replace('_', '+')} video"

    @property
    def audio_key(self) -> str:
        return "audio:clean" if self.snr is None else f"audio:{self.noise}:{self.snr:g}"

    @property
    def visual_key(self) -> str:
        return f"visual:{self.visual}"

    @property
    def is_clean(self) -> bool:
        return self.snr is None and self.visual == "clean"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_any(cls, value: "Condition | Mapping[str, Any] | str | None") -> "Condition":
        """From a Condition, a dict (``{snr: 0, visual: occlusion}``), a name such as ``babble_snr5__occlusion``
        or None (clean)."""
        if value is None:
            return cls()
        if isinstance(value, Condition):
            return value
        if isinstance(value, str):
            audio, _, visual = value.partition("__")
            visual = visual or "clean"
            if audio == "clean":
                return cls(None, visual=visual)
            noise, _, snr = audio.rpartition("_snr")
            if not noise or not snr:
                raise ValueError(f"condition name {value!r} is not '<noise>_snr<dB>__<visual>' or 'clean__<visual>'")
            return cls(float(snr), noise=noise, visual=visual)
        known = {"snr", "noise", "visual", "name"}
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"unknown condition keys {sorted(unknown)}; expected {sorted(known)}")
        snr = value.get("snr")
        return cls(None if snr is None else float(snr), value.get("noise", "babble"), value.get("visual", "clean"),
                   value.get("name"))


def apply_condition(condition: Condition, uid: str, seed: int, frames: np.ndarray | None, audio: np.ndarray | None,
                    landmarks: Landmarks | None, mixer: NoiseMixer | None,
                    visual: VisualCorruption | None) -> tuple[np.ndarray | None, np.ndarray | None, dict[str, Any]]:
    """Corrupt one utterance deterministically; returns (frames, audio, parameters drawn)."""
    params: dict[str, Any] = {"condition": condition.name, "snr": condition.snr, "noise": None,
                              "visual": condition.visual}
    if audio is not None and condition.snr is not None:
        if mixer is None:
            raise ValueError(f"condition {condition.name} needs noise but no noise files were configured")
        names = [p.stem for p in mixer.noise_files]
        if condition.noise not in names:
            raise ValueError(f"condition {condition.name}: noise {condition.noise!r} not among noise files {names}")
        rng = generator_for(seed, uid, condition.audio_key)
        audio, info = mixer(audio, rng, snr=condition.snr, noise_index=names.index(condition.noise))
        params.update(info)
    if frames is not None and condition.visual != "clean":
        if visual is None:
            raise ValueError(f"condition {condition.name} needs visual corruption but none was configured")
        rng = generator_for(seed, uid, condition.visual_key)
        frames, info = visual(frames, landmarks, rng, condition=condition.visual)
        params.update({k: v for k, v in info.items() if k != "visual"})
    return frames, audio, params
