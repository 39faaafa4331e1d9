"""The bad-input corpus (issue 13, docs/data.md "Bad input"): generated folders with many kinds of defect
plus good utterances, run through the CLI (fit + test), the data-prep tools and the loaders.

Asserted: no crash, no silent pass - every defect is reported once, naming its file and the reason,
and counted in the data module's summary - and every good utterance is trained on.
"""
from __future__ import annotations

import json
import logging
import os
import pickle
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avsr_lightning.data.landmarks import Landmarks, write_landmarks
from avsr_lightning.data.media import write_audio, write_video

SPK = "trainval/spk"
GOOD_TRAIN = [f"{SPK}/good{i}" for i in range(6)]
#: loadable, trained on, with a counted note: id -> (note kind, words the message contains)
NOTED = {f"{SPK}/avdiff": ("audio_length", "samples longer than the video"),
         f"{SPK}/stereo44": ("audio_format", "resampled to 16000"),
         f"{SPK}/pcm8": ("audio_format", "8-bit audio"),
         f"{SPK}/lowercase": ("unknown_chars", "mapped to <unk>")}
#: skipped when loaded (train tracker): id -> words of the reason
BAD_AT_LOAD = {f"{SPK}/zerowav": "zero samples", f"{SPK}/emptytext": "transcript is empty",
               f"{SPK}/notext": "transcript file is missing", f"{SPK}/nanlm": "no frame has landmarks",
               f"{SPK}/shapelm": "expected (T, 68, 2)", f"{SPK}/codelm": "refusing to load",
               f"{SPK}/smallvid": "smaller than the 88x88 crop"}
#: excluded before the first epoch (setup/train tracker)
BAD_AT_SETUP = {f"{SPK}/truncmp4": "cannot be opened", f"{SPK}/zeromp4": "no video stream",
                f"{SPK}/missing": "video file is missing"}
TOO_LONG = f"{SPK}/long"

CALLBACK = '''
import json
from lightning.pytorch import Callback

class SeenIds(Callback):
    """Appends the ids of every training batch to a file (the bad-input corpus test)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        with open(self.path, "a") as f:
            f.write(json.dumps(list(batch.ids)) + "\\n")
'''


