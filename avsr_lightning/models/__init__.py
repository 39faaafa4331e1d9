"""The AVSR model family and its building blocks (nn.Module only; never imports data/lightning/decoding)."""
from __future__ import annotations

from .activations import Swish
from .attention import MultiHeadAttention, RelPositionMultiHeadAttention
from .avrelscore import AVRelScore, AVRelScoreEncoder, ReliabilityFusion, ReliabilityScorer
from .conformer import ConformerBlock, ConformerEncoder, ConvolutionModule
from .conformer_av import Conformer, FusionMLP
from .ctc import CTCHead
from .decoder import DecoderLayer, TransformerDecoder
from .frontends import SAMPLES_PER_FRAME, AudioFrontend, VideoFrontend
from .modality_encoders import AudioEncoder, VideoEncoder
from .positional import PositionalEncoding, RelPositionalEncoding
from .recognizer import Recognizer
from .resnet import BasicBlock1d, BasicBlock2d, ResNet1dTrunk, ResNet2dTrunk
from .unimodal import Audio, Video
from .vcafe import VCAFE, VCAFEEncoder, VisualContextAttention

#: architecture name (as in the reference ``architecture=`` argument) -> class
ARCHITECTURES: dict[str, type[Recognizer]] = {
    "AVRelScore": AVRelScore,
    "VCAFE": VCAFE,
    "Conformer": Conformer,
    "Audio": Audio,
    "Video": Video,
}

__all__ = [
    "ARCHITECTURES", "AVRelScore", "AVRelScoreEncoder", "Audio", "AudioEncoder", "AudioFrontend", "BasicBlock1d",
    "BasicBlock2d", "CTCHead", "Conformer", "ConformerBlock", "ConformerEncoder", "ConvolutionModule",
    "DecoderLayer", "FusionMLP", "MultiHeadAttention", "PositionalEncoding", "Recognizer", "RelPositionMultiHeadAttention",
    "RelPositionalEncoding", "ReliabilityFusion", "ReliabilityScorer", "ResNet1dTrunk", "ResNet2dTrunk",
    "SAMPLES_PER_FRAME", "Swish", "TransformerDecoder", "VCAFE", "VCAFEEncoder", "Video", "VideoEncoder",
    "VideoFrontend", "VisualContextAttention",
]
