"""`rag-assets refresh [--json]`: one round of change detection, then materialize what changed."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys

from rag_assets.lib.index import consistency, lock
from rag_assets.lib.index import manifest as index_manifest
from rag_assets.lib.ingest import refresh
from rag_assets.lib.store import Layout


# Exit status when another refresh holds the data dir and --no-wait was given (EX_TEMPFAIL: try again later).
BUSY_EXIT = 75


def register(sub) -> None:
    p = sub.add_parser("refresh", help="re-index what changed in the docs source (a full build on an empty data dir)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print only JSON on stdout: {docs_added, docs_changed, docs_deleted, chunks_embedded, chunks_reused, "
        "chunks_deleted, skipped: [{path, reason}], build_id}",
    )
    p.add_argument(
        "--no-wait",
        action="store_true",
        help=f"when another refresh is writing the data dir, exit at once (status {BUSY_EXIT}) instead of waiting",
    )
    p.set_defaults(func=run)


def refresh_once(rag=None, instance=None, wait: bool = True, on_wait=None) -> tuple[dict, refresh.Changes]:
    """Detect changes; when there are any, materialize the ingestion assets through Dagster.

    Holds the data dir's lock (lib/index/lock.py) from change detection to the manifest commit,
    Dagster instance set-up included: a second refresh waits (or, with wait=False, raises
    lock.Busy) and then sees the first one's result. Runs on the DAGSTER_HOME instance when set
    (the run shows in the UI), else an ephemeral one. Returns the six counts and the detected
    changes. Raises RuntimeError when the run fails.
    """
    from rag_assets.defs.resources import RagSettings

    rag = rag or RagSettings()
    settings = rag.settings()
    changes = refresh.detect_changes(settings)  # read-only: a missing source fails here, before any write
    if not changes.needs_run:
        return refresh.zero_counts(), changes
    with lock.hold(settings.data_dir, wait=wait, on_wait=on_wait):
        changes = refresh.detect_changes(settings)  # again: a refresh we waited for may have done it all
        if not changes.needs_run:
            return refresh.zero_counts(), changes
        if instance is None and os.environ.get("DAGSTER_HOME"):
            instance = _instance()
        return _materialize(rag, changes, instance), changes


def _instance():
    """The DAGSTER_HOME instance, created under a lock: two processes initialising a fresh instance's
    SQLite storage at once leave it with two schema migration heads."""
    import dagster as dg

    with lock.hold(os.environ["DAGSTER_HOME"]):
        return dg.DagsterInstance.get()


def _materialize(rag, changes: refresh.Changes, instance) -> dict:
    import dagster as dg

    from rag_assets.defs import index, ingest

    if instance is not None:
        release_dead_runs(instance)
    result = dg.materialize(
        [*ingest.ASSETS, *index.ASSETS],
        resources={"rag": rag},
        instance=instance,
        tags={**_process_tags(), "rag/reason": changes.summary()[:200], "rag/refresh": "cli"},
        raise_on_error=False,
    )
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.is_step_failure]
        raise RuntimeError(f"refresh run {result.run_id} failed at {', '.join(failed) or 'an unknown step'}")
    counts = refresh.zero_counts()
    for node in ("docs", "embeddings"):
        metadata = result.asset_materializations_for_node(node)[0].metadata
        for key in counts:
            if key in metadata:
                counts[key] = int(metadata[key].value)
    return counts


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
        if pid <= 0 or pid == os.getpid() or lock.process_alive(pid):
            continue
        instance.report_run_failed(run, f"the `rag-assets refresh` process {pid} running it is gone (killed)")
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run.run_id)
    return released



def run(args) -> int:
    if not args.json:
        return _run(args)
    with stdout_to_stderr():  # the run's own output, Ray's included, goes to stderr
        doc: dict = {}
        status = _run(args, doc)
    if status == 0:
        print(json.dumps(doc), flush=True)
    return status


def _run(args, doc: dict | None = None) -> int:
    """The refresh, then the consistency check; fills `doc` (for --json) or prints a summary."""
    from rag_assets.lib.settings import Settings

    def say(message: str) -> None:
        print(f"rag-assets refresh: {message}", file=sys.stderr, flush=True)

    try:
        counts, changes = refresh_once(wait=not args.no_wait, on_wait=say)
    except lock.Busy as exc:
        say(f"{exc}; not waiting (--no-wait)")
        return BUSY_EXIT
    except RuntimeError as exc:
        say(str(exc))
        return 1
    # The end of every refresh, changed or not: the pair readers see must hold the chunks' ids.
    layout = Layout(Settings.from_env().data_dir)
    check = consistency.index_consistency(layout)
    if not check["consistent"]:
        say(f"chunk_ids_consistent failed: {consistency.summary(check)}")
        return 1
    committed = index_manifest.read(layout.root)
    if doc is not None:
        doc.update(counts, skipped=changes.skipped, build_id=committed.build_id if committed else None)
        return 0
    print(changes.summary())
    if changes.needs_run:
        print(
            "docs: {docs_added} added, {docs_changed} changed, {docs_deleted} deleted; "
            "chunks: {chunks_embedded} embedded, {chunks_reused} reused, {chunks_deleted} deleted".format(**counts)
        )
    for s in changes.skipped:
        print(f"skipped {s['path']}: {s['reason']}")
    return 0


@contextlib.contextmanager
def stdout_to_stderr():
    """Point file descriptor 1 at stderr for the duration, so `--json` prints exactly one JSON document.

    At the fd level, not just sys.stdout: Ray's raylet and workers inherit fd 1 when they start and
    write to it directly (they keep writing to stderr afterwards too).
    """
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):  # and Python's own stdout, whatever object it is
            yield
    finally:
        sys.stdout.flush()  # anything printed meanwhile goes to stderr, not after the JSON
        os.dup2(saved, 1)
        os.close(saved)
