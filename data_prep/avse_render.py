"""Render AVSE scenes offline: ``<scene>_mixed/_target/_interferer.wav`` (+ ``_silent.mp4``) per scene.

Parallel, resumable (complete scenes are skipped) and atomic; scenes that cannot be rendered are listed with
their reason in ``<output_dir>/render_report.json``. The mixing is ``avsr_lightning.data.avse.mix_scene``,
the same function the on-the-fly ``AVSEDataModule`` uses.

    python data_prep/avse_render.py --root /data/avse1 --scenes /data/avse1/metadata/scenes.dev.json \\
        --speech_weight avse_challenge/data_preparation/avse1/speech_weight.mat --num_workers 8
"""
from __future__ import annotations

import json

from avsr_lightning.data.avse.formats import load_scenes
from avsr_lightning.data.avse.render import render_scenes
from avsr_lightning.data.avse.scene_io import AVSELayout


def render(root: str, scenes: str, speech_weight: str, output_dir: str | None = None, num_workers: int = 0,
           video: str = "link", overwrite: bool = False, limit: int | None = None,
           target_audio: str = "{root}/{dataset}/targets/{name}.wav",
           target_video: str = "{root}/{dataset}/targets_video/{name}.mp4",
           interferer: str = "{root}/{dataset}/interferers/{type}/{name}.wav") -> dict:
    """Render a scene list and print the report summary.

    Args:
        root: the challenge data root (holds <dataset>/targets, <dataset>/interferers, ...).
        scenes: a scenes.<dataset>.json file.
        speech_weight: the challenge's speech_weight.mat.
        output_dir: default <root>/<dataset>/scenes of the first scene.
        num_workers: worker processes (0 = this process).
        video: link (symlink to the target video), copy (stream copy, audio dropped) or none.
        overwrite: re-render complete scenes.
        limit: render only the first N scenes.
        target_audio: template of the decoded target wav ({root}, {dataset}, {name}).
        target_video: template of the target video.
        interferer: template of a masker wav ({root}, {dataset}, {type}, {name}).
    """
    items = load_scenes(scenes)[:limit]
    if not items:
        raise SystemExit(f"{scenes}: no scenes")
    out = output_dir or f"{root}/{items[0].dataset}/scenes"
    layout = AVSELayout(root, target_audio, target_video, interferer)
    report = render_scenes(items, layout, out, speech_weight, num_workers=num_workers, video=video,
                           overwrite=overwrite).to_json()
    summary = {k: v for k, v in report.items() if not k.endswith("_scenes")}
    print(json.dumps(summary, indent=2))
    return summary


def main(argv: list[str] | None = None) -> None:
    from jsonargparse import CLI

    CLI(render, args=argv, as_positional=False)


if __name__ == "__main__":
    main()
