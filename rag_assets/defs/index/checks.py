"""Index check: chunks, LanceDB and Tantivy hold the same chunk ids (the committed pair, as readers see it)."""

import dagster as dg

from rag_assets.defs.resources import RagSettings
from rag_assets.lib.index.consistency import index_consistency


@dg.asset_check(asset="vector_index", additional_deps=["lexical_index", "chunks"], blocking=True)
def chunk_ids_consistent(rag: RagSettings) -> dg.AssetCheckResult:
    """chunks.parquet and the committed LanceDB and Tantivy hold the same chunk ids; blocks evaluation on a torn index."""
    result = index_consistency(rag.layout())
    examples = result.pop("examples")
    return dg.AssetCheckResult(
        passed=result.pop("consistent"),
        metadata={**result, "examples": dg.MetadataValue.json(examples)},
    )
