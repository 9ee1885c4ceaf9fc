"""Which logged queries underperform, and whose fault it is: retrieval, generation, the docs, or unknown.

Pure logic over query log rows, their feedback and the measured evidence (best cosine similarity in the
index, offline-judge score); `evidence.py` measures, this module decides.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from rag_assets.lib.evaluate.eval_data import docs_area, page_of

LABELS = ("retrieval", "generation", "docs", "unknown")
SIGNALS = ("thumbs_down", "low_similarity", "no_source_visited", "low_judge_score", "failed")


@dataclass(frozen=True)
class Thresholds:
    low_similarity: float  # top-1 cosine below this flags the query
    docs_similarity: float  # best cosine in the whole index below this: a docs gap
    low_judge_score: float  # offline-judge score (1-5) below this flags the answer

    @classmethod
    def from_settings(cls, settings) -> "Thresholds":
        return cls(settings.feedback_low_similarity, settings.feedback_docs_similarity,
                   settings.feedback_low_judge_score)


def cases(queries: list[dict], feedback: list[dict]) -> list[dict]:
    """One case per logged query with its feedback merged: the latest rating counts, corrections and
    visited pages accumulate (a user may correct after rating)."""
    by_trace = defaultdict(list)
    for f in feedback:
        by_trace[f["trace_id"]].append(f)
    out = []
    for q in queries:
        fb = sorted(by_trace.get(q["trace_id"], []), key=lambda f: f["id"])
        corrections = [f["correction_source_url"] for f in fb if f.get("correction_source_url")]
        tags = [f["correction_tag"] for f in fb if f.get("correction_tag")]
        visited = [u for f in fb for u in (f.get("visited_sources") or [])]
        out.append({
            "trace_id": q["trace_id"],
            "asked_at": q["ts"],
            "question": q["question"],
            "query": q.get("standalone_query") or q["question"],  # what was retrieved for
            "mode": q.get("mode"),
            "answer": q.get("answer"),
            "status": q.get("status"),
            "retrieved": list(q.get("sources") or []),
            "served_scores": list(q.get("scores") or []),
            "has_feedback": bool(fb),
            "rating": fb[-1]["rating"] if fb else None,
            "comment": next((f["comment"] for f in reversed(fb) if f.get("comment")), None),
            "correction_source": corrections[-1] if corrections else None,
            "correction_tag": tags[-1] if tags else None,
            "visited": visited,
            "feedback_ids": [f["id"] for f in fb],
            "feedback_at": fb[-1]["ts"] if fb else None,
        })
    return out


def known_source(case: dict) -> tuple[str | None, str | None]:
    """(URL, how it is known): the user's correction first, else the last page they visited (where they ended up)."""
    if case.get("correction_source"):
        return case["correction_source"], "correction"
    if case.get("visited"):
        return case["visited"][-1], "visited"
    return None, None


def top1_similarity(case: dict, max_similarity: float | None) -> float | None:
    """The served top-1 cosine in semantic mode; hybrid and lexical scores are not similarities, so there
    the index's best cosine for the query stands in."""
    if case.get("mode") == "semantic" and case.get("served_scores"):
        return float(case["served_scores"][0])
    return max_similarity


def signals(case: dict, top1: float | None, judge_score: float | None, t: Thresholds) -> list[str]:
    out = []
    if case.get("rating") == -1:
        out.append("thumbs_down")
    if top1 is not None and top1 < t.low_similarity:
        out.append("low_similarity")
    if case.get("has_feedback") and case.get("retrieved") and not case.get("visited"):
        out.append("no_source_visited")
    if judge_score is not None and judge_score < t.low_judge_score:
        out.append("low_judge_score")
    if case.get("status") not in (None, "ok"):
        out.append("failed")
    return out


def label(case: dict, max_similarity: float | None, judge_score: float | None, t: Thresholds,
          indexed_pages: set[str] | None = None) -> tuple[str, str]:
    """(triage label, why). Compared at page level, the seed's retrieval unit."""
    source, how = known_source(case)
    if source:
        page = page_of(source)
        retrieved = [page_of(s) for s in case.get("retrieved") or []]
        if page in retrieved:
            rank = retrieved.index(page) + 1
            if judge_score is not None and judge_score < t.low_judge_score:
                return "generation", f"{how} page retrieved at rank {rank}, answer judged {judge_score:.2f}"
            return "unknown", f"{how} page retrieved at rank {rank}, answer not judged poor"
        if indexed_pages is not None and page not in indexed_pages:
            return "docs", f"{how} page {page} is not in the index"
        return "retrieval", f"{how} page not among the {len(retrieved)} retrieved"
    if max_similarity is not None and max_similarity < t.docs_similarity:
        return "docs", f"best match in the index has cosine {max_similarity:.2f} < {t.docs_similarity}"
    return "unknown", "no known good page and the index has close matches"


def triage(case: dict, max_similarity: float | None, judge_score: float | None, t: Thresholds,
           indexed_pages: set[str] | None = None, base_url: str = "") -> dict:
    """One case's triage row; `signals` empty means the query is not underperforming."""
    top1 = top1_similarity(case, max_similarity)
    name, why = label(case, max_similarity, judge_score, t, indexed_pages)
    source, how = known_source(case)
    area_of = source or next(iter(case.get("retrieved") or []), "")
    return {
        "trace_id": case["trace_id"],
        "asked_at": case["asked_at"],
        "question": case["question"],
        "query": case["query"],
        "label": name,
        "reason": why,
        "signals": signals(case, top1, judge_score, t),
        "docs_area": docs_area(area_of, base_url) if area_of else "(none)",
        "top1_similarity": _round(top1),
        "max_similarity": _round(max_similarity),
        "judge_score": _round(judge_score),
        "known_source": source,
        "known_source_from": how,
        "retrieved": case.get("retrieved") or [],
        "answer": case.get("answer"),
        "rating": case.get("rating"),
        "comment": case.get("comment"),
        "correction_tag": case.get("correction_tag"),
        "feedback_ids": case.get("feedback_ids") or [],
        "feedback_at": case.get("feedback_at"),
    }


def summary(rows: list[dict], considered: int) -> dict:
    """Counts for the UI: per label, per signal, per (label, docs area)."""
    by_group = Counter((r["label"], r["docs_area"]) for r in rows)
    return {
        "queries_considered": considered,
        "underperforming": len(rows),
        "by_label": {name: sum(1 for r in rows if r["label"] == name) for name in LABELS},
        "by_signal": {s: sum(1 for r in rows if s in r["signals"]) for s in SIGNALS},
        "by_label_and_area": [
            {"label": lab, "docs_area": area, "count": n,
             "example": next(r["question"] for r in rows if (r["label"], r["docs_area"]) == (lab, area))}
            for (lab, area), n in sorted(by_group.items(), key=lambda kv: (LABELS.index(kv[0][0]), -kv[1], kv[0][1]))
        ],
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)
