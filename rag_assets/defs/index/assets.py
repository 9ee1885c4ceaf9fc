"""Index assets: vector_index (LanceDB) and lexical_index (Tantivy) over the same chunk ids.

Each builds beside the committed index; whichever finishes second commits the pair by replacing
the manifest (lib/index/manifest.py), so readers never see one index ahead of the other.
"""

from pathlib import Path

import dagster as dg

from rag_assets.defs.ingest.assets import GROUP
from rag_assets.defs.metadata import stage_metadata
from rag_assets.defs.resources import RagSettings
from rag_assets.lib.index import lock
from rag_assets.lib.ingest import stages as ingest


def _committed(stats: dict) -> dict:
    build = stats["committed_build"]
    return {"committed_build": build or "not yet (waiting for the other index)"}


@dg.asset(group_name=GROUP, deps=["embeddings"], kinds={"lancedb"})
def vector_index(rag: RagSettings) -> dg.MaterializeResult:
    """LanceDB table (id, text, source, vector), cosine; IVF_PQ once it has 256+ rows, a flat scan below.

    One LanceDB database per embedding model: a new model is built beside the old one."""
    with lock.hold(rag.layout().root):
        stats = ingest.build_vector_index(rag.layout())
    return dg.MaterializeResult(
        data_version=dg.DataVersion(stats["data_version"]),
        metadata=stage_metadata(
            stats,
            stats["rows"],
            Path(stats["lancedb_dir"]),
            lancedb_version=stats["version"],
            index_type=stats["index_type"],
            rows_inserted=stats["inserted"],
            rows_deleted=stats["deleted"],
            **_committed(stats),
        ),
    )


# After embeddings too: a run killed while embedding then leaves both indexes on the previous chunks.
@dg.asset(group_name=GROUP, deps=["chunks", "embeddings"], kinds={"tantivy"})
def lexical_index(rag: RagSettings) -> dg.MaterializeResult:
    """Tantivy BM25 index (English stemming) over the same chunk ids, copy-on-write: a new directory per change."""
    with lock.hold(rag.layout().root):
        stats = ingest.build_lexical_index(rag.layout())
    return dg.MaterializeResult(
        data_version=dg.DataVersion(stats["data_version"]),
        metadata=stage_metadata(
            stats,
            stats["docs"],
            Path(stats["tantivy_dir"]),
            docs_inserted=stats["inserted"],
            docs_deleted=stats["deleted"],
            **_committed(stats),
        ),
    )
