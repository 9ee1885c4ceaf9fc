"""Retrieval metrics (the seed's retrieval_score, hit@k, recall@k, MRR, nDCG@k) and bootstrap CIs.

Relevance is binary per retrieved chunk: at page level a chunk is relevant when its source page (anchor
stripped) is the gold page; at section level when its source equals the gold `page#anchor` exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from rag_assets.lib.evaluate.eval_data import page_of


def retrieval_hit(gold_source: str, retrieved_sources: Sequence[str]) -> bool:
    """The seed's rule: an empty gold source is a hit; else a hit when any retrieved page is the gold page."""
    page = page_of(gold_source)
    if not page:
        return True
    return any(page_of(s) == page for s in retrieved_sources)


def retrieval_score(gold_sources: Sequence[str], retrieved: Sequence[Sequence[str]]) -> float:
    """The seed's retrieval_score: the mean of `retrieval_hit` over questions."""
    if len(gold_sources) != len(retrieved):
        raise ValueError("one retrieved list per gold source")
    if not gold_sources:
        return float("nan")
    return sum(retrieval_hit(g, r) for g, r in zip(gold_sources, retrieved)) / len(gold_sources)


def relevance(gold_source: str, retrieved_sources: Sequence[str], level: str = "page") -> list[int]:
    """1/0 per retrieved chunk. Section level needs an anchor; a gold without one is judged by page."""
    if level not in ("page", "section"):
        raise ValueError(f"level must be 'page' or 'section', got {level!r}")
    if level == "section" and "#" in gold_source:
        return [int(s == gold_source) for s in retrieved_sources]
    page = page_of(gold_source)
    return [int(page_of(s) == page) for s in retrieved_sources]


def hit_at_k(rels: Sequence[int], k: int) -> float:
    return float(any(rels[:k]))


def recall_at_k(rels: Sequence[int], k: int, n_relevant: int) -> float:
    """Relevant chunks in the top k over all relevant chunks in the index (n_relevant)."""
    if n_relevant <= 0:
        return 0.0
    return min(1.0, sum(rels[:k]) / n_relevant)


def reciprocal_rank(rels: Sequence[int]) -> float:
    for rank, rel in enumerate(rels, 1):
        if rel:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(rels: Sequence[int], k: int, n_relevant: int) -> float:
    """Binary-gain nDCG: DCG of the top k over the DCG of min(k, n_relevant) relevant chunks ranked first."""
    ideal_hits = min(k, n_relevant)
    if ideal_hits <= 0:
        return 0.0
    dcg = sum(rel / math.log2(rank + 1) for rank, rel in enumerate(rels[:k], 1))
    idcg = sum(1.0 / math.log2(rank + 1) for rank in range(1, ideal_hits + 1))
    return min(1.0, dcg / idcg)


def question_metrics(
    gold_source: str, ranked_sources: Sequence[str], ks: Sequence[int], n_relevant: dict | None = None
) -> dict[str, float]:
    """Every k-metric for one question at page and section level (section ones prefixed `section_`).

    n_relevant: relevant chunks in the index per level ({"page": n, "section": n}); without it, the
    relevant chunks found in the ranked list stand in (recall then only says how early they came).
    """
    out = {}
    for level, prefix in (("page", ""), ("section", "section_")):
        rels = relevance(gold_source, ranked_sources, level)
        total = (n_relevant or {}).get(level) or max(1, sum(rels))
        out[f"{prefix}mrr"] = reciprocal_rank(rels)
        for k in ks:
            out[f"{prefix}hit@{k}"] = hit_at_k(rels, k)
            out[f"{prefix}recall@{k}"] = recall_at_k(rels, k, total)
            out[f"{prefix}ndcg@{k}"] = ndcg_at_k(rels, k, total)
    return out


def bootstrap_ci(values: Sequence[float], n_boot: int = 2000, seed: int = 0) -> list:
    """Percentile bootstrap 95% CI of the mean; [None, None] without values, [v, v] for one value."""
    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if x.size == 0:
        return [None, None]
    if x.size == 1 or np.all(x == x[0]):
        return [float(x[0]), float(x[0])]
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return [float(low), float(high)]


