"""AVSE challenge scenes: metadata formats, seeded scene building, sample-exact mixing and rendering.

``mix_scene(target, masker, scene)`` is the single mixing function both the offline renderer
(:mod:`.render`) and the on-the-fly :class:`~avsr_lightning.datamodules.avse.AVSEDataModule` use.
"""
from .builder import DatasetSpec, SceneBuilderConfig, SceneSampler, build_challenge_scene_lists, build_scenes
from .errors import REASONS, SceneError
from .formats import (
                      AVSEFormatError,
                      Interferer,
                      MaskerEntry,
                      Scene,
                      TargetEntry,
                      load_masker_list,
                      load_noise_masker_list,
                      load_scenes,
                      load_speech_masker_list,
                      load_target_list,
                      parse_scene,
                      save_masker_list,
                      save_scenes,
                      save_target_list,
)
from .mixing import (
                      RAMP_SAMPLES,
                      SAMPLE_RATE,
                      SpeechWeighting,
                      apply_ramp,
                      design_speech_weight,
                      load_speech_weight,
                      mix_scene,
                      mix_scene_float,
                      raised_cosine_ramp,
                      set_default_speech_weight,
)
from .render import RenderReport, render_scenes
from .scene_io import AVSELayout, SceneMixer

__all__ = [
    "mix_scene", "mix_scene_float", "SpeechWeighting", "load_speech_weight", "set_default_speech_weight",
    "raised_cosine_ramp", "apply_ramp", "RAMP_SAMPLES", "SAMPLE_RATE", "design_speech_weight",
    "AVSELayout", "SceneMixer", "render_scenes", "RenderReport",
    "SceneError", "REASONS", "AVSEFormatError", "Scene", "Interferer", "TargetEntry", "MaskerEntry",
    "load_target_list", "load_masker_list", "load_speech_masker_list", "load_noise_masker_list", "load_scenes",
    "save_scenes", "save_target_list", "save_masker_list", "parse_scene",
    "SceneBuilderConfig", "DatasetSpec", "build_scenes", "build_challenge_scene_lists", "SceneSampler",
]
