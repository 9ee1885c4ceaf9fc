"""Learn the hybrid fusion on validation questions: RRF leg weights, the RRF constant k and the BM25 title boost.

Each leg is retrieved once per question (once per title boost for BM25) and every combination is fused in
memory, so a grid of a few hundred settings costs one pass of retrieval. The objective is page-level MRR@10
plus hit@10 (the seed's retrieval unit is the page). A lexical weight of 0 is plain semantic search, so the
chosen setting is never worse than semantic on the questions it was tuned on.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from rag_assets.lib.retrieve.retriever import rrf

DEFAULT_GRID = {
    "hybrid_semantic_weight": [1.0],
    "hybrid_lexical_weight": [0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0],
    "rrf_k": [5, 10, 20, 30, 60, 100],
    "bm25_title_boost": [1.0, 2.0, 4.0],
}
DEPTH = 10  # metrics are read at 10
DEFAULT_PARAMS = {"hybrid_semantic_weight": 1.0, "hybrid_lexical_weight": 1.0, "rrf_k": 60, "bm25_title_boost": 1.0}


def _page(source: str) -> str:
    return (source or "").split("#", 1)[0]


def page_metrics(gold: str, sources: Sequence[str], depth: int = DEPTH) -> dict:
    """hit@1/5/10 and reciprocal rank of the gold page among the first `depth` ranked sources."""
    pages = [_page(s) for s in sources[:depth]]
    rank = next((i for i, p in enumerate(pages, 1) if p == _page(gold)), None)
    return {"hit@1": float(rank == 1), "hit@5": float(rank is not None and rank <= 5),
            "hit@10": float(rank is not None and rank <= 10), "mrr": 1.0 / rank if rank else 0.0}


def mean_metrics(rows: Sequence[dict]) -> dict:
    keys = ("hit@1", "hit@5", "hit@10", "mrr")
    n = max(len(rows), 1)
    return {k: round(sum(r[k] for r in rows) / n, 4) for k in keys} | {"n": len(rows)}


def collect_legs(retriever, questions: Sequence[str], candidates: int, title_boosts: Sequence[float]) -> dict:
    """Semantic ids, and lexical ids per title boost, for every question; with each chunk's source."""
    from dataclasses import replace

    sources: dict[str, str] = {}
    semantic = []
    for q in questions:
        hits = retriever.semantic(q, candidates)
        sources.update((h.id, h.source) for h in hits)
        semantic.append([h.id for h in hits])
    lexical = {}
    saved = retriever.rerank_params
    try:
        for boost in title_boosts:
            retriever.rerank_params = replace(saved, title_boost=boost)
            lists = []
            for q in questions:
                hits = retriever.lexical(q, candidates)
                sources.update((h.id, h.source) for h in hits)
                lists.append([h.id for h in hits])
            lexical[boost] = lists
    finally:
        retriever.rerank_params = saved
    return {"semantic": semantic, "lexical": lexical, "sources": sources}


def fused_sources(legs: dict, i: int, w_sem: float, w_lex: float, k: int, boost: float) -> list[str]:
    lists, weights = [legs["semantic"][i]], [w_sem]
    if w_lex > 0:
        lists.append(legs["lexical"][boost][i])
        weights.append(w_lex)
    return [legs["sources"][d] for d, _ in rrf(lists, weights, k)[:DEPTH]]


def tune(retriever, questions: Sequence[dict], grid: dict | None = None, candidates: int = 50) -> dict:
    """Every grid combination scored on the questions ({"question", "source"}); the best by MRR + hit@10.

    Returns {"params", "metrics", "semantic", "lexical", "n", "grid_size", "table"} (table sorted best first)."""
    grid = {**DEFAULT_GRID, **(grid or {})}
    if DEFAULT_PARAMS["bm25_title_boost"] not in grid["bm25_title_boost"]:  # the default is always compared
        grid["bm25_title_boost"] = [DEFAULT_PARAMS["bm25_title_boost"], *grid["bm25_title_boost"]]
    if not questions:
        raise ValueError("no validation questions to tune the hybrid fusion on")
    texts, golds = [q["question"] for q in questions], [q["source"] for q in questions]
    legs = collect_legs(retriever, texts, candidates, grid["bm25_title_boost"])
    table = []
    for w_sem, w_lex, k, boost in itertools.product(grid["hybrid_semantic_weight"], grid["hybrid_lexical_weight"],
                                                    grid["rrf_k"], grid["bm25_title_boost"]):
        if w_lex == 0 and boost != grid["bm25_title_boost"][0]:
            continue  # the boost only matters with a lexical leg
        rows = [page_metrics(g, fused_sources(legs, i, w_sem, w_lex, k, boost)) for i, g in enumerate(golds)]
        m = mean_metrics(rows)
        table.append({"hybrid_semantic_weight": w_sem, "hybrid_lexical_weight": w_lex, "rrf_k": k,
                      "bm25_title_boost": boost, **m, "objective": round(m["mrr"] + m["hit@10"], 4),
                      "per_question_mrr": [r["mrr"] for r in rows], "per_question_hit10": [r["hit@10"] for r in rows]})
    # Best objective; ties go to the setting closest to plain RRF (more lexical weight, larger k) for stability.
    table.sort(key=lambda r: (-r["objective"], -r["hybrid_lexical_weight"], -r["rrf_k"]))
    best = table[0]
    sem_rows = [page_metrics(g, [legs["sources"][d] for d in legs["semantic"][i]]) for i, g in enumerate(golds)]
    lex_rows = [page_metrics(g, [legs["sources"][d] for d in legs["lexical"][best["bm25_title_boost"]][i]])
                for i, g in enumerate(golds)]
    params = {k: best[k] for k in ("hybrid_semantic_weight", "hybrid_lexical_weight", "rrf_k", "bm25_title_boost")}
    d = DEFAULT_PARAMS
    default_rows = [page_metrics(g, fused_sources(legs, i, d["hybrid_semantic_weight"], d["hybrid_lexical_weight"],
                                                  d["rrf_k"], d["bm25_title_boost"])) for i, g in enumerate(golds)]
    return {
        "params": params,
        "metrics": {k: best[k] for k in ("hit@1", "hit@5", "hit@10", "mrr", "n")},
        "semantic": mean_metrics(sem_rows),
        "default": mean_metrics(default_rows),
        "lexical": mean_metrics(lex_rows),
        "n": len(questions),
        "grid_size": len(table),
        "table": [{k: v for k, v in r.items() if not k.startswith("per_question")} for r in table],
        "per_question": {"tuned_mrr": best["per_question_mrr"], "semantic_mrr": [r["mrr"] for r in sem_rows],
                         "tuned_hit10": best["per_question_hit10"], "semantic_hit10": [r["hit@10"] for r in sem_rows],
                         "default_mrr": [r["mrr"] for r in default_rows]},
    }
