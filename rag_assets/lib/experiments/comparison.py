"""The comparison table of evaluated variants: the best variant, JSON/CSV/markdown and plots."""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime, timezone
from pathlib import Path

from rag_assets.lib.evaluate.metrics import paired_test
from rag_assets.lib.experiments.sweep import KEYS, Sweep
from rag_assets.lib.experiments.variants import table_paths, variant_dir
from rag_assets.lib.store import read_json, save_figure, write_json, write_text

BEST_RULE = (
    "highest quality_score with every failed or unscored answer counted as 1 (the rubric's lowest); equal values "
    "decided by retrieval_score; it beats the runner-up only if a paired test on the same questions says so "
    "(sign-flip permutation p < 0.05 and the paired-bootstrap 95% CI of the difference above 0, 2+ questions)"
)
# The per-question score each ranking metric is tested on, in a variant's responses.json.
PER_QUESTION = {"quality_score": "quality_for_ranking", "retrieval_score": "retrieval_hit"}
RANK_BY = {"quality_score": "quality_for_ranking", "retrieval_score": "retrieval_score"}


def collect_rows(sweep: Sweep, data_dir: Path) -> tuple[list[dict], list[str]]:
    """The rows of the sweep's evaluated variants, and the keys of those not evaluated yet."""
    rows, missing = [], []
    for v in sweep.variants:
        path = variant_dir(data_dir, v.key) / "result.json"
        (rows.append(read_json(path)) if path.exists() else missing.append(v.key))
    return rows, missing


def per_question_scores(data_dir: Path, keys: list[str]) -> dict[str, dict[str, dict]]:
    """{variant: {question: its response row with scores}} from each variant's responses.json."""
    out = {}
    for key in keys:
        path = variant_dir(data_dir, key) / "responses.json"
        if path.exists():
            out[key] = {r["question"]: r for r in read_json(path)}
    return out


def _value(row: dict, metric: str) -> float:
    s = row.get(RANK_BY[metric]) or row[metric]  # rows written before quality_for_ranking: the plain score
    v = s["value"]
    return -math.inf if v is None or (isinstance(v, float) and math.isnan(v)) else v


def rank(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (-_value(r, "quality_score"), -_value(r, "retrieval_score"), r["variant"]))


def choose_best(rows: list[dict], scores: dict[str, dict[str, dict]] | None = None) -> dict:
    """The best variant by BEST_RULE and, against the runner-up, a paired test on the questions both have.

    scores: per_question_scores() of (at least) the two leading variants; without them no verdict is made.
    """
    if not rows:
        raise ValueError("no evaluated variants: materialize experiment_results first")
    ranked = rank(rows)
    best = ranked[0]
    out = {"variant": best["variant"], "rule": BEST_RULE, "runner_up": None, "decided_by": "quality_score",
           "lead": None, "paired": None, "beats_runner_up": None}
    if len(ranked) == 1:
        return out
    second = ranked[1]
    metric = "quality_score" if _value(best, "quality_score") != _value(second, "quality_score") else "retrieval_score"
    lead = _value(best, metric) - _value(second, metric)
    paired = paired_on_questions((scores or {}).get(best["variant"]), (scores or {}).get(second["variant"]), metric)
    return out | {"runner_up": second["variant"], "decided_by": metric,
                  "lead": None if math.isinf(lead) or math.isnan(lead) else round(lead, 4),
                  "paired": paired, "beats_runner_up": bool(paired and paired["a_better"])}


def paired_on_questions(a: dict[str, dict] | None, b: dict[str, dict] | None, metric: str) -> dict | None:
    """paired_test of a - b on the per-question scores of the questions both variants were asked."""
    if not a or not b:
        return None
    field = PER_QUESTION[metric]
    common = [q for q in a if q in b]
    test = paired_test([a[q].get(field) for q in common], [b[q].get(field) for q in common])
    return {k: test[k] for k in ("n", "dropped", "diff", "ci95", "p_value", "a_better")} | {"metric": metric}


def best_sentence(best: dict) -> str:
    if best["runner_up"] is None:
        return f"Best variant: `{best['variant']}` (the only one evaluated). Rule: {best['rule']}."
    if not best["lead"]:
        return (
            f"Best variant: `{best['variant']}`, tied with `{best['runner_up']}` on quality_score and retrieval_score "
            f"(first by key): no clear win. Rule: {best['rule']}."
        )
    p = best["paired"]
    if p is None:
        verdict = "no per-question scores to test the lead on: not a clear win"
    elif p["diff"] is None:
        verdict = "the two share no scored question: not a clear win"
    else:
        ci = p["ci95"]
        test = (f"paired on {p['n']} questions: mean difference {p['diff']:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}], "
                f"p = {p['p_value']:.3g}")
        verdict = f"{test}: a clear win" if best["beats_runner_up"] else f"{test}: not a clear win"
    return (
        f"Best variant: `{best['variant']}`, ahead of `{best['runner_up']}` by {best['lead']} "
        f"{best['decided_by']}; {verdict}. Rule: {best['rule']}."
    )


