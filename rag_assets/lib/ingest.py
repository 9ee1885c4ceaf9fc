"""The ingestion stages over files in a Layout: docs -> sections -> chunks -> embeddings -> indexes.

Each stage reads its input from the layout, writes its output atomically and returns figures for
the caller to report. Work already done for unchanged inputs is reused: sections of documents
whose content hash is unchanged, and vectors of chunk ids already embedded by the same model.
"""

from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np
import pyarrow as pa

from rag_assets.lib import embed, lexical, vector_store
from rag_assets.lib.chunking import chunk_sections
from rag_assets.lib.docs import load_documents
from rag_assets.lib.sections import Section, split_sections
from rag_assets.lib.settings import Settings
from rag_assets.lib.store import Layout, read_table, table_metadata, write_table

DOC_COLUMNS = ["doc_id", "url", "title", "format", "content_hash", "size"]


def build_docs(settings: Settings, layout: Layout) -> dict:
    t0 = time.perf_counter()
    result = load_documents(settings.docs_dir, settings.docs_base_url)
    rows = result.as_rows()
    previous = _previous_hashes(layout)
    current = {r["doc_id"]: r["content_hash"] for r in rows}
    write_table(layout.docs, pa.Table.from_pylist(rows))
    return {
        "documents": len(rows),
        "bytes": sum(r["size"] for r in rows),
        "skipped": result.skipped,
        "ignored_files": result.ignored,
        "docs_added": len(current.keys() - previous.keys()),
        "docs_changed": sum(1 for k, h in current.items() if k in previous and previous[k] != h),
        "docs_deleted": len(previous.keys() - current.keys()),
        "seconds": time.perf_counter() - t0,
        "preview": [{k: r[k] for k in ("doc_id", "url", "title", "size")} for r in rows[:5]],
    }


def _previous_hashes(layout: Layout) -> dict[str, str]:
    if not layout.docs.exists():
        return {}
    t = read_table(layout.docs, columns=["doc_id", "content_hash"])
    return dict(zip(t.column("doc_id").to_pylist(), t.column("content_hash").to_pylist()))


def build_sections(layout: Layout) -> dict:
    t0 = time.perf_counter()
    docs = read_table(layout.docs).to_pylist()
    reusable = _reusable_sections(layout, {d["doc_id"]: d["content_hash"] for d in docs})
    rows, parsed = [], 0
    for d in docs:
        kept = reusable.get((d["doc_id"], d["content_hash"]))
        if kept is None:
            parsed += 1
            kept = [
                dict(asdict(s), content_hash=d["content_hash"])
                for s in split_sections(d["doc_id"], d["url"], d["format"], d["content"])
            ]
        rows.extend(kept)
    empty = sorted({d["doc_id"] for d in docs} - {r["doc_id"] for r in rows})
    write_table(layout.sections, _sections_table(rows))
    return {
        "sections": len(rows),
        "docs_parsed": parsed,
        "docs_without_sections": empty,
        "seconds": time.perf_counter() - t0,
        "preview": [{k: r[k] for k in ("source", "title")} | {"text": r["text"][:160]} for r in rows[:5]],
    }


def _sections_table(rows: list[dict]) -> pa.Table:
    schema = pa.schema([(n, pa.string()) for n in ("doc_id", "source", "title", "text", "content_hash")])
    return pa.Table.from_pylist(rows, schema=schema)


def _reusable_sections(layout: Layout, hashes: dict[str, str]) -> dict[tuple, list[dict]]:
    if not layout.sections.exists():
        return {}
    out: dict[tuple, list[dict]] = {}
    for r in read_table(layout.sections).to_pylist():
        if hashes.get(r["doc_id"]) == r["content_hash"]:
            out.setdefault((r["doc_id"], r["content_hash"]), []).append(r)
    return out


def build_chunks(layout: Layout, chunk_size: int, chunk_overlap: int) -> dict:
    t0 = time.perf_counter()
    sections = [Section(r["doc_id"], r["source"], r["title"], r["text"]) for r in read_table(layout.sections).to_pylist()]
    chunks = chunk_sections(sections, chunk_size, chunk_overlap)
    rows = [asdict(c) for c in chunks]
    schema = pa.schema([(n, pa.string()) for n in ("id", "doc_id", "source", "title", "text")])
    write_table(
        layout.chunks,
        pa.Table.from_pylist(rows, schema=schema),
        metadata={"chunk_size": chunk_size, "chunk_overlap": chunk_overlap},
    )
    lengths = [len(r["text"]) for r in rows] or [0]
    return {
        "chunks": len(rows),
        "chunk_size": chunk_size,
        "chunk_overlap": chunk_overlap,
        "mean_chars": float(np.mean(lengths)),
        "max_chars": int(max(lengths)),
        "seconds": time.perf_counter() - t0,
        "preview": [{"id": r["id"], "source": r["source"], "text": r["text"][:160]} for r in rows[:5]],
    }


