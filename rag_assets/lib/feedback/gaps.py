"""Docs gaps: questions the corpus cannot answer, grouped into topics a docs team can act on."""

from __future__ import annotations

from collections import Counter

import numpy as np

from rag_assets.lib.evaluate.offline_judge import tokens

EXAMPLES_PER_TOPIC = 3
TERMS_PER_TOPIC = 3


def cluster(vectors: np.ndarray, distance: float) -> list[int]:
    """Topic number per unit vector: average-linkage agglomerative clustering on cosine distance, cut at
    `distance` (no number of topics to guess)."""
    if len(vectors) == 0:
        return []
    if len(vectors) == 1:
        return [0]
    from sklearn.cluster import AgglomerativeClustering

    model = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average", distance_threshold=distance)
    return [int(x) for x in model.fit_predict(np.asarray(vectors, dtype=np.float64))]


def topic_terms(questions: list[str], n: int = TERMS_PER_TOPIC) -> list[str]:
    """The words most of the topic's questions use (counted once per question), ties alphabetical."""
    counts = Counter(t for q in questions for t in set(tokens(q)) if len(t) > 2)
    return [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def docs_gaps(rows: list[dict], vectors: np.ndarray, distance: float) -> list[dict]:
    """Topics of docs-labelled triage rows (one vector per row), biggest first."""
    groups: dict[int, list[int]] = {}
    for i, topic in enumerate(cluster(vectors, distance)):
        groups.setdefault(topic, []).append(i)
    topics = []
    for members in groups.values():
        qs = [rows[i]["question"] for i in members]
        asked = sorted(rows[i]["asked_at"] for i in members)
        topics.append({
            "topic": " / ".join(topic_terms(qs)) or qs[0][:60],
            "count": len(members),
            "thumbs_down": sum(1 for i in members if rows[i].get("rating") == -1),
            "examples": list(dict.fromkeys(qs))[:EXAMPLES_PER_TOPIC],
            "docs_areas": sorted({rows[i]["docs_area"] for i in members}),
            "first_asked": asked[0],
            "last_asked": asked[-1],
            "trace_ids": [rows[i]["trace_id"] for i in members],
        })
    topics.sort(key=lambda t: (-t["count"], t["topic"]))
    return topics
