"""Speech synthesis with eSpeak NG through its C API, with phoneme events timed to the audio samples.

We talk to ``libespeak-ng`` directly (via ``ctypes``) instead of running the ``espeak-ng`` binary because
the C API reports every phoneme together with the *sample* at which it starts; that is what lets the
rendered lips move with the sounds to the frame. The library and its voice data come from the
``espeakng-loader`` wheel, so no system package is needed. eSpeak NG keeps global state, so one
:class:`Synthesizer` exists per process (worker processes each build their own), and every synthesis runs
in a fresh fork of a never-used engine, forked by a small fork server process (:mod:`espeak_engine`)
because forking the big rendering process itself costs several times the synthesis.
"""
from __future__ import annotations

import atexit
import os
import subprocess
import sys
import threading
from dataclasses import dataclass

import numpy as np

from avsr_lightning.data.synthetic import espeak_engine

#: Output sample rate of the corpus (LRS audio is 16 kHz).
SAMPLE_RATE = 16000

_EVENT_WORD = espeak_engine.EVENT_WORD
_EVENT_PHONEME = espeak_engine.EVENT_PHONEME
_STRESS_MARKS = "'\",%=`"

INSTALL_HINT = "eSpeak NG is not available: install it with `pip install espeakng-loader` (or `apt-get install espeak-ng`)"


class SpeechSynthesisUnavailable(RuntimeError):
    """eSpeak NG could not be loaded; the message is one line naming the package to install."""


@dataclass(frozen=True)
class Phone:
    """One phoneme as eSpeak NG names it (stress marks removed) and its start in seconds."""

    name: str
    start: float


