"""Public decoding entry points: :func:`decode` and :class:`BeamSearchDecoder`.

Both run the encoder once for the whole batch, then the batched joint CTC/attention beam search
(:mod:`.beam_search`) with the reference scorer set: decoder (weight 1 - ctc_weight), CTC prefix
scores (ctc_weight), optional RNN LM (lm_weight) and a length bonus. Defaults are the reference
``test.py`` settings (beam 40, CTC 0.1, LM 0.5, length bonus 0.5).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import Tensor, nn

from ..batch import AVBatch
from ..models.rnnlm import RNNLM
from ..text import CharTokenizer, Tokenizer
from .beam_search import BatchBeamSearch, SearchResult
from . import fast_lm
from .fast_attention import CachedAttentionScorer, supports
from .fast_lm import FusedLSTMLMScorer
from .hypothesis import Hypothesis
from .scorers import AttentionScorer, CTCScorer, LengthBonus, RNNLMScorer, SearchContext

__all__ = ["decode", "BeamSearchDecoder", "beam_search_from_features"]


@contextmanager
def _eval_mode(*modules: nn.Module | None) -> Iterator[None]:
    """Decode with dropout off, then restore each module's training flag."""
    flags = [(m, m.training) for m in modules if m is not None]
    for m, _ in flags:
        m.eval()
    try:
        yield
    finally:
        for m, was_training in flags:
            m.train(was_training)


def _check_weights(beam_size: int, ctc_weight: float, lm_weight: float, length_bonus: float, nbest: int) -> None:
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    if not 0.0 <= ctc_weight <= 1.0:
        raise ValueError(f"ctc_weight must be in [0, 1] (decoder weight = 1 - ctc_weight), got {ctc_weight}")
    if lm_weight < 0:
        raise ValueError(f"lm_weight must be >= 0, got {lm_weight}")
    if nbest < 1:
        raise ValueError(f"nbest must be >= 1, got {nbest}")
    if not isinstance(length_bonus, (int, float)):
        raise ValueError(f"length_bonus must be a number, got {length_bonus!r}")


def beam_search_from_features(model: nn.Module, features: Tensor, lengths: Tensor, beam_size: int = 40,
                              ctc_weight: float = 0.1, lm: RNNLM | None = None, lm_weight: float = 0.5,
                              length_bonus: float = 0.5, pre_beam_ratio: float = 1.5,
                              cached_decoder: bool = True, compact: bool = True,
                              fused_lm: bool = True) -> list[list[SearchResult]]:
    """Beam search on given encoder outputs ``features`` (B, T, D) with valid ``lengths`` (B,).

    ``model`` needs ``decoder`` (with ``step``), ``ctc`` (with ``log_probs``), ``vocab_size``, ``sos``,
    ``eos`` and ``blank``. Returns every ended hypothesis per utterance, best first.
    ``cached_decoder=False`` scores with the generic ``decoder.step`` (same numbers, slower);
    ``compact=False`` scores every beam slot every step (same results, slower; for comparisons);
    ``fused_lm=False`` scores an LSTM LM with the generic ``RNNLM.step`` (same numbers, slower).
    """
    vocab = int(model.vocab_size)
    if lm is not None and lm.vocab_size != vocab:
        raise ValueError(f"LM vocabulary size {lm.vocab_size} != model vocabulary size {vocab}")
    lengths = lengths.to(features.device).long().clamp(min=0, max=features.size(1))
    if cached_decoder and supports(model.decoder):
        attention = CachedAttentionScorer(model.decoder, beam_size)
    else:
        attention = AttentionScorer(model.decoder)
    scorers: dict = {"decoder": attention}
    if lm is not None and lm_weight != 0:
        scorers["lm"] = FusedLSTMLMScorer(lm) if fused_lm and fast_lm.supports(lm) else RNNLMScorer(lm)
    scorers["length_bonus"] = LengthBonus(vocab)
    if ctc_weight != 0:
        scorers["ctc"] = CTCScorer(model.ctc.log_probs(features), lengths, model.blank, model.eos)
    weights = {"decoder": 1.0 - ctc_weight, "ctc": ctc_weight, "lm": lm_weight, "length_bonus": length_bonus}
    search = BatchBeamSearch(scorers, weights, beam_size, vocab, model.sos, model.eos, pre_beam_ratio=pre_beam_ratio,
                             compact=compact)
    return search(SearchContext(features, lengths, lengths.new_zeros(0)), lengths)


def _to_hypotheses(results: list[list[SearchResult]], nbest: int, sos: int, eos: int,
                   tokenizer: Tokenizer | None) -> list[list[Hypothesis]]:
    out = []
    for ended in results:
        if not ended:  # zero-length input: an empty hypothesis, never an exception
            out.append([Hypothesis([], 0.0, "", {})])
            continue
        hyps = []
        for r in ended[:nbest]:
            tokens = r.tokens(sos, eos)
            hyps.append(Hypothesis(tokens, r.score, tokenizer.decode(tokens) if tokenizer is not None else "",
                                   dict(r.scores)))
        out.append(hyps)
    return out


