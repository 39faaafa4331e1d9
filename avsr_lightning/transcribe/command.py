"""``python -m avsr_lightning transcribe VIDEO [VIDEO ...] --ckpt_path CKPT ...`` (docs/transcribe.md).

Per file: probe -> stream 25-fps frames and 16 kHz mono audio -> track the face -> cut segments of at most
``--max_seconds`` at pauses -> mouth crops with the LRS alignment -> decode the segments in batches with the
configured decoder -> CTC forced alignment of each best hypothesis for word times -> txt/json/srt/vtt,
each written durably (temp file + rename) only after the whole file is done. A bad file is one line on
stderr naming it and the reason; the other files go on.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from avsr_lightning.transcribe.align import ctc_forced_align, word_spans
from avsr_lightning.transcribe.reader import FPS, SAMPLE_RATE, InputError, probe, stream
from avsr_lightning.transcribe.segments import SAMPLES_PER_FRAME, choose_cut, frame_energy
from avsr_lightning.transcribe.subtitles import WRITERS

FORMATS = tuple(WRITERS)
SOURCE_AV, SOURCE_VIDEO, SOURCE_AUDIO = "audio-visual", "video", "audio"


@dataclass
class Segment:
    """Frames [start, stop) of a file (25 fps) with what the model needs."""

    start: int
    stop: int
    crops: np.ndarray | None  # (T, 96, 96) uint8, None when no face
    audio: np.ndarray | None  # (>= 640 T,) float32 at 16 kHz, None without an audio track
    face: str = ""
    note: str = ""
    text: str = ""
    source: str = ""
    words: list = field(default_factory=list)

    @property
    def frames(self) -> int:
        return self.stop - self.start


@dataclass
class Timings:
    """Seconds spent per stage (benchmarks/transcribe.py reads these)."""

    read: float = 0.0
    track: float = 0.0
    crop: float = 0.0
    encode: float = 0.0
    search: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


def model_kind(model) -> str:
    from avsr_lightning.models import Audio, Video

    return "audio" if isinstance(model, Audio) else "video" if isinstance(model, Video) else "av"


def _pieces(tokenizer, tokens: list[int]) -> list[str]:
    """Each token's text as the tokenizer writes it (``<space>`` as a blank, which separates words)."""
    symbols = getattr(tokenizer, "symbols", None)
    return [" " if symbols is not None and symbols[t] == "<space>" else tokenizer.decode([t]) for t in tokens]


