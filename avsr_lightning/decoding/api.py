"""Public decoding entry points: :func:`decode` and :class:`BeamSearchDecoder`.

Both run the encoder once for the whole batch, then the batched joint CTC/attention beam search
(:mod:`.beam_search`) with the reference scorer set: decoder (weight 1 - ctc_weight), CTC prefix
scores (ctc_weight), optional RNN LM (lm_weight) and a length bonus. Defaults are the reference
``test.py`` settings (beam 40, CTC 0.1, LM 0.5, length bonus 0.5).
"""
from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext
from typing import Iterator

import torch
from torch import Tensor, nn

from ..batch import SAMPLES_PER_FRAME, AVBatch
from ..models.rnnlm import RNNLM
from ..text import CharTokenizer, Tokenizer
from . import fast_lm, precision
from .beam_search import BatchBeamSearch, SearchResult
from .fast_attention import CachedAttentionScorer, supports
from .fast_lm import FusedLSTMLMScorer
from .hypothesis import Hypothesis
from .scorers import AttentionScorer, CTCScorer, LengthBonus, RNNLMScorer, SearchContext

__all__ = ["decode", "BeamSearchDecoder", "beam_search_from_features", "depends_on_padding", "chunks_by_frames"]


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


@contextmanager
def _one_weight_cast(device_type: str, enabled: bool) -> Iterator[None]:
    """Keep autocast's bf16 weight copies for a whole ``decode`` call.

    Autocast caches the bf16 copy of each parameter it casts, but drops the cache when the *outermost*
    autocast context exits, so encoding chunk by chunk (and, on the padding-safe path, each equal-length
    group) under a fresh context cast every encoder weight again per call: at one utterance per group that
    cost as much as the bf16 encoder itself. A *disabled* context around the loop keeps the nesting level
    above zero (the cache lives until it exits) while leaving autocast off for the search, which runs its
    own reduced-precision copies (docs/decoding.md "Fast paths"). Only parameters that require grad are
    cached, as autocast's rule is.
    """
    if not enabled:
        yield
        return
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=False):
        yield


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
                              fused: bool = True) -> list[list[SearchResult]]:
    """Beam search on given encoder outputs ``features`` (B, T, D) with valid ``lengths`` (B,).

    ``model`` needs ``decoder`` (with ``step``), ``ctc`` (with ``log_probs``), ``vocab_size``, ``sos``,
    ``eos`` and ``blank``. Returns every ended hypothesis per utterance, best first.
    ``cached_decoder=False`` scores with the generic ``decoder.step`` (same numbers, slower);
    ``compact=False`` scores every beam slot every step (same results, slower; for comparisons);
    ``fused=False`` scores an LSTM LM with the generic ``RNNLM.step``, projects the decoder's
    self-attention q/k/v separately and multiplies by the weights as ``nn.Linear`` stores them instead of
    their row-major copies (:mod:`.search_weights`) (same numbers, slower; with ``compact=False`` the former
    search).
    """
    vocab = int(model.vocab_size)
    if lm is not None and lm.vocab_size != vocab:
        raise ValueError(f"LM vocabulary size {lm.vocab_size} != model vocabulary size {vocab}")
    # the fast path runs in inference mode: a beam step is hundreds of small operators, and skipping
    # their autograd and version-counter bookkeeping is ~4 % of a B = 1 search (docs/decoding.md)
    with torch.inference_mode() if fused else nullcontext():
        return _search(model, features, lengths, beam_size, ctc_weight, lm, lm_weight, length_bonus, pre_beam_ratio,
                       cached_decoder, compact, fused)


def _search(model: nn.Module, features: Tensor, lengths: Tensor, beam_size: int, ctc_weight: float,
            lm: RNNLM | None, lm_weight: float, length_bonus: float, pre_beam_ratio: float, cached_decoder: bool,
            compact: bool, fused: bool) -> list[list[SearchResult]]:
    vocab = int(model.vocab_size)
    lengths = lengths.to(features.device).long().clamp(min=0, max=features.size(1))
    if cached_decoder and supports(model.decoder):
        attention = CachedAttentionScorer(model.decoder, beam_size, fuse=fused)
    else:
        attention = AttentionScorer(model.decoder)
    scorers: dict = {"decoder": attention}
    if lm is not None and lm_weight != 0:
        scorers["lm"] = FusedLSTMLMScorer(lm) if fused and fast_lm.supports(lm) else RNNLMScorer(lm)
    scorers["length_bonus"] = LengthBonus(vocab)
    if ctc_weight != 0:
        scorers["ctc"] = CTCScorer(model.ctc.log_probs(features), lengths, model.blank, model.eos, joint=fused)
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