class _Payload:
    """Pickles to a call of ``os.system``: must never run (the restricted unpickler refuses it)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _build_corpus(root: Path, gen) -> Path:
    rng = np.random.default_rng(0)
    for i, uid in enumerate(GOOD_TRAIN + list(NOTED) + list(BAD_AT_LOAD) + list(BAD_AT_SETUP)[:2]):
        gen.write_utterance(root, uid, 12, rng)
    gen.write_utterance(root, TOO_LONG, 60, rng)
    for i in range(2):
        gen.write_utterance(root, f"{SPK}/val{i}", 12, rng)
    for i in range(3):
        gen.write_utterance(root, f"test/spk/t{i}", 12, rng, text="HELLO WORLD")
    gen.write_utterance(root, "test/spk/nolm", 12, rng, text="HELLO WORLD")
    (root / "Transformed_LM" / "test/spk/nolm.npz").unlink()  # needed only by the occlusion condition

    a = root / "Audio" / SPK
    gen.write_utterance(root, f"{SPK}/avdiff", 12, rng, audio_frames=30)  # 12-frame mp4, 30-frame wav
    sf.write(a / "stereo44.wav", np.stack([gen.speech_like(44100 * 12 // 25, rng)] * 2, 1), 44100)
    sf.write(a / "pcm8.wav", gen.speech_like(12 * 640, rng), 16000, subtype="PCM_U8")
    (root / "Text" / SPK / "lowercase.txt").write_text("Text:  hello wörld\n", encoding="utf-8")
    write_audio(a / "zerowav.wav", np.zeros(0, np.float32))
    (root / "Text" / SPK / "emptytext.txt").write_text("Text:   \n")
    (root / "Text" / SPK / "notext.txt").unlink()
    lm = root / "Transformed_LM" / SPK
    write_landmarks(lm / "nanlm.npz", Landmarks(np.full((12, 68, 2), np.nan, np.float32)))
    write_landmarks(lm / "shapelm.npz", Landmarks(np.zeros((12, 5, 2), np.float32)))
    (lm / "codelm.npz").unlink()
    (lm / "codelm.pkl").write_bytes(pickle.dumps(_Payload(root / "PAYLOAD_RAN")))
    v = root / "Video" / SPK
    write_video(v / "smallvid.mp4", gen.mouth_frames(12, size=40, rng=rng))  # a 40x40 video: cannot be cropped
    data = (v / "truncmp4.mp4").read_bytes()
    (v / "truncmp4.mp4").write_bytes(data[: len(data) // 2])
    import av

    with av.open(str(v / "zeromp4.mp4"), "w") as container:  # a valid container without one frame
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = 96
        stream.pix_fmt = "yuv420p"
        container.start_encoding()

    train = GOOD_TRAIN + list(NOTED) + list(BAD_AT_LOAD) + list(BAD_AT_SETUP) + [TOO_LONG, GOOD_TRAIN[0]]
    (root / "train.txt").write_text("\n".join(train) + "\n")  # GOOD_TRAIN[0] twice: a duplicate id
    (root / "val.txt").write_text(f"{SPK}/val0\n{SPK}/val1\n")
    (root / "test.ref").write_text("".join(f"test/spk/{u} HELLO WORLD\n" for u in ("t0", "t1", "t2", "nolm")))
    gen.write_occluders(root / "occlusion_patch")
    return root


class _Messages:
    """Every warning and log record emitted while active (``text`` joins them)."""

    def __init__(self, caplog) -> None:
        self.caplog = caplog
        self.items: list[str] = []

    def __enter__(self):
        self._catch = warnings.catch_warnings(record=True)
        self._warnings = self._catch.__enter__()
        warnings.simplefilter("always")
        self.caplog.set_level(logging.WARNING)
        self.caplog.clear()
        return self

    def __exit__(self, *exc):
        self.items += [str(w.message) for w in self._warnings]
        self.items += [r.getMessage() for r in self.caplog.records]
        self._catch.__exit__(*exc)

    def about(self, *words: str) -> list[str]:
        return [m for m in self.items if all(w in m for w in words)]


def _cli(args: list[str]):
    from avsr_lightning.cli import main

    saved, sys.argv = sys.argv, sys.argv[:1]
    try:
        return main(args)
    finally:
        sys.argv = saved


def _data_args(root: Path, **extra: str) -> list[str]:
    args = {"root": str(root), "batch_size": "2", "max_frames": "null", "num_workers": "0", "train_snrs": "[null]",
            "visual_corruption": "true", "max_length": "40", "max_bad_fraction": "1.0", "max_text_len": "150",
            **extra}
    out = ["--data", "avsr_lightning.datamodules.LRSDataModule"]
    for key, value in args.items():
        out += [f"--data.init_args.{key}", value]
    return out


def test_bad_input_corpus_through_fit_and_test(tmp_path, gen, caplog):
    root = _build_corpus(tmp_path / "corpus", gen)
    repo = Path(__file__).resolve().parents[2]
    (tmp_path / "cb").mkdir()
    (tmp_path / "cb" / "bad_corpus_seen.py").write_text(CALLBACK)
    sys.path.insert(0, str(tmp_path / "cb"))
    seen_file = tmp_path / "seen.jsonl"
    common = ["--config", str(repo / "configs" / "trainer" / "cpu_debug.yaml"),
              "--config", str(repo / "configs" / "model" / "tiny_avrelscore.yaml"),
              "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
              "--trainer.default_root_dir", str(tmp_path / "run")]
    try:
        with _Messages(caplog) as fit_msgs:
            cli = _cli(["fit", *common, *_data_args(root), "--trainer.max_steps", "-1", "--trainer.max_epochs", "1",
                        "--trainer.val_check_interval", "1.0", "--trainer.check_val_every_n_epoch", "1",
                        "--trainer.num_sanity_val_steps", "0",
                        "--trainer.callbacks+=bad_corpus_seen.SeenIds", f"--trainer.callbacks.path={seen_file}"])
    finally:
        sys.path.remove(str(tmp_path / "cb"))
    assert not (root / "PAYLOAD_RAN").exists()

    # every good (and noted) utterance was trained on, no bad one
    seen = {uid for line in seen_file.read_text().splitlines() for uid in json.loads(line)}
    assert set(GOOD_TRAIN) | set(NOTED) <= seen
    assert not seen & (set(BAD_AT_LOAD) | set(BAD_AT_SETUP) | {TOO_LONG})

    # each defect reported once, naming the file and the reason, and counted
    counts = cli.datamodule.bad_item_counts
    for uid, words in {**BAD_AT_LOAD, **BAD_AT_SETUP}.items():
        assert len(fit_msgs.about(uid, words)) == 1, (uid, fit_msgs.about(uid))
    for uid, (kind, words) in NOTED.items():
        assert len(fit_msgs.about(uid.split("/")[-1], words)) == 1, (uid, fit_msgs.about(uid.split("/")[-1]))
    assert len(fit_msgs.about(TOO_LONG, "max_length=40")) == 1
    assert len(fit_msgs.about("train.txt", "1 duplicate id")) == 1
    assert counts["train"]["bad"] == len(BAD_AT_LOAD)
    assert counts["setup/train"]["bad"] == len(BAD_AT_SETUP)
    assert counts["setup/train"]["note_too_long"] == 1
    assert counts["train"]["note_audio_format"] == 3  # stereo: channels + rate; pcm8: 8-bit
    assert counts["train"]["note_unknown_chars"] == 1 and counts["train"]["note_audio_length"] == 1
    # (+ replacement draws: a batch whose items are all bad is refilled from the eligible utterances)
    assert counts["train"]["seen"] >= len(GOOD_TRAIN) + len(NOTED) + len(BAD_AT_LOAD)

    # test: two conditions; 'nolm' lacks the landmarks occlusion needs -> skipped there, excluded from both
    ckpt = cli.trainer.checkpoint_callback.last_model_path or cli.trainer.checkpoint_callback.best_model_path
    assert ckpt and Path(ckpt).is_file()
    conditions = "[{snr: null, visual: clean}, {snr: null, visual: occlusion}]"
    report = tmp_path / "report"
    with _Messages(caplog) as test_msgs:
        _cli(["test", *common, *_data_args(root, test_conditions=conditions), "--ckpt_path", ckpt,
              "--model.results_dir", str(report)])
    assert len(test_msgs.about("test/spk/nolm", "landmark file is missing")) == 1
    summary = json.loads((report / "summary.json").read_text(), parse_constant=_no_nan)
    assert summary["skipped_ids"] == ["test/spk/nolm"]
    # one row per condition: the real failure under occlusion, the exclusion under clean saying why
    rows_by_condition = {r["condition"]: r for r in summary["skipped"]}
    assert sorted(rows_by_condition) == ["clean__clean", "clean__occlusion"]
    assert "landmark file is missing" in rows_by_condition["clean__occlusion"]["reason"]
    assert "skipped under clean__occlusion" in rows_by_condition["clean__clean"]["reason"]
    assert sorted(summary["conditions"]) == ["clean__clean", "clean__occlusion"]
    assert all(c["utterances"] == 3 for c in summary["conditions"].values())
    rows = [json.loads(line, parse_constant=_no_nan) for line in (report / "results.jsonl").read_text().splitlines()]
    scored = {}
    for r in rows:
        if not r.get("skipped"):
            scored.setdefault(r["condition"], set()).add(r["id"])
    assert len(scored) == 2 and all(ids == {"test/spk/t0", "test/spk/t1", "test/spk/t2"} for ids in scored.values())


def _no_nan(token: str):
    raise AssertionError(f"non-strict JSON constant {token}")


def test_max_length_excluding_everything_fails_fast(tmp_path, gen):
    from avsr_lightning.datamodules import LRSDataModule

    rng = np.random.default_rng(1)
    for i in range(3):
        gen.write_utterance(tmp_path, f"{SPK}/u{i}", 20, rng)
    (tmp_path / "train.txt").write_text("".join(f"{SPK}/u{i}\n" for i in range(3)))
    dm = LRSDataModule(str(tmp_path), batch_size=2, max_frames=None, num_workers=0, train_snrs=[None], max_length=5)
    with pytest.raises(ValueError, match=r"no training utterance .* max_length=5.*Raise data.max_length"):
        dm.setup("fit")


# ------------------------------------------------------------------------------------------ data prep
def _template() -> np.ndarray:
    rng = np.random.default_rng(0)
    face = rng.uniform(70, 190, (68, 2)).astype(np.float32)
    face[28], face[33] = (128, 110), (128, 130)
    face[36], face[39], face[42], face[45] = (85, 90), (110, 92), (146, 92), (171, 90)
    angles = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    face[48:68, 0] = 129 + 22 * np.cos(angles)
    face[48:68, 1] = 158 + 8 * np.sin(angles)
    return face


def _raw_clip(raw: Path, rel: str, n_frames: int = 20, faststart: bool = False) -> list[np.ndarray]:
    """A 128x128 clip (moving face, dark mouth) with an AAC track; returns its per-frame landmarks.
    ``faststart``: index first, so a truncated copy still decodes up to the cut."""
    import av

    face = _template() * 0.6 + 10
    yy, xx = np.mgrid[0:128, 0:128]
    path = raw / f"{rel}.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    lms = []
    with av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {}) as container:
        vs = container.add_stream("libx264", rate=25)
        vs.width = vs.height = 128
        vs.pix_fmt = "yuv420p"
        astream = container.add_stream("aac", rate=16000)
        for t in range(n_frames):
            lm = face + np.float32([0.5 * t, 0.2 * t])
            cx, cy = lm[48:68].mean(axis=0)
            frame = np.full((128, 128), 160, np.uint8)
            frame[((xx - cx) / 8) ** 2 + ((yy - cy) / 3) ** 2 <= 1] = 30
            lms.append(lm.astype(np.float32))
            for p in vs.encode(av.VideoFrame.from_ndarray(np.repeat(frame[..., None], 3, 2), format="rgb24")):
                container.mux(p)
        for p in vs.encode():
            container.mux(p)
        tone = (0.3 * np.sin(2 * np.pi * 300 * np.arange(n_frames * 640) / 16000)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(tone[None], format="fltp", layout="mono")
        frame.sample_rate = 16000
        for p in astream.encode(frame):
            container.mux(p)
        for p in astream.encode():
            container.mux(p)
    (raw / f"{rel}.txt").write_text("Text:  HELLO THERE\nConf:  5\n")
    return lms


def test_preprocess_reports_every_bad_clip_and_writes_nothing_inconsistent(tmp_path, capsys):
    from data_prep.preprocess_lrs import main as preprocess_main

    raw, out = tmp_path / "raw", tmp_path / "out"
    np.save(tmp_path / "mean_face.npy", _template())
    defects = {"lmshort": "landmarks and video differ in length (10 landmark frames, 20 frames in", "emptytext": "transcript is empty",
               "nanlm": "no frame has landmarks", "shapelm": "expected (68, 2)", "codelm": "refusing to load",
               "zeromp4": "no video stream", "truncmp4": "video cannot be decoded",
               "truncpartial": "truncated or damaged after"}
    for name in ["good", *defects]:
        lms = _raw_clip(raw, f"main/spk/{name}", faststart=name == "truncpartial")
        if name == "lmshort":
            lms = lms[:10]
        elif name == "nanlm":
            lms = [np.full((68, 2), np.nan, np.float32) for _ in lms]
        elif name == "shapelm":
            lms = [np.zeros((5, 2), np.float32) for _ in lms]
        if name == "codelm":
            (raw / "main/spk/codelm.pkl").write_bytes(pickle.dumps(_Payload(tmp_path / "PAYLOAD_RAN")))
        else:
            (raw / f"main/spk/{name}.pkl").write_bytes(pickle.dumps(lms))
    (raw / "main/spk/emptytext.txt").write_text("Text:  \n")
    for name in ("truncmp4", "truncpartial"):
        data = (raw / f"main/spk/{name}.mp4").read_bytes()
        (raw / f"main/spk/{name}.mp4").write_bytes(data[: len(data) // 2])
    import av

    with av.open(str(raw / "main/spk/zeromp4.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = 128
        stream.pix_fmt = "yuv420p"
        container.start_encoding()

    code = preprocess_main(str(raw), str(out), str(tmp_path / "mean_face.npy"), workers=0)
    assert code == 1 and not (tmp_path / "PAYLOAD_RAN").exists()
    failures = dict(line.split("\t", 1) for line in (out / "preprocess_failures.log").read_text().splitlines())
    assert sorted(failures) == sorted(f"main/spk/{n}" for n in defects)
    for name, words in defects.items():
        assert words in failures[f"main/spk/{name}"], (name, failures[f"main/spk/{name}"])
    assert "written 1" in capsys.readouterr().err
    for kind in ("Video", "Audio", "Text", "Transformed_LM"):  # nothing of a failed clip, the good one whole
        written = sorted(p.stem for p in (out / kind).rglob("*") if p.is_file())
        assert written == ["good"], (kind, written)
    assert all(p.stat().st_size > 0 for p in (out / "Text").rglob("*.txt"))


def test_corrupted_testset_skips_zero_sample_wav_with_strict_json(tmp_path, gen):
    from avsr_lightning.data.corrupted_testset import build_corrupted_testset

    rng = np.random.default_rng(2)
    for name in ("t0", "zerowav"):
        gen.write_utterance(tmp_path, f"test/spk/{name}", 12, rng, text="HELLO")
    write_audio(tmp_path / "Audio/test/spk/zerowav.wav", np.zeros(0, np.float32))
    (tmp_path / "test.ref").write_text("test/spk/t0 HELLO\ntest/spk/zerowav HELLO\n")
    write_audio(tmp_path / "noise" / "babble.wav", rng.standard_normal(16000).astype(np.float32) * 0.1)
    report = build_corrupted_testset(tmp_path, tmp_path / "out", conditions=["babble_snr0__clean", "clean__clean"],
                                     progress=False)
    assert sorted((c, u) for c, u, _ in report.failed) == [("babble_snr0__clean", "test/spk/zerowav"),
                                                           ("clean__clean", "test/spk/zerowav")]
    assert all("zero samples" in reason for _, _, reason in report.failed)
    for cond in ("babble_snr0__clean", "clean__clean"):
        rows = [json.loads(line, parse_constant=_no_nan)
                for line in (tmp_path / "out" / cond / "manifest.jsonl").read_text().splitlines()]
        assert [r["id"] for r in rows] == ["test/spk/t0"]
        assert not (tmp_path / "out" / cond / "Audio/test/spk/zerowav.wav").exists()
    assert "zerowav" in (tmp_path / "out" / "failures.log").read_text()


# ------------------------------------------------------------------------------------ errors vs. bugs
def test_only_data_problems_become_bad_items(tmp_path, gen, monkeypatch):
    """A truncated file is a counted skip naming the file; a ValueError/TypeError raised by transform code on
    well-formed data is a bug and propagates (it used to become a skipped item)."""
    import avsr_lightning.data.dataset as dataset_module
    from avsr_lightning.data.dataset import AVDataset, BadItem, Sample
    from avsr_lightning.data.manifest import Utterance

    rng = np.random.default_rng(3)
    for name in ("ok", "trunc"):
        gen.write_utterance(tmp_path, f"{SPK}/{name}", 12, rng)
    video = tmp_path / "Video" / SPK / "trunc.mp4"
    video.write_bytes(video.read_bytes()[:300])
    ds = AVDataset(tmp_path, [Utterance(f"{SPK}/ok"), Utterance(f"{SPK}/trunc")])
    assert isinstance(ds[0], Sample)
    bad = ds[1]
    assert isinstance(bad, BadItem) and bad.path == str(video) and "cannot be decoded" in bad.reason

    for error in (ValueError("a bug in transform code"), TypeError("another bug")):
        def broken(text, error=error):
            raise error

        monkeypatch.setattr(dataset_module, "normalize_transcript", broken)
        with pytest.raises(type(error), match="bug"):
            ds[0]


# ------------------------------------------------------------------------- checkpoint and LM files
def _bad_checkpoints(directory: Path) -> dict[str, Path]:
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    files = {name: directory / f"{name}.ckpt" for name in ("empty", "garbage", "code")}
    files["empty"].write_bytes(b"")
    files["garbage"].write_bytes(b"this is not a checkpoint\n" * 8)
    files["code"].write_bytes(pickle.dumps({"state_dict": _Payload(directory / "PAYLOAD_RAN")}))
    files["foreign"] = directory / "foreign.ckpt"
    torch.save({"optimizer": {"lr": torch.tensor(0.1)}, "weights": torch.zeros(3)}, files["foreign"])
    return files


CKPT_WORDS = {"empty": "empty", "garbage": "not a torch checkpoint", "code": "needs code to load",
              "foreign": "not a model checkpoint"}


def _one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text.strip() and "Traceback" not in text, text
    return text


def test_bad_checkpoints_are_refused_in_one_line_by_load_model(tmp_path):
    from avsr_lightning.weights import load_model

    for name, path in _bad_checkpoints(tmp_path).items():
        with pytest.raises(Exception) as info:  # noqa: PT011 - the type is the loader's; the text is checked
            load_model(path)
        text = _one_line(info.value)
        assert CKPT_WORDS[name] in text and path.name in text, (name, text)
    assert not (tmp_path / "PAYLOAD_RAN").exists()


def test_bad_lm_files_are_refused_in_one_line(tmp_path):
    import torch

    from avsr_lightning import load_lm
    from avsr_lightning.models.rnnlm import RNNLM
    from avsr_lightning.weights.espnet_lm import export_lm

    pth, js = export_lm(RNNLM(41, layers=1, units=8), tmp_path / "lm")
    good = json.loads(js.read_text())
    cases = {"layer_not_int": (json.dumps({**good, "layer": "two"}), "'layer'"),
             "invalid_json": ('{"layer": 1, "unit": ', "not valid JSON"),
             "wrong_type": (json.dumps({**good, "type": "transformer"}), "'type'"),
             "not_object": ("[1, 2]", "expected a JSON object"),
             "shape_mismatch": (json.dumps({**good, "unit": 16, "embed_unit": 8}), "does not fit")}
    for name, (content, words) in cases.items():
        bad_json = tmp_path / f"{name}.json"
        bad_json.write_text(content)
        with pytest.raises(ValueError) as info:
            load_lm(pth, bad_json)
        text = _one_line(info.value)
        assert words in text and bad_json.name in text, (name, text)
    for name, path in _bad_checkpoints(tmp_path / "ckpts").items():
        with pytest.raises(Exception) as info:  # noqa: PT011
            load_lm(path, js)
        text = _one_line(info.value)
        assert path.name in text, (name, text)
    assert not (tmp_path / "ckpts" / "PAYLOAD_RAN").exists()
    torch.testing.assert_close(load_lm(pth, js).embed.weight, load_lm(pth).embed.weight)  # the good pair loads


def test_duplicate_ids_keep_the_first_and_name_differing_transcripts(tmp_path):
    from avsr_lightning.data.manifest import load_split

    (tmp_path / "test.ref").write_text("test/a/1 HELLO\ntest/a/2 WORLD\ntest/a/1 HELLO\ntest/a/2 OTHER WORDS\n")
    with pytest.warns(UserWarning) as record:
        utts = load_split(tmp_path, "test.ref")
    assert [(u.id, u.text) for u in utts] == [("test/a/1", "HELLO"), ("test/a/2", "WORLD")]
    messages = [str(w.message) for w in record]
    assert len(messages) == 1 and "2 duplicate id row(s) dropped" in messages[0]
    assert "transcripts differ for 1: test/a/2 ('WORLD' kept, 'OTHER WORDS' dropped)" in messages[0]


def test_bad_checkpoints_are_refused_in_one_line_by_test_ckpt_path(tmp_path, gen):
    root = gen.make_corpus(tmp_path / "corpus", n_train=1, n_val=1, n_test=1)
    repo = Path(__file__).resolve().parents[2]
    for name, path in _bad_checkpoints(tmp_path / "ckpts").items():
        with pytest.raises(BaseException) as info:  # noqa: PT011 - SystemExit or the loader's error
            _cli(["test", "--config", str(repo / "configs" / "trainer" / "cpu_debug.yaml"),
                  "--config", str(repo / "configs" / "model" / "tiny_avrelscore.yaml"),
                  "--trainer.default_root_dir", str(tmp_path / "run"), "--trainer.logger", "false",
                  *_data_args(root, visual_corruption="false"), "--ckpt_path", str(path)])
        text = _one_line(info.value)
        assert path.name in text, (name, text)
    assert not (tmp_path / "ckpts" / "PAYLOAD_RAN").exists()