@dataclass(frozen=True)
class Speech:
    """Synthesised speech: float32 waveform at 16 kHz and its phoneme timing.

    ``phones`` are in time order; each phone lasts until the next one starts (the last until the end).
    ``words`` holds the start time (s) of each spoken word.
    """

    audio: np.ndarray
    phones: tuple[Phone, ...]
    words: tuple[float, ...]

    @property
    def duration(self) -> float:
        return self.audio.shape[0] / SAMPLE_RATE


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited resampling by zero-padding/truncating the spectrum (exact for a periodic signal;
    eSpeak NG output starts and ends in silence, so the wrap-around is harmless). Avoids importing scipy."""
    if rate_in == rate_out or audio.shape[0] == 0:
        return audio.astype(np.float32)
    n_out = int(round(audio.shape[0] * rate_out / rate_in))
    spectrum = np.fft.rfft(audio.astype(np.float64))
    bins = n_out // 2 + 1
    if bins <= spectrum.shape[0]:
        spectrum = spectrum[:bins]
    else:
        spectrum = np.concatenate([spectrum, np.zeros(bins - spectrum.shape[0], spectrum.dtype)])
    return (np.fft.irfft(spectrum, n=n_out) * (n_out / audio.shape[0])).astype(np.float32)


def _library_paths() -> tuple[str, str]:
    try:
        import espeakng_loader
    except ImportError as exc:
        raise SpeechSynthesisUnavailable(INSTALL_HINT) from exc
    try:
        return str(espeakng_loader.get_library_path()), str(espeakng_loader.get_data_path())
    except (OSError, RuntimeError) as exc:
        raise SpeechSynthesisUnavailable(f"{INSTALL_HINT} ({exc})") from exc


def _load_library() -> tuple[espeak_engine.Engine, str, str]:
    library, data = _library_paths()
    try:
        return espeak_engine.Engine(library, data.encode()), library, data
    except (OSError, RuntimeError) as exc:
        raise SpeechSynthesisUnavailable(f"{INSTALL_HINT} ({exc})") from exc


class _ForkServer:
    """Client of the eSpeak NG fork server of this process (:mod:`espeak_engine`, run as a bare script)."""

    def __init__(self, library: str, data: str) -> None:
        script = os.path.abspath(espeak_engine.__file__)
        # -I -S: no site-packages, no environment, no current directory: the server imports only the stdlib
        self._process = subprocess.Popen([sys.executable, "-I", "-S", script, library, data],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0, close_fds=True)
        self.pid = os.getpid()  # the process that owns the pipes (a forked child must start its own server)
        hello = self._read()
        if "error" in hello[0]:
            self.close()
            raise SpeechSynthesisUnavailable(f"{INSTALL_HINT} ({hello[0]['message']})")
        self.native_rate = int(hello[0]["native_rate"])

    def _read(self) -> tuple[dict, bytes]:
        try:
            answer = espeak_engine.read_frame(self._process.stdout.fileno())
        except EOFError as exc:
            answer, detail = None, str(exc)
        else:
            detail = "no answer"
        if answer is None:
            raise RuntimeError(f"the eSpeak NG fork server (pid {self._process.pid}) stopped: {detail}, "
                               f"exit status {self._process.poll()}")
        return answer

    def synthesize(self, request: dict) -> tuple[dict, bytes]:
        espeak_engine.write_all(self._process.stdin.fileno(), espeak_engine.frame(request))
        return self._read()

    def close(self) -> None:
        """End the server (it exits at end of input) and reap it, so its CPU time is accounted to us."""
        if self.pid != os.getpid() or self._process.poll() is not None:
            return
        self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process.stdout.close()


class Synthesizer:
    """Process-wide eSpeak NG session: ``synthesize(text, voice, rate, pitch, pitch_range) -> Speech``."""

    _instance: "Synthesizer | None" = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self._engine, self._library, self._data = _load_library()
        self._native_rate = self._engine.native_rate
        self._server: _ForkServer | None = None
        atexit.register(self.close)

    @classmethod
    def shared(cls) -> "Synthesizer":
        """The one session of this process (eSpeak NG is a global, non-reentrant library)."""
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def close(self) -> None:
        """Stop this process' fork server, if any (started again on the next synthesis)."""
        if self._server is not None:
            self._server.close()
            self._server = None

    def _synthesize_here(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int
                         ) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
        """Native-rate int16 samples and (event type, sample, phoneme) events, synthesised in this process."""
        try:
            samples, events = self._engine.synthesize(text, voice, rate, pitch, pitch_range)
        except espeak_engine.UnknownVoice as exc:
            raise ValueError(str(exc)) from None
        return np.frombuffer(samples, dtype=np.int16).copy(), events

    def _synthesize_isolated(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int
                             ) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
        """Synthesise in a fresh fork of the fork server's pristine engine (:mod:`espeak_engine`)."""
        if self._server is not None and self._server.pid != os.getpid():
            self._server = None  # inherited through a fork: the parent's pipes are not ours
        if self._server is None:
            self._server = _ForkServer(self._library, self._data)
        request = {"text": text, "voice": voice, "rate": int(rate), "pitch": int(pitch),
                   "pitch_range": int(pitch_range)}
        try:
            header, payload = self._server.synthesize(request)
        except (OSError, RuntimeError):
            self.close()  # a dead server: the next call starts a new one
            raise
        if "error" in header:
            if header["error"] in ("UnknownVoice", "ValueError"):
                raise ValueError(header["message"])
            raise RuntimeError(f"eSpeak NG synthesis of {text!r} with voice {voice!r} failed: "
                               f"{header['error']}: {header['message']}")
        samples = np.frombuffer(payload, dtype=np.int16)
        if samples.shape[0] != header["n"]:
            raise RuntimeError(f"eSpeak NG synthesis of {text!r}: got {samples.shape[0]} of {header['n']} samples")
        return samples, [tuple(e) for e in header["events"]]

    def synthesize(self, text: str, voice: str, rate: int = 130, pitch: int = 50, pitch_range: int = 50) -> Speech:
        """Speak ``text`` (words) with an eSpeak NG ``voice`` such as ``"en-us+m3"``.

        The result depends only on the arguments (on platforms with ``os.fork``; elsewhere eSpeak NG's
        carried-over state makes repeated syntheses differ very slightly).

        Args:
            rate: words per minute (eSpeak NG accepts 80-450).
            pitch, pitch_range: 0-100.
        """
        with self._lock:
            if hasattr(os, "fork"):
                samples, events = self._synthesize_isolated(text, voice, rate, pitch, pitch_range)
            else:
                samples, events = self._synthesize_here(text, voice, rate, pitch, pitch_range)
        native = samples.astype(np.float32) / 32768.0
        audio = resample(native, self._native_rate, SAMPLE_RATE)
        to_seconds = 1.0 / self._native_rate
        phones = tuple(Phone(name.strip(_STRESS_MARKS), sample * to_seconds)
                       for kind, sample, name in events if kind == _EVENT_PHONEME and name.strip(_STRESS_MARKS))
        words = tuple(sample * to_seconds for kind, sample, _ in events if kind == _EVENT_WORD)
        return Speech(audio=audio, phones=phones, words=words)


def synthesize(text: str, voice: str, rate: int = 130, pitch: int = 50, pitch_range: int = 50) -> Speech:
    """Convenience wrapper over the process-wide :class:`Synthesizer`."""
    return Synthesizer.shared().synthesize(text, voice, rate=rate, pitch=pitch, pitch_range=pitch_range)


def check_available() -> None:
    """Raise :class:`SpeechSynthesisUnavailable` (one-line message) if eSpeak NG cannot be used."""
    Synthesizer.shared()
