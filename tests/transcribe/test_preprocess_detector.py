"""``data_prep/preprocess_lrs.py --detector NAME``: raw clips without landmark files -> the processed layout."""
from __future__ import annotations

import numpy as np
import pytest

from .conftest import face_frames, tone_bursts, write_clip


@pytest.mark.parametrize("name", ["mediapipe", "haar"])
def test_preprocess_with_a_named_detector(tmp_path, astronaut, mean_face_path, name):
    if name == "mediapipe":
        pytest.importorskip("mediapipe")
    from avsr_lightning.data.landmarks import read_landmarks
    from avsr_lightning.data.media import read_video
    from data_prep.preprocess_lrs import main

    frames, _ = face_frames(astronaut, 25, 25.0)
    clip_dir = tmp_path / "raw" / "main" / "spk"
    clip_dir.mkdir(parents=True)
    write_clip(clip_dir / "00001.mp4", frames, 25.0, tone_bursts(1.0, 16000), 16000)
    (clip_dir / "00001.txt").write_text("Text:  HELLO WORLD\n")
    rc = main(str(tmp_path / "raw"), str(tmp_path / "out"), str(mean_face_path), workers=0, detector=name)
    assert rc == 0
    crops = read_video(tmp_path / "out" / "Video" / "main" / "spk" / "00001.mp4")
    assert crops.shape == (25, 96, 96)
    lm = read_landmarks(tmp_path / "out" / "Transformed_LM" / "main" / "spk" / "00001.npz")
    mouth = lm.points[:, 48:68].mean(axis=1)  # aligned frame: the crop is centred on the mouth
    centre = lm.yx_min[:, ::-1] + 48
    assert np.abs(mouth - centre).max() <= 1.0
    assert (tmp_path / "out" / "Audio" / "main" / "spk" / "00001.wav").is_file()
