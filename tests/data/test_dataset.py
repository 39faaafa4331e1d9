"""AVDataset and collate on generated utterances, one test per bad-input case of issue 5."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from avsr_lightning.data.collate import Collator, collate
from avsr_lightning.data.conditions import Condition
from avsr_lightning.data.corruption.occluders import OccluderBank
from avsr_lightning.data.corruption.visual import VisualCorruption
from avsr_lightning.data.dataset import AVDataset, BadItem, Sample
from avsr_lightning.data.landmarks import Landmarks, write_landmarks
from avsr_lightning.data.manifest import Utterance
from avsr_lightning.data.media import write_audio
from avsr_lightning.data.transforms import MatchAudioToVideo, Transform

UID = "trainval/spk/50001"


@pytest.fixture()
def one(tmp_path, gen):
    """A corpus with one good utterance of 25 frames; tests damage it."""
    gen.write_utterance(tmp_path, UID, 25, np.random.default_rng(0), text="HELLO WORLD")
    return tmp_path


def _item(root, train=False, **kw):
    return AVDataset(root, [Utterance(UID)], train=train, **kw)[0]


def _bad(item, *needles):
    assert isinstance(item, BadItem), f"expected a BadItem, got {type(item).__name__}"
    assert item.id == UID and item.path and item.reason
    assert any(n in item.reason for n in needles), item.reason
    return item


def test_good_item_shapes_and_exact_audio_length(one):
    s = _item(one)
    assert isinstance(s, Sample) and s.num_frames == 25
    assert s.video.shape == (25, 88, 88) and s.audio.shape == (25 * 640,)
    assert s.text == "HELLO WORLD" and s.targets.dtype == torch.long and len(s.targets) == 11
    assert abs(float(s.audio.mean())) < 1e-4 and abs(float(s.audio.std()) - 1) < 1e-3
    assert not s.notes


def test_unreadable_truncated_and_zero_frame_video(one):
    video = one / "Video" / f"{UID}.mp4"
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 3])
    item = _item(one)
    if isinstance(item, Sample):  # decoded up to the damage: reported, audio cut to the frames that exist
        assert any(n.startswith(("video_truncated", "audio_length")) for n in item.notes)
        assert item.audio.shape[0] == item.num_frames * 640
    else:
        _bad(item, "decoded", "zero frames", "no video stream")
    video.write_bytes(b"garbage" * 100)
    _bad(_item(one), "cannot be decoded", "no video stream", "zero frames")
    import av

    with av.open(str(video), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = 96
        container.start_encoding()
    _bad(_item(one), "zero frames", "no video stream", "cannot be decoded")


@pytest.mark.parametrize("kind,needle", [("Audio", "audio file is missing"), ("Text", "transcript file is missing"),
                                         ("Video", "video file is missing")])
def test_missing_files(one, kind, needle):
    ext = {"Audio": "wav", "Text": "txt", "Video": "mp4"}[kind]
    (one / kind / f"{UID}.{ext}").unlink()
    item = _bad(_item(one), needle)
    assert item.path.endswith(f"{UID}.{ext}")


def test_missing_landmarks_only_matter_with_occlusion(one, tmp_path_factory, gen):
    (one / "Transformed_LM" / f"{UID}.npz").unlink()
    assert isinstance(_item(one), Sample)
    bank = OccluderBank(gen.write_occluders(tmp_path_factory.mktemp("occ")))
    _bad(_item(one, train=True, visual=VisualCorruption(bank, clean_prob=0.0)), "landmark file is missing")


@pytest.mark.parametrize("frames", [10, 40])
def test_audio_shorter_or_longer_than_video(one, gen, frames):
    write_audio(one / "Audio" / f"{UID}.wav", gen.speech_like(frames * 640, np.random.default_rng(1)))
    s = _item(one, normalize_audio=False)
    assert s.audio.shape == (25 * 640,)
    assert any(n.startswith("audio_length") for n in s.notes)
    if frames < 25:
        assert float(s.audio[frames * 640:].abs().max()) == 0.0  # zero-padded, not crashed (spec §8.3)


def test_wrong_rate_and_stereo_are_converted_with_a_note(one):
    t = np.arange(int(25 / 25 * 44100)) / 44100
    tone = (0.2 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    sf.write(one / "Audio" / f"{UID}.wav", np.stack([tone, tone], 1), 44100)
    s = _item(one)
    assert s.audio.shape == (25 * 640,) and torch.isfinite(s.audio).all()
    assert sum(n.startswith("audio_format") for n in s.notes) == 2


def test_silent_audio_is_zeros_not_nan(one):
    write_audio(one / "Audio" / f"{UID}.wav", np.zeros(25 * 640))
    s = _item(one)
    assert torch.isfinite(s.audio).all() and float(s.audio.abs().max()) == 0.0
    assert any(n.startswith("silent_audio") for n in s.notes)


def test_transcripts_empty_lowercase_unknown(one):
    text = one / "Text" / f"{UID}.txt"
    text.write_text("Text:   \n")
    _bad(_item(one), "transcript is empty")
    text.write_text("Text:  hello   world\n")
    s = _item(one)
    assert s.text == "HELLO WORLD" and not s.notes
    text.write_text("Text:  HELLO, WORLD!\n")
    s = _item(one)
    assert any(n.startswith("unknown_chars: 2") for n in s.notes)
    assert (s.targets == 1).sum() == 2  # <unk>


def test_landmarks_with_none_and_nan_frames_still_place_occluders(one, tmp_path_factory, gen):
    lm = gen.crop_landmarks(25)
    points = lm.points.copy()
    points[:5] = np.nan
    points[12, 50] = np.nan
    write_landmarks(one / "Transformed_LM" / f"{UID}.npz", Landmarks(points, lm.yx_min))
    bank = OccluderBank(gen.write_occluders(tmp_path_factory.mktemp("occ")))
    ds = AVDataset(one, [Utterance(UID)], visual=VisualCorruption.avrelscore_test(bank, 30),
                   condition=Condition(None, visual="occlusion"))
    s = ds[0]
    assert isinstance(s, Sample) and torch.isfinite(s.video).all()
    (one / "Transformed_LM" / f"{UID}.npz").unlink()
    np.savez(one / "Transformed_LM" / f"{UID}.npz", landmarks=np.full((25, 68, 2), np.nan, np.float32))
    _bad(ds[0], "no frame has landmarks")


def test_train_and_eval_transforms_differ_and_eval_is_deterministic(one):
    a, b = _item(one), _item(one)
    assert torch.equal(a.video, b.video) and torch.equal(a.audio, b.audio)
    ds = AVDataset(one, [Utterance(UID)], train=True)
    t0, t0b, t1 = ds[(0, 0)], ds[(0, 0)], ds[(0, 1)]
    assert torch.equal(t0.video, t0b.video)  # seeded by (seed, id, epoch)
    assert not torch.equal(t0.video, t1.video)  # a new draw every epoch
    assert not torch.equal(t0.video, a.video)


def test_collate_pads_drops_bad_and_replaces_all_bad_batches(tmp_path, gen):
    rng = np.random.default_rng(0)
    ids = [f"trainval/s/{i:05d}" for i in range(4)]
    for uid, n in zip(ids, (10, 14, 12, 9)):
        gen.write_utterance(tmp_path, uid, n, rng)
    (tmp_path / "Audio" / f"{ids[1]}.wav").unlink()
    ds = AVDataset(tmp_path, [Utterance(u) for u in ids])
    batch = collate([ds[0], ds[1], ds[2]])
    assert batch.ids == [ids[0], ids[2]] and [b.id for b in batch.bad_items] == [ids[1]]
    assert batch.video.shape == (2, 12, 88, 88) and batch.audio.shape == (2, 12 * 640)
    assert batch.video_lengths.tolist() == [10, 12] and batch.audio_lengths.tolist() == [6400, 7680]
    assert float(batch.video[0, 10:].abs().max()) == 0 and float(batch.audio[0, 6400:].abs().max()) == 0
    for row, n in zip(batch.targets, batch.target_lengths):
        assert (row[:n] >= 0).all() and (row[n:] == -1).all()
    plain = batch.to_avbatch()
    assert type(plain).__name__ == "AVBatch" and plain.conditions == batch.conditions
    replaced = Collator(ds)([ds[1]])  # an all-bad batch still yields a batch, the next utterance, marked
    assert replaced.ids == [ids[2]] and replaced.conditions[0]["replacement"] is True
    assert len(replaced.bad_items) == 1


def test_training_clips_carry_the_sampler_epoch_to_the_pipeline(one):
    """``dataset[(i, epoch)]`` hands the pipeline that epoch (epoch-scheduled steps depend on it); evaluation 0."""
    class Record(Transform):
        def __init__(self):
            self.seen = []

        def __call__(self, clip, rng):
            self.seen.append(clip.epoch)
            return clip

    record = Record()
    train = AVDataset(one, [Utterance(UID)], train=True, transforms=[MatchAudioToVideo(), record])
    train[(0, 4)], train[(0, 7)], train[0]
    evaluation = AVDataset(one, [Utterance(UID)], train=False, transforms=[MatchAudioToVideo(), record])
    evaluation[(0, 4)]
    assert record.seen == [4, 7, 0, 0]