FLAT_COLUMNS = ("variant", *KEYS)


def flat_row(row: dict) -> dict:
    """One CSV line: parameters, both scores with CI bounds and n, k-metric values, per-query figures."""
    out = {k: row[k] for k in FLAT_COLUMNS}
    for name in ("retrieval_score", "quality_score"):
        s = row[name]
        ci = s["ci95"] or [None, None]
        out |= {name: s["value"], f"{name}_ci_low": ci[0], f"{name}_ci_high": ci[1], f"{name}_n": s["n"]}
    out |= {k: v["value"] for k, v in row["metrics"].items()}
    ranking = row.get("quality_for_ranking") or {}
    out["quality_for_ranking"] = ranking.get("value")
    for k in ("prompt_tokens_per_query", "completion_tokens_per_query", "cost_per_query", "latency_p50_s",
              "latency_p95_s", "failed"):
        out[k] = row.get(k)
    return out


def to_csv(rows: list[dict]) -> str:
    flat = [flat_row(r) for r in rows]
    columns = list(dict.fromkeys(c for r in flat for c in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return buf.getvalue()


def _fmt(s: dict, digits: int = 3) -> str:
    if s["value"] is None:
        return "n/a"
    ci = s["ci95"]
    return f"{s['value']:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci and None not in ci else f"{s['value']:.{digits}f}"


def markdown(rows: list[dict], best: dict | None = None) -> str:
    head = ["variant", "chunk", "model", "retrieval", "k", "llm", "retrieval_score [95% CI]", "quality_score [95% CI]",
            "hit@1", "mrr", "failed", "tokens in/out", "$/query", "latency p50/p95 s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        m = r["metrics"]
        cost = "n/a" if r["cost_per_query"] is None else f"{r['cost_per_query']:.6f}"
        cells = [
            ("**" + r["variant"] + "**") if best and r["variant"] == best["variant"] else r["variant"],
            f"{r['chunk_size']}/{r['chunk_overlap']}", r["embedding_model"], r["retrieval"], str(r["num_chunks"]), r["llm"],
            _fmt(r["retrieval_score"]), _fmt(r["quality_score"], 2),
            _fmt({"value": m.get("hit@1", {}).get("value"), "ci95": None}), _fmt({"value": m.get("mrr", {}).get("value"), "ci95": None}),
            str(r.get("failed", 0)),
            f"{r['prompt_tokens_per_query']:.0f}/{r['completion_tokens_per_query']:.0f}", cost, _latency(r),
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + ("\n\n" + best_sentence(best) if best else "")


def _latency(r: dict) -> str:
    p50, p95 = r.get("latency_p50_s"), r.get("latency_p95_s")
    return "n/a" if p50 is None else f"{p50:.3f}/{p95:.3f}"


def plot(rows: list[dict], by: str, path: Path) -> Path:
    """retrieval_score and quality_score against `by` (chunk_size or num_chunks): one line per retrieval mode,
    the mean over the other parameters, with every variant as a dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, metric in zip(axes, ("retrieval_score", "quality_score")):
        for mode in sorted({r["retrieval"] for r in rows}):
            pts = [(r[by], r[metric]["value"]) for r in rows if r["retrieval"] == mode and r[metric]["value"] is not None]
            if not pts:
                continue
            xs = sorted({x for x, _ in pts})
            means = [sum(y for x2, y in pts if x2 == x) / sum(1 for x2, _ in pts if x2 == x) for x in xs]
            (line,) = ax.plot(xs, means, marker="o", label=mode)
            ax.scatter([x for x, _ in pts], [y for _, y in pts], s=12, alpha=0.4, color=line.get_color())
        ax.set_xticks(sorted({r[by] for r in rows}))
        ax.set_xlabel(by)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0].legend(title="retrieval", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def write_table(data_dir: Path, sweep: Sweep, rows: list[dict], missing: list[str]) -> dict:
    """Write the table (JSON, CSV, plots) and return it with the choice of the best variant."""
    rows = rank(rows)
    best = choose_best(rows, per_question_scores(data_dir, [r["variant"] for r in rows[:2]]))
    table = {
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "sweep": str(sweep.path),
        "variants": len(rows),
        "missing": missing,
        "embedding_runs": len({r["embedding"] for r in rows}),
        "chunkings": len({r["chunking"] for r in rows}),
        "best": best,
        "rows": rows,
    }
    paths = table_paths(data_dir)
    write_json(paths["json"], table)
    write_text(paths["csv"], to_csv(rows))
    plot(rows, "chunk_size", paths["plot_chunk_size"])
    plot(rows, "num_chunks", paths["plot_num_chunks"])
    return table


def read_table(data_dir: Path) -> dict:
    path = table_paths(data_dir)["json"]
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist yet: materialize `experiments_table` first")
    return read_json(path)