def _encode_valid(model: nn.Module, video: Tensor | None, video_lengths: Tensor | None, audio: Tensor | None,
                  audio_lengths: Tensor | None) -> tuple[Tensor | None, Tensor | None, list[int]]:
    """Encode only utterances with some input; returns features, lengths and their batch indices."""
    lengths = video_lengths if video_lengths is not None else audio_lengths
    if lengths is None:
        raise ValueError("decode needs video_lengths or audio_lengths")
    if audio is not None and audio_lengths is not None and video is None:
        usable = audio_lengths > 0
    else:
        usable = lengths > 0
    keep = usable.nonzero().view(-1)
    keep_list = keep.tolist()
    if not keep_list:
        return None, None, []
    if len(keep_list) == usable.numel():
        features, feat_lengths = model.encode(video, video_lengths, audio, audio_lengths)
    else:
        def pick(x: Tensor | None) -> Tensor | None:
            return None if x is None else x.index_select(0, keep.to(x.device))

        features, feat_lengths = model.encode(pick(video), pick(video_lengths), pick(audio), pick(audio_lengths))
    return features, feat_lengths, keep_list


def _check_inputs(video: Tensor | None, video_lengths: Tensor | None, audio: Tensor | None,
                  audio_lengths: Tensor | None) -> None:
    """Refuse inputs that would otherwise decode to garbage without a word (docs/decoding.md, "Input checks").

    uint8 video is refused rather than converted: the models expect frames normalised exactly as in training
    (see ``VideoTransform``), which a silent ``/255`` would not reproduce. NaN/inf would make every beam
    score NaN and end in an empty hypothesis with score 0.0; lengths longer than the tensors, negative, of
    the wrong count or not integers would decode padding or crash deep in the encoder.
    """
    if video is None and audio is None:
        raise ValueError("decode needs video or audio (both are None)")
    for name, x, lengths, lname in (("video", video, video_lengths, "video_lengths"),
                                    ("audio", audio, audio_lengths, "audio_lengths")):
        if x is None:
            continue
        if not isinstance(x, Tensor):
            raise TypeError(f"decode: {name} must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"decode: {name} has dtype {x.dtype}; the models take float input normalised as in "
                            f"training (video: VideoTransform, audio: per-utterance zero mean/unit variance) - "
                            f"convert it first, e.g. with avsr_lightning.transcribe or the data transforms")
        if not bool(torch.isfinite(x).all()):
            bad = (~torch.isfinite(x)).flatten(1).any(1).nonzero().view(-1).tolist()
            raise ValueError(f"decode: {name} contains NaN or infinite values (batch rows {bad[:10]}); "
                             f"fix or drop those inputs")
        if lengths is None:
            continue
        if not isinstance(lengths, Tensor) or lengths.dim() != 1 or lengths.is_floating_point():
            raise ValueError(f"decode: {lname} must be a 1-D integer tensor, got "
                             f"{getattr(lengths, 'dtype', type(lengths).__name__)} "
                             f"{tuple(getattr(lengths, 'shape', ()))}")
        if lengths.numel() != x.size(0):
            raise ValueError(f"decode: {lname} has {lengths.numel()} entries but {name} has batch size {x.size(0)}")
        if lengths.numel() and (int(lengths.min()) < 0 or int(lengths.max()) > x.size(1)):
            raise ValueError(f"decode: {lname} must be in [0, {x.size(1)}] ({name} has {x.size(1)} "
                             f"{'frames' if name == 'video' else 'samples'} along dim 1), got "
                             f"{lengths.tolist()[:10]}")
    if video is not None and video_lengths is None:
        raise ValueError("decode got video but video_lengths is None")
    if video is None and audio_lengths is None:
        raise ValueError("decode got audio without video but audio_lengths is None")
    if video is not None and audio is not None and video.size(0) != audio.size(0):
        raise ValueError(f"decode: video batch size {video.size(0)} != audio batch size {audio.size(0)}")


def _default_tokenizer(model: nn.Module, tokenizer: Tokenizer | None) -> Tokenizer | None:
    if tokenizer is not None:
        return tokenizer
    reference = CharTokenizer()
    return reference if int(model.vocab_size) == reference.vocab_size else None


