"""AVSE challenge JSON formats: metadata lists and scene lists, validated on read.

The challenge ships three metadata lists (``target_speech_list.json``, ``masker_noise_list.json``,
``masker_speech_list.json``) and scene lists ``scenes.<dataset>.json`` (spec §1.2-1.3). Every reader
validates the fields the builder and renderer actually use and raises :class:`AVSEFormatError` naming the
file, the entry index and the field, so a bad release file fails at load time rather than deep inside a
worker. Extra fields are ignored (the challenge's own code ignores them too).

Scenes keep the challenge's single-interferer schema (``"interferer": {...}``) and additionally accept the
later editions' ``"interferers": [...]`` list for 1-3 interferers (speech, noise or music).
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from avsr_lightning.durable import write_text

__all__ = [
    "AVSEFormatError", "TargetEntry", "MaskerEntry", "Interferer", "Scene", "INTERFERER_TYPES",
    "load_target_list", "load_masker_list", "load_speech_masker_list", "load_noise_masker_list",
    "load_music_masker_list", "save_target_list", "save_masker_list", "load_scenes", "save_scenes",
    "scenes_to_json", "dumps_challenge_json", "parse_scene",
]

#: Interferer types; the value is also the sub-directory under ``<root>/<dataset>/interferers/``.
INTERFERER_TYPES = ("speech", "noise", "music")


class AVSEFormatError(ValueError):
    """A metadata or scene file does not follow the schema; the message names file, entry and field."""


@dataclass(frozen=True)
class TargetEntry:
    """One target utterance: ``wavfile`` is the LRS3 clip path without extension (may contain ``/``)."""

    wavfile: str
    dataset: str
    nsamples: int


@dataclass(frozen=True)
class MaskerEntry:
    """One masker file. ``name`` is the noise ``ID`` or the speech ``speaker`` (the file stem)."""

    name: str
    type: str
    dataset: str
    nsamples: int
    #: Balancing group: the noise/music class; speech maskers form a single group.
    group: str = "speech"


@dataclass(frozen=True)
class Interferer:
    type: str
    name: str
    offset: int
    time_start: int = 0
    time_end: int = 0


@dataclass(frozen=True)
class Scene:
    """One scene entry (spec §1.3). ``snr`` is the stored (4-decimal) speech-weighted SNR in dB."""

    dataset: str
    scene: str
    target: str
    duration: int
    interferers: tuple[Interferer, ...]
    snr: float
    pre_samples: int = 0
    post_samples: int = 0
    #: Extra keys of the entry that this library does not interpret, kept for round trips.
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def interferer(self) -> Interferer:
        """The first interferer (the only one in AVSE1 scenes)."""
        return self.interferers[0]

    def to_json(self) -> dict[str, Any]:
        """The challenge's key order; one interferer is written as ``interferer`` (AVSE1 schema)."""
        inter = [{"type": i.type, "time_start": i.time_start, "time_end": i.time_end, "name": i.name,
                  "offset": i.offset} for i in self.interferers]
        out: dict[str, Any] = {"dataset": self.dataset, "scene": self.scene, "target": {"name": self.target},
                               "duration": self.duration}
        if len(inter) == 1:
            out["interferer"] = inter[0]
        else:
            out["interferers"] = inter
        out.update({"SNR": float(self.snr), "pre_samples": self.pre_samples, "post_samples": self.post_samples})
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out


# --------------------------------------------------------------------------------------------- validation
def _where(source: str, index: int | None) -> str:
    return f"{source}" if index is None else f"{source}, entry {index}"


