"""Sample-exact AVSE scene mixing, shared by the offline renderer and the on-the-fly data module.

For a scene with target ``t`` (length L) and interferer segment ``u = masker[offset:offset+L]`` (both float64,
int16/32768), the challenge renderer computes (spec §3.4-3.7, §7.2 P2-P7):

- ``v = ramp(u)``: 0.5 s (8000-sample) raised-cosine fade in and out, head first then tail (overlap allowed);
- ``rho = rms(h * t) / rms(h * v)`` with ``h`` the 512-tap ``speech_weight`` FIR, full FFT convolution;
- ``i = (v * rho) * 10 ** (-SNR / 20)`` (two float64 products in this order), ``m = t + i``;
- one peak ``P = max(|m|, |t|, |i|)`` and ``q = trunc((x / P) * 32767)`` as int16 for x in (m, t, i).

Everything stays float64 and follows the same operation order, so the int16 outputs equal the renderer's
sample for sample. The FIR's spectrum is cached per FFT size (the same numbers ``fftconvolve`` computes), and
a target's weighted RMS may be passed in when it is already known; neither changes a bit of the result.

With several interferers (later editions), the ramped segments are summed before the weighted RMS, so the
scene SNR is the speech-weighted SNR of the target against the sum of the interferers.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft as sp_fft

from .errors import SceneError
from .formats import Scene, parse_scene

__all__ = ["SAMPLE_RATE", "RAMP_SAMPLES", "SpeechWeighting", "load_speech_weight", "set_default_speech_weight",
           "default_speech_weighting", "raised_cosine_ramp", "apply_ramp", "mix_scene", "mix_scene_float",
           "quantize", "as_float64", "interferer_segment", "design_speech_weight", "resolve_speech_weight"]

SAMPLE_RATE = 16000
#: Ramp length: ``int(16000 * 0.5)`` (spec §3.4).
RAMP_SAMPLES = 8000
#: Environment variable naming the challenge's ``speech_weight.mat`` when no filter is passed.
SPEECH_WEIGHT_ENV = "AVSE_SPEECH_WEIGHT"


def load_speech_weight(path: str | os.PathLike) -> np.ndarray:
    """The ``filt`` variable of the challenge's ``speech_weight.mat`` as a float64 vector (512 taps)."""
    import scipy.io

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"speech weighting filter not found: {path} (the challenge's "
                                "data_preparation/avse1/speech_weight.mat)")
    mat = scipy.io.loadmat(str(path))
    if "filt" not in mat:
        raise KeyError(f"{path}: no variable 'filt' (found {sorted(k for k in mat if not k.startswith('__'))})")
    return np.asarray(mat["filt"], dtype=np.float64).ravel()


def design_speech_weight(taps: int = 512) -> np.ndarray:
    """A stand-in for ``speech_weight.mat`` when the challenge file is not at hand (demos, tests).

    A linear-phase (type II) band-pass FIR with the pass band the real filter has *at 16 kHz* (about
    123-1885 Hz at -3 dB, spec §3.5). SNRs weighted with it are close to, not equal to, the challenge's: use
    the real file for challenge-comparable scenes.
    """
    import scipy.signal

    return scipy.signal.firwin(taps, [123.0, 1885.0], fs=SAMPLE_RATE, pass_zero=False).astype(np.float64)


def resolve_speech_weight(spec: "np.ndarray | str | os.PathLike | SpeechWeighting") -> "SpeechWeighting":
    """A :class:`SpeechWeighting` from a ``.mat`` path, taps, an existing one, or ``"approximate"``."""
    if isinstance(spec, SpeechWeighting):
        return spec
    if isinstance(spec, str) and spec == "approximate":
        return SpeechWeighting(design_speech_weight())
    return SpeechWeighting(spec)


