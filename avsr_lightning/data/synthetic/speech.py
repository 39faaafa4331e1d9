"""Speech synthesis with eSpeak NG through its C API, with phoneme events timed to the audio samples.

We talk to ``libespeak-ng`` directly (via ``ctypes``) instead of running the ``espeak-ng`` binary because
the C API reports every phoneme together with the *sample* at which it starts; that is what lets the
rendered lips move with the sounds to the frame. The library and its voice data come from the
``espeakng-loader`` wheel, so no system package is needed. eSpeak NG keeps global state, so one
:class:`Synthesizer` exists per process (worker processes each build their own).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import threading
from dataclasses import dataclass

import numpy as np

#: Output sample rate of the corpus (LRS audio is 16 kHz).
SAMPLE_RATE = 16000

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_PHONEME = 7
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4
_CHARS_UTF8 = 1
_RAND_SEED = 1
_STRESS_MARKS = "'\",%=`"

INSTALL_HINT = "eSpeak NG is not available: install it with `pip install espeakng-loader` (or `apt-get install espeak-ng`)"


class SpeechSynthesisUnavailable(RuntimeError):
    """eSpeak NG could not be loaded; the message is one line naming the package to install."""


class _Event(ctypes.Structure):
    # Mirrors ``espeak_EVENT`` in speak_lib.h (the ``id`` union is 8 bytes: int / char* / char[8]).
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


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


def _load_library() -> tuple[ctypes.CDLL, bytes]:
    try:
        import espeakng_loader
    except ImportError as exc:
        raise SpeechSynthesisUnavailable(INSTALL_HINT) from exc
    try:
        return ctypes.CDLL(espeakng_loader.get_library_path()), espeakng_loader.get_data_path().encode()
    except (OSError, RuntimeError) as exc:
        raise SpeechSynthesisUnavailable(f"{INSTALL_HINT} ({exc})") from exc


class Synthesizer:
    """Process-wide eSpeak NG session: ``synthesize(text, voice, rate, pitch, pitch_range) -> Speech``."""

    _instance: "Synthesizer | None" = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self._lib, data_path = _load_library()
        self._native_rate = int(self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path,
                                                            _INITIALIZE_PHONEME_EVENTS))
        if self._native_rate <= 0:
            raise SpeechSynthesisUnavailable(f"{INSTALL_HINT} (espeak_Initialize returned {self._native_rate})")
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, str]] = []
        self._callback = _Callback(self._on_audio)  # keep a reference: the C side holds a raw pointer
        self._lib.espeak_SetSynthCallback(self._callback)
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        libc_name = ctypes.util.find_library("c")
        self._libc = ctypes.CDLL(libc_name) if libc_name else None

    @classmethod
    def shared(cls) -> "Synthesizer":
        """The one session of this process (eSpeak NG is a global, non-reentrant library)."""
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _on_audio(self, wav, num_samples: int, events) -> int:
        if wav and num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (num_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type in (_EVENT_PHONEME, _EVENT_WORD):
                name = event.id.decode("utf-8", "replace") if event.type == _EVENT_PHONEME else ""
                self._events.append((event.type, event.sample, name))
            i += 1
        return 0

    def _synthesize_here(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int
                         ) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
        """Native-rate int16 samples and (event type, sample, phoneme) events, synthesised in this process."""
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"eSpeak NG has no voice {voice!r}; use names like 'en-us+m3' or 'en+f2'")
        for param, value in ((_RATE, rate), (_PITCH, pitch), (_RANGE, pitch_range), (_VOLUME, 100)):
            self._lib.espeak_SetParameter(param, int(value), 0)
        self._lib.espeak_ng_SetRandSeed(ctypes.c_long(_RAND_SEED))
        if self._libc is not None:
            self._libc.srand(ctypes.c_uint(_RAND_SEED))
        self._chunks, self._events = [], []
        encoded = text.lower().encode("utf-8")
        self._lib.espeak_Synth(encoded, len(encoded) + 1, 0, 0, 0, _CHARS_UTF8, None, None)
        self._lib.espeak_Synchronize()
        samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return samples.astype(np.int16), list(self._events)

    def _synthesize_isolated(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int
                             ) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
        """Synthesise in a forked child so every utterance starts from the same engine state.

        eSpeak NG keeps state across utterances that no API call resets (its pitch flutter and noise
        generators run on), so the same text gives slightly different samples depending on what was
        said before. The parent never synthesises; each child starts from its pristine state.
        """
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: synthesise, send, exit without running any Python cleanup
            status = 0
            try:
                os.close(read_fd)
                samples, events = self._synthesize_here(text, voice, rate, pitch, pitch_range)
                header = json.dumps({"n": int(samples.shape[0]), "events": events}, allow_nan=False).encode()
                payload = len(header).to_bytes(8, "little") + header + samples.tobytes()
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                status = 1
                message = f"{type(exc).__name__}: {exc}".encode()
                payload = len(message).to_bytes(8, "little") + message
            try:
                view = memoryview(payload)
                while view:
                    view = view[os.write(write_fd, view):]
            finally:
                os._exit(status)
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as pipe:
            data = pipe.read()
        _, wait_status = os.waitpid(pid, 0)
        size = int.from_bytes(data[:8], "little") if len(data) >= 8 else 0
        body = data[8:8 + size]
        if os.waitstatus_to_exitcode(wait_status) != 0 or len(body) != size:
            detail = body.decode("utf-8", "replace") or f"child exited with status {wait_status}"
            if detail.startswith("ValueError: "):
                raise ValueError(detail[len("ValueError: "):])
            raise RuntimeError(f"eSpeak NG synthesis of {text!r} with voice {voice!r} failed: {detail}")
        header = json.loads(body)
        samples = np.frombuffer(data[8 + size:], dtype=np.int16)
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
