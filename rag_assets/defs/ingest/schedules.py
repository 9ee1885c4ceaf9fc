"""Schedule: the same change detection as docs_changed, on a timetable."""

import os

import dagster as dg

from rag_assets.defs import jobs
from rag_assets.defs.resources import RagSettings
from rag_assets.defs.ingest.sensors import refresh_in_progress, refresh_request
from rag_assets.lib.ingest import refresh

DEFAULT_REFRESH_CRON = "@daily"


def refresh_cron() -> str:
    return os.environ.get("RAG_REFRESH_CRON", "").strip() or DEFAULT_REFRESH_CRON


def refresh_schedule(context: dg.ScheduleEvaluationContext, rag: RagSettings):
    """The same change detection as the docs_changed sensor, on a timetable (RAG_REFRESH_CRON, default daily).

    Unlike the sensor it has no cursor: a refresh that failed or was killed is retried at the next tick
    (detection compares the source with the committed index), unless a refresh is running then.
    """
    settings = rag.settings()
    changes = refresh.detect_changes(settings)
    if not changes.needs_run:
        return dg.SkipReason(changes.summary())
    busy = refresh_in_progress(_instance(context), settings)
    if busy:
        return dg.SkipReason(f"{busy}; the next tick looks again")
    return refresh_request(changes, trigger="schedule")


def _instance(context: dg.ScheduleEvaluationContext) -> dg.DagsterInstance | None:
    try:
        return context.instance
    except dg.DagsterInvariantViolationError:  # a context built without one (tests): the lock still counts
        return None


# Applied by hand so a bad RAG_REFRESH_CRON fails the load with the variable's name in the message.
try:
    refresh_schedule = dg.schedule(
        cron_schedule=refresh_cron(), job=jobs.refresh, default_status=dg.DefaultScheduleStatus.RUNNING
    )(refresh_schedule)
except dg.DagsterInvalidDefinitionError:
    raise ValueError(
        f"RAG_REFRESH_CRON={refresh_cron()!r} is not a cron expression (5 fields such as '0 3 * * *', or @daily)"
    ) from None