class SpeechWeighting:
    """Speech-weighted RMS ``sqrt(mean((h * x) ** 2))`` with ``h * x`` the full linear convolution.

    Bit-identical to ``np.sqrt(np.mean(scipy.signal.fftconvolve(x, h) ** 2))``: the same FFT sizes, calls and
    products, with the filter's transform cached per size instead of recomputed for every signal.
    """


    def __init__(self, taps: np.ndarray | str | os.PathLike, cache_bytes: int = 64 << 20) -> None:
        taps = load_speech_weight(taps) if isinstance(taps, (str, os.PathLike)) else np.asarray(taps, np.float64)
        if taps.ndim != 1 or taps.size == 0 or not np.isfinite(taps).all():
            raise ValueError(f"speech weighting filter must be a finite 1-D array, got shape {taps.shape}")
        self.taps = np.ascontiguousarray(taps)
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self._cached_bytes = 0

    def __getstate__(self) -> dict:
        return {"taps": self.taps, "cache_bytes": self.cache_bytes}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["taps"], state["cache_bytes"])

    def _cached(self, kind: str, size: int, make) -> np.ndarray:
        """Least-recently-used cache of filter spectra, bounded in bytes (one entry per FFT size)."""
        key = (kind, size)
        value = self._cache.get(key)
        if value is not None:
            self._cache.move_to_end(key)
            return value
        value = self._cache[key] = make()
        self._cached_bytes += value.nbytes
        while self._cached_bytes > self.cache_bytes and len(self._cache) > 1:
            self._cached_bytes -= self._cache.popitem(last=False)[1].nbytes
        return value

    def _spectrum(self, size: int) -> np.ndarray:
        return self._cached("rfft", size, lambda: sp_fft.rfftn(self.taps, [size], axes=[0]))

    def filtered(self, x: np.ndarray) -> np.ndarray:
        """``fftconvolve(x, h)`` (mode ``full``), length ``len(x) + len(h) - 1``."""
        full = x.shape[0] + self.taps.shape[0] - 1
        size = sp_fft.next_fast_len(full, True)
        out = sp_fft.irfftn(sp_fft.rfftn(x, [size], axes=[0]) * self._spectrum(size), [size], axes=[0])
        return out[:full]

    def rms(self, x: np.ndarray, exact: bool = True) -> float:
        """The weighted RMS; ``exact=False`` uses Parseval's theorem instead of the inverse FFT.

        The fast form sums ``|X_k|^2 |H_k|^2`` over one zero-padded spectrum (float64, any FFT size that holds
        the full convolution, so sizes are rounded to a coarse grid and the filter terms stay cached). It
        equals the exact value to about one ulp; the §7.3 analysis found such perturbations of the gain change
        no output sample.
        """
        x = np.asarray(x, dtype=np.float64)
        if exact:
            e = self.filtered(x)
            return float(np.sqrt(np.mean(e ** 2)))
        full = x.shape[0] + self.taps.shape[0] - 1
        size = _parseval_size(full)
        spectrum = sp_fft.rfft(x, size)
        power = spectrum.real ** 2
        power += spectrum.imag ** 2
        power *= self._cached("parseval", size, lambda: self._parseval_weights(size))
        return float(np.sqrt(np.add.reduce(power) / full))  # not np.dot: BLAS threads cost more than they save

    def _parseval_weights(self, size: int) -> np.ndarray:
        """``w_k |H_k|^2 / size`` with w = 2 for the bins that stand for a conjugate pair, else 1."""
        h = sp_fft.rfft(self.taps, size)
        weights = (h.real ** 2 + h.imag ** 2) * 2.0
        weights[0] /= 2.0
        if size % 2 == 0:
            weights[-1] /= 2.0
        return weights / size


def _parseval_size(n: int) -> int:
    """The smallest ``m * 2**k >= n`` with m in (8, 9, 10, 12, 15): fast FFT sizes, five per octave."""
    best = None
    for m in (8, 9, 10, 12, 15):
        size = m
        while size < n:
            size *= 2
        best = size if best is None else min(best, size)
    return best


_DEFAULT: SpeechWeighting | None = None


def set_default_speech_weight(taps: np.ndarray | str | os.PathLike | SpeechWeighting | None) -> None:
    """Filter used by :func:`mix_scene` when none is passed (``None`` resets to the environment variable)."""
    global _DEFAULT
    _DEFAULT = None if taps is None else taps if isinstance(taps, SpeechWeighting) else SpeechWeighting(taps)


