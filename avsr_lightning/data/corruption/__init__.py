"""Audio and visual corruption: pure ops (functional), seeded wrappers (NoiseMixer, VisualCorruption)."""
from avsr_lightning.data.corruption.acoustic import NoiseMixer
from avsr_lightning.data.corruption.occluders import OccluderBank
from avsr_lightning.data.corruption.seeding import generator_for, torch_generator_for
from avsr_lightning.data.corruption.visual import VISUAL_CONDITIONS, VisualCorruption

__all__ = ["NoiseMixer", "OccluderBank", "VisualCorruption", "VISUAL_CONDITIONS", "generator_for",
           "torch_generator_for"]
