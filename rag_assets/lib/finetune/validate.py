"""Validation of an embedding model on held-out questions: rank every section by cosine, score the gold one.

Section-level retrieval over the whole section corpus (what the talk's fine-tuning evaluation measured) isolates
the embedding from chunking and fusion, and needs no index per candidate model. A model name may be a
sentence-transformers name/path, a fine-tuned model directory or a query-adapter directory; documents and
queries are embedded the way retrieval would (embed.document_model / embed.apply_adapter).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rag_assets.lib.evaluate.metrics import summarize
from rag_assets.lib.ingest import embed

KS = (1, 3, 5, 10)


class SectionIndex:
    """Section vectors per document model, computed once and shared (base and adapter use the same ones)."""

    def __init__(self, sources: list[str], texts: list[str], batch_size: int = 64):
        self.sources, self.texts, self.batch_size = list(sources), list(texts), batch_size
        self._vectors: dict[str, np.ndarray] = {}
        self._models: dict[str, object] = {}

    def model(self, name: str):
        doc = embed.document_model(name)
        if doc not in self._models:
            self._models[doc] = embed.load_model(doc)
        return self._models[doc]

    def vectors(self, name: str) -> np.ndarray:
        doc = embed.document_model(name)
        if doc not in self._vectors:
            self._vectors[doc] = embed.encode(self.model(name), self.texts, self.batch_size)
        return self._vectors[doc]

    def rank(self, name: str, questions: Sequence[str], depth: int = max(KS)) -> list[list[str]]:
        q = embed.encode(self.model(name), list(questions), self.batch_size)
        q = embed.apply_adapter(q, embed.query_adapter(name))
        scores = q @ self.vectors(name).T
        top = np.argsort(-scores, axis=1, kind="stable")[:, :depth]
        return [[self.sources[i] for i in row] for row in top]


def score(ranked: list[list[str]], gold: Sequence[str], ks: Sequence[int] = KS) -> dict:
    """MRR@10 and hit@k (section level) with bootstrap CIs, and the per-question reciprocal ranks."""
    rr = []
    hits = {k: [] for k in ks}
    for sources, g in zip(ranked, gold):
        rank = next((i for i, s in enumerate(sources[:10], 1) if s == g), None)
        rr.append(1.0 / rank if rank else 0.0)
        for k in ks:
            hits[k].append(float(g in sources[:k]))
    out = {"mrr@10": summarize(rr)} | {f"hit@{k}": summarize(v) for k, v in hits.items()}
    return out | {"per_question_rr": rr}


def evaluate(index: SectionIndex, name: str, questions: Sequence[dict]) -> dict:
    if not questions:
        return {"mrr@10": summarize([]), **{f"hit@{k}": summarize([]) for k in KS}, "per_question_rr": []}
    return score(index.rank(name, [q["question"] for q in questions]), [q["source"] for q in questions])


def headline(scores: dict) -> dict[str, float]:
    """Plain numbers for metadata: mrr@10, hit@1/3/5/10."""
    return {k: v["value"] for k, v in scores.items() if isinstance(v, dict) and v.get("value") is not None}
