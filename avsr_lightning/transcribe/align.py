"""Per-token and per-word times from the CTC posteriors: Viterbi forced alignment of the best hypothesis.

A plain numpy Viterbi over the usual blank-interleaved CTC states (2L + 1); each token's span is the
frames its state holds. One encoder frame is one video frame (40 ms) for every architecture here.
"""
from __future__ import annotations

import numpy as np


def ctc_forced_align(log_probs: np.ndarray, tokens: list[int], blank: int = 0) -> list[tuple[int, int]]:
    """(T, V) log posteriors + L tokens -> per token (first frame, last frame + 1). Needs T >= L (+ repeats);
    if the path is impossible the tokens are spread evenly (never raises on a real hypothesis)."""
    t_len = log_probs.shape[0]
    n = len(tokens)
    if n == 0:
        return []
    states = np.full(2 * n + 1, blank, dtype=np.int64)
    states[1::2] = tokens
    s_len = len(states)
    neg = -1e30
    score = np.full(s_len, neg)
    score[0] = log_probs[0, blank]
    score[1] = log_probs[0, states[1]]
    back = np.zeros((t_len, s_len), dtype=np.int8)  # 0 stay, 1 from s-1, 2 from s-2
    skip_ok = np.zeros(s_len, bool)
    skip_ok[3::2] = states[3::2] != states[1:-2:2]
    for t in range(1, t_len):
        stay = score
        one = np.concatenate([[neg], score[:-1]])
        two = np.where(skip_ok, np.concatenate([[neg, neg], score[:-2]]), neg)
        stacked = np.stack([stay, one, two])
        choice = stacked.argmax(axis=0)
        score = stacked[choice, np.arange(s_len)] + log_probs[t, states]
        back[t] = choice
    end = s_len - 1 if score[-1] >= score[-2] else s_len - 2
    if score[end] <= neg / 2:
        edges = np.linspace(0, t_len, n + 1).astype(int)
        return [(int(edges[i]), int(max(edges[i + 1], edges[i] + 1))) for i in range(n)]
    path = np.empty(t_len, dtype=np.int64)
    s = end
    for t in range(t_len - 1, -1, -1):
        path[t] = s
        s -= int(back[t, s])
    spans = []
    for i in range(n):
        frames = np.nonzero(path == 2 * i + 1)[0]
        spans.append((int(frames[0]), int(frames[-1]) + 1))
    return spans


def word_spans(tokens: list[int], spans: list[tuple[int, int]], pieces: list[str]) -> list[tuple[str, int, int]]:
    """Group token spans into words: a token whose text is blank space (``<space>``) or starts with the
    sentencepiece marker starts a new word. -> [(word, first frame, end frame)]."""
    words: list[tuple[str, int, int]] = []
    current, start, stop = "", None, None
    for tok, (a, b), piece in zip(tokens, spans, pieces):
        boundary = piece.strip() == "" or piece.startswith("\u2581")
        if boundary and current:
            words.append((current, start, stop))
            current, start, stop = "", None, None
        text = piece.strip().lstrip("\u2581")
        if not text:
            continue
        current += text
        start = a if start is None else start
        stop = b
    if current:
        words.append((current, start, stop))
    return words
