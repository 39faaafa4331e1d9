"""Configurable per-utterance transform pipelines (docs/data.md, "Transform pipeline").

``train_transforms`` / ``eval_transforms`` of a data module are ordered lists of these steps, built from YAML
with ``class_path``/``init_args`` like the model and the optimizer. A new corruption is one new
:class:`Transform` subclass and one YAML line. The older single-object :class:`VideoTransform` and the
helpers ``normalize_utterance`` / ``fit_audio_to_frames`` stay for the AVSE and raw-video paths.
"""
from avsr_lightning.data.transforms.audio import (
                                                       AudioNormalize,
                                                       MatchAudioToVideo,
                                                       NoiseMixing,
                                                       VolumePerturbation,
)
from avsr_lightning.data.transforms.base import Clip, PipelineContext, Transform, bound_pipeline, run_pipeline
from avsr_lightning.data.transforms.corruption import SpeedPerturbation, TestCondition, VisualCorruption
from avsr_lightning.data.transforms.defaults import default_eval_transforms, default_train_transforms
from avsr_lightning.data.transforms.functional import (
                                                       VIDEO_MEAN,
                                                       VIDEO_STD,
                                                       VideoTransform,
                                                       fit_audio_to_frames,
                                                       normalize_utterance,
)
from avsr_lightning.data.transforms.modality_dropout import DropoutStage, ModalityDropout
from avsr_lightning.data.transforms.video import (
                                                       CenterCrop,
                                                       Cutout,
                                                       HorizontalFlip,
                                                       Normalize,
                                                       RandomCrop,
                                                       Resize,
                                                       TimeMask,
)

__all__ = ["AudioNormalize", "CenterCrop", "Clip", "Cutout", "DropoutStage", "HorizontalFlip", "MatchAudioToVideo",
           "ModalityDropout", "NoiseMixing",
           "Normalize", "PipelineContext", "RandomCrop", "Resize", "SpeedPerturbation", "TestCondition", "TimeMask",
           "Transform", "VIDEO_MEAN", "VIDEO_STD", "VideoTransform", "VisualCorruption", "VolumePerturbation",
           "bound_pipeline", "default_eval_transforms", "default_train_transforms", "fit_audio_to_frames",
           "normalize_utterance", "run_pipeline"]
