"""Bad-input reasons for AVSE scenes: one exception type carrying the scene id and a short reason code.

Both pipelines (the offline renderer and the on-the-fly data module) raise :class:`SceneError` for a scene
they cannot produce; the renderer lists it in its report, the data module skips and counts it. The reason
codes are stable strings so reports can be grouped and compared.
"""
from __future__ import annotations

__all__ = ["SceneError", "REASONS"]

#: reason code -> what it means (and what the challenge renderer does with such a scene, spec §3.9).
REASONS = {
    "missing_file": "a target or masker file does not exist (challenge: crash)",
    "wrong_sample_rate": "a wav is not 16 kHz (challenge: exception)",
    "not_mono": "a wav has more than one channel (challenge: shape error)",
    "non_finite": "a wav contains NaN or inf samples (challenge: NaN output)",
    "target_too_short": "the target is shorter than the 8000-sample ramp (challenge: ValueError in the ramp)",
    "offset_past_masker_end": "offset + target length runs past the end of the masker (challenge: AssertionError)",
    "silent_interferer": "the ramped interferer has zero speech-weighted energy (challenge: scene skipped)",
    "silent_target": "the target is all zeros, so the peak is 0 (challenge: undefined int16 output)",
    "read_error": "a file exists but could not be decoded",
}


class SceneError(ValueError):
    """A scene that cannot be mixed. ``reason`` is a key of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str, scene: str | None = None) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown SceneError reason {reason!r}; expected one of {sorted(REASONS)}")
        self.reason, self.detail, self.scene = reason, detail, scene
        super().__init__(self._message())

    def _message(self) -> str:
        where = f"scene {self.scene}: " if self.scene else ""
        return f"{where}{self.reason}: {self.detail}"

    def with_scene(self, scene: str) -> "SceneError":
        """The same error naming ``scene`` (mixing code raises before it knows the id)."""
        return SceneError(self.reason, self.detail, scene)