class Transcriber:
    """The pipeline of one command invocation (model, decoder and tracker settings shared by all files).

    Args:
        model: the recognizer (audio-visual, ``Video`` or ``Audio``), eval mode.
        decoder: ``decoder(model, batch) -> list[list[Hypothesis]]`` (e.g. ``BeamSearchDecoder``).
        tokenizer: token ids -> text (default: the reference characters).
        audio_model: an ``Audio`` recognizer for stretches without a visible face (optional).
        mean_face: (68, 2) mean face for the alignment (needed unless ``already_cropped``).
        detector: ``LandmarkDetector`` name or instance (``auto``: mediapipe, else OpenCV's cascade).
        max_seconds: longest segment given to the model; longer clips are cut at pauses.
        batch_size: segments decoded together.
        stride: run the face detector every ``stride`` frames (tracked/interpolated in between).
        already_cropped: inputs are processed 96x96 lip clips (audio from ``<stem>.wav`` or the track).
        log: where the one-line messages go.
    """

    def __init__(self, model, decoder, tokenizer=None, audio_model=None, mean_face: np.ndarray | None = None,
                 detector: Any = "auto", max_seconds: float = 15.0, batch_size: int = 8, stride: int = 2,
                 already_cropped: bool = False, max_side: int = 640, log: Callable[[str], None] | None = None) -> None:
        from avsr_lightning.text import CharTokenizer

        self.model, self.decoder, self.audio_model = model.eval(), decoder, audio_model
        self.tokenizer = tokenizer if tokenizer is not None else CharTokenizer()
        self.kind = model_kind(model)
        if audio_model is not None and model_kind(audio_model) != "audio":
            raise ValueError("--audio_ckpt_path must hold an audio-only (Audio) model, got "
                             f"{type(audio_model).__name__}")
        self.mean_face = None if mean_face is None else np.asarray(mean_face, np.float32)
        self.max_frames = max(2, int(round(max_seconds * FPS)))
        self.batch_size, self.stride, self.max_side = batch_size, stride, max_side
        self.already_cropped = already_cropped
        self._detector_spec = detector
        self._detector = None
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.timings = Timings()

    # ------------------------------------------------------------------ per file
    def detector(self):
        if self._detector is None:
            from avsr_lightning.faces import create_detector

            spec = self._detector_spec
            self._detector = create_detector(spec) if isinstance(spec, str) else spec
            if hasattr(self._detector, "set_template") and self.mean_face is not None:
                self._detector.set_template(self.mean_face)
        self._detector.reset()
        return self._detector

    def transcribe(self, path: str | Path) -> dict[str, Any]:
        """One file -> the result dict (see docs/transcribe.md, "Outputs"); :class:`InputError` if unusable."""
        path = Path(path)
        if self.already_cropped:
            segments, frames, notes = self._cropped_segments(path)
        else:
            segments, frames, notes = self._stream_segments(path)
        return self._result(path, segments, frames, notes)

    def _check_audio(self, path: Path, has_audio: bool) -> None:
        if not has_audio and self.kind != "video":
            raise InputError(path, f"no audio track, and the {type(self.model).__name__} model needs audio "
                                   f"(use a video-only checkpoint to transcribe silent video)")

    def _cropped_segments(self, path: Path):
        from avsr_lightning.data.media import MediaError, extract_audio, read_audio, read_video

        info = probe(path)
        if not info.has_video:
            raise InputError(path, "no video stream (--already_cropped expects 96x96 lip clips)")
        try:
            frames = read_video(path)
        except MediaError as err:
            raise InputError(path, err.reason if hasattr(err, "reason") else str(err)) from None
        if frames.shape[1:] != (96, 96):
            raise InputError(path, f"frames are {frames.shape[2]}x{frames.shape[1]}, not 96x96 lip crops "
                                   f"(drop --already_cropped to track the face)")
        wav = path.with_suffix(".wav")
        audio = None
        if self.kind != "video":
            try:
                audio = read_audio(wav) if wav.is_file() else (extract_audio(path) if info.has_audio else None)
            except MediaError as err:
                raise InputError(path, str(err)) from None
            self._check_audio(path, audio is not None)
        self._check_length(path, len(frames))
        notes = []
        if info.fps and abs(info.fps - FPS) > 0.01:
            notes.append(f"{path}: {info.fps:.3g} fps lip clip used frame by frame (processed clips are 25 fps)")
            self.log(notes[-1])
        energy = frame_energy(audio, len(frames)) if audio is not None else None
        segments = []
        start = 0
        while start < len(frames):
            rest = len(frames) - start
            cut = rest if rest <= self.max_frames else choose_cut(
                None if energy is None else energy[start:], self.max_frames)
            a = None if audio is None else audio[start * SAMPLES_PER_FRAME:(start + cut) * SAMPLES_PER_FRAME]
            segments.append(Segment(start, start + cut, frames[start:start + cut], a, "given lip crops"))
            start += cut
        self._decode(segments)
        return segments, len(frames), notes

    def _check_length(self, path: Path, frames: int) -> None:
        if frames == 0:
            raise InputError(path, "0 frames: nothing to transcribe")
        if frames == 1:
            raise InputError(path, "only 1 frame (0.04 s): too short to transcribe")

    def _stream_segments(self, path: Path):
        import cv2

        from avsr_lightning.faces import FaceTracker

        info = probe(path)
        self._check_audio(path, info.has_audio)
        use_video = info.has_video and self.kind != "audio"
        if not info.has_video and self.kind == "video":
            raise InputError(path, "no video stream, and the Video model reads lips only")
        if use_video and self.mean_face is None:
            raise ValueError("raw videos need the mean face (--mean_face 20words_mean_face.npy)")
        notes = [info.describe()]
        self.log(notes[0])
        tracker = FaceTracker(self.detector(), stride=self.stride, max_side=0) if use_video else None
        grey: list[np.ndarray] = []
        audio_parts: list[np.ndarray] = []
        audio_len = 0
        seg_start = 0  # file frame index of grey[0]
        total_frames = 0
        pending: list[Segment] = []
        done: list[Segment] = []
        use_audio = info.has_audio

        def audio_buffer() -> np.ndarray | None:
            if not use_audio:
                return None
            if len(audio_parts) > 1:
                audio_parts[:] = [np.concatenate(audio_parts)]
            return audio_parts[0] if audio_parts else np.zeros(0, np.float32)

        def cut(n: int, final: bool, length: int | None = None) -> None:
            nonlocal seg_start, audio_len
            buf = audio_buffer()
            if length is None:
                energy = frame_energy(buf, n) if buf is not None else None
                length = n if final and n <= self.max_frames else choose_cut(energy, self.max_frames)
            length = min(length, n)
            seg_audio = None
            if buf is not None:
                seg_audio = buf[: length * SAMPLES_PER_FRAME]
                audio_parts[:] = [buf[length * SAMPLES_PER_FRAME:]]
                audio_len = len(audio_parts[0])
            frames = np.stack(grey[:length]) if use_video else None
            del grey[:length]
            pending.append(self._make_segment(path, tracker, frames, seg_audio, seg_start, seg_start + length))
            seg_start += length
            if tracker is not None:
                tracker.forget_before(seg_start)
            if len(pending) >= self.batch_size:
                flush()

        def flush() -> None:
            self._decode(pending)
            for seg in pending:  # keep only the text: memory stays bounded on hours-long files
                seg.crops = seg.audio = None
            done.extend(pending)
            pending.clear()

        def buffered() -> int:
            if use_video:
                return len(grey)
            return audio_len // SAMPLES_PER_FRAME

        t0 = time.perf_counter()
        for chunk in stream(path, info, max_side=self.max_side, use_video=use_video, use_audio=use_audio):
            t1 = time.perf_counter()
            self.timings.read += t1 - t0
            if chunk.audio is not None:
                audio_parts.append(chunk.audio)
                audio_len += len(chunk.audio)
            for rgb in chunk.frames:
                tracker.push(rgb)
                grey.append(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
                total_frames += 1
            t2 = time.perf_counter()
            self.timings.track += t2 - t1
            if use_video and chunk.frames and len(grey) >= 2 * FPS and total_frames % FPS < len(chunk.frames):
                change = self._presence_change(tracker, seg_start, seg_start + len(grey))
                if change:
                    cut(len(grey), final=False, length=change)
            while buffered() > self.max_frames and (not use_audio or audio_len >= (self.max_frames + 1) * SAMPLES_PER_FRAME
                                                     or not use_video):
                cut(self.max_frames, final=False)
            t0 = time.perf_counter()
        if not use_video:
            total_frames = seg_start + -(-audio_len // SAMPLES_PER_FRAME)
            if audio_len % SAMPLES_PER_FRAME:
                audio_parts.append(np.zeros(SAMPLES_PER_FRAME - audio_len % SAMPLES_PER_FRAME, np.float32))
                audio_len += SAMPLES_PER_FRAME - audio_len % SAMPLES_PER_FRAME
        self._check_length(path, total_frames)
        while buffered() > 0:
            cut(min(buffered(), self.max_frames), final=buffered() <= self.max_frames)
        if pending:
            flush()
        if use_video and not any(s.source in (SOURCE_AV, SOURCE_VIDEO) for s in done):
            if self.audio_model is None and self.kind == "av":
                note = (f"{path}: no face found anywhere; decoded from audio with the audio-visual model and "
                        f"blank lips (give --audio_ckpt_path for an audio-only model)")
            else:
                note = f"{path}: no face found anywhere; decoded from audio"
            notes.append(note)
            self.log(note)
        return done, total_frames, notes

    @staticmethod
    def _presence_change(tracker, start: int, stop: int, min_run: int = FPS) -> int:
        """Frames from ``start`` to where the face appears or disappears for at least ``min_run`` frames
        (0 if it does not): segments then hold a face throughout or not at all. The last ``max_gap``
        frames are not yet decided (a detection may still bridge them) and are not looked at."""
        present = tracker.present(start, stop - tracker.max_gap)
        if len(present) < 2 * min_run:
            return 0
        changes = np.flatnonzero(present[1:] != present[:-1]) + 1
        for c in changes:
            if c >= min_run // 2 and len(present) - c >= min_run and (present[c:c + min_run] == present[c]).all():
                return int(c)
        return 0

    def _make_segment(self, path: Path, tracker, frames: np.ndarray | None, audio: np.ndarray | None,
                      start: int, stop: int) -> Segment:
        from avsr_lightning.data.landmarks import LandmarkError
        from avsr_lightning.data.preprocess.alignment import AlignmentError
        from avsr_lightning.faces.mouth import mouth_crops, prepare_points

        seg = Segment(start, stop, None, audio)
        if tracker is None or frames is None:
            return seg
        t0 = time.perf_counter()
        energy = frame_energy(audio, stop - start) if audio is not None else None
        track, seg.face = tracker.choose(start, stop, energy)
        present = tracker.present(start, stop)
        if track is None or present.mean() < 0.5:
            seg.note = f"no face in {100 * (1 - present.mean()):.0f}% of the frames"
        else:
            try:
                points = prepare_points(track.points_array(stop, start), f"{path} frames {start}-{stop}")
                seg.crops, _ = mouth_crops(frames, points, self.mean_face)
            except (AlignmentError, LandmarkError) as err:
                seg.note = f"mouth crop failed ({err})"
        if seg.crops is None:
            self.log(f"{path}: {start / FPS:.2f}-{stop / FPS:.2f} s: {seg.note}; decoded from audio")
        self.timings.crop += time.perf_counter() - t0
        return seg

    # ------------------------------------------------------------------ decoding
    def _route(self, seg: Segment) -> str:
        if seg.crops is not None:
            return "main"
        if self.kind == "audio":
            return "main"
        if seg.audio is None:
            return "skip"
        if self.audio_model is not None:
            return "audio"
        return "main" if self.kind == "av" else "skip"

    def _decode(self, segments: list[Segment]) -> None:
        groups: dict[str, list[Segment]] = {}
        for seg in segments:
            groups.setdefault(self._route(seg), []).append(seg)
        for route, segs in groups.items():
            if route == "skip":
                for seg in segs:
                    seg.source = "none"
                    seg.note = (seg.note + "; " if seg.note else "") + "not decoded (video-only model, no face)"
                continue
            model = self.audio_model if route == "audio" else self.model
            self._decode_group(model, segs, audio_only=route == "audio")

    def _inputs(self, model, segs: list[Segment]):
        from avsr_lightning.batch import AVBatch
        from avsr_lightning.data.transforms import VideoTransform, fit_audio_to_frames, normalize_utterance

        kind = model_kind(model)
        lengths = torch.tensor([s.frames for s in segs], dtype=torch.long)
        t_max = int(lengths.max())
        video = audio = None
        if kind != "audio":
            video = torch.zeros(len(segs), t_max, 88, 88)
            transform = VideoTransform(train=False)
            for i, s in enumerate(segs):
                if s.crops is not None:
                    video[i, : s.frames] = transform(s.crops)
                # without a face the lips stay 0 = the mean grey after normalisation ("video missing")
        audio_lengths = lengths * SAMPLES_PER_FRAME
        if kind != "video":
            audio = torch.zeros(len(segs), t_max * SAMPLES_PER_FRAME)
            for i, s in enumerate(segs):
                if s.audio is not None:
                    audio[i, : s.frames * SAMPLES_PER_FRAME] = normalize_utterance(
                        fit_audio_to_frames(s.audio, s.frames, SAMPLES_PER_FRAME))
        batch = AVBatch(video, lengths, audio, audio_lengths, torch.zeros(len(segs), 0, dtype=torch.long),
                        torch.zeros(len(segs), dtype=torch.long), ids=[str(s.start) for s in segs])
        return batch

    @torch.no_grad()
    def _decode_group(self, model, segs: list[Segment], audio_only: bool) -> None:
        from avsr_lightning.decoding.api import BeamSearchDecoder, _to_hypotheses, beam_search_from_features

        batch = self._inputs(model, segs)
        was_training = model.training
        model.eval()
        t0 = time.perf_counter()
        features, feat_lengths = model.encode(*batch.model_inputs())
        t1 = time.perf_counter()
        self.timings.encode += t1 - t0
        if isinstance(self.decoder, BeamSearchDecoder) and model is self.model:
            d = self.decoder
            found = beam_search_from_features(model, features, feat_lengths, d.beam_size, d.ctc_weight, d.lm(model),
                                              d.lm_weight, d.length_bonus, d.pre_beam_ratio)
            hyps = _to_hypotheses(found, 1, int(model.sos), int(model.eos), self.tokenizer)
        elif isinstance(self.decoder, BeamSearchDecoder):  # the audio model: same search, no LM
            d = self.decoder
            found = beam_search_from_features(model, features, feat_lengths, d.beam_size, d.ctc_weight, None, 0.0,
                                              d.length_bonus, d.pre_beam_ratio)
            hyps = _to_hypotheses(found, 1, int(model.sos), int(model.eos), self.tokenizer)
        else:
            hyps = self.decoder(model, batch)
        log_probs = model.ctc.log_probs(features).float().cpu().numpy()
        self.timings.search += time.perf_counter() - t1
        model.train(was_training)
        for i, seg in enumerate(segs):
            best = hyps[i][0]
            tokens = [int(t) for t in best.tokens]
            seg.text = best.text if best.text else self.tokenizer.decode(tokens)
            n = int(feat_lengths[i])
            spans = ctc_forced_align(log_probs[i, :n], tokens, int(model.blank))
            scale = seg.frames / max(n, 1)  # encoder frames per video frame (1 for every model here)
            seg.words = [(w, seg.start + a * scale, seg.start + b * scale)
                         for w, a, b in word_spans(tokens, spans, _pieces(self.tokenizer, tokens))]
            if seg.crops is not None:
                seg.source = SOURCE_AV if self.kind == "av" else SOURCE_VIDEO
            else:
                seg.source = SOURCE_AUDIO
                if self.kind == "av" and not audio_only:
                    seg.note = (seg.note + "; " if seg.note else "") + "audio-visual model, lips blank"

    # ------------------------------------------------------------------ output
    def _result(self, path: Path, segments: list[Segment], frames: int, notes: list[str]) -> dict[str, Any]:
        segs, words = [], []
        for k, s in enumerate(segments):
            segs.append({"start": round(s.start / FPS, 3), "end": round(s.stop / FPS, 3), "text": s.text,
                         "source": s.source, "face": s.face, "note": s.note})
            for w, a, b in s.words:
                words.append({"word": w, "start": round(a / FPS, 3), "end": round(b / FPS, 3), "segment": k,
                              "source": s.source})
        return {"file": str(path), "duration": round(frames / FPS, 3), "fps": FPS, "sample_rate": SAMPLE_RATE,
                "text": " ".join(s.text for s in segments if s.text), "segments": segs, "words": words,
                "notes": notes}


# ---------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m avsr_lightning transcribe",
                                description="Transcribe your own videos (docs/transcribe.md).")
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video (or audio) files PyAV can read")
    p.add_argument("--ckpt_path", required=True, help="model checkpoint (Lightning or reference format)")
    p.add_argument("--arch", default="AVRelScore", help="architecture of a reference checkpoint without "
                   "hyper-parameters (AVRelScore, VCAFE, Conformer, Audio, Video)")
    p.add_argument("--audio_ckpt_path", default=None, help="audio-only model for stretches without a face")
    p.add_argument("--lm_path", default=None, help="ESPnet RNN LM (model.pth)")
    p.add_argument("--lm_config", default=None, help="the LM's model.json (default: beside --lm_path)")
    p.add_argument("--config", default=None, help="decode config (e.g. configs/decode/beam40.yaml: "
                   "model.test_decoder class_path/init_args)")
    p.add_argument("--output_format", nargs="+", default=["all"], choices=list(FORMATS) + ["all"],
                   help="one or more of txt json srt vtt (default: all)")
    p.add_argument("--out", default=None, help="output folder (default: beside each video)")
    p.add_argument("--mean_face", default=None, help="20words_mean_face.npy (default: $AVSR_MEAN_FACE, then "
                   "../shared/reference/data/ beside the checkout)")
    p.add_argument("--detector", default="auto", help="mediapipe, haar, auto, or package.module:factory")
    p.add_argument("--already_cropped", action="store_true", help="inputs are processed 96x96 lip clips")
    p.add_argument("--max_seconds", type=float, default=15.0, help="longest segment given to the model")
    p.add_argument("--batch_size", type=int, default=8, help="segments decoded together")
    p.add_argument("--stride", type=int, default=2, help="run the face detector every N frames")
    return p


def _default_mean_face() -> Path | None:
    import os

    env = os.environ.get("AVSR_MEAN_FACE")
    candidates = [Path(env)] if env else []
    root = Path(__file__).resolve().parents[2]
    candidates.append(root.parent / "shared" / "reference" / "data" / "20words_mean_face.npy")
    return next((c for c in candidates if c.is_file()), None)


def load_decoder(config: str | None, lm_path: str | None, lm_config: str | None):
    """The ``model.test_decoder`` of a decode config (default: ``BeamSearchDecoder()``), LM options applied."""
    import importlib

    from avsr_lightning.decoding.api import BeamSearchDecoder

    spec: dict[str, Any] = {}
    if config is not None:
        import yaml

        with open(config, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
        spec = ((data.get("model") or {}).get("test_decoder")) or data.get("decoder") or {}
        if not spec:
            raise ValueError(f"{config}: no model.test_decoder section (see configs/decode/beam40.yaml)")
    cls_path = spec.get("class_path", "avsr_lightning.decoding.BeamSearchDecoder")
    kwargs = dict(spec.get("init_args") or {})
    module, _, name = cls_path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    if cls is BeamSearchDecoder:
        if lm_path is not None:
            kwargs["lm_path"] = lm_path
            kwargs.setdefault("lm_weight", 0.5)
            if not kwargs.get("lm_weight"):
                kwargs["lm_weight"] = 0.5
        if lm_config is not None:
            kwargs["lm_config"] = lm_config
    return cls(**kwargs)


def main(argv: list[str] | None = None) -> int:
    """Returns 0 if every file was transcribed, 1 if some were skipped, 2 if nothing could start."""
    args = build_parser().parse_args(argv)
    err = lambda msg: print(f"transcribe: {msg}", file=sys.stderr)  # noqa: E731
    from avsr_lightning.durable import write_text
    from avsr_lightning.weights import CheckpointError, load_model

    formats = list(FORMATS) if "all" in args.output_format else list(dict.fromkeys(args.output_format))
    models = []
    for label, path in (("--ckpt_path", args.ckpt_path), ("--audio_ckpt_path", args.audio_ckpt_path)):
        if path is None:
            models.append(None)
            continue
        try:
            models.append(load_model(path, arch=args.arch if label == "--ckpt_path" else "Audio"))
        except (CheckpointError, FileNotFoundError, ValueError, KeyError) as e:
            err(f"{label} {path}: unreadable checkpoint: {str(e).splitlines()[0]}")
            return 2
    model, audio_model = models
    try:
        decoder = load_decoder(args.config, args.lm_path, args.lm_config)
        if hasattr(decoder, "lm"):
            decoder.lm(model)
    except (ValueError, FileNotFoundError, KeyError, CheckpointError, OSError) as e:
        err(f"{args.lm_path or args.config}: {str(e).splitlines()[0]}")
        return 2
    mean_face = None
    if not args.already_cropped:
        face_path = Path(args.mean_face) if args.mean_face else _default_mean_face()
        if face_path is None or not face_path.is_file():
            err(f"mean face not found ({args.mean_face or 'default locations'}); give --mean_face "
                f"20words_mean_face.npy")
            return 2
        mean_face = np.load(face_path, allow_pickle=False)
    try:
        transcriber = Transcriber(model, decoder, audio_model=audio_model, mean_face=mean_face, detector=args.detector,
                                  max_seconds=args.max_seconds, batch_size=args.batch_size, stride=args.stride,
                                  already_cropped=args.already_cropped)
    except (ValueError, ImportError) as e:
        err(str(e))
        return 2
    failed = 0
    for video in args.videos:
        path = Path(video)
        try:
            result = transcriber.transcribe(path)
        except InputError as e:
            err(f"skipped {e}")
            failed += 1
            continue
        out_dir = Path(args.out) if args.out else path.parent
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for fmt in formats:
            target = out_dir / f"{path.stem}.{fmt}"
            write_text(target, WRITERS[fmt](result))
            written.append(str(target))
        print(f"{path}\t{result['text']}")
        err(f"{path}: wrote {', '.join(written)}")
    if failed:
        err(f"{failed} of {len(args.videos)} file(s) skipped")
    return 1 if failed else 0
