"""Training triples with hard negatives mined from our own index.

A hard negative for a question is a section of the same docs area that our retrieval ranks high but that is
not the gold section: the confusions the model should learn to separate. MultipleNegativesRankingLoss
then sees, per question, the other questions' positives and negatives in the batch plus its own hard one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag_assets.lib.evaluate.eval_data import docs_area, page_of


@dataclass(frozen=True)
class Triple:
    question: str
    source: str  # gold section (page#anchor)
    positive: str  # gold section text
    negative: str | None  # a hard negative's text, None when none was found
    negative_source: str | None


def mine_triples(
    questions: Sequence[dict],
    sections: dict[str, str],
    rank: Callable[[str], list[str]] | None,
    base_url: str = "",
    same_area: bool = True,
) -> tuple[list[Triple], dict]:
    """One triple per question whose gold section is indexed; `rank(question)` gives ranked section sources.

    The first ranked source that is not the gold section, has text, and (with same_area) lies in the gold's
    docs area becomes the hard negative. Returns the triples and counts (skipped, without negative).
    """
    triples, skipped, no_negative = [], 0, 0
    for q in questions:
        gold = q["source"]
        if not sections.get(gold):
            skipped += 1  # the gold section is not in the index (stale question): nothing to learn from
            continue
        area = docs_area(gold, base_url)
        negative = None
        for src in rank(q["question"]) if rank else []:
            if src == gold or not sections.get(src):
                continue
            if same_area and docs_area(src, base_url) != area:
                continue
            negative = src
            break
        no_negative += negative is None
        triples.append(Triple(q["question"], gold, sections[gold], sections.get(negative), negative))
    return triples, {"pairs": len(triples), "skipped_not_indexed": skipped, "without_negative": no_negative,
                     "same_page_negatives": sum(1 for t in triples if t.negative_source
                                                and page_of(t.negative_source) == page_of(t.source))}


def retriever_ranker(retriever, mode: str = "hybrid", depth: int = 20) -> Callable[[str], list[str]]:
    """Ranked section sources for a question from the committed index (chunks collapse to their section)."""

    def rank(question: str) -> list[str]:
        seen, out = set(), []
        for hit in retriever.search(question, mode, depth):
            if hit.source not in seen:
                seen.add(hit.source)
                out.append(hit.source)
        return out

    return rank


def matrix_ranker(model, sources: list[str], texts: list[str], depth: int = 20, batch_size: int = 64,
                  matrix=None, questions: list[str] = ()):
    """Ranked section sources by cosine over an in-memory matrix of section vectors (benchmarks: no index needed).
    `questions` known in advance are encoded in one batch."""
    import numpy as np

    from rag_assets.lib.ingest import embed

    matrix = embed.encode(model, texts, batch_size) if matrix is None else matrix
    known = dict(zip(questions, embed.encode(model, list(questions), batch_size))) if questions else {}

    def rank(question: str) -> list[str]:
        q = known[question] if question in known else embed.encode(model, [question])[0]
        top = np.argsort(-(matrix @ q), kind="stable")[:depth]
        return [sources[i] for i in top]

    return rank
