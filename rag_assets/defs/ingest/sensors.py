"""Sensor: re-index when the docs source changes."""

import dagster as dg

from rag_assets.defs import jobs
from rag_assets.defs.resources import RagSettings
from rag_assets.lib.ingest import refresh

def refresh_request(changes: refresh.Changes) -> dg.RunRequest:
    tags = {f"rag/{k}": str(v) for k, v in changes.counts().items()}
    tags["rag/reason"] = changes.summary()[:200]
    return dg.RunRequest(tags=tags)


@dg.sensor(job=jobs.refresh, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def docs_changed(context: dg.SensorEvaluationContext, rag: RagSettings):
    """Re-index when a document of the docs source is added, edited or deleted (content hash per document).

    The cursor is the digest of the wanted state (documents, chunk settings, model): one run per state.
    """
    changes = refresh.detect_changes(rag.settings())
    if not changes.needs_run:
        context.update_cursor(changes.key)
        return dg.SkipReason(changes.summary())
    if context.cursor == changes.key:
        return dg.SkipReason(f"a refresh was already requested for this state ({changes.summary()})")
    context.update_cursor(changes.key)
    return refresh_request(changes)
