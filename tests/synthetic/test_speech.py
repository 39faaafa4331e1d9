"""eSpeak NG through ctypes: timed phonemes, determinism, and a one-line message when it is missing."""
from __future__ import annotations

import numpy as np
import pytest

from avsr_lightning.data.synthetic import speech


def test_phonemes_are_timed_within_the_audio_and_synthesis_is_repeatable():
    a = speech.synthesize("MOM SAW THE MAP", "en-us+m1", rate=130)
    speech.synthesize("SOMETHING ELSE IN BETWEEN", "en+f4", rate=170, pitch=70)
    b = speech.synthesize("MOM SAW THE MAP", "en-us+m1", rate=130)
    assert np.array_equal(a.audio, b.audio) and a.phones == b.phones
    names = [p.name for p in a.phones]
    assert names[0] == "m" and "p" in names and names.count("m") >= 2
    starts = [p.start for p in a.phones]
    assert starts == sorted(starts) and 0 <= starts[0] and starts[-1] <= a.duration + 1e-3
    assert len(a.words) == 4 and 1.0 < a.duration < 3.0
    slower = speech.synthesize("MOM SAW THE MAP", "en-us+m1", rate=90)
    assert slower.duration > 1.2 * a.duration


def test_unknown_voice_is_a_clear_error():
    with pytest.raises(ValueError, match="no voice 'xx-nothing'"):
        speech.synthesize("HELLO", "xx-nothing")


def test_missing_espeak_names_the_package_in_one_line(monkeypatch, tmp_path, capsys):
    from data_prep import make_synthetic_corpus

    def unavailable():
        raise speech.SpeechSynthesisUnavailable(speech.INSTALL_HINT)

    monkeypatch.setattr(speech.Synthesizer, "_instance", None)
    monkeypatch.setattr(speech, "_load_library", unavailable)
    assert make_synthetic_corpus.main(["--out", str(tmp_path / "c"), "--utterances", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "pip install espeakng-loader" in err
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())
