"""Routing policies compared on one eval set: always-open, always-strong, the router, random routing.

Every question is answered by both LLMs and both answers are judged (cached), so each policy's quality is
the mean of the judge scores it would have got, and its cost the mean of the per-question costs it would
have paid. APGR (average performance gap recovered) = (q_router - q_open) / (q_strong - q_open).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rag_assets.lib.evaluate import pipeline as evaluate
from rag_assets.lib.experiments import pricing


def apgr(q_open: float, q_strong: float, q_policy: float) -> float | None:
    gap = q_strong - q_open
    return None if abs(gap) < 1e-12 else (q_policy - q_open) / gap


def _mean(values) -> float | None:
    return None if any(v is None for v in values) or not len(values) else float(np.mean(values))


def policy_table(open_scores: Sequence, strong_scores: Sequence, routed_strong: Sequence[bool],
                 open_costs: Sequence | None = None, strong_costs: Sequence | None = None,
                 n_boot: int = 2000, seed: int = 0) -> dict:
    """Quality, cost per query and strong share of each policy over the questions both LLMs have a score for.

    Random routing sends each question to the strong LLM with the router's strong share: its quality and
    cost are their expectations, so its APGR is that share. Costs of None (unknown price) stay None.
    """
    n_all = len(open_scores)
    if not (len(strong_scores) == len(routed_strong) == n_all):
        raise ValueError("one open score, one strong score and one routing decision per question")
    open_costs = list(open_costs) if open_costs is not None else [None] * n_all
    strong_costs = list(strong_costs) if strong_costs is not None else [None] * n_all
    keep = [i for i in range(n_all) if open_scores[i] is not None and strong_scores[i] is not None]
    qo = np.asarray([open_scores[i] for i in keep], dtype=float)
    qs = np.asarray([strong_scores[i] for i in keep], dtype=float)
    r = np.asarray([bool(routed_strong[i]) for i in keep])
    co = [open_costs[i] for i in keep]
    cs = [strong_costs[i] for i in keep]
    out = {"n": len(keep), "dropped": n_all - len(keep), "policies": {}, "apgr": None, "apgr_ci95": [None, None]}
    if not keep:
        return out
    share = float(r.mean())
    q_open, q_strong, q_router = float(qo.mean()), float(qs.mean()), float(np.where(r, qs, qo).mean())
    c_open, c_strong = _mean(co), _mean(cs)
    c_router = _mean([s if ri else o for o, s, ri in zip(co, cs, r)])
    c_random = None if c_open is None or c_strong is None else (1 - share) * c_open + share * c_strong
    rows = {
        "always_open": (q_open, c_open, 0.0),
        "always_strong": (q_strong, c_strong, 1.0),
        "router": (q_router, c_router, share),
        "random": ((1 - share) * q_open + share * q_strong, c_random, share),
    }
    out["policies"] = {name: {"quality": q, "cost_per_query": c, "strong_share": s,
                              "apgr": apgr(q_open, q_strong, q)} for name, (q, c, s) in rows.items()}
    out["apgr"] = out["policies"]["router"]["apgr"]
    out["apgr_ci95"] = bootstrap_apgr(qo, qs, r, n_boot, seed)
    return out


def bootstrap_apgr(qo: np.ndarray, qs: np.ndarray, r: np.ndarray, n_boot: int = 2000, seed: int = 0) -> list:
    """Percentile 95% CI of the router's APGR over resampled questions (resamples without a gap are skipped)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, qo.size, size=(n_boot, qo.size))
    o, s, ro = qo[idx].mean(axis=1), qs[idx].mean(axis=1), np.where(r, qs, qo)[idx].mean(axis=1)
    gap = s - o
    ok = np.abs(gap) > 1e-12
    if ok.sum() < max(10, n_boot // 10):
        return [None, None]
    values = (ro[ok] - o[ok]) / gap[ok]
    low, high = np.percentile(values, [2.5, 97.5])
    return [float(low), float(high)]


def response_cost(row: dict) -> float | None:
    return pricing.cost_per_query(row.get("llm") or "", row.get("prompt_tokens") or 0,
                                  row.get("completion_tokens") or 0)


def compare_llms(retriever, questions: list[dict], router_model, open_generator, strong_generator, judge,
                 references: dict | None, mode: str, num_chunks: int) -> dict:
    """Answer the eval set with both LLMs, judge both, route with the router, and compare the policies."""
    answers = {}
    for role, generator in (("open", open_generator), ("strong", strong_generator)):
        rows = evaluate.generate_responses(retriever, questions, generator, mode, num_chunks)
        answers[role] = {"generator": generator.name, "rows": rows,
                         "quality": evaluate.score_quality(rows, judge, references)}
    probabilities = router_model.probabilities([q["question"] for q in questions])
    routed = probabilities >= router_model.threshold
    scores = {role: [p["score"] if p["status"] == "scored" else None for p in a["quality"]["per_question"]]
              for role, a in answers.items()}
    costs = {role: [response_cost(r) for r in a["rows"]] for role, a in answers.items()}
    table = policy_table(scores["open"], scores["strong"], routed.tolist(), costs["open"], costs["strong"])
    per_question = [
        {"question": q["question"], "router_probability": float(p), "route": "strong" if s else "open",
         "open_score": so, "strong_score": ss, "open_cost": co, "strong_cost": cs}
        for q, p, s, so, ss, co, cs in zip(questions, probabilities, routed, scores["open"], scores["strong"],
                                           costs["open"], costs["strong"])
    ]
    return {
        **table,
        "open_llm": answers["open"]["generator"], "strong_llm": answers["strong"]["generator"],
        "judge": getattr(judge, "name", None),
        "judge_calls": sum(a["quality"]["judge_calls"] for a in answers.values()),
        "judgements_cached": sum(a["quality"]["cached"] for a in answers.values()),
        "failed": {role: sum(1 for r in a["rows"] if r.get("failed")) for role, a in answers.items()},
        "per_question": per_question,
    }


def markdown(report: dict) -> str:
    """The policy table as markdown (quality = mean judge score, 1-5)."""
    if not report.get("policies"):
        return "_no question has a judge score from both LLMs_"
    fmt = lambda v, spec: "n/a" if v is None else format(v, spec)  # noqa: E731
    lines = ["| policy | quality | cost per query ($) | strong share | APGR |", "|---|---|---|---|---|"]
    for name, p in report["policies"].items():
        lines.append(f"| {name} | {fmt(p['quality'], '.3f')} | {fmt(p['cost_per_query'], '.6f')} | "
                     f"{p['strong_share']:.2f} | {fmt(p['apgr'], '.2f')} |")
    lo, hi = report["apgr_ci95"]
    lines.append(f"\nRouter APGR {fmt(report['apgr'], '.2f')} (95% CI {fmt(lo, '.2f')} to {fmt(hi, '.2f')}), "
                 f"n = {report['n']} questions ({report['dropped']} without both scores).")
    return "\n".join(lines)
