"""Asset checks. Each module-level AssetChecksDefinition is collected by definitions.py."""

import dagster as dg

from rag_assets.defs.resources import RagSettings
from rag_assets.lib.eval_data import EvalFiles
from rag_assets.lib.evaluate import index_consistency
from rag_assets.lib.report import score_drops
from rag_assets.lib.store import read_json


@dg.asset_check(asset="vector_index", additional_deps=["lexical_index", "chunks"], blocking=True)
def chunk_ids_consistent(rag: RagSettings) -> dg.AssetCheckResult:
    """chunks.parquet, LanceDB and Tantivy hold the same chunk ids; blocks evaluation on a torn index."""
    result = index_consistency(rag.layout())
    examples = result.pop("examples")
    return dg.AssetCheckResult(
        passed=result.pop("consistent"),
        metadata={**result, "examples": dg.MetadataValue.json(examples)},
    )


@dg.asset_check(asset="score_report")
def scores_not_dropped(rag: RagSettings) -> dg.AssetCheckResult:
    """Warns when a score fell by more than its 95% CI since the previous score report."""
    files = EvalFiles(rag.layout())
    previous = read_json(files.previous_report) if files.previous_report.exists() else None
    drops = score_drops(read_json(files.report), previous)
    return dg.AssetCheckResult(
        passed=not drops,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "compared_with_previous": previous is not None,
            "drops": dg.MetadataValue.json(drops),
            "dropped": ", ".join(d["score"] for d in drops) or "none",
        },
    )
