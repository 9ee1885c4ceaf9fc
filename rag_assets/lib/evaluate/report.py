"""The score report: headline scores with CIs, k-metrics, breakdown by docs area, worst questions, config."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

from rag_assets.lib.evaluate.eval_data import docs_area
from rag_assets.lib.evaluate.metrics import percentiles, summarize
from rag_assets.lib.store import save_figure

HEADLINE = ("retrieval_score", "quality_score", "quality_with_gold_context")
TABLE_METRICS = (
    # Page-level recall@k divides by every chunk of the gold page: in the JSON, too small to chart here.
    "hit@1", "hit@3", "hit@5", "hit@10", "mrr", "ndcg@5",
    "section_hit@1", "section_hit@5", "section_recall@5", "section_mrr", "section_ndcg@5",
)
WORST_N = 5


def build_report(responses: dict, retrieval: dict, quality: dict, config: dict, base_url: str = "") -> dict:
    """responses: the `responses` output ({generator, rows, ...}); retrieval: score_retrieval's output;
    quality: {"overall": score_quality(...), "gold_context": score_quality(...)}; config: what produced it."""
    rows = responses["rows"]
    overall, gold = quality["overall"], quality.get("gold_context")
    return {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "retrieval_score": retrieval["retrieval_score"],
        "quality_score": overall["quality_score"],
        # The seed's component-wise view: the generator's quality when retrieval is perfect.
        "quality_with_gold_context": gold["quality_score"] if gold else None,
        "generator": responses["generator"],
        "judge": overall["judge"],
        "metrics": retrieval["metrics"],
        "usage": usage(rows),
        "by_area": by_area(retrieval["per_question"], overall["per_question"], base_url),
        "worst_questions": worst_questions(rows, retrieval["per_question"], overall["per_question"]),
        "index_version": responses.get("table_version"),
        "config": config,
    }


def eval_set_summary(questions_doc: dict) -> dict:
    """The eval set a report was scored on: its version (content hash) and how many rows came from feedback."""
    rows = questions_doc.get("rows", [])
    return {"path": questions_doc.get("path"), "version": questions_doc.get("version"), "rows": len(rows),
            "from_feedback": questions_doc.get("from_feedback", 0)}


def usage(rows: list[dict]) -> dict:
    """Counts, tokens per query and per-query latency (p50/p95 of each question's retrieval + answer time)."""
    n = len(rows) or 1
    latency = percentiles([r.get("query_latency_s", r.get("latency_s")) for r in rows])
    return {
        "questions": len(rows),
        "failed": sum(1 for r in rows if r.get("failed")),
        "prompt_tokens_per_query": round(sum(r.get("prompt_tokens") or 0 for r in rows) / n, 1),
        "completion_tokens_per_query": round(sum(r.get("completion_tokens") or 0 for r in rows) / n, 1),
        "latency_s_per_query": round(sum(r.get("latency_s") or 0 for r in rows) / n, 4),
        "latency_p50_s": latency["p50"],
        "latency_p95_s": latency["p95"],
    }


def by_area(retrieval_rows: list[dict], quality_rows: list[dict], base_url: str) -> dict:
    """Scores per top-level docs area (library, tutorial, ...) of the gold source."""
    hits, scores = defaultdict(list), defaultdict(list)
    for r in retrieval_rows:
        hits[docs_area(r["source"], base_url)].append(r["hit"])
    for q in quality_rows:
        if q["status"] == "scored":
            scores[docs_area(q["source"] or "", base_url)].append(q["score"])
    return {
        area: {"n": len(hits[area]), "retrieval_score": summarize(hits[area], binary=True),
               "quality_score": summarize(scores[area])}
        for area in sorted(hits)
    }


def worst_questions(rows: list[dict], retrieval_rows: list[dict], quality_rows: list[dict], n: int = WORST_N) -> list:
    """Failed answers first, then the lowest judged, then retrieval misses; each with what was retrieved."""
    out = []
    for resp, ret, qual in zip(rows, retrieval_rows, quality_rows):
        score = qual["score"]
        badness = (not resp.get("failed"), score if score is not None else 3.0, ret["hit"], ret.get("mrr", 1.0))
        out.append((badness, {
            "question": resp["question"],
            "source": resp["source"],
            "quality": score,
            "quality_status": qual["status"],
            "retrieval_hit": bool(ret["hit"]),
            "mrr": ret.get("mrr"),
            "answer": resp.get("answer"),
            "error": resp.get("error"),
            "retrieved_sources": resp["retrieved_sources"],
        }))
    out.sort(key=lambda pair: pair[0])
    return [row for _, row in out[:n]]


def score_drops(current: dict, previous: dict | None) -> list[dict]:
    """Scores that fell by more than their CI since the previous report.

    The margin is the larger lower half-width (value - ci95 low) of the two reports, so a score whose CI
    collapsed to a point (every question a hit) does not warn on a single changed question.
    """
    if not previous:
        return []
    drops = []
    for name, cur, prev in _comparable(current, previous):
        margin = max(_half_width(cur), _half_width(prev))
        drop = prev["value"] - cur["value"]
        if drop > margin + 1e-12:
            drops.append({"score": name, "previous": prev["value"], "current": cur["value"], "drop": drop,
                          "margin": margin, "previous_ci95": prev["ci95"], "current_ci95": cur["ci95"]})
    return drops


def _comparable(current: dict, previous: dict):
    pairs = [(k, current.get(k), previous.get(k)) for k in HEADLINE]
    pairs += [(k, current.get("metrics", {}).get(k), previous.get("metrics", {}).get(k)) for k in TABLE_METRICS]
    for name, cur, prev in pairs:
        if cur and prev and cur.get("value") is not None and prev.get("value") is not None:
            yield name, cur, prev


def _half_width(s: dict) -> float:
    low = (s.get("ci95") or [None])[0]
    return 0.0 if low is None else max(0.0, s["value"] - low)


def fmt(s: dict | None, digits: int = 3) -> str:
    if not s or s.get("value") is None:
        return "n/a"
    low, high = s["ci95"]
    return f"{s['value']:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}] (n={s['n']})"


def markdown(report: dict) -> str:
    q = report["quality_score"]
    lines = [
        f"**generator** `{report['generator']}` · **judge** `{report['judge']}` · "
        f"**LanceDB version** {report['index_version']}",
    ]
    if report.get("eval_set"):
        e = report["eval_set"]
        lines[-1] += (f" · **eval set** `{e['version']}` ({e['rows']} questions, "
                      f"{e['from_feedback']} from feedback)")
    lines += [
        "",
        "| score | value [95% CI] (n) |",
        "|---|---|",
        f"| retrieval_score | {fmt(report['retrieval_score'])} |",
        f"| quality_score (1-5) | {fmt(q, 2)}; missing {q.get('missing', 0)}, "
        f"no reference {q.get('no_reference', 0)} |",
        f"| quality with gold context (1-5) | {fmt(report['quality_with_gold_context'], 2)} |",
    ]
    lines += [f"| {k} | {fmt(report['metrics'].get(k))} |" for k in TABLE_METRICS if k in report["metrics"]]
    lines += ["", "**By docs area**", "", "| area | n | retrieval_score | quality_score |", "|---|---|---|---|"]
    for area, s in report["by_area"].items():
        lines.append(f"| {area} | {s['n']} | {fmt(s['retrieval_score'])} | {fmt(s['quality_score'], 2)} |")
    lines += ["", "**Worst questions**", "", "| question | gold | quality | hit | retrieved |", "|---|---|---|---|---|"]
    for w in report["worst_questions"]:
        got = ", ".join(s.rsplit("/", 1)[-1] for s in w["retrieved_sources"])
        quality = w["quality"] if w["quality"] is not None else w["quality_status"]
        lines.append(f"| {_cell(w['question'])} | {_cell(w['source'].rsplit('/', 1)[-1])} | {quality} | "
                     f"{'yes' if w['retrieval_hit'] else 'no'} | {_cell(got, 200)} |")
    lines += ["", "**Config**", "", "| setting | value |", "|---|---|"]
    lines += [f"| {k} | {_cell(str(v))} |" for k, v in report["config"].items()]
    return "\n".join(lines)


def _cell(text: str, limit: int = 120) -> str:
    text = " ".join(str(text).split())
    return (text if len(text) <= limit else text[: limit - 1] + "…").replace("|", "\\|")


def plot(report: dict, path: Path) -> Path:
    """Two panels: retrieval metrics (0-1) and quality (1-5), each with its 95% CI as an error bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    retrieval = [("retrieval_score", report["retrieval_score"])]
    retrieval += [(k, report["metrics"][k]) for k in TABLE_METRICS if k in report["metrics"]]
    quality = [("overall", report["quality_score"]), ("gold context", report["quality_with_gold_context"])]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 1]})
    for ax, items, ylim, title in ((ax1, retrieval, (0, 1.05), "retrieval"), (ax2, quality, (1, 5.2), "quality")):
        names, values, errs = [], [], [[], []]
        for name, s in items:
            v = s.get("value") if s else None
            names.append(f"{name}\n(n={s['n'] if s else 0})")
            values.append(v if v is not None else math.nan)
            low, high = (s or {}).get("ci95") or [None, None]
            errs[0].append(max(0.0, v - low) if v is not None and low is not None else 0)
            errs[1].append(max(0.0, high - v) if v is not None and high is not None else 0)
        ax.bar(range(len(values)), values, yerr=errs, capsize=4, color="#4c72b0")
        ax.set_xticks(range(len(values)), names, rotation=45, ha="right", fontsize=8)
        ax.set_ylim(*ylim)
        ax.set_title(title)
    fig.suptitle(f"generator {report['generator']} · judge {report['judge']} · LanceDB v{report['index_version']}",
                 fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
