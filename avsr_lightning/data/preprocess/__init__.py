"""Raw LRS2/LRS3 videos + landmarks → the processed layout (mouth crops, 16 kHz wav, text, aligned landmarks)."""
from avsr_lightning.data.preprocess.alignment import STABLE_POINTS, align_clip, crop_mouth
from avsr_lightning.data.preprocess.detector import LandmarkDetector, load_detector
from avsr_lightning.data.preprocess.runner import (
           PreprocessReport,
           list_clips,
           preprocess_corpus,
           process_clip,
)

__all__ = ["STABLE_POINTS", "align_clip", "crop_mouth", "LandmarkDetector", "load_detector", "PreprocessReport",
           "list_clips", "preprocess_corpus", "process_clip"]
