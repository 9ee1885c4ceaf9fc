"""Index assets: vector_index (LanceDB) and lexical_index (Tantivy) over the same chunk ids."""

import dagster as dg

from rag_assets.defs.ingest.assets import GROUP
from rag_assets.defs.metadata import stage_metadata
from rag_assets.defs.resources import RagSettings
from rag_assets.lib.ingest import stages as ingest


@dg.asset(group_name=GROUP, deps=["embeddings"], kinds={"lancedb"})
def vector_index(rag: RagSettings) -> dg.MaterializeResult:
    """LanceDB table (id, text, source, vector), cosine; IVF_PQ once it has 256+ rows, a flat scan below."""
    stats = ingest.build_vector_index(rag.layout())
    return dg.MaterializeResult(
        data_version=dg.DataVersion(stats["data_version"]),
        metadata=stage_metadata(
            stats,
            stats["rows"],
            rag.layout().lancedb,
            lancedb_version=stats["version"],
            index_type=stats["index_type"],
            rows_inserted=stats["inserted"],
            rows_deleted=stats["deleted"],
        )
    )


# After embeddings too: a run killed while embedding then leaves both indexes on the previous chunks.
@dg.asset(group_name=GROUP, deps=["chunks", "embeddings"], kinds={"tantivy"})
def lexical_index(rag: RagSettings) -> dg.MaterializeResult:
    """Tantivy BM25 index (English stemming) over the same chunk ids."""
    stats = ingest.build_lexical_index(rag.layout())
    return dg.MaterializeResult(
        data_version=dg.DataVersion(stats["data_version"]),
        metadata=stage_metadata(
            stats,
            stats["docs"],
            rag.layout().tantivy,
            docs_inserted=stats["inserted"],
            docs_deleted=stats["deleted"],
        )
    )
