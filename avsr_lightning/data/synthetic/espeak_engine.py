"""The eSpeak NG C API through ``ctypes``, and a small fork server that gives every utterance a fresh engine.

eSpeak NG keeps state across utterances that no API call resets (its pitch flutter and noise generators run
on), so the same text gives slightly different samples depending on what was said before. Each synthesis
therefore runs in a freshly forked child of a process whose engine was initialised and never used.

Forking the process that renders the corpus (numpy, PyAV, maybe torch loaded) costs several times the
synthesis itself: the child's page tables are copied and every page the interpreter touches is copied on
write. So the forking is done by a *fork server*: this file run as a script (``python -S espeak_engine.py
LIBRARY DATA_DIR``), a bare interpreter with only this module and the library loaded. It initialises the
engine exactly as :class:`Engine` does in-process, then for every request forks a child that synthesises
and exits; the output is the same as forking the big process, because the engine state after
``espeak_Initialize`` is the same. The requests and answers travel over its stdin/stdout (see
:func:`read_frame`).

Standard library only: the server must start in a few milliseconds and must not import the package.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import sys

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_PHONEME_EVENTS = 0x0001
EVENT_LIST_TERMINATED = 0
EVENT_WORD = 1
EVENT_PHONEME = 7
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4
_CHARS_UTF8 = 1
RAND_SEED = 1


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


class UnknownVoice(ValueError):
    """eSpeak NG has no voice of that name."""


class Engine:
    """One initialised eSpeak NG library: ``synthesize(...) -> (int16 little-endian sample bytes, events)``.

    Raises ``OSError`` if the library cannot be loaded and ``RuntimeError`` if it does not initialise.
    """

    def __init__(self, library_path: str, data_path: bytes) -> None:
        self.lib = ctypes.CDLL(library_path)
        self.native_rate = int(self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path,
                                                          INITIALIZE_PHONEME_EVENTS))
        if self.native_rate <= 0:
            raise RuntimeError(f"espeak_Initialize returned {self.native_rate}")
        self._chunks: list[bytes] = []
        self._events: list[tuple[int, int, str]] = []
        self._callback = _Callback(self._on_audio)  # keep a reference: the C side holds a raw pointer
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        libc_name = ctypes.util.find_library("c")
        self._libc = ctypes.CDLL(libc_name) if libc_name else None

    def _on_audio(self, wav, num_samples: int, events) -> int:
        if wav and num_samples > 0:
            self._chunks.append(ctypes.string_at(wav, 2 * num_samples))
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type in (EVENT_PHONEME, EVENT_WORD):
                name = event.id.decode("utf-8", "replace") if event.type == EVENT_PHONEME else ""
                self._events.append((event.type, event.sample, name))
            i += 1
        return 0

    def synthesize(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int
                   ) -> tuple[bytes, list[tuple[int, int, str]]]:
        """Native-rate int16 samples (native byte order) and (event type, sample, phoneme) events."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise UnknownVoice(f"eSpeak NG has no voice {voice!r}; use names like 'en-us+m3' or 'en+f2'")
        for param, value in ((_RATE, rate), (_PITCH, pitch), (_RANGE, pitch_range), (_VOLUME, 100)):
            self.lib.espeak_SetParameter(param, int(value), 0)
        self.lib.espeak_ng_SetRandSeed(ctypes.c_long(RAND_SEED))
        if self._libc is not None:
            self._libc.srand(ctypes.c_uint(RAND_SEED))
        self._chunks, self._events = [], []
        encoded = text.lower().encode("utf-8")
        self.lib.espeak_Synth(encoded, len(encoded) + 1, 0, 0, 0, _CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        return b"".join(self._chunks), list(self._events)


# --- framing: an 8-byte little-endian length, a JSON header of that length, then (answers) the samples ---

def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read_exactly(fd: int, size: int) -> bytes:
    """``size`` bytes from ``fd``, or fewer if it reaches end of file first."""
    parts, left = [], size
    while left > 0:
        part = os.read(fd, min(left, 1 << 20))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def frame(header: dict, payload: bytes = b"") -> bytes:
    encoded = json.dumps(header, allow_nan=False).encode()
    return (len(encoded) + len(payload)).to_bytes(8, "little") + len(encoded).to_bytes(8, "little") + encoded + payload


def read_frame(fd: int) -> tuple[dict, bytes] | None:
    """(header, payload) of the next frame, or None at a clean end of file. Raises EOFError if cut short."""
    head = read_exactly(fd, 16)
    if not head:
        return None
    if len(head) < 16:
        raise EOFError("frame header cut short")
    total, header_size = int.from_bytes(head[:8], "little"), int.from_bytes(head[8:], "little")
    body = read_exactly(fd, total)
    if len(body) != total:
        raise EOFError(f"frame cut short: {len(body)} of {total} bytes")
    return json.loads(body[:header_size]), body[header_size:]


def synthesize_in_child(engine: Engine, request: dict) -> bytes:
    """Fork; the child synthesises ``request`` with the pristine engine and exits. Returns the answer frame."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: synthesise, send, exit without running any Python cleanup
        status = 0
        try:
            os.close(read_fd)
            samples, events = engine.synthesize(request["text"], request["voice"], request["rate"],
                                                request["pitch"], request["pitch_range"])
            answer = frame({"n": len(samples) // 2, "events": events}, samples)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            status = 1
            kind = "UnknownVoice" if isinstance(exc, UnknownVoice) else type(exc).__name__
            answer = frame({"error": kind, "message": str(exc)})
        try:
            write_all(write_fd, answer)
        finally:
            os._exit(status)
    os.close(write_fd)
    try:
        result = read_frame(read_fd)
    except EOFError:
        result = None
    finally:
        os.close(read_fd)
    _, wait_status = os.waitpid(pid, 0)
    if result is None:
        return frame({"error": "RuntimeError", "message": f"synthesis child exited with status {wait_status}"})
    return frame(*result)


def serve(library_path: str, data_path: str, in_fd: int = 0, out_fd: int = 1) -> int:
    """The fork server's loop: answer requests from ``in_fd`` on ``out_fd`` until end of file."""
    try:
        engine = Engine(library_path, data_path.encode())
    except (OSError, RuntimeError) as exc:
        write_all(out_fd, frame({"error": "Unavailable", "message": str(exc)}))
        return 1
    write_all(out_fd, frame({"native_rate": engine.native_rate}))
    while True:
        request = read_frame(in_fd)
        if request is None:
            return 0
        write_all(out_fd, synthesize_in_child(engine, request[0]))


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1], sys.argv[2]))