def default_speech_weighting() -> SpeechWeighting:
    global _DEFAULT
    if _DEFAULT is None:
        path = os.environ.get(SPEECH_WEIGHT_ENV)
        if not path:
            raise RuntimeError("no speech weighting filter: pass speech_weight=<path to speech_weight.mat> "
                               f"(or an array), call set_default_speech_weight(...), or set ${SPEECH_WEIGHT_ENV}")
        _DEFAULT = SpeechWeighting(path)
    return _DEFAULT


def _weighting(speech_weight: Any) -> SpeechWeighting:
    if speech_weight is None:
        return default_speech_weighting()
    return resolve_speech_weight(speech_weight)


_RAMPS: dict[int, np.ndarray] = {}


def raised_cosine_ramp(length: int = RAMP_SAMPLES) -> np.ndarray:
    """``(cos(linspace(pi, 2*pi, R)) + 1) / 2``: 0 → 1 over R samples with NumPy's linspace rule (spec §7.2 P2)."""
    ramp = _RAMPS.get(length)
    if ramp is None:
        ramp = _RAMPS[length] = (np.cos(np.linspace(np.pi, 2 * np.pi, length)) + 1) / 2
        ramp.setflags(write=False)
    return ramp


def apply_ramp(u: np.ndarray, length: int = RAMP_SAMPLES, inplace: bool = False) -> np.ndarray:
    """Fade in the head, then fade out the tail (the ramps multiply where they overlap); a copy unless ``inplace``."""
    if u.shape[0] < length:
        raise SceneError("target_too_short", f"{u.shape[0]} samples < the {length}-sample ramp")
    ramp = raised_cosine_ramp(length)
    v = u if inplace and u.dtype == np.float64 else np.array(u, dtype=np.float64, copy=True)
    v[:length] *= ramp
    v[v.shape[0] - length:] *= ramp[::-1]
    return v


def as_float64(x: np.ndarray) -> np.ndarray:
    """Samples as float64 with libsndfile's int16 semantics (``s / 32768``); floats are only cast."""
    x = np.asarray(x)
    if x.dtype == np.int16:
        y = x.astype(np.float64)
        y /= 32768.0
        return y
    if x.dtype.kind in "iu":
        raise TypeError(f"integer samples must be int16, got {x.dtype}")
    return x.astype(np.float64, copy=False)


def interferer_segment(masker: np.ndarray, offset: int, length: int, name: str = "masker") -> np.ndarray:
    """``masker[offset : offset + length]`` as float64; a short read is an error, never padded (spec §7.1 I4)."""
    if masker.ndim != 1:
        raise SceneError("not_mono", f"{name} has shape {masker.shape}, expected mono (N,)")
    if offset < 0 or offset + length > masker.shape[0]:
        raise SceneError("offset_past_masker_end", f"{name}: offset {offset} + {length} samples > "
                                                   f"{masker.shape[0]} samples in the masker")
    return as_float64(masker[offset:offset + length])


def _check_finite(x: np.ndarray, what: str) -> None:
    # A NaN or inf anywhere makes the sum non-finite; one reduction instead of a boolean temporary.
    if not np.isfinite(np.add.reduce(x)) and not np.isfinite(x).all():
        raise SceneError("non_finite", f"{what} contains NaN or inf samples")


