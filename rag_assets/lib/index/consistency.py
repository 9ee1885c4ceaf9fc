"""Whether chunks.parquet and the committed index pair (LanceDB table + Tantivy index) hold the same chunk ids.

The blocking `chunk_ids_consistent` check and the end of `rag-assets refresh` both run this: it
reads the pair the manifest pins, which is what every reader sees.
"""

from __future__ import annotations

from rag_assets.lib.index import lexical, manifest, vector_store
from rag_assets.lib.store import Layout, read_table


def committed_ids(layout: Layout) -> tuple[set[str], set[str]]:
    """(LanceDB ids, Tantivy ids) of the committed pair; both empty when nothing is committed."""
    m = manifest.read(layout.root)
    if m is None:
        return set(), set()
    table = vector_store.open_table(m.lancedb_dir, m.lancedb_version)
    lance = set(table.to_arrow().column("id").to_pylist())
    tantivy = lexical.all_ids(lexical.open_index(m.tantivy_dir)) if lexical.index_exists(m.tantivy_dir) else set()
    return lance, tantivy


def index_consistency(layout: Layout) -> dict:
    chunks = set(read_table(layout.chunks, columns=["id"]).column("id").to_pylist())
    lance, tantivy = committed_ids(layout)
    m = manifest.read(layout.root)
    diff = {
        "missing_in_lancedb": sorted(chunks - lance),
        "extra_in_lancedb": sorted(lance - chunks),
        "missing_in_tantivy": sorted(chunks - tantivy),
        "extra_in_tantivy": sorted(tantivy - chunks),
    }
    return {
        "consistent": m is not None and not any(diff.values()),
        "build_id": m.build_id if m else "none committed",
        "chunks": len(chunks), "lancedb": len(lance), "tantivy": len(tantivy),
        **{k: len(v) for k, v in diff.items()},
        "examples": {k: v[:5] for k, v in diff.items() if v},
    }


def summary(result: dict) -> str:
    """One line for a person: what disagrees, with counts."""
    if result["consistent"]:
        return f"consistent: {result['chunks']} chunk ids in chunks.parquet, LanceDB and Tantivy"
    parts = [f"{k.replace('_', ' ')}: {result[k]}" for k in
             ("missing_in_lancedb", "extra_in_lancedb", "missing_in_tantivy", "extra_in_tantivy") if result[k]]
    return (
        f"index inconsistent (build {result['build_id']}): chunks.parquet {result['chunks']}, "
        f"LanceDB {result['lancedb']}, Tantivy {result['tantivy']} ids; " + ", ".join(parts or ["no committed index"])
    )
