"""The synthetic_questions stage: sections -> candidate questions -> filter -> split -> Parquet (+ eval JSONL)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rag_assets.lib.questions import filters
from rag_assets.lib.questions import synthetic
from rag_assets.lib.settings import Settings
from rag_assets.lib.store import Layout, read_table, write_table


def section_rankers(data_dir: Path, sections: list[dict], model_name: str, k: int = filters.ROUND_TRIP_K):
    """Round-trip rankers: dense and BM25 over the committed index when there is one; otherwise BM25 over
    the sections themselves (built in memory), so the asset runs before the first index build too."""
    from rag_assets.lib.index import manifest

    if manifest.read(data_dir) is not None:
        from rag_assets.lib.index import vector_store
        from rag_assets.lib.ingest import embed
        from rag_assets.lib.retrieve.retriever import HybridParams, Retriever, RerankParams

        retriever = Retriever.open(data_dir, hybrid=HybridParams(), rerank=RerankParams())

        def dense(questions):
            vectors = embed.encode(embed.cached_model(retriever.model_name), questions)
            return [[h["source"] for h in vector_store.search(retriever.table, v, k)] for v in vectors]

        def bm25(questions):
            return [[h.source for h in retriever.lexical(q, k)] for q in questions]

        return [dense, bm25], "index: dense + bm25"
    import tantivy

    from rag_assets.lib.index import lexical

    index = tantivy.Index(lexical.build_schema())  # in memory
    writer = index.writer(heap_size=lexical.WRITER_HEAP, num_threads=1)
    for s in sections:
        writer.add_document(tantivy.Document(id=s["source"], text=s["text"], title=s["title"] or "", source=s["source"]))
    writer.commit()
    index.reload()

    def sections_bm25(questions):
        return [[h["source"] for h in lexical.search(index, q, k)] for q in questions]

    return [sections_bm25], "sections: bm25 (no index yet)"


def build_synthetic_questions(settings: Settings, layout: Layout | None = None, depth: int = 1,
                              max_per_section: int = 3, validation_share: float = synthetic.DEFAULT_VALIDATION_SHARE,
                              round_trip_k: int = filters.ROUND_TRIP_K, use_llm: bool = True) -> dict:
    t0 = time.perf_counter()
    layout = layout or Layout(settings.data_dir)
    if not layout.sections.exists():
        raise FileNotFoundError(f"{layout.sections} does not exist yet: materialize `sections` first")
    sections = read_table(layout.sections, columns=["source", "title", "text"]).to_pylist()
    llm, model = None, synthetic.llm_model_from_env() if use_llm else None
    if model:
        from rag_assets.lib.evaluate.eval_data import EvalFiles
        from rag_assets.lib.evaluate.judge import JudgeCache
        from rag_assets.lib.generate.llm import ChatClient

        llm = (ChatClient(), model, JudgeCache(EvalFiles(layout).judge_cache))
    rows = synthetic.generate(sections, settings.docs_base_url, depth, max_per_section, llm)
    from rag_assets.lib.ingest import embed

    vectors = embed.encode(embed.cached_model(settings.embedding_model), [r["question"] for r in rows]) if rows else None
    if rows:
        filters.near_duplicates(rows, vectors)
        filters.leakage(rows, {s["source"]: s["text"] for s in sections})
        rankers, how = section_rankers(settings.data_dir, sections, settings.embedding_model, round_trip_k)
        filters.round_trip(rows, rankers)
    else:
        how = "none"
    synthetic.assign_splits(rows, validation_share)
    out = synthetic.questions_path(layout.root)
    dropped = filters.counts(rows)
    split_counts = {s: sum(1 for r in rows if r["split"] == s) for s in synthetic.SPLITS}
    write_table(out, synthetic.to_table(rows), metadata={"dropped": dropped, "splits": split_counts,
                                                         "round_trip": how, "depth": depth})
    write_validation_jsonl(rows, synthetic.validation_jsonl_path(layout.root))
    return {
        "questions": len(rows),
        "sections": len(sections),
        "generator": rows[0]["generator"] if rows else (f"llm:{model}" if model else synthetic.OFFLINE_GENERATOR),
        "dropped": dropped,
        "splits": split_counts,
        "areas": len({r["area"] for r in rows}),
        "round_trip": how,
        "path": str(out),
        "seconds": time.perf_counter() - t0,
        "preview": [{k: r[k] for k in ("question", "source", "split", "drop_reason")} for r in rows[:8]],
    }


def write_validation_jsonl(rows: list[dict], path: Path) -> None:
    """The validation split as an eval set (RAG_EVAL_PATH=<this file>): scores on a corpus with no hand-written
    questions. Written atomically."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for r in rows:
            if r["split"] == "validation":
                f.write(json.dumps({"question": r["question"], "source": r["source"]}) + "\n")
    os.replace(tmp, path)
