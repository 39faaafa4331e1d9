"""Media I/O on generated files, including the broken ones a real corpus contains."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import soundfile as sf

from avsr_lightning.data.media import (
    MediaError,
    extract_audio,
    read_audio,
    read_video,
    write_audio,
    write_video,
)


def test_video_roundtrip_keeps_frames_and_pixels(tmp_path, gen):
    frames = gen.mouth_frames(30)
    write_video(tmp_path / "a.mp4", frames)
    out = read_video(tmp_path / "a.mp4")
    assert out.shape == (30, 96, 96) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - frames).mean() < 3  # H.264 at crf 18, full-range luma
    assert read_video(tmp_path / "a.mp4", max_frames=10).shape[0] == 10
    assert not list(tmp_path.glob(".*")), "atomic write left a temporary file"


def test_write_video_is_byte_identical(tmp_path, gen):
    frames = gen.mouth_frames(12)
    write_video(tmp_path / "a.mp4", frames)
    write_video(tmp_path / "b.mp4", frames)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


def test_missing_unreadable_and_zero_frame_videos(tmp_path):
    with pytest.raises(MediaError, match="missing"):
        read_video(tmp_path / "none.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"\x00\x01not a video" * 50)
    with pytest.raises(MediaError, match="cannot be decoded|zero frames|no video stream"):
        read_video(tmp_path / "junk.mp4")
    import av

    with av.open(str(tmp_path / "empty.mp4"), "w") as container:  # header written, no frame ever encoded
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = 96
        stream.pix_fmt = "yuv420p"
        container.start_encoding()
    with pytest.raises(MediaError, match="zero frames|cannot be decoded|no video stream"):
        read_video(tmp_path / "empty.mp4")


def test_truncated_video_decodes_what_is_left_or_fails_clearly(tmp_path, gen):
    write_video(tmp_path / "a.mp4", gen.mouth_frames(40))
    data = (tmp_path / "a.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            frames = read_video(tmp_path / "cut.mp4")
        except MediaError as err:
            assert err.reason  # unreadable: a clear reason, never an unhandled decoder exception
        else:
            assert 0 < len(frames) < 40


def test_audio_resample_and_downmix_warn(tmp_path):
    t = np.arange(8000) / 8000
    stereo = np.stack([np.sin(2 * np.pi * 200 * t), np.sin(2 * np.pi * 200 * t)], axis=1).astype(np.float32) * 0.5
    sf.write(tmp_path / "s.wav", stereo, 8000)
    messages = []
    audio = read_audio(tmp_path / "s.wav", warn=messages.append)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 16000) <= 1
    assert any("channels" in m for m in messages) and any("resampled" in m for m in messages)
    with pytest.warns(UserWarning, match="sample rate 8000"):
        read_audio(tmp_path / "s.wav")
    with pytest.raises(MediaError, match="missing"):
        read_audio(tmp_path / "nope.wav")
    (tmp_path / "bad.wav").write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(MediaError, match="cannot be read"):
        read_audio(tmp_path / "bad.wav")


def test_write_audio_is_16bit_mono_16k(tmp_path):
    write_audio(tmp_path / "a.wav", np.linspace(-2, 2, 1600))
    info = sf.info(tmp_path / "a.wav")
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert np.abs(read_audio(tmp_path / "a.wav")).max() <= 1.0


def test_extract_audio_from_video_container(tmp_path):
    import av

    path = tmp_path / "av.mp4"
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(44100) / 44100)).astype(np.float32)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=44100)
        stream.layout = "stereo"
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(np.stack([tone, tone])), format="fltp", layout="stereo")
        frame.sample_rate = 44100
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    audio = extract_audio(path)
    assert abs(len(audio) - 16000) < 2048
    assert 0.1 < np.abs(audio[2000:14000]).max() < 0.5