@torch.no_grad()
def decode(model: nn.Module, video: Tensor | None, video_lengths: Tensor | None, audio: Tensor | None,
           audio_lengths: Tensor | None, beam_size: int = 40, ctc_weight: float = 0.1, lm: RNNLM | None = None,
           lm_weight: float = 0.5, length_bonus: float = 0.5, nbest: int = 1, pre_beam_ratio: float = 1.5,
           tokenizer: Tokenizer | None = None) -> list[list[Hypothesis]]:
    """Joint CTC/attention beam search for a batch; per utterance up to ``nbest`` hypotheses, best first.

    Each :class:`Hypothesis` has ``tokens`` (ids without sos/eos), ``score`` (weighted total, as the
    reference), ``text`` and ``scores`` (unweighted per-scorer sums). Utterances with no input frames get
    one empty hypothesis (score 0). Float input only; NaN/inf values, uint8 video and lengths that do not match
    the tensors raise ``ValueError``/``TypeError`` naming the problem. ``lm`` is an :class:`RNNLM` (see :func:`avsr_lightning.load_lm`).
    """
    _check_weights(beam_size, ctc_weight, lm_weight, length_bonus, nbest)
    _check_inputs(video, video_lengths, audio, audio_lengths)
    tokenizer = _default_tokenizer(model, tokenizer)
    batch = int((video_lengths if video_lengths is not None else audio_lengths).numel())
    with _eval_mode(model, lm):
        if lm is not None:
            ref = next(model.parameters())
            lm.to(device=ref.device)
        features, lengths, keep = _encode_valid(model, video, video_lengths, audio, audio_lengths)
        results: list[list[SearchResult]] = [[] for _ in range(batch)]
        if keep:
            found = beam_search_from_features(model, features, lengths, beam_size, ctc_weight, lm, lm_weight,
                                              length_bonus, pre_beam_ratio)
            for b, ended in zip(keep, found):
                results[b] = ended
    return _to_hypotheses(results, nbest, int(model.sos), int(model.eos), tokenizer)


class BeamSearchDecoder:
    """The beam search as a decoder object (``decoder(model, batch) -> list[list[Hypothesis]]``), e.g.
    ``test_decoder`` of :class:`~avsr_lightning.lightning_module.AVSRModule`.

    Args:
        beam_size, ctc_weight, lm_weight, length_bonus, nbest, pre_beam_ratio: as :func:`decode`.
        lm_path, lm_config: an ESPnet-format LM (``model.pth`` and ``model.json``; ``lm_config`` defaults to
            ``model.json`` beside ``lm_path``). Loaded (and checked against the model vocabulary) on first
            use, on the model's device. No LM when ``lm_path`` is None or ``lm_weight`` is 0.
        tokenizer: fills ``Hypothesis.text`` (default: the reference characters when the vocabulary fits).
    """

    def __init__(self, beam_size: int = 40, ctc_weight: float = 0.1, lm_path: str | None = None,
                 lm_config: str | None = None, lm_weight: float = 0.5, length_bonus: float = 0.5, nbest: int = 1,
                 pre_beam_ratio: float = 1.5, tokenizer: Tokenizer | None = None) -> None:
        _check_weights(beam_size, ctc_weight, lm_weight, length_bonus, nbest)
        if lm_path is not None and not os.path.isfile(lm_path):
            raise FileNotFoundError(f"BeamSearchDecoder: lm_path {lm_path!r} does not exist (set lm_path: null "
                                    f"to decode without an LM)")
        self.beam_size, self.ctc_weight, self.lm_weight = beam_size, ctc_weight, lm_weight
        self.length_bonus, self.nbest, self.pre_beam_ratio = length_bonus, nbest, pre_beam_ratio
        self.lm_path, self.lm_config, self.tokenizer = lm_path, lm_config, tokenizer
        self._lm: RNNLM | None = None

    def lm(self, model: nn.Module) -> RNNLM | None:
        if self.lm_path is None or self.lm_weight == 0:
            return None
        if self._lm is None:
            from ..weights.espnet_lm import load_lm

            tok = self.tokenizer if isinstance(self.tokenizer, CharTokenizer) else _default_tokenizer(model, None)
            if tok is None:
                tok = int(model.vocab_size)
            self._lm = load_lm(self.lm_path, self.lm_config, vocab=tok)
        return self._lm

    def __call__(self, model: nn.Module, batch: AVBatch) -> list[list[Hypothesis]]:
        return decode(model, *batch.model_inputs(), beam_size=self.beam_size, ctc_weight=self.ctc_weight, lm=self.lm(model),
                      lm_weight=self.lm_weight, length_bonus=self.length_bonus, nbest=self.nbest,
                      pre_beam_ratio=self.pre_beam_ratio, tokenizer=self.tokenizer)

    def __repr__(self) -> str:
        return (f"BeamSearchDecoder(beam_size={self.beam_size}, ctc_weight={self.ctc_weight}, "
                f"lm_path={self.lm_path!r}, lm_weight={self.lm_weight}, length_bonus={self.length_bonus}, "
                f"nbest={self.nbest})")
