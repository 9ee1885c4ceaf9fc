"""Tag corrections from feedback become training rows for `tag_classifier` (<data dir>/feedback/tag_corrections.jsonl)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from rag_assets.lib.evaluate.eval_data import normalize_question
from rag_assets.lib.feedback.files import write_text_atomic


def tag_corrections(queries: list[dict], feedback: list[dict]) -> list[dict]:
    """Rows {"question", "tag"}: one per question (normalized), the latest correction winning.

    The question is the standalone query when the log has one: a chat follow-up alone names no topic."""
    by_trace = {q["trace_id"]: q for q in queries}
    latest: dict[str, dict] = {}
    for f in sorted(feedback, key=lambda f: f["id"]):
        q, tag = by_trace.get(f["trace_id"]), (f.get("correction_tag") or "").strip()
        if q is None or not tag:
            continue
        text = (q.get("standalone_query") or q["question"]).strip()
        key = normalize_question(text)
        if key:
            latest.pop(key, None)  # re-inserted last: file order follows the latest correction
            latest[key] = {"question": text, "tag": tag}
    return list(latest.values())


def write_tag_corrections(path: Path, rows: list[dict]) -> dict:
    write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return dict(Counter(r["tag"] for r in rows).most_common())