def _field(entry: Mapping[str, Any], key: str, kind: type | tuple[type, ...], source: str, index: int | None,
           parent: str = "") -> Any:
    name = f"{parent}.{key}" if parent else key
    if not isinstance(entry, Mapping):
        raise AVSEFormatError(f"{_where(source, index)}: expected a JSON object{' for ' + parent if parent else ''},"
                              f" got {type(entry).__name__}")
    if key not in entry:
        raise AVSEFormatError(f"{_where(source, index)}: missing field '{name}'")
    value = entry[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    if not ok:
        want = " or ".join(k.__name__ for k in kinds)
        raise AVSEFormatError(f"{_where(source, index)}: field '{name}' must be {want}, got {value!r}")
    if isinstance(value, str) and not value:
        raise AVSEFormatError(f"{_where(source, index)}: field '{name}' is empty")
    return value


def _nonneg(value: int, name: str, source: str, index: int | None) -> int:
    if value < 0:
        raise AVSEFormatError(f"{_where(source, index)}: field '{name}' must be >= 0, got {value}")
    return value


def _read_array(path: str | os.PathLike) -> tuple[list[Any], str]:
    source = str(path)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise AVSEFormatError(f"{source}: file not found") from None
    except json.JSONDecodeError as err:
        raise AVSEFormatError(f"{source}: not valid JSON ({err})") from None
    if not isinstance(data, list):
        raise AVSEFormatError(f"{source}: expected a JSON array of entries, got {type(data).__name__}")
    return data, source


# ----------------------------------------------------------------------------------------------- metadata
def load_target_list(path: str | os.PathLike) -> list[TargetEntry]:
    """``target_speech_list.json``: entries with ``wavfile``, ``dataset``, ``nsamples``."""
    data, source = _read_array(path)
    out = []
    for i, e in enumerate(data):
        out.append(TargetEntry(wavfile=_field(e, "wavfile", str, source, i), dataset=_field(e, "dataset", str, source, i),
                               nsamples=_nonneg(_field(e, "nsamples", int, source, i), "nsamples", source, i)))
    return out


def load_masker_list(path: str | os.PathLike, type: str) -> list[MaskerEntry]:
    """A masker list of the given interferer ``type``.

    Speech lists name files by ``speaker`` and form one balancing group; noise (and music) lists name files
    by ``ID`` and are balanced by ``class`` (spec §2.2 step 3).
    """
    if type not in INTERFERER_TYPES:
        raise ValueError(f"masker type must be one of {INTERFERER_TYPES}, got {type!r}")
    data, source = _read_array(path)
    out = []
    for i, e in enumerate(data):
        ds = _field(e, "dataset", str, source, i)
        n = _nonneg(_field(e, "nsamples", int, source, i), "nsamples", source, i)
        if type == "speech":
            out.append(MaskerEntry(_field(e, "speaker", str, source, i), "speech", ds, n, "speech"))
        else:
            group = _field(e, "class", str, source, i) if type == "noise" or "class" in e else "music"
            out.append(MaskerEntry(_field(e, "ID", str, source, i), type, ds, n, group))
    return out


def load_speech_masker_list(path: str | os.PathLike) -> list[MaskerEntry]:
    return load_masker_list(path, "speech")


def load_noise_masker_list(path: str | os.PathLike) -> list[MaskerEntry]:
    return load_masker_list(path, "noise")


def load_music_masker_list(path: str | os.PathLike) -> list[MaskerEntry]:
    """Music maskers (later editions): the noise schema, ``class`` optional (one group ``music``)."""
    return load_masker_list(path, "music")


def _atomic_write_text(path: str | os.PathLike, text: str) -> None:
    write_text(path, text)


def save_target_list(path: str | os.PathLike, entries: Iterable[TargetEntry]) -> None:
    rows = [{"wavfile": e.wavfile, "dataset": e.dataset, "nsamples": int(e.nsamples)} for e in entries]
    _atomic_write_text(path, json.dumps(rows, indent=2))


def save_masker_list(path: str | os.PathLike, entries: Iterable[MaskerEntry]) -> None:
    rows = []
    for e in entries:
        if e.type == "speech":
            rows.append({"speaker": e.name, "dataset": e.dataset, "nsamples": int(e.nsamples), "type": "speech"})
        else:
            rows.append({"ID": e.name, "class": e.group, "dataset": e.dataset, "nsamples": int(e.nsamples),
                         "type": e.type})
    _atomic_write_text(path, json.dumps(rows, indent=2))


# ------------------------------------------------------------------------------------------------- scenes
def _parse_interferer(obj: Any, source: str, index: int, parent: str) -> Interferer:
    kind = _field(obj, "type", str, source, index, parent)
    if kind not in INTERFERER_TYPES:
        raise AVSEFormatError(f"{_where(source, index)}: field '{parent}.type' must be one of {INTERFERER_TYPES},"
                              f" got {kind!r}")
    name = _field(obj, "name", str, source, index, parent)
    if name.endswith(".wav"):  # later editions store the file name with its extension
        name = name[:-4]
    offset = _nonneg(_field(obj, "offset", int, source, index, parent), f"{parent}.offset", source, index)
    start = obj.get("time_start", 0)
    end = obj.get("time_end", 0)
    return Interferer(kind, name, offset, int(start), int(end))


def parse_scene(entry: Any, source: str = "<scene>", index: int | None = None) -> Scene:
    """Validate one scene object (spec §1.3, plus the ``interferers`` list of later editions)."""
    ds = _field(entry, "dataset", str, source, index)
    scene_id = _field(entry, "scene", str, source, index)
    target = _field(_field(entry, "target", Mapping, source, index), "name", str, source, index, "target")
    if "interferer" in entry:
        interferers = (_parse_interferer(_field(entry, "interferer", Mapping, source, index), source, index, "interferer"),)
    elif "interferers" in entry:
        items = _field(entry, "interferers", list, source, index)
        if not items:
            raise AVSEFormatError(f"{_where(source, index)}: field 'interferers' is an empty list")
        interferers = tuple(_parse_interferer(o, source, index, f"interferers[{k}]") for k, o in enumerate(items))
    else:
        raise AVSEFormatError(f"{_where(source, index)} (scene {scene_id}): missing field 'interferer'")
    snr = float(_field(entry, "SNR", (int, float), source, index))
    if snr != snr or snr in (float("inf"), float("-inf")):
        raise AVSEFormatError(f"{_where(source, index)}: field 'SNR' must be finite, got {snr}")
    # ``duration`` is informative only: the renderer uses the decoded target length (spec §7.1 I3).
    duration = (_nonneg(_field(entry, "duration", int, source, index), "duration", source, index)
                if "duration" in entry else 0)
    known = {"dataset", "scene", "target", "duration", "interferer", "interferers", "SNR", "pre_samples",
             "post_samples"}
    extra = {k: v for k, v in entry.items() if k not in known}
    return Scene(ds, scene_id, target, duration, interferers, snr, int(entry.get("pre_samples", 0)),
                 int(entry.get("post_samples", 0)), extra)


def load_scenes(path: str | os.PathLike) -> list[Scene]:
    """``scenes.<dataset>.json``; scene ids must be unique."""
    data, source = _read_array(path)
    scenes = [parse_scene(e, source, i) for i, e in enumerate(data)]
    seen: dict[str, int] = {}
    for i, s in enumerate(scenes):
        if s.scene in seen:
            raise AVSEFormatError(f"{source}, entry {i}: field 'scene' repeats id {s.scene!r} (first at entry {seen[s.scene]})")
        seen[s.scene] = i
    return scenes


def dumps_challenge_json(obj: Any, indent: int = 2, _level: int = 0) -> str:
    """``json.dumps(obj, indent=2)`` except that floats are written with exactly 4 decimals.

    The challenge builder monkey-patches the JSON encoder so every float (only ``SNR`` in a scene) is written
    as ``format(x, ".4f")`` (spec §2.6); the renderer then reads the rounded value. Doing it in a local
    writer keeps the rest of the process's JSON output untouched (spec §6 bug 6).
    """
    pad, inner = " " * (indent * _level), " " * (indent * (_level + 1))
    if isinstance(obj, bool) or obj is None or isinstance(obj, (str, int)):
        return json.dumps(obj)
    if isinstance(obj, float):
        if obj != obj or obj in (float("inf"), float("-inf")):
            raise ValueError(f"cannot write non-finite float {obj} in a scene file")
        return format(obj, ".4f")
    if isinstance(obj, Mapping):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(str(k))}: {dumps_challenge_json(v, indent, _level + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, Sequence):
        if not obj:
            return "[]"
        items = [f"{inner}{dumps_challenge_json(v, indent, _level + 1)}" for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    raise TypeError(f"cannot serialise {type(obj).__name__} in a scene file")


def scenes_to_json(scenes: Iterable[Scene]) -> str:
    return dumps_challenge_json([s.to_json() for s in scenes])


def save_scenes(path: str | os.PathLike, scenes: Iterable[Scene]) -> None:
    """Write a scene list as the challenge does (indent 2, SNR with 4 decimals), atomically."""
    _atomic_write_text(path, scenes_to_json(scenes))
