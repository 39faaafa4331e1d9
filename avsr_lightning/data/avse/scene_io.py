"""From a scene entry to its files and its int16 signals: the challenge layout plus one cached mixer.

:class:`AVSELayout` maps a scene to the challenge's paths (spec §1.1, §3.2-3.3), each overridable by a
template so a processed LRS3 tree can supply the target audio. :class:`SceneMixer` reads the files and calls
:func:`~avsr_lightning.data.avse.mixing.mix_scene`; the renderer and the data module both use it, so they
produce the same samples.
"""
from __future__ import annotations

import dataclasses
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .audio_io import MaskerStore, read_target
from .errors import SceneError
from .formats import Scene
from .mixing import RAMP_SAMPLES, SIGNALS, SpeechWeighting, _weighting, as_float64, mix_scene, mix_scene_float

__all__ = ["AVSELayout", "SceneMixer"]


@dataclass(frozen=True)
class AVSELayout:
    """Path templates (``{root}``, ``{dataset}``, ``{name}``, ``{type}``); defaults = the challenge tree.

    ``name`` is the scene's target or masker name, an opaque relative path that may contain ``/``.
    """

    root: str
    target_audio: str = "{root}/{dataset}/targets/{name}.wav"
    target_video: str = "{root}/{dataset}/targets_video/{name}.mp4"
    interferer: str = "{root}/{dataset}/interferers/{type}/{name}.wav"

    def target_audio_path(self, scene: Scene) -> Path:
        return Path(self.target_audio.format(root=self.root, dataset=scene.dataset, name=scene.target))

    def target_video_path(self, scene: Scene) -> Path:
        return Path(self.target_video.format(root=self.root, dataset=scene.dataset, name=scene.target))

    def interferer_paths(self, scene: Scene) -> list[Path]:
        return [Path(self.interferer.format(root=self.root, dataset=scene.dataset, type=i.type, name=i.name))
                for i in scene.interferers]


class SceneMixer:
    """Reads a scene's target and masker segments and mixes them exactly (float64, spec §3).

    The target's speech-weighted RMS depends only on the target, so it is cached per target file (bounded);
    this changes no output bit and saves one FFT convolution whenever a target is mixed again.
    ``exact=False`` selects the Parseval weighted RMS (see :meth:`SpeechWeighting.rms`).
    """

    def __init__(self, layout: AVSELayout, speech_weight: Any = None, cache_size: int = 200_000,
                 exact: bool = True) -> None:
        self.layout = layout
        self.exact = exact
        self.weighting: SpeechWeighting = _weighting(speech_weight)
        self.maskers = MaskerStore()
        self._target_rms: OrderedDict[str, float] = OrderedDict()
        self._cache_size = cache_size

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_target_rms"] = OrderedDict()
        return state

    def read_target(self, scene: Scene) -> np.ndarray:
        return read_target(self.layout.target_audio_path(scene))

    def _segments(self, scene: Scene, length: int) -> tuple[list[np.ndarray], Scene]:
        """Each masker's ``[offset, offset + length)`` and the scene with offsets rebased to 0."""
        segments = []
        for inter, path in zip(scene.interferers, self.layout.interferer_paths(scene)):
            segments.append(self.maskers.segment(path, inter.offset, length))
        rebased = dataclasses.replace(scene, interferers=tuple(dataclasses.replace(i, offset=0)
                                                               for i in scene.interferers))
        return segments, rebased

    def _rms(self, key: str, target: np.ndarray) -> float:
        value = self._target_rms.get(key)
        if value is None:
            value = self.weighting.rms(as_float64(target), self.exact)
            self._target_rms[key] = value
            if len(self._target_rms) > self._cache_size:
                self._target_rms.popitem(last=False)
        return value

    def mix(self, scene: Scene, target: np.ndarray | None = None, as_float: bool = False,
            signals: Sequence[str] = SIGNALS) -> dict[str, np.ndarray]:
        """int16 ``mixed``/``target``/``interferer`` (or the float64 pre-quantisation signals with ``as_float``);
        ``signals`` selects which int16 signals to produce (the peak always covers all three).

        Raises :class:`SceneError` naming the scene for every bad-input case.
        """
        try:
            key = os.fspath(self.layout.target_audio_path(scene))
            target = self.read_target(scene) if target is None else target
            segments, rebased = self._segments(scene, int(target.shape[0]))
            rms = self._rms(key, target) if target.ndim == 1 and target.shape[0] >= RAMP_SAMPLES else None
            if as_float:
                mixed, t, i = mix_scene_float(target, segments, rebased, self.weighting, rms, self.exact)
                return {"mixed": mixed, "target": t, "interferer": i}
            return mix_scene(target, segments, rebased, self.weighting, rms, self.exact, signals)
        except SceneError as err:
            raise err.with_scene(scene.scene) from None
