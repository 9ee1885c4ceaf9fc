"""The ingestion stages over files in a Layout: docs -> sections -> chunks -> embeddings -> indexes.

Each stage reads its input from the layout, writes its output atomically and returns figures for
the caller to report. Work already done for unchanged inputs is reused: sections of documents
whose content hash (and the parser version) is unchanged, and vectors of chunk texts already
embedded by the same model weights (model fingerprint). The two index stages build beside the
committed index and the second to finish commits the pair (lib/index/manifest.py).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict

import numpy as np
import pyarrow as pa

from rag_assets.lib.index import lexical, manifest, vector_store
from rag_assets.lib.ingest import embed, refresh
from rag_assets.lib.ingest.chunking import SPLITTER_VERSION, chunk_sections
from rag_assets.lib.ingest.docs import load_documents
from rag_assets.lib.ingest.embed_cache import VectorCache, text_hash
from rag_assets.lib.ingest.sections import PARSER_VERSION, Section, split_sections
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
    write_table(
        layout.sections, _sections_table(rows), metadata={"docs_digest": docs_digest, "parser_version": PARSER_VERSION}
    )
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
    """Previous sections of documents whose content hash and URL are unchanged, by doc_id.

    None when another parser version made them: then every document is parsed again."""
    if not layout.sections.exists() or table_metadata(layout.sections).get("parser_version") != PARSER_VERSION:
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
            # Lineage for change detection and the manifest: which documents and parser these come from.
            "docs_digest": _schema_meta(table).get("docs_digest"),
            "parser_version": _schema_meta(table).get("parser_version"),
            "splitter_version": SPLITTER_VERSION,
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
    """Embed the chunk texts these model weights have not embedded before: on Ray Data, or in-process
    below `ray_min_chunks`. Vectors are reused by (model fingerprint, text hash), so a new model,
    even of the same dimension, re-embeds every chunk, and a new chunking reuses equal texts.

    Finished batches go to a vector cache as they arrive, so a killed run resumes where it stopped.
    """
    t0 = time.perf_counter()
    fingerprint = embed.model_fingerprint(model_name)
    chunks = read_table(layout.chunks, columns=["id", "text"])
    ids, texts = chunks.column("id").to_pylist(), chunks.column("text").to_pylist()
    hashes = [text_hash(t) for t in texts]
    previous_ids = _previous_ids(layout)
    known = _previous_vectors(layout, fingerprint)
    cache = VectorCache(layout.cache, model_name, fingerprint)
    resumed = {h: v for h, v in cache.load().items() if h not in known}
    known.update(resumed)
    todo = list(dict.fromkeys(h for h in hashes if h not in known))  # each distinct text once
    text_of = dict(zip(hashes, texts))
    device, how = embed.torch_device(), "none needed"
    new_vectors = {}
    if todo:
        todo_texts = [text_of[h] for h in todo]
        if len(todo) >= ray_min_chunks:
            from rag_assets.lib.ray_cluster import ensure_ray

            how = "ray data: " + ensure_ray(ray_address)
            got, vectors, device = embed.embed_with_ray(todo, todo_texts, model_name, on_batch=cache.append)
        else:
            how = "in-process encode (small batch)"
            got, vectors = _encode_in_slices(todo, todo_texts, model_name, cache)
        new_vectors = dict(zip(got, vectors))
    embed_seconds = time.perf_counter() - t0
    dim = len(next(iter(new_vectors.values()))) if new_vectors else (len(next(iter(known.values()))) if known else 0)
    if ids and not dim:
        dim = embed.model_dimension(model_name)
    matrix = np.zeros((len(ids), dim), dtype=np.float32)
    for row, h in enumerate(hashes):
        matrix[row] = new_vectors[h] if h in new_vectors else known[h]
    table = pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "text_hash": pa.array(hashes, pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel()), dim),
        }
    )
    write_table(
        layout.embeddings,
        table,
        metadata={"model": model_name, "model_fingerprint": fingerprint, "dim": dim, "normalized": True},
    )
    cache.clear()  # its vectors are in embeddings.parquet now
    embedded = sum(1 for h in hashes if h in new_vectors)
    return {
        "chunks": len(ids),
        "chunks_embedded": embedded,
        "chunks_reused": len(ids) - embedded,
        "chunks_resumed": sum(1 for h in hashes if h in resumed),
        "chunks_deleted": len(previous_ids - set(ids)),
        "model": model_name,
        "model_fingerprint": fingerprint,
        "dim": dim,
        "device": device,
        "method": how,
        "data_version": refresh.digest([fingerprint] + ids),
        "seconds": embed_seconds,
        "chunks_per_second": (len(new_vectors) / embed_seconds) if new_vectors and embed_seconds else None,
    }


def _encode_in_slices(ids: list[str], texts: list[str], model_name: str, cache: VectorCache):
    """Encode texts in slices (ids are their text hashes), each slice saved to the cache as it finishes."""
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


def _previous_vectors(layout: Layout, fingerprint: str) -> dict[str, np.ndarray]:
    """{text hash: vector} of the last embeddings when the same weights made them (else nothing)."""
    if not layout.embeddings.exists() or table_metadata(layout.embeddings).get("model_fingerprint") != fingerprint:
        return {}
    t = read_table(layout.embeddings)
    hashes = t.column("text_hash").to_pylist()
    if not hashes:
        return {}
    flat = t.column("vector").combine_chunks()
    matrix = flat.flatten().to_numpy().reshape(len(hashes), -1)
    return dict(zip(hashes, matrix))


def _index_rows(layout: Layout) -> tuple[pa.Table, dict]:
    """Chunks with their vectors, and the embeddings' metadata (model, fingerprint, dim)."""
    chunks = read_table(layout.chunks, columns=["id", "text", "source", "title"])
    vectors = read_table(layout.embeddings)
    if chunks.column("id").to_pylist() != vectors.column("id").to_pylist():
        raise RuntimeError("embeddings are out of date with chunks: materialize `embeddings` first")
    meta = _schema_meta(vectors)
    if not meta.get("model_fingerprint"):
        raise RuntimeError("embeddings.parquet was written before model fingerprints: materialize `embeddings` again")
    return chunks.append_column("vector", vectors.column("vector")), meta


