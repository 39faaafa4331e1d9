"""Output writers: plain text, JSON (segments + per-word times) and SRT/VTT subtitles built from the words."""
from __future__ import annotations

import json
from typing import Any

#: A cue holds at most this many words and never spans a pause longer than ``MAX_PAUSE`` s or a segment edge.
MAX_WORDS = 7
MAX_PAUSE = 1.0


def _clock(seconds: float, sep: str) -> str:
    ms = int(round(max(0.0, seconds) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def cues(result: dict[str, Any]) -> list[tuple[float, float, str]]:
    """Words grouped into subtitle cues: (start, end, text); times are the JSON word times."""
    out: list[tuple[float, float, str]] = []
    group: list[dict] = []

    def flush() -> None:
        if group:
            out.append((group[0]["start"], group[-1]["end"], " ".join(w["word"] for w in group)))
            group.clear()

    for w in result["words"]:
        if group and (len(group) >= MAX_WORDS or w["segment"] != group[-1]["segment"]
                      or w["start"] - group[-1]["end"] > MAX_PAUSE):
            flush()
        group.append(w)
    flush()
    return out


def to_srt(result: dict[str, Any]) -> str:
    lines = []
    for i, (a, b, text) in enumerate(cues(result), 1):
        lines += [str(i), f"{_clock(a, ',')} --> {_clock(b, ',')}", text, ""]
    return "\n".join(lines)


def to_vtt(result: dict[str, Any]) -> str:
    lines = ["WEBVTT", ""]
    for a, b, text in cues(result):
        lines += [f"{_clock(a, '.')} --> {_clock(b, '.')}", text, ""]
    return "\n".join(lines)


def to_txt(result: dict[str, Any]) -> str:
    return result["text"] + "\n"


def to_json(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=2, allow_nan=False) + "\n"


WRITERS = {"txt": to_txt, "json": to_json, "srt": to_srt, "vtt": to_vtt}
