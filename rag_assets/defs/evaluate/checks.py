"""Evaluation check: warn when a score fell since the previous report."""

import dagster as dg

from rag_assets.defs.resources import RagSettings
from rag_assets.lib.evaluate.eval_data import EvalFiles
from rag_assets.lib.evaluate.report import score_drops
from rag_assets.lib.store import read_json


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