def summarize(values: Sequence[float], n_boot: int = 2000, seed: int = 0, binary: bool = False) -> dict:
    """{"value": mean, "ci95": [low, high], "n"}; value None when there is nothing to average.

    binary: the values are 0/1 outcomes (hits): the CI is Wilson's, which is never zero-width at 0 or 1 (a
    bootstrap of 12 hits out of 12 says [1, 1], as if nothing could be learnt from more questions)."""
    x = [float(v) for v in values if v is not None]
    if binary and any(v not in (0.0, 1.0) for v in x):
        raise ValueError("binary=True needs 0/1 values")
    return {
        "value": float(np.mean(x)) if x else None,
        "ci95": wilson_ci(int(sum(x)), len(x)) if binary else bootstrap_ci(x, n_boot, seed),
        "n": len(x),
    }


def percentiles(values: Sequence[float | None], qs: Sequence[int] = (50, 95)) -> dict:
    """{"p50": ..., "p95": ..., "n"} of per-query figures (latency); None without values."""
    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    out = {f"p{q}": (round(float(np.percentile(x, q)), 4) if x.size else None) for q in qs}
    return out | {"n": int(x.size)}


def is_binary_metric(name: str) -> bool:
    """Hit-style metrics are 0/1 per question: retrieval_score's hit, hit@k, section_hit@k."""
    return name == "hit" or name.split("@")[0] in ("hit", "section_hit")


def wilson_ci(successes: int, n: int, z: float = 1.959964) -> list:
    """Wilson score 95% interval for a proportion: never zero-width at 0 or 1; [None, None] for n = 0."""
    if n <= 0:
        return [None, None]
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # The interval holds p exactly; rounding would put 1.0 a hair above 0.9999999999999999 at p = 1.
    return [max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))]


EXACT_PERMUTATION_MAX_N = 16  # 2**16 sign patterns: enumerate them all; above, sample n_boot of them
ALPHA = 0.05


def paired_test(a: Sequence[float | None], b: Sequence[float | None], n_boot: int = 5000, seed: int = 0,
                alpha: float = ALPHA) -> dict:
    """Paired comparison of two systems scored on the same questions (a[i] and b[i] for question i).

    Pairs with a missing score on either side are dropped (and counted). Returns the mean difference a - b,
    its paired-bootstrap 95% CI, a two-sided sign-flip permutation p-value (exact up to 16 pairs), and the
    verdict: a is better than b when there are at least 2 pairs, p < alpha and the CI lies above 0 (b better:
    below 0). One pair, or differences that are all zero, never make a verdict.
    """
    if len(a) != len(b):
        raise ValueError("paired_test needs one score per question on both sides")
    pairs = [(x, y) for x, y in zip(a, b) if _present(x) and _present(y)]
    out = {"n": len(pairs), "dropped": len(a) - len(pairs), "diff": None, "ci95": [None, None],
           "p_value": None, "a_better": False, "b_better": False}
    if not pairs:
        return out
    d = np.asarray([x - y for x, y in pairs], dtype=np.float64)
    rng = np.random.default_rng(seed)
    out["diff"] = float(d.mean())
    if np.all(d == d[0]):
        out["ci95"] = [float(d[0]), float(d[0])]
    else:
        means = d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)
        low, high = np.percentile(means, [2.5, 97.5])
        out["ci95"] = [float(low), float(high)]
    out["p_value"] = _sign_flip_p(d, n_boot, rng)
    if d.size >= 2 and out["p_value"] < alpha:
        out["a_better"] = bool(out["ci95"][0] > 0)
        out["b_better"] = bool(out["ci95"][1] < 0)
    return out


def _present(v) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _sign_flip_p(d: np.ndarray, n_boot: int, rng) -> float:
    """Two-sided p-value of the mean difference under random sign flips (the paired permutation test)."""
    observed = abs(d.mean()) - 1e-12
    if d.size <= EXACT_PERMUTATION_MAX_N:
        patterns = ((np.arange(2 ** d.size)[:, None] >> np.arange(d.size)) & 1) * 2.0 - 1.0
        return float(np.mean(np.abs((patterns * d).mean(axis=1)) >= observed))
    signs = rng.choice([-1.0, 1.0], size=(n_boot, d.size))
    return float((np.sum(np.abs((signs * d).mean(axis=1)) >= observed) + 1) / (n_boot + 1))
