"""Sensor: re-index when the docs source changes; never beside a running refresh; a failed one is retried."""

import dagster as dg
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

from rag_assets.defs import jobs
from rag_assets.defs.resources import RagSettings
from rag_assets.lib.index import lock
from rag_assets.lib.ingest import refresh

# Every run that writes the data dir carries this tag; dagster.yaml lets one such run go at a time.
REFRESH_TAG = "rag/refresh"
STATE_TAG = "rag/state"  # the wanted state a run was requested for (first 16 hex of Changes.key)
WAITING_STATUSES = [*IN_PROGRESS_RUN_STATUSES, dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED]


def refresh_request(changes: refresh.Changes, run_key: str | None = None, trigger: str = "sensor") -> dg.RunRequest:
    tags = {f"rag/{k}": str(v) for k, v in changes.counts().items()}
    tags["rag/reason"] = changes.summary()[:200]
    tags[REFRESH_TAG] = trigger
    tags[STATE_TAG] = changes.key[:16]
    return dg.RunRequest(run_key=run_key, tags=tags)


def refresh_in_progress(instance: dg.DagsterInstance | None, settings) -> str | None:
    """Why a refresh must not start now (one is running or queued), else None."""
    if lock.is_held(settings.data_dir):
        return f"a refresh is writing {settings.data_dir} ({lock.owner(settings.data_dir)})"
    if instance is None:
        return None
    for filters in (
        dg.RunsFilter(statuses=WAITING_STATUSES, tags={REFRESH_TAG: ["sensor", "schedule", "job", "cli"]}),
        dg.RunsFilter(statuses=WAITING_STATUSES, job_name=jobs.refresh.name),
    ):
        runs = instance.get_runs(filters=filters, limit=1)
        if runs:
            return f"refresh run {runs[0].run_id} is {runs[0].status.value.lower()}"
    return None


@dg.sensor(job=jobs.refresh, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def docs_changed(context: dg.SensorEvaluationContext, rag: RagSettings):
    """Re-index when a document of the docs source is added, edited or deleted (content hash per document),
    or when the chunk settings, the parser or the embedding model's weights change.

    The cursor is the last state seen fully indexed: it advances only once a refresh succeeded. A
    state's run key counts its failed runs, so a failed or killed refresh is requested again on a
    later tick, and never while another refresh is running or queued.
    """
    settings = rag.settings()
    changes = refresh.detect_changes(settings)
    if not changes.needs_run:
        context.update_cursor(changes.key)
        return dg.SkipReason(changes.summary())
    busy = refresh_in_progress(context.instance, settings)
    if busy:
        return dg.SkipReason(f"{busy}; will look again ({changes.summary()})")
    runs = context.instance.get_runs(filters=dg.RunsFilter(tags={STATE_TAG: changes.key[:16]}))
    if any(r.status == dg.DagsterRunStatus.SUCCESS for r in runs):
        return dg.SkipReason(f"a refresh for this state succeeded yet the index is not current: {changes.summary()}")
    failed = sum(1 for r in runs if r.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED))
    return refresh_request(changes, run_key=f"refresh-{changes.key[:16]}-{failed}")
