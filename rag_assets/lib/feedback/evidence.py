"""Measure what triage decides on: each query's best cosine in the committed index and an offline-judge
score of its answer; then triage the whole log."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from rag_assets.lib.evaluate.eval_data import page_of
from rag_assets.lib.feedback import triage as triage_lib
from rag_assets.lib.index import vector_store
from rag_assets.lib.ingest.embed import cached_model, encode


def query_vectors(model_name: str, texts: list[str]) -> np.ndarray:
    return encode(cached_model(model_name), texts) if texts else np.zeros((0, 0), dtype=np.float32)


def max_similarities(retriever, texts: list[str]) -> list[float | None]:
    """The best cosine similarity of each text to any chunk of the index (None for an empty text)."""
    todo = [i for i, t in enumerate(texts) if t and t.strip()]
    out: list[float | None] = [None] * len(texts)
    for i, vec in zip(todo, query_vectors(retriever.model_name, [texts[i] for i in todo])):
        hits = vector_store.search(retriever.table, vec, 1)
        out[i] = hits[0]["score"] if hits else None
    return out


def indexed_pages(retriever) -> set[str]:
    sources = retriever.table.search().select(["source"]).limit(None).to_arrow().column("source").to_pylist()
    return {page_of(s) for s in sources}


def reference_text(sections: dict[str, str], source: str | None, first_of_page: dict[str, str] | None = None) -> str | None:
    """The gold text for a source: its section, or for a bare page URL the page's first section."""
    if not source:
        return None
    if source in sections:
        return sections[source]
    if first_of_page is None:
        first_of_page = first_sections(sections)
    return first_of_page.get(page_of(source))


def first_sections(sections: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for src, text in sections.items():
        out.setdefault(page_of(src), text)
    return out


def judge_scores(judge, items: list[tuple[str, str, str] | None]) -> list[float | None]:
    """Offline-judge scores (1-5) of (question, answer, reference) triples; None where a part is missing."""
    todo = [i for i, it in enumerate(items) if it is not None]
    scores = judge.score_many([items[i] for i in todo]) if todo else []
    out: list[float | None] = [None] * len(items)
    for i, s in zip(todo, scores):
        out[i] = float(s)
    return out


def triage_log(queries: list[dict], feedback: list[dict], retriever, sections: dict[str, str], judge,
               thresholds: triage_lib.Thresholds, base_url: str = "") -> dict:
    """Every logged query measured and triaged; the output keeps only the underperforming ones.

    The judge's reference is the known good page's text when the user gave one, else the top retrieved
    section (is the answer faithful to what it was shown?).
    """
    all_cases = triage_lib.cases(queries, feedback)
    sims = max_similarities(retriever, [c["query"] for c in all_cases]) if all_cases else []
    items, first_of_page = [], first_sections(sections)
    for c in all_cases:
        source = triage_lib.known_source(c)[0] or next(iter(c["retrieved"]), None)
        reference = reference_text(sections, source, first_of_page)
        ok = c["status"] in (None, "ok") and c["answer"] and reference
        items.append((c["query"], c["answer"], reference) if ok else None)
    scores = judge_scores(judge, items)
    pages = indexed_pages(retriever) if all_cases else set()
    rows = [triage_lib.triage(c, sim, score, thresholds, pages, base_url)
            for c, sim, score in zip(all_cases, sims, scores)]
    rows = [r for r in rows if r["signals"]]
    rows.sort(key=lambda r: (triage_lib.LABELS.index(r["label"]), r["docs_area"], r["asked_at"]))
    return {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "thresholds": vars(thresholds),
        "judge": getattr(judge, "name", None),
        "index_model": getattr(retriever, "model_name", None),
        "summary": triage_lib.summary(rows, len(all_cases)),
        "rows": rows,
    }


def triage_data_dir(data_dir, thresholds: triage_lib.Thresholds, base_url: str = "") -> dict:
    """Triage a data dir's query log against its committed index (nothing is opened for an empty log)."""
    from rag_assets.lib.evaluate.eval_data import section_texts
    from rag_assets.lib.evaluate.offline_judge import OfflineJudge
    from rag_assets.lib.retrieve.retriever import Retriever
    from rag_assets.lib.serve.query_log import read_log
    from rag_assets.lib.store import Layout

    queries, feedback = read_log(data_dir)
    if not queries:
        return triage_log([], [], None, {}, None, thresholds, base_url)
    retriever = Retriever.open(data_dir)
    return triage_log(queries, feedback, retriever, section_texts(Layout(data_dir)), OfflineJudge(),
                      thresholds, base_url)