def build_embeddings(
    layout: Layout, model_name: str, ray_address: str | None = None, ray_min_chunks: int = 0
) -> dict:
    """Embed chunk ids not embedded before by this model: on Ray Data, or in-process below `ray_min_chunks`."""
    t0 = time.perf_counter()
    chunks = read_table(layout.chunks, columns=["id", "text"])
    ids, texts = chunks.column("id").to_pylist(), chunks.column("text").to_pylist()
    known = _previous_vectors(layout, model_name)
    todo = [i for i, cid in enumerate(ids) if cid not in known]
    device, how = embed.torch_device(), "none needed"
    new_vectors = {}
    if todo:
        todo_ids, todo_texts = [ids[i] for i in todo], [texts[i] for i in todo]
        if len(todo) >= ray_min_chunks:
            from rag_assets.lib.ray_cluster import ensure_ray

            how = "ray data: " + ensure_ray(ray_address)
            got_ids, vectors, device = embed.embed_with_ray(todo_ids, todo_texts, model_name)
        else:
            how = "in-process encode (small batch)"
            got_ids, vectors = todo_ids, embed.encode(embed.cached_model(model_name), todo_texts)
        new_vectors = dict(zip(got_ids, vectors))
    embed_seconds = time.perf_counter() - t0
    dim = len(next(iter(new_vectors.values()))) if new_vectors else (len(next(iter(known.values()))) if known else 0)
    if ids and not dim:
        dim = embed.model_dimension(model_name)
    matrix = np.zeros((len(ids), dim), dtype=np.float32)
    for row, cid in enumerate(ids):
        matrix[row] = new_vectors[cid] if cid in new_vectors else known[cid]
    table = pa.table(
        {"id": pa.array(ids, pa.string()), "vector": pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel()), dim)}
    )
    write_table(layout.embeddings, table, metadata={"model": model_name, "dim": dim})
    prev_ids = set(known)
    return {
        "chunks": len(ids),
        "chunks_embedded": len(new_vectors),
        "chunks_reused": len(ids) - len(new_vectors),
        "chunks_deleted": len(prev_ids - set(ids)),
        "model": model_name,
        "dim": dim,
        "device": device,
        "method": how,
        "seconds": embed_seconds,
        "chunks_per_second": (len(new_vectors) / embed_seconds) if new_vectors and embed_seconds else None,
    }


def _previous_vectors(layout: Layout, model_name: str) -> dict[str, np.ndarray]:
    if not layout.embeddings.exists() or table_metadata(layout.embeddings).get("model") != model_name:
        return {}
    t = read_table(layout.embeddings)
    ids = t.column("id").to_pylist()
    if not ids:
        return {}
    flat = t.column("vector").combine_chunks()
    matrix = flat.flatten().to_numpy().reshape(len(ids), -1)
    return dict(zip(ids, matrix))


def _index_rows(layout: Layout) -> pa.Table:
    chunks = read_table(layout.chunks, columns=["id", "text", "source", "title"])
    vectors = read_table(layout.embeddings)
    if chunks.column("id").to_pylist() != vectors.column("id").to_pylist():
        raise RuntimeError("embeddings are out of date with chunks: materialize `embeddings` first")
    return chunks.append_column("vector", vectors.column("vector"))


def build_vector_index(layout: Layout) -> dict:
    t0 = time.perf_counter()
    rows = _index_rows(layout)
    result = vector_store.sync(layout.lancedb, rows)
    return asdict(result) | {"seconds": time.perf_counter() - t0}


def build_lexical_index(layout: Layout) -> dict:
    t0 = time.perf_counter()
    rows = read_table(layout.chunks, columns=["id", "text", "source", "title"]).to_pylist()
    result = lexical.sync(layout.tantivy, rows)
    return asdict(result) | {"seconds": time.perf_counter() - t0}
