"""Figures of the query log for the `query_log` and `feedback` assets (and the flywheel built on them)."""

from __future__ import annotations

from collections import Counter

import numpy as np

PREVIEW_ROWS = 10


def query_stats(queries: list[dict]) -> dict:
    statuses = Counter(q["status"] for q in queries)
    latencies = [q["latency_ms"] for q in queries if q["status"] == "ok" and q["latency_ms"] is not None]
    n = len(queries)
    return {
        "rows": n,
        "statuses": {s: statuses.get(s, 0) for s in ("ok", "error", "timeout", "cancelled")},
        "failure_rate": (n - statuses.get("ok", 0)) / n if n else 0.0,
        "latency_p50_ms": float(np.percentile(latencies, 50)) if latencies else 0.0,
        "latency_p95_ms": float(np.percentile(latencies, 95)) if latencies else 0.0,
        "endpoints": dict(Counter(q["endpoint"] or "?" for q in queries)),
        "index_versions": len({q["index_version"] for q in queries if q["index_version"]}),
        "preview": [{"ts": q["ts"], "endpoint": q["endpoint"], "question": q["question"], "llm": q["llm"],
                     "status": q["status"], "latency_ms": q["latency_ms"],
                     "top_source": (q["sources"] or [""])[0]} for q in queries[-PREVIEW_ROWS:]],
    }


def feedback_stats(feedback: list[dict], queries: list[dict]) -> dict:
    by_trace = {q["trace_id"]: q for q in queries}
    down = sum(1 for f in feedback if f["rating"] < 0)
    n = len(feedback)
    return {
        "rows": n,
        "thumbs_up": n - down,
        "thumbs_down": down,
        "thumbs_down_rate": down / n if n else 0.0,
        "with_correction": sum(1 for f in feedback if f["correction_source_url"] or f["correction_tag"]),
        "traces_rated": len({f["trace_id"] for f in feedback}),
        "preview": [{"ts": f["ts"], "rating": f["rating"], "question": by_trace.get(f["trace_id"], {}).get("question"),
                     "comment": f["comment"] or "", "correction": f["correction_source_url"] or f["correction_tag"] or ""}
                    for f in feedback[-PREVIEW_ROWS:]],
    }