def _schema_meta(table: pa.Table) -> dict:
    out = {}
    for k, v in (table.schema.metadata or {}).items():
        try:
            out[k.decode()] = json.loads(v)
        except (ValueError, UnicodeDecodeError):
            continue
    return out


def _ids_digest(layout: Layout, chunks: pa.Table) -> str:
    """The digest the manifest commit compares: chunks.parquet's own, as build_chunks wrote it."""
    return table_metadata(layout.chunks).get("ids_digest") or refresh.digest(chunks.column("id").to_pylist())


def build_vector_index(layout: Layout) -> dict:
    """Sync the LanceDB database of the embeddings' model (a new one beside the old for a new model),
    record the build, and commit the index pair when the lexical build holds the same chunks."""
    t0 = time.perf_counter()
    rows, meta = _index_rows(layout)
    db_dir = manifest.lancedb_build_dir(layout, meta["model"], meta["model_fingerprint"])
    result = vector_store.sync(db_dir, rows)
    ids_digest = _ids_digest(layout, rows)
    manifest.record_build(
        layout.lancedb,
        {
            "dir": db_dir.name,
            "version": result.version,
            "rows": result.rows,
            "index_type": result.index_type,
            "ids_digest": ids_digest,
            "model": meta["model"],
            "model_fingerprint": meta["model_fingerprint"],
            "dim": int(meta["dim"]),
            "normalized": bool(meta.get("normalized", True)),
        },
    )
    committed = manifest.commit(layout)
    data_version = refresh.digest([meta["model_fingerprint"], ids_digest])
    return asdict(result) | {
        "data_version": data_version,
        "lancedb_dir": str(db_dir),
        "committed_build": committed.build_id if committed else None,
        "seconds": time.perf_counter() - t0,
    }


def build_lexical_index(layout: Layout) -> dict:
    """Write the chunks' Tantivy index into a new generation directory (copy-on-write from the newest
    one: a committed generation is never written again), record it, and commit the pair when the
    vector build holds the same chunks."""
    t0 = time.perf_counter()
    chunks = read_table(layout.chunks, columns=["id", "text", "source", "title"])
    ids_digest = _ids_digest(layout, chunks)
    current = manifest.latest_build(layout.tantivy)
    if current is not None and current.get("ids_digest") == ids_digest:
        index_dir = layout.tantivy / current["dir"]
        result = lexical.SyncResult(docs=int(current.get("docs", 0)), inserted=0, deleted=0, commit=current.get("commit"))
    else:
        index_dir = manifest.new_tantivy_dir(layout)
        if current is not None:
            shutil.copytree(layout.tantivy / current["dir"], index_dir)
        result = lexical.sync(index_dir, chunks.to_pylist())
        manifest.record_build(
            layout.tantivy,
            {"dir": index_dir.name, "commit": result.commit, "docs": result.docs, "ids_digest": ids_digest},
        )
        manifest.collect_tantivy_generations(layout, keep_dirs=[index_dir])
    committed = manifest.commit(layout)
    return asdict(result) | {
        "data_version": ids_digest,
        "tantivy_dir": str(index_dir),
        "committed_build": committed.build_id if committed else None,
        "seconds": time.perf_counter() - t0,
    }
