"""Test reports: per-utterance ``results.jsonl``, per-condition ``summary.json`` and the reference's
one-line ``WER: x, CER: y`` file. Every file is written to a temporary name and renamed into place.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping

from avsr_lightning.durable import write_text
from avsr_lightning.evaluation.metrics import ErrorCounts, corpus_rates, error_counts

__all__ = ["make_record", "condition_name", "summarize", "same_utterances", "write_report", "atomic_write_text"]


def condition_name(condition: Mapping[str, Any] | None) -> str:
    """A readable, stable name for a condition dict, e.g. ``snr=0,noise=babble,visual=occlusion``.

    ``{}`` and ``None`` are ``"all"``; keys are sorted so equal conditions always get the same name.
    A plain string (e.g. a test-loader name) is returned as is.
    """
    if condition is None:
        return "all"
    if isinstance(condition, str):
        return condition
    if not condition:
        return "all"
    parts = []
    for key in sorted(condition):
        value = condition[key]
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        parts.append(f"{key}={'clean' if value is None else value}")
    return ",".join(parts)


def make_record(utt_id: str, reference: str, hypothesis: str, condition: str, **extra: Any) -> dict[str, Any]:
    """One ``results.jsonl`` row: id, texts, condition name and the error counts."""
    c = error_counts(reference, hypothesis)
    return {"id": utt_id, "condition": condition, "reference": reference, "hypothesis": hypothesis,
            "word_errors": c.word_errors, "words": c.words, "char_errors": c.char_errors, "chars": c.chars,
            **extra}


def _counts(record: Mapping[str, Any]) -> ErrorCounts:
    return ErrorCounts(record["word_errors"], record["words"], record["char_errors"], record["chars"])


def summarize(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``{"overall": rates, "conditions": {name: rates}}``; rates as in :func:`corpus_rates`."""
    records = list(records)
    by_condition: dict[str, list[ErrorCounts]] = defaultdict(list)
    for r in records:
        by_condition[r["condition"]].append(_counts(r))
    return {"overall": corpus_rates(_counts(r) for r in records),
            "conditions": {name: corpus_rates(c) for name, c in sorted(by_condition.items())}}


def atomic_write_text(path: Path, text: str) -> None:
    """Durably write ``text`` to ``path`` (avsr_lightning/durable.py: unique temp, fsync, rename, fsync dir)."""
    write_text(path, text)


def same_utterances(records: Iterable[Mapping[str, Any]], skipped: Iterable[Mapping[str, Any]]
                    ) -> tuple[list[Mapping[str, Any]], list[dict[str, Any]]]:
    """Score every condition on the same utterances: an utterance skipped under any condition (a bad
    file, see docs/data.md "Bad input") is excluded from all of them, so per-condition rates stay comparable.

    Returns ``(records kept, skipped rows)``; each skipped row is ``{"id", "condition", "path", "reason"}``
    and an utterance decoded under one condition but skipped under another gets a row saying so.
    """
    rows = {(r["id"], r["condition"]): dict(r) for r in skipped}
    first = {}
    for row in sorted(rows.values(), key=lambda r: (r["id"], r["condition"])):
        first.setdefault(row["id"], row)
    kept = []
    for r in records:
        cause = first.get(r["id"])
        if cause is None:
            kept.append(r)
            continue
        rows.setdefault((r["id"], r["condition"]), {
            "id": r["id"], "condition": r["condition"], "path": cause["path"],
            "reason": f"excluded from every condition: skipped under {cause['condition']} ({cause['reason']})"})
    return kept, sorted(rows.values(), key=lambda r: (r["condition"], r["id"]))


def write_report(records: Iterable[Mapping[str, Any]], out_dir: str | Path,
                 skipped: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Write ``results.jsonl``, ``summary.json`` and ``wer.txt`` into ``out_dir``; return the summary.

    ``wer.txt`` holds the reference's one-line format (``WER: x.xxx, CER: y.yyy``) for the whole set.
    ``skipped`` rows (see :func:`same_utterances`) are listed in ``summary.json`` (``skipped``, with
    ``skipped_ids``) and as ``{"skipped": true, ...}`` lines in ``results.jsonl``; they are not scored.
    All JSON is strict (no NaN/inf).
    """
    out_dir = Path(out_dir)
    records = sorted(records, key=lambda r: (r["condition"], r["id"]))
    skipped = sorted((dict(r, skipped=True) for r in skipped), key=lambda r: (r["condition"], r["id"]))
    summary = summarize(records)
    summary["skipped_ids"] = sorted({r["id"] for r in skipped})
    summary["skipped"] = [{k: r[k] for k in ("id", "condition", "path", "reason")} for r in skipped]
    lines = [json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in records + skipped]
    atomic_write_text(out_dir / "results.jsonl", "".join(lines))
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2, allow_nan=False) + "\n")
    overall = summary["overall"]
    atomic_write_text(out_dir / "wer.txt", f"WER: {overall['wer']:.3f}, CER: {overall['cer']:.3f}\n")
    return summary
