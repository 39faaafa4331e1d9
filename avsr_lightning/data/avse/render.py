"""Offline AVSE renderer: the challenge's per-scene files, written in parallel, resumably and atomically.

For every scene it writes ``<scene>_mixed.wav``, ``<scene>_target.wav`` and ``<scene>_interferer.wav``
(16 kHz mono PCM-16, spec §1.4) and, optionally, ``<scene>_silent.mp4`` as a symbolic link to the target
video or as a stream copy without audio (the challenge's ``ffmpeg -c:v copy -an``). Unlike the challenge:

- a scene is complete only when all its files exist, so a rerun redoes interrupted scenes (and missing videos);
- every file is written under a temporary name and moved into place;
- a scene the challenge would crash on or silently skip is listed with its reason in ``render_report.json``
  and the other scenes still render (spec §3.9, §6 bugs 13-19, 22).

The target is read from a decoded wav (spec §7.1 I1: decode once, offline, and let both pipelines read it).
"""
from __future__ import annotations

import json
import os
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avsr_lightning.durable import durable_path, write_text

from .audio_io import write_wav_int16
from .errors import SceneError
from .formats import Scene
from .mixing import resolve_speech_weight
from .scene_io import AVSELayout, SceneMixer

__all__ = ["RenderReport", "render_scenes", "scene_output_paths", "VIDEO_MODES"]

VIDEO_MODES = ("none", "link", "copy")
_SIGNALS = ("mixed", "target", "interferer")


@dataclass
class RenderReport:
    """What happened to every scene: rendered now, already complete, or skipped with a reason."""

    rendered: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    #: scenes whose decoded target length differs from the metadata ``duration`` (rendered with the decoded length)
    duration_mismatch: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"rendered": len(self.rendered), "existing": len(self.existing), "skipped": len(self.skipped),
                "skipped_by_reason": dict(Counter(s["reason"] for s in self.skipped)),
                "duration_mismatch": len(self.duration_mismatch), "seconds": round(self.seconds, 3),
                "skipped_scenes": self.skipped, "duration_mismatch_scenes": self.duration_mismatch}


def scene_output_paths(output_dir: str | os.PathLike, scene: str) -> dict[str, Path]:
    out = Path(output_dir)
    paths = {s: out / f"{scene}_{s}.wav" for s in _SIGNALS}
    paths["video"] = out / f"{scene}_silent.mp4"
    return paths


def _copy_video_without_audio(src: Path, dst: Path) -> None:
    """Stream-copy the video stream only (no re-encode), like ``ffmpeg -c:v copy -an``."""
    import av

    with durable_path(dst, suffix=".mp4") as tmp:
        with av.open(str(src)) as inp, av.open(str(tmp), "w", format="mp4") as out:
            in_stream = inp.streams.video[0]
            out_stream = out.add_stream_from_template(in_stream)
            for packet in inp.demux(in_stream):
                if packet.dts is None:
                    continue
                packet.stream = out_stream
                out.mux(packet)


def _link_video(src: Path, dst: Path) -> None:
    with durable_path(dst, suffix=".mp4") as tmp:
        tmp.unlink()
        os.symlink(os.path.abspath(src), tmp)


class _SceneRenderer:
    """Per-process state (weighting filter, memory-mapped maskers) and the work for one scene."""

    def __init__(self, layout: AVSELayout, output_dir: str, speech_weight: Any, video: str, overwrite: bool) -> None:
        self.mixer = SceneMixer(layout, speech_weight)
        self.output_dir, self.video, self.overwrite = output_dir, video, overwrite

    def __call__(self, scene: Scene) -> tuple[str, str, str, int | None]:
        """``(scene id, status, detail, decoded length)``; status is ``rendered``, ``existing`` or a reason."""
        paths = scene_output_paths(self.output_dir, scene.scene)
        wavs_done = all(paths[s].exists() for s in _SIGNALS)
        video_done = self.video == "none" or os.path.lexists(paths["video"])
        if wavs_done and video_done and not self.overwrite:
            return scene.scene, "existing", "", None
        try:
            video_src = self.mixer.layout.target_video_path(scene)
            if self.video != "none" and not video_src.is_file():
                raise SceneError("missing_file", f"target video not found: {video_src}")
            length = None
            if not wavs_done or self.overwrite:
                target = self.mixer.read_target(scene)
                length = int(target.shape[0])
                signals = self.mixer.mix(scene, target)
                for name in _SIGNALS:  # mixed last: its presence marks the wavs as complete
                    write_wav_int16(paths[name], signals[name])
            if self.video == "link":
                _link_video(video_src, paths["video"])
            elif self.video == "copy":
                _copy_video_without_audio(video_src, paths["video"])
        except SceneError as err:
            return scene.scene, err.reason, err.detail, None
        return scene.scene, "rendered", "", length


_WORKER: _SceneRenderer | None = None


def _init_worker(args: tuple) -> None:
    global _WORKER
    _WORKER = _SceneRenderer(*args)


def _run_in_worker(scene: Scene) -> tuple[str, str, str, int | None]:
    assert _WORKER is not None
    return _WORKER(scene)


def render_scenes(scenes: Sequence[Scene], layout: AVSELayout | str | os.PathLike, output_dir: str | os.PathLike,
                  speech_weight: Any, num_workers: int = 0, video: str = "link", overwrite: bool = False,
                  report_path: str | os.PathLike | None = "auto", chunksize: int = 8) -> RenderReport:
    """Render ``scenes`` into ``output_dir`` and return (and write) the report.

    Args:
        layout: an :class:`AVSELayout` or the challenge root (default templates).
        speech_weight: the ``speech_weight.mat`` path, the taps, or a :class:`SpeechWeighting`.
        num_workers: processes; 0 renders in this process. Results do not depend on it.
        video: ``link`` (symlink to the target video), ``copy`` (stream copy without audio) or ``none``.
        overwrite: redo scenes whose files exist (default: skip them, which makes reruns resume).
        report_path: where to write the JSON report; ``auto`` = ``<output_dir>/render_report.json``; None = nowhere.
    """
    if video not in VIDEO_MODES:
        raise ValueError(f"video must be one of {VIDEO_MODES}, got {video!r}")
    layout = layout if isinstance(layout, AVSELayout) else AVSELayout(str(layout))
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    weighting = resolve_speech_weight(speech_weight)
    args = (layout, str(output_dir), weighting.taps, video, overwrite)
    start = time.perf_counter()
    if num_workers and num_workers > 0:
        with ProcessPoolExecutor(max_workers=num_workers, initializer=_init_worker, initargs=(args,)) as pool:
            results = list(pool.map(_run_in_worker, scenes, chunksize=chunksize))
    else:
        renderer = _SceneRenderer(*args)
        results = [renderer(s) for s in scenes]
    report = RenderReport(seconds=time.perf_counter() - start)
    by_id = {s.scene: s for s in scenes}
    for scene_id, status, detail, length in results:
        if status == "rendered":
            report.rendered.append(scene_id)
            duration = by_id[scene_id].duration
            if length is not None and duration and length != duration:
                report.duration_mismatch.append({"scene": scene_id, "duration": duration, "decoded": length})
        elif status == "existing":
            report.existing.append(scene_id)
        else:
            report.skipped.append({"scene": scene_id, "reason": status, "detail": detail})
            warnings.warn(f"AVSE render: skipped scene {scene_id}: {status}: {detail}", stacklevel=2)
    if report_path is not None:
        path = output_dir / "render_report.json" if report_path == "auto" else Path(report_path)
        write_text(path, json.dumps(report.to_json(), indent=2))
    return report
