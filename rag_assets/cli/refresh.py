"""`rag-assets refresh [--json]`: one round of change detection, then materialize what changed."""

from __future__ import annotations

import json
import os
import socket
import sys

from rag_assets.lib.ingest import refresh


def register(sub) -> None:
    p = sub.add_parser("refresh", help="re-index what changed in the docs source (a full build on an empty data dir)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print {docs_added, docs_changed, docs_deleted, chunks_embedded, chunks_reused, chunks_deleted}",
    )
    p.set_defaults(func=run)


def refresh_once(rag=None, instance=None) -> tuple[dict, refresh.Changes]:
    """Detect changes; when there are any, materialize the ingestion assets through Dagster.

    Runs on the DAGSTER_HOME instance when set (the run shows in the UI), else an ephemeral one.
    Returns the six counts and the detected changes. Raises RuntimeError when the run fails.
    """
    import dagster as dg

    from rag_assets.defs import index, ingest
    from rag_assets.defs.resources import RagSettings

    rag = rag or RagSettings()
    changes = refresh.detect_changes(rag.settings())
    counts = refresh.zero_counts()
    if not changes.needs_run:
        return counts, changes
    if instance is None and os.environ.get("DAGSTER_HOME"):
        instance = dg.DagsterInstance.get()
    if instance is not None:
        release_dead_runs(instance)
    result = dg.materialize(
        [*ingest.ASSETS, *index.ASSETS],
        resources={"rag": rag},
        instance=instance,
        tags={**_process_tags(), "rag/reason": changes.summary()[:200]},
        raise_on_error=False,
    )
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.is_step_failure]
        raise RuntimeError(f"refresh run {result.run_id} failed at {', '.join(failed) or 'an unknown step'}")
    for node in ("docs", "embeddings"):
        metadata = result.asset_materializations_for_node(node)[0].metadata
        for key in counts:
            if key in metadata:
                counts[key] = int(metadata[key].value)
    return counts, changes


def _process_tags() -> dict:
    return {"rag/trigger": "cli refresh", "rag/host": socket.gethostname(), "rag/pid": str(os.getpid())}


def release_dead_runs(instance) -> list[str]:
    """Mark failed the refresh runs of this command whose process is gone (killed), and free their slots.

    A killed in-process run stays STARTED and keeps its `embedding` pool slot, so the next refresh
    would wait for it forever. Returns the run ids released.
    """
    import dagster as dg
    from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

    tags = {"rag/trigger": "cli refresh", "rag/host": socket.gethostname()}
    released = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=list(IN_PROGRESS_RUN_STATUSES), tags=tags)):
        pid = int(run.tags.get("rag/pid", "0") or 0)
        if pid <= 0 or pid == os.getpid() or _alive(pid):
            continue
        instance.report_run_failed(run, f"the `rag-assets refresh` process {pid} running it is gone (killed)")
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run.run_id)
    return released


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def run(args) -> int:
    try:
        counts, changes = refresh_once()
    except RuntimeError as exc:
        print(f"rag-assets refresh: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(counts))
        return 0
    print(changes.summary())
    if changes.needs_run:
        print(
            "docs: {docs_added} added, {docs_changed} changed, {docs_deleted} deleted; "
            "chunks: {chunks_embedded} embedded, {chunks_reused} reused, {chunks_deleted} deleted".format(**counts)
        )
    return 0
