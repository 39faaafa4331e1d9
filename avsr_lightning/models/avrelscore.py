"""AVRelScore (CVPR 2023; spec §1.7): per-modality reliability scores, residual re-weighting, temporal
concatenation of video and audio tokens (2T) through one Conformer, keep the first T outputs.

Reference quirks kept by default, each with an opt-in fix (docs/reference_differences.md):

- the scorers' convolutions and BatchNorms see padded frames (``mask_padding=True`` fixes it, together
  with the frontends and the Conformer conv module);
- audio token t sits at index T + t, so the video-audio relative distance is the *padded* batch length
  T (spec §8.14): an utterance's output depends on the rest of the batch, and training (padded) differs
  from inference (T = length). ``packed_positions=True`` lays each utterance out as
  [video 0..l-1, audio 0..l-1, padding], the layout of the same utterance decoded alone.

An opt-in readout, not a fix: the reference keeps only the video half of the Conformer output, so audio
reaches the heads only through attention across the two halves, which a model learns late (a small model
trained briefly stays a lip reader). ``merge_halves=True`` adds the audio half (token t of each modality)
to the video half before the final norm, giving the audio stream a direct path to CTC and the decoder
from the first update (docs/models.md, "AVRelScore readout"). Same parameters, so checkpoints load either way.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from .conformer import ConformerEncoder, layer_norm
from .frontends import SAMPLES_PER_FRAME, AudioFrontend, VideoFrontend
from .masking import lengths_to_mask, masked_batch_norm, match_length
from .recognizer import Recognizer
from .resnet import DEFAULT_WIDTHS


class ReliabilityScorer(nn.Module):
    """(B, T, C) -> (B, T, C) scores in (0, 1): three k-wide Conv1d+BN stages (ReLU, ReLU, Sigmoid)."""

    def __init__(self, dim: int = 512, hidden: int = 1024, kernel: int = 7) -> None:
        super().__init__()
        pad = kernel // 2
        self.score = nn.Sequential(
            nn.Conv1d(dim, hidden, kernel, padding=pad), nn.BatchNorm1d(hidden), nn.ReLU(),
            nn.Conv1d(hidden, hidden, kernel, padding=pad), nn.BatchNorm1d(hidden), nn.ReLU(),
            nn.Conv1d(hidden, dim, kernel, padding=pad), nn.BatchNorm1d(dim), nn.Sigmoid(),
        )

    def forward(self, x: Tensor, valid: Tensor | None = None) -> Tensor:
        """``valid`` (B, 1, T): only for the ``mask_padding`` fix (zero padding before each conv)."""
        x = x.transpose(1, 2)
        if valid is None:
            return self.score(x).transpose(1, 2)
        v = valid.to(x.dtype)
        for i in range(0, len(self.score), 3):
            conv, bn, act = self.score[i], self.score[i + 1], self.score[i + 2]
            x = act(masked_batch_norm(bn, conv(x * v), valid))
        return x.transpose(1, 2)


class ReliabilityFusion(nn.Module):
    """Scores each modality from itself, re-weights x * (1 + s), concatenates along time (2T).

    ``forward(v, a, lengths)`` -> (fused (B, 2T, C), mask (B, 1, 2T) bool, s_v, s_a). The mask marks
    [0, l) and [T, T + l) valid, as the reference's repeated list mask.
    """

    def __init__(self, dim: int = 512, hidden: int = 1024, kernel: int = 7) -> None:
        super().__init__()
        self.score_vid = ReliabilityScorer(dim, hidden, kernel)
        self.score_aud = ReliabilityScorer(dim, hidden, kernel)

    def forward(self, v: Tensor, a: Tensor, lengths: Tensor,
                valid: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        s_v = self.score_vid(v, valid)
        s_a = self.score_aud(a, valid)
        fused = torch.cat([v * s_v + v, a * s_a + a], dim=1)  # reference order of operations
        frame_mask = lengths_to_mask(lengths, v.size(1))
        mask = torch.cat([frame_mask, frame_mask], dim=1).unsqueeze(1)
        return fused, mask, s_v, s_a


def pack_modalities(fused: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """Reference layout [v (T) | a (T)] -> per utterance [v 0..l-1, a 0..l-1, zeros] and its mask.

    Gather-based (no loop over the batch, no sync)."""
    b, two_t, c = fused.shape
    t = two_t // 2
    pos = torch.arange(two_t, device=fused.device).unsqueeze(0)  # (1, 2T)
    ell = lengths.unsqueeze(1)
    src = torch.where(pos < ell, pos, torch.where(pos < 2 * ell, t + pos - ell, torch.zeros_like(pos)))
    valid = pos < 2 * ell
    packed = fused.gather(1, src.expand(b, two_t).unsqueeze(-1).expand(b, two_t, c))
    return packed * valid.unsqueeze(-1).to(packed.dtype), valid.unsqueeze(1)


def read_out_both_halves(x: Tensor, lengths: Tensor, packed: bool) -> Tensor:
    """(B, 2T, C) Conformer output -> (B, T, C): video token t plus audio token t of the same frame.

    Reference layout: audio token t at T + t. Packed layout: at l + t (zeros past the utterance's end)."""
    t = x.size(1) // 2
    if not packed:
        return x[:, :t] + x[:, t:]
    pos = torch.arange(t, device=x.device).unsqueeze(0)
    src = (pos + lengths.unsqueeze(1)).clamp_max(2 * t - 1)  # past the end: any index, masked below
    audio = x.gather(1, src.unsqueeze(-1).expand(x.size(0), t, x.size(2)))
    return x[:, :t] + audio * (pos < lengths.unsqueeze(1)).unsqueeze(-1).to(x.dtype)


class AVRelScoreEncoder(ConformerEncoder):
    """Frontends + reliability fusion + Conformer, with the reference attribute names under ``encoders``."""

    def __init__(self, d_model: int = 256, heads: int = 4, layers: int = 12, ffn_dim: int = 2048,
                 conv_kernel: int = 31, dropout: float = 0.1, attention_dropout: float = 0.1,
                 frontend_widths: Sequence[int] = DEFAULT_WIDTHS, scorer_hidden: int = 1024,
                 scorer_kernel: int = 7, mask_padding: bool = False, packed_positions: bool = False,
                 merge_halves: bool = False, audio_stem_stride: int = 4) -> None:
        feat = int(frontend_widths[-1])
        super().__init__(
            feat, d_model, heads, layers, ffn_dim, conv_kernel, dropout, attention_dropout, mask_padding,
            before_embed={"frontend_aud": AudioFrontend(frontend_widths, stem_stride=audio_stem_stride),
                          "frontend_vid": VideoFrontend(frontend_widths)},
            # after_norm_vid/aud: created but never used by the reference (spec §1.7); kept for strict loading
            after_embed={"after_norm_vid": layer_norm(d_model), "after_norm_aud": layer_norm(d_model),
                         "fusion": ReliabilityFusion(feat, scorer_hidden, scorer_kernel)},
        )
        self.packed_positions = packed_positions
        self.merge_halves = merge_halves

    def features(self, video: Tensor, video_lengths: Tensor, audio: Tensor,
                 audio_lengths: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        """Frontend features v, a (B, T, C) aligned to the video length, and the frame mask (fix only)."""
        t = video.size(1)
        fix = self.mask_padding
        v = self.frontend_vid(video, video_lengths if fix else None)
        if fix and audio_lengths is None:
            audio_lengths = video_lengths * SAMPLES_PER_FRAME
        a = match_length(self.frontend_aud(audio, audio_lengths if fix else None), t)
        valid = lengths_to_mask(video_lengths, t).unsqueeze(1) if fix else None
        return v, a, valid

    def forward(self, video: Tensor, video_lengths: Tensor, audio: Tensor,  # type: ignore[override]
                audio_lengths: Tensor | None = None) -> Tensor:
        t = video.size(1)
        v, a, valid = self.features(video, video_lengths, audio, audio_lengths)
        fused, mask, _, _ = self.fusion(v, a, video_lengths, valid)
        if self.packed_positions:
            fused, mask = pack_modalities(fused, video_lengths)
        x = self.blocks(fused, mask)
        if self.merge_halves:
            return self.after_norm(read_out_both_halves(x, video_lengths, self.packed_positions))
        return self.after_norm(x[:, :t])


class AVRelScore(Recognizer):
    """AVRelScore recognizer. Defaults are the reference sizes (85,719,698 parameters).

    Args:
        vocab_size: classes incl. blank (0) and sos/eos (last id).
        d_model, heads, encoder_layers, ffn_dim, conv_kernel: Conformer sizes.
        decoder_layers, decoder_ffn_dim: Transformer decoder sizes.
        dropout, attention_dropout: dropout rates.
        frontend_widths: ResNet stage widths of both frontends; the last is the frontend output dim.
        scorer_hidden, scorer_kernel: reliability scorer width and temporal kernel.
        ctc_weight, label_smoothing, length_normalized_loss: the loss (spec §2).
        mask_padding: fix padding leakage (frontends, scorers, conv module, BatchNorm statistics).
        packed_positions: fix the padding-dependent audio-video relative distance (spec §8.14).
        merge_halves: read out video + audio halves of the Conformer output (opt-in, see the module doc).
        audio_stem_stride: stride of the raw-waveform stem (opt-in; 4 = reference), see
            :class:`~avsr_lightning.models.resnet.ResNet1dTrunk`.
    """

    UNUSED_PARAMETER_PREFIXES = ("encoders.after_norm_vid", "encoders.after_norm_aud")

    def __init__(self, vocab_size: int = 41, d_model: int = 256, heads: int = 4, encoder_layers: int = 12,
                 ffn_dim: int = 2048, decoder_layers: int = 6, decoder_ffn_dim: int = 2048, conv_kernel: int = 31,
                 dropout: float = 0.1, attention_dropout: float = 0.1,
                 frontend_widths: tuple[int, int, int, int] = DEFAULT_WIDTHS, scorer_hidden: int = 1024,
                 scorer_kernel: int = 7, ctc_weight: float = 0.1, label_smoothing: float = 0.1,
                 length_normalized_loss: bool = False, mask_padding: bool = False,
                 packed_positions: bool = False, merge_halves: bool = False, audio_stem_stride: int = 4) -> None:
        super().__init__()
        self.encoders = AVRelScoreEncoder(d_model, heads, encoder_layers, ffn_dim, conv_kernel, dropout,
                                          attention_dropout, frontend_widths, scorer_hidden, scorer_kernel,
                                          mask_padding, packed_positions, merge_halves, audio_stem_stride)
        self._build_heads(vocab_size, d_model, heads, decoder_layers, decoder_ffn_dim, dropout, attention_dropout,
                          ctc_weight, label_smoothing, length_normalized_loss)

    def encode(self, video: Tensor | None, video_lengths: Tensor | None, audio: Tensor | None,
               audio_lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        if video is None or audio is None or video_lengths is None:
            raise ValueError("AVRelScore needs both video and audio (and video_lengths)")
        return self.encoders(video, video_lengths, audio, audio_lengths), video_lengths

    def reliability(self, video: Tensor, video_lengths: Tensor, audio: Tensor,
                    audio_lengths: Tensor | None = None) -> dict[str, Tensor]:
        """Per-frame mean of the sigmoid reliability scores: dict(video=(B, T), audio=(B, T))."""
        enc = self.encoders
        v, a, valid = enc.features(video, video_lengths, audio, audio_lengths)
        _, _, s_v, s_a = enc.fusion(v, a, video_lengths, valid)
        return {"video": s_v.mean(-1), "audio": s_a.mean(-1)}