def mix_scene_float(target: np.ndarray, masker: np.ndarray | Sequence[np.ndarray], scene: Scene | Mapping[str, Any],
                    speech_weight: Any = None, target_rms: float | None = None,
                    exact: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The float64 signals before quantisation: ``(mixed, target, interferer)`` (spec §3.4-3.7 steps 1).

    Args:
        target: the decoded target, float64 (or int16, converted as ``s / 32768``), shape (L,).
        masker: the whole masker file (N,) or, for multi-interferer scenes, one array per interferer.
        scene: a :class:`Scene` or one scene entry as loaded from JSON.
        speech_weight: a :class:`SpeechWeighting`, the FIR taps or the ``.mat`` path; default: see
            :func:`set_default_speech_weight`.
        target_rms: the target's speech-weighted RMS if already known (it does not depend on the scene).
        exact: compute the weighted RMS exactly as the challenge (FFT convolution); ``False`` uses the
            Parseval form (a few ulp apart, within the §7.3 tolerance, in practice the same samples).
    """
    scene = scene if isinstance(scene, Scene) else parse_scene(scene)
    try:
        t = as_float64(target)
        if t.ndim != 1:
            raise SceneError("not_mono", f"target has shape {t.shape}, expected mono (L,)")
        maskers = [masker] if isinstance(masker, np.ndarray) else list(masker)
        if len(maskers) != len(scene.interferers):
            raise ValueError(f"scene {scene.scene} has {len(scene.interferers)} interferer(s) but "
                             f"{len(maskers)} masker array(s) were given")
        length = t.shape[0]
        if length < RAMP_SAMPLES:
            raise SceneError("target_too_short", f"target has {length} samples < the {RAMP_SAMPLES}-sample ramp")
        if np.asarray(target).dtype.kind == "f":  # int16 samples are always finite
            _check_finite(t, "target")
        v = None
        for inter, array in zip(scene.interferers, maskers):
            array = np.asarray(array)
            u = interferer_segment(array, inter.offset, length, f"{inter.type} masker {inter.name!r}")
            if array.dtype.kind == "f":
                _check_finite(u, f"{inter.type} masker {inter.name!r} segment")
            ramped = apply_ramp(u, inplace=array.dtype != np.float64)  # int16 input: u is already a copy
            v = ramped if v is None else v + ramped
        weighting = _weighting(speech_weight)
        rms_v = weighting.rms(v, exact)
        if rms_v == 0:
            raise SceneError("silent_interferer", "the ramped interferer segment has zero speech-weighted energy")
        rms_t = weighting.rms(t, exact) if target_rms is None else float(target_rms)
        if not np.any(t):
            raise SceneError("silent_target", "the target is all zeros")
    except SceneError as err:
        raise err.with_scene(scene.scene) from None
    rho = rms_t / rms_v
    interferer = v * rho
    interferer *= 10 ** (-float(scene.snr) / 20)  # (v * rho) * g, the challenge's order
    mixed = t + interferer
    return mixed, t, interferer


def _peak(x: np.ndarray) -> float:
    return max(float(x.max()), -float(x.min()))  # == np.abs(x).max(), without the temporary


SIGNALS = ("mixed", "target", "interferer")


def quantize(mixed: np.ndarray, target: np.ndarray, interferer: np.ndarray,
             signals: Sequence[str] = SIGNALS) -> dict[str, np.ndarray]:
    """One shared peak, then ``trunc((x / P) * 32767)`` as int16 (spec §3.7, §7.2 P6-P7).

    The peak always covers all three signals; ``signals`` only selects which are quantised (training needs
    just the mixture, whose samples do not depend on that choice).
    """
    unknown = set(signals) - set(SIGNALS)
    if unknown:
        raise ValueError(f"signals must be a subset of {SIGNALS}, got {list(signals)}")
    peak = max(_peak(mixed), _peak(target), _peak(interferer))
    out = {}
    buf = np.empty_like(mixed)
    for name, x in (("mixed", mixed), ("target", target), ("interferer", interferer)):
        if name not in signals:
            continue
        np.divide(x, peak, out=buf)
        np.multiply(buf, 32767, out=buf)
        np.trunc(buf, out=buf)
        out[name] = buf.astype(np.int16)
    return out


def mix_scene(target: np.ndarray, masker: np.ndarray | Sequence[np.ndarray], scene: Scene | Mapping[str, Any],
              speech_weight: Any = None, target_rms: float | None = None, exact: bool = True,
              signals: Sequence[str] = SIGNALS) -> dict[str, np.ndarray]:
    """Mix one scene exactly as the challenge renderer: int16 ``mixed``, ``target`` and ``interferer``.

    Arguments as in :func:`mix_scene_float`. Raises :class:`SceneError` (with the scene id and a reason) for
    a target shorter than the ramp, an offset past the masker's end, NaN/inf samples, a silent interferer
    (the challenge skips the scene) or a silent target. ``signals`` selects the outputs (default all three).
    """
    return quantize(*mix_scene_float(target, masker, scene, speech_weight, target_rms, exact), signals=signals)
