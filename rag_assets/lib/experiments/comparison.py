"""The comparison table of evaluated variants: the best variant, JSON/CSV/markdown and plots."""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime, timezone
from pathlib import Path

from rag_assets.lib.experiments.sweep import KEYS, Sweep
from rag_assets.lib.experiments.variants import table_paths, variant_dir
from rag_assets.lib.store import read_json, save_figure, write_json, write_text

BEST_RULE = "highest quality_score; equal quality_score values are decided by retrieval_score"


def collect_rows(sweep: Sweep, data_dir: Path) -> tuple[list[dict], list[str]]:
    """The rows of the sweep's evaluated variants, and the keys of those not evaluated yet."""
    rows, missing = [], []
    for v in sweep.variants:
        path = variant_dir(data_dir, v.key) / "result.json"
        (rows.append(read_json(path)) if path.exists() else missing.append(v.key))
    return rows, missing


def _value(row: dict, metric: str) -> float:
    v = row[metric]["value"]
    return -math.inf if v is None or (isinstance(v, float) and math.isnan(v)) else v


def choose_best(rows: list[dict]) -> dict:
    """The best variant by BEST_RULE, and whether its lead is larger than the CIs (they do not overlap)."""
    if not rows:
        raise ValueError("no evaluated variants: materialize experiment_results first")
    ranked = sorted(rows, key=lambda r: (-_value(r, "quality_score"), -_value(r, "retrieval_score"), r["variant"]))
    best = ranked[0]
    out = {"variant": best["variant"], "rule": BEST_RULE, "runner_up": None, "decided_by": "quality_score",
           "lead": None, "lead_exceeds_ci": None}
    if len(ranked) == 1:
        return out
    second = ranked[1]
    metric = "quality_score" if _value(best, "quality_score") != _value(second, "quality_score") else "retrieval_score"
    lead = _value(best, metric) - _value(second, metric)
    b_ci, s_ci = best[metric]["ci95"], second[metric]["ci95"]
    exceeds = bool(b_ci and s_ci and b_ci[0] is not None and s_ci[1] is not None and b_ci[0] > s_ci[1])
    return out | {"runner_up": second["variant"], "decided_by": metric,
                  "lead": None if math.isinf(lead) or math.isnan(lead) else round(lead, 4), "lead_exceeds_ci": exceeds}


def best_sentence(best: dict) -> str:
    if best["runner_up"] is None:
        return f"Best variant: `{best['variant']}` (the only one evaluated). Rule: {best['rule']}."
    if not best["lead"]:
        return (
            f"Best variant: `{best['variant']}`, tied with `{best['runner_up']}` on quality_score and retrieval_score "
            f"(first by key): no clear win. Rule: {best['rule']}."
        )
    verdict = (
        "its lead is larger than the CIs (the 95% CIs do not overlap)"
        if best["lead_exceeds_ci"]
        else "its lead is within the CIs (the 95% CIs overlap): not a clear win"
    )
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
    for k in ("prompt_tokens_per_query", "completion_tokens_per_query", "cost_per_query", "latency_per_query", "failed"):
        out[k] = row[k]
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
            "hit@1", "mrr", "tokens in/out", "$/query", "s/query"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        m = r["metrics"]
        cost = "n/a" if r["cost_per_query"] is None else f"{r['cost_per_query']:.6f}"
        cells = [
            ("**" + r["variant"] + "**") if best and r["variant"] == best["variant"] else r["variant"],
            f"{r['chunk_size']}/{r['chunk_overlap']}", r["embedding_model"], r["retrieval"], str(r["num_chunks"]), r["llm"],
            _fmt(r["retrieval_score"]), _fmt(r["quality_score"], 2),
            _fmt({"value": m.get("hit@1", {}).get("value"), "ci95": None}), _fmt({"value": m.get("mrr", {}).get("value"), "ci95": None}),
            f"{r['prompt_tokens_per_query']:.0f}/{r['completion_tokens_per_query']:.0f}", cost, f"{r['latency_per_query']:.3f}",
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + ("\n\n" + best_sentence(best) if best else "")


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
    rows = sorted(rows, key=lambda r: (-_value(r, "quality_score"), -_value(r, "retrieval_score"), r["variant"]))
    best = choose_best(rows)
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