def _usable(video_lengths: Tensor | None, audio: Tensor | None, audio_lengths: Tensor | None,
            video: Tensor | None) -> tuple[list[int], list[int], list[int]]:
    """(indices of utterances with some input, video lengths, audio lengths) as host lists."""
    lengths = video_lengths if video_lengths is not None else audio_lengths
    if lengths is None:
        raise ValueError("decode needs video_lengths or audio_lengths")
    v = [int(x) for x in video_lengths.tolist()] if video_lengths is not None else None
    a = [int(x) for x in audio_lengths.tolist()] if audio_lengths is not None else None
    if audio is not None and a is not None and video is None:
        usable = [i for i, n in enumerate(a) if n > 0]
    else:
        usable = [i for i, n in enumerate(v if v is not None else a) if n > 0]
    n = int(lengths.numel())
    return usable, (v if v is not None else [0] * n), (a if a is not None else [0] * n)


def depends_on_padding(model: nn.Module) -> bool:
    """True when the encoding of an utterance changes with the padding around it: some submodule keeps a
    reference quirk, ``mask_padding=False`` (every architecture by default) or, for AVRelScore,
    ``packed_positions=False`` (docs/reference_differences.md)."""
    return any(getattr(m, "mask_padding", None) is False or getattr(m, "packed_positions", None) is False
               for m in model.modules())


def chunks_by_frames(order: list[int], lengths: list[int], max_frames: int | None) -> list[list[int]]:
    """Consecutive groups of ``order`` whose padded size ``len(group) * longest`` stays within ``max_frames``
    (a single utterance longer than the budget is a group of its own). None: one group."""
    if max_frames is None:
        return [list(order)] if order else []
    groups: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        t = max(lengths[i], 1)
        if current and (len(current) + 1) * max(longest, t) > max_frames:
            groups.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, t)
    if current:
        groups.append(current)
    return groups


def _pick(x: Tensor | None, idx: list[int], length: int | None) -> Tensor | None:
    """Rows ``idx`` of a padded (B, T, ...) input, cut to ``length`` time steps (dim 1)."""
    if x is None:
        return None
    out = x.index_select(0, torch.tensor(idx, device=x.device))
    return out if length is None else out[:, :length]


def _encode_group(model: nn.Module, inputs: tuple, idx: list[int], vlen: list[int], alen: list[int],
                  autocast: bool) -> tuple[Tensor, Tensor]:
    video, video_lengths, audio, audio_lengths = inputs
    vmax = max(vlen[i] for i in idx) if video is not None else None
    amax = None
    if audio is not None and audio_lengths is not None:
        amax = max(alen[i] for i in idx)
    elif audio is not None and vmax is not None:
        amax = vmax * SAMPLES_PER_FRAME
    args = (_pick(video, idx, vmax), _pick(video_lengths, idx, None), _pick(audio, idx, amax),
            _pick(audio_lengths, idx, None))
    ref = video if video is not None else audio
    with torch.autocast(ref.device.type, dtype=torch.bfloat16, enabled=autocast):
        features, lengths = model.encode(*args)
    return features.float(), lengths


