"""The reference 41-symbol character tokenizer."""
from __future__ import annotations

from avsr_lightning.text import CharTokenizer, normalize_transcript


def test_reference_vocabulary_layout():
    tok = CharTokenizer()
    assert tok.vocab_size == len(tok) == 41
    assert (tok.blank, tok.unk, tok.space, tok.eos, tok.sos) == (0, 1, 13, 40, 40)
    assert tok.symbols[2] == "'" and tok.symbols[3:13] == list("0123456789")
    assert tok.symbols[14:40] == [chr(c) for c in range(ord("A"), ord("Z") + 1)]


def test_encode_normalises_and_decode_inverts():
    tok = CharTokenizer()
    ids = tok.encode("  we'd  love 2 ")
    assert ids == [36, 18, 2, 17, 13, 25, 28, 35, 18, 13, 5]
    assert tok.decode(ids) == "WE'D LOVE 2"
    assert tok.decode([0, 36, 0, 18, 40]) == "WE"  # blank and eos dropped
    assert normalize_transcript(" a  b\tc ") == "A B C"


def test_unknown_characters_are_counted_not_dropped():
    tok = CharTokenizer()
    ids = tok.encode("café, ok!")
    assert ids.count(tok.unk) == 3  # É , !
    assert tok.unknown_counts == {"É": 1, ",": 1, "!": 1}
    assert len(ids) == len("CAFÉ, OK!")
