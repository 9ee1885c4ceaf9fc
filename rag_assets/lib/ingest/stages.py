"""The ingestion stages over files in a Layout: docs -> sections -> chunks -> embeddings -> indexes.

Each stage reads its input from the layout, writes its output atomically and returns figures for
the caller to report. Work already done for unchanged inputs is reused: sections of documents
whose content hash is unchanged, and vectors of chunk ids already embedded by the same model.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict

import numpy as np
import pyarrow as pa

from rag_assets.lib.ingest import embed, refresh
from rag_assets.lib.index import lexical, vector_store
from rag_assets.lib.ingest.chunking import chunk_sections
from rag_assets.lib.ingest.docs import load_documents
from rag_assets.lib.ingest.embed_cache import VectorCache
from rag_assets.lib.ingest.sections import Section, split_sections
from rag_assets.lib.settings import Settings
from rag_assets.lib.store import Layout, read_table, table_metadata, write_table

# In-process embedding goes in slices of this many chunks, each saved to the vector cache as it
# finishes, so a killed run loses at most one slice.
EMBED_SLICE = 256


def build_docs(settings: Settings, layout: Layout) -> dict:
    t0 = time.perf_counter()
    result = load_documents(settings.docs_dir, settings.docs_base_url)
    rows = result.as_rows()
    previous = refresh.previous_docs(layout)
    current = {r["doc_id"]: r["content_hash"] for r in rows}
    added, changed, deleted = refresh.diff(previous, current)
    write_table(layout.docs, pa.Table.from_pylist(rows))
    return {
        "documents": len(rows),
        "bytes": sum(r["size"] for r in rows),
        "skipped": result.skipped,
        "ignored_files": result.ignored,
        "docs_added": len(added),
        "docs_changed": len(changed),
        "docs_deleted": len(deleted),
        "data_version": refresh.docs_digest(rows),
        "seconds": time.perf_counter() - t0,
        "preview": [{k: r[k] for k in ("doc_id", "url", "title", "size")} for r in rows[:5]],
    }


def build_sections(layout: Layout) -> dict:
    t0 = time.perf_counter()
    docs = read_table(layout.docs).to_pylist()
    reusable = _reusable_sections(layout, {d["doc_id"]: (d["content_hash"], d["url"]) for d in docs})
    rows, parsed = [], 0
    for d in docs:
        kept = reusable.get(d["doc_id"])
        if kept is None:
            parsed += 1
            kept = [
                dict(asdict(s), content_hash=d["content_hash"])
                for s in split_sections(d["doc_id"], d["url"], d["format"], d["content"])
            ]
        rows.extend(kept)
    empty = sorted({d["doc_id"] for d in docs} - {r["doc_id"] for r in rows})
    docs_digest = refresh.docs_digest(docs)
    write_table(layout.sections, _sections_table(rows), metadata={"docs_digest": docs_digest})
    return {
        "sections": len(rows),
        "data_version": refresh.digest([docs_digest] + [r["source"] + "\x1e" + r["text"] for r in rows]),
        "docs_parsed": parsed,
        "docs_without_sections": empty,
        "seconds": time.perf_counter() - t0,
        "preview": [{k: r[k] for k in ("source", "title")} | {"text": r["text"][:160]} for r in rows[:5]],
    }


def _sections_table(rows: list[dict]) -> pa.Table:
    schema = pa.schema([(n, pa.string()) for n in ("doc_id", "source", "title", "text", "content_hash")])
    return pa.Table.from_pylist(rows, schema=schema)


def _reusable_sections(layout: Layout, docs: dict[str, tuple[str, str]]) -> dict[str, list[dict]]:
    """Previous sections of documents whose content hash and URL are unchanged, by doc_id."""
    if not layout.sections.exists():
        return {}
    out: dict[str, list[dict]] = {}
    stale: set[str] = set()
    for r in read_table(layout.sections).to_pylist():
        content_hash, url = docs.get(r["doc_id"], (None, ""))
        # A new base URL changes every source even when the content is the same.
        if content_hash == r["content_hash"] and (r["source"] == url or r["source"].startswith(url + "#")):
            out.setdefault(r["doc_id"], []).append(r)
        else:
            stale.add(r["doc_id"])
    return {k: v for k, v in out.items() if k not in stale}


def build_chunks(layout: Layout, chunk_size: int, chunk_overlap: int) -> dict:
    t0 = time.perf_counter()
    table = read_table(layout.sections)
    sections = [Section(r["doc_id"], r["source"], r["title"], r["text"]) for r in table.to_pylist()]
    chunks = chunk_sections(sections, chunk_size, chunk_overlap)
    rows = [asdict(c) for c in chunks]
    schema = pa.schema([(n, pa.string()) for n in ("id", "doc_id", "source", "title", "text")])
    ids_digest = refresh.digest(r["id"] for r in rows)
    write_table(
        layout.chunks,
        pa.Table.from_pylist(rows, schema=schema),
        metadata={
            "chunk_size": chunk_size,
            "chunk_overlap": chunk_overlap,
            # Lineage for change detection: which documents these chunks come from.
            "docs_digest": _schema_meta(table).get("docs_digest"),
            "ids_digest": ids_digest,
        },
    )
    lengths = [len(r["text"]) for r in rows] or [0]
    return {
        "chunks": len(rows),
        "chunk_size": chunk_size,
        "chunk_overlap": chunk_overlap,
        "mean_chars": float(np.mean(lengths)),
        "max_chars": int(max(lengths)),
        "data_version": ids_digest,
        "seconds": time.perf_counter() - t0,
        "preview": [{"id": r["id"], "source": r["source"], "text": r["text"][:160]} for r in rows[:5]],
    }


def build_embeddings(
    layout: Layout, model_name: str, ray_address: str | None = None, ray_min_chunks: int = 0
) -> dict:
    """Embed chunk ids not embedded before by this model: on Ray Data, or in-process below `ray_min_chunks`.

    Finished batches go to a vector cache as they arrive, so a killed run resumes where it stopped.
    """
    t0 = time.perf_counter()
    chunks = read_table(layout.chunks, columns=["id", "text"])
    ids, texts = chunks.column("id").to_pylist(), chunks.column("text").to_pylist()
    previous_ids = _previous_ids(layout)
    known = _previous_vectors(layout, model_name)
    cache = VectorCache(layout.cache, model_name)
    resumed = {cid: v for cid, v in cache.load().items() if cid not in known}
    known.update(resumed)
    todo = [i for i, cid in enumerate(ids) if cid not in known]
    device, how = embed.torch_device(), "none needed"
    new_vectors = {}
    if todo:
        todo_ids, todo_texts = [ids[i] for i in todo], [texts[i] for i in todo]
        if len(todo) >= ray_min_chunks:
            from rag_assets.lib.ray_cluster import ensure_ray

            how = "ray data: " + ensure_ray(ray_address)
            got_ids, vectors, device = embed.embed_with_ray(todo_ids, todo_texts, model_name, on_batch=cache.append)
        else:
            how = "in-process encode (small batch)"
            got_ids, vectors = _encode_in_slices(todo_ids, todo_texts, model_name, cache)
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
    cache.clear()  # its vectors are in embeddings.parquet now
    return {
        "chunks": len(ids),
        "chunks_embedded": len(new_vectors),
        "chunks_reused": len(ids) - len(new_vectors),
        "chunks_resumed": sum(1 for cid in ids if cid in resumed),
        "chunks_deleted": len(previous_ids - set(ids)),
        "model": model_name,
        "dim": dim,
        "device": device,
        "method": how,
        "data_version": refresh.digest([model_name] + ids),
        "seconds": embed_seconds,
        "chunks_per_second": (len(new_vectors) / embed_seconds) if new_vectors and embed_seconds else None,
    }


def _encode_in_slices(ids: list[str], texts: list[str], model_name: str, cache: VectorCache):
    model = embed.cached_model(model_name)
    # Longest first, as on Ray: each batch pads to similar lengths.
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    got_ids, parts = [], []
    for start in range(0, len(order), EMBED_SLICE):
        part = order[start : start + EMBED_SLICE]
        vectors = embed.encode(model, [texts[i] for i in part])
        cache.append([ids[i] for i in part], vectors)
        got_ids.extend(ids[i] for i in part)
        parts.append(vectors)
    return got_ids, np.concatenate(parts)


def _previous_ids(layout: Layout) -> set[str]:
    """Chunk ids of the last embeddings, whatever model made them: gone ones count as deleted."""
    if not layout.embeddings.exists():
        return set()
    return set(read_table(layout.embeddings, columns=["id"]).column("id").to_pylist())


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


def _index_rows(layout: Layout) -> tuple[pa.Table, dict]:
    """Chunks with their vectors, and the stamp the vector index records once it holds them."""
    chunks = read_table(layout.chunks, columns=["id", "text", "source", "title"])
    vectors = read_table(layout.embeddings)
    if chunks.column("id").to_pylist() != vectors.column("id").to_pylist():
        raise RuntimeError("embeddings are out of date with chunks: materialize `embeddings` first")
    stamp = _stamp(chunks) | {"model": _schema_meta(vectors).get("model")}
    return chunks.append_column("vector", vectors.column("vector")), stamp


def _schema_meta(table: pa.Table) -> dict:
    out = {}
    for k, v in (table.schema.metadata or {}).items():
        try:
            out[k.decode()] = json.loads(v)
        except (ValueError, UnicodeDecodeError):
            continue
    return out


def _stamp(chunks: pa.Table) -> dict:
    """What an index was built from, for change detection (lib/refresh.py)."""
    meta = _schema_meta(chunks)
    return {
        "docs_digest": meta.get("docs_digest"),
        "chunk_size": meta.get("chunk_size"),
        "chunk_overlap": meta.get("chunk_overlap"),
        "ids_digest": refresh.digest(chunks.column("id").to_pylist()),
    }


def build_vector_index(layout: Layout) -> dict:
    t0 = time.perf_counter()
    rows, stamp = _index_rows(layout)
    result = vector_store.sync(layout.lancedb, rows)
    # Written after the commit: a kill in between only makes the next refresh re-check (a no-op sync).
    refresh.write_stamp(layout, "vector_index", stamp | {"version": result.version})
    data_version = refresh.digest([stamp["model"], stamp["ids_digest"]])
    return asdict(result) | {"data_version": data_version, "seconds": time.perf_counter() - t0}


def build_lexical_index(layout: Layout) -> dict:
    t0 = time.perf_counter()
    chunks = read_table(layout.chunks, columns=["id", "text", "source", "title"])
    result = lexical.sync(layout.tantivy, chunks.to_pylist())
    stamp = _stamp(chunks)
    refresh.write_stamp(layout, "lexical_index", stamp)
    return asdict(result) | {"data_version": stamp["ids_digest"], "seconds": time.perf_counter() - t0}