def _encode(model: nn.Module, inputs: tuple, idx: list[int], vlen: list[int], alen: list[int], padding_safe: bool,
            autocast: bool) -> tuple[Tensor, Tensor]:
    """Encode utterances ``idx`` (cut to their longest input). ``padding_safe``: encode each set of
    equal-length utterances without padding, then pad the encoder outputs for the (batch-invariant)
    search, so every utterance is encoded exactly as if alone."""
    if not padding_safe:
        return _encode_group(model, inputs, idx, vlen, alen, autocast)
    by_length: dict[tuple[int, int], list[int]] = {}
    for i in idx:
        by_length.setdefault((vlen[i], alen[i]), []).append(i)
    parts = {}
    for group in by_length.values():
        f, n = _encode_group(model, inputs, group, vlen, alen, autocast)
        for k, i in enumerate(group):
            parts[i] = (f[k], n[k])
    t = max(parts[i][0].size(0) for i in idx)
    first = parts[idx[0]][0]
    features = first.new_zeros(len(idx), t, first.size(-1))
    for k, i in enumerate(idx):
        features[k, :parts[i][0].size(0)] = parts[i][0]
    return features, torch.stack([parts[i][1] for i in idx]).long()


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
           tokenizer: Tokenizer | None = None, dtype: str = "fp32", quantize: str = "none",
           max_frames: int | None = None, padding_safe: bool | None = None,
           compact: bool = True, fused: bool = True) -> list[list[Hypothesis]]:
    """Joint CTC/attention beam search for a batch; per utterance up to ``nbest`` hypotheses, best first.

    Each :class:`Hypothesis` has ``tokens`` (ids without sos/eos), ``score`` (weighted total, as the
    reference), ``text`` and ``scores`` (unweighted per-scorer sums). Utterances with no input frames get
    one empty hypothesis (score 0). Float input only: NaN/inf values, uint8 video and lengths that do not
    match the tensors raise ``ValueError``/``TypeError`` naming the problem. ``lm`` is an :class:`RNNLM`
    (see :func:`avsr_lightning.load_lm`).

    Fast paths (docs/decoding.md "Fast paths"):

    - ``max_frames``: decode the batch (e.g. a whole test set) in length-sorted chunks of at most
      ``max_frames`` padded encoder frames (``utterances x longest``); None = one chunk.
    - ``padding_safe``: encode only equal-length utterances together (no padding reaches the encoder) and
      batch just the search; default (None) = when the model's encoding depends on padding
      (:func:`depends_on_padding`), so reference-numerics models give their one-at-a-time answers.
    - ``dtype="bf16"``: bfloat16 encoder (autocast) and bfloat16 linear layers in decoder and LM, scores
      in float32; ``quantize="int8"``: int8 dynamic-quantised decoder, LM and CTC head (CPU).
    - ``compact=False``, ``fused=False``: score dead beam slots too, unfused LM and q/k/v projections
      (the former search; same results, for benchmarks).
    """
    _check_weights(beam_size, ctc_weight, lm_weight, length_bonus, nbest)
    _check_inputs(video, video_lengths, audio, audio_lengths)
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1 (padded frames per chunk) or None, got {max_frames}")
    ref = next(model.parameters())
    precision.check_options(dtype, quantize, ref.device)
    tokenizer = _default_tokenizer(model, tokenizer)
    usable, vlen, alen = _usable(video_lengths, audio, audio_lengths, video)
    batch = len(vlen)
    if padding_safe is None:
        padding_safe = depends_on_padding(model)
    sort_len = vlen if video_lengths is not None else alen
    order = sorted(usable, key=lambda i: -sort_len[i]) if max_frames is not None else usable
    with _eval_mode(model, lm), _one_weight_cast(ref.device.type, dtype == "bf16"):
        if lm is not None:
            lm.to(device=ref.device)
        searcher = precision.search_modules(model, dtype, quantize)
        search_lm = precision.converted(lm, "lm", dtype, quantize)
        results: list[list[SearchResult]] = [[] for _ in range(batch)]
        budget_lengths = vlen if video is not None or video_lengths is not None else [n // SAMPLES_PER_FRAME for n in alen]
        for idx in chunks_by_frames(order, budget_lengths, max_frames):
            features, lengths = _encode(model, (video, video_lengths, audio, audio_lengths), idx, vlen, alen,
                                        padding_safe, autocast=dtype == "bf16")
            found = beam_search_from_features(searcher, features, lengths, beam_size, ctc_weight, search_lm,
                                              lm_weight, length_bonus, pre_beam_ratio, compact=compact,
                                              fused=fused)
            for b, ended in zip(idx, found):
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
        dtype, quantize, max_frames, padding_safe, compact: the fast paths of :func:`decode`. With
            ``max_frames`` each incoming batch is decoded in length-sorted chunks of that many padded
            frames, so a large test batch (or a frame-budget data loader) is decoded as a few big searches.
    """

    def __init__(self, beam_size: int = 40, ctc_weight: float = 0.1, lm_path: str | None = None,
                 lm_config: str | None = None, lm_weight: float = 0.5, length_bonus: float = 0.5, nbest: int = 1,
                 pre_beam_ratio: float = 1.5, tokenizer: Tokenizer | None = None, dtype: str = "fp32",
                 quantize: str = "none", max_frames: int | None = None, padding_safe: bool | None = None,
                 compact: bool = True) -> None:
        _check_weights(beam_size, ctc_weight, lm_weight, length_bonus, nbest)
        precision.check_options(dtype, quantize)
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"BeamSearchDecoder: max_frames must be >= 1 or None, got {max_frames}")
        self.dtype, self.quantize, self.max_frames = dtype, quantize, max_frames
        self.padding_safe, self.compact = padding_safe, compact
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
                      pre_beam_ratio=self.pre_beam_ratio, tokenizer=self.tokenizer, dtype=self.dtype,
                      quantize=self.quantize, max_frames=self.max_frames, padding_safe=self.padding_safe,
                      compact=self.compact)

    def __repr__(self) -> str:
        return (f"BeamSearchDecoder(beam_size={self.beam_size}, ctc_weight={self.ctc_weight}, "
                f"lm_path={self.lm_path!r}, lm_weight={self.lm_weight}, length_bonus={self.length_bonus}, "
                f"nbest={self.nbest}, dtype={self.dtype!r}, quantize={self.quantize!r}, max_frames={self.max_frames})")
