"""Sensor: evaluate once new indexes are in place."""

import json

import dagster as dg

from rag_assets.defs import jobs

INDEX_KEYS = (dg.AssetKey("vector_index"), dg.AssetKey("lexical_index"))
REPORT_KEY = dg.AssetKey("score_report")  # the last asset of the evaluation group


def _latest_index_events(instance: dg.DagsterInstance) -> dict | None:
    out = {}
    for key in INDEX_KEYS:
        records = instance.fetch_materializations(key, limit=1).records
        if not records:
            return None
        out[key.to_user_string()] = records[0]
    return out


def _evaluated_after(instance: dg.DagsterInstance, storage_id: int) -> str | None:
    """The run id of a score report materialized after the given index event, if any."""
    records = instance.fetch_materializations(REPORT_KEY, limit=1).records
    if records and records[0].storage_id > storage_id:
        return records[0].run_id or "runless"
    return None


@dg.sensor(job=jobs.evaluation, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def evaluate_after_reindex(context: dg.SensorEvaluationContext):
    """Run the evaluation group once new indexes are in place (the judge cache skips unchanged answers).

    The cursor holds the storage ids of the last evaluated vector_index and lexical_index materializations.
    With no cursor yet (the first `dagster dev` after the quickstart), indexes that a score report
    already followed are not evaluated again: the cursor starts there.
    """
    if context.repository_def is not None:
        evaluation_keys = dg.AssetSelection.groups("evaluation").resolve(context.repository_def.asset_graph)
        if not evaluation_keys:
            return dg.SkipReason("no evaluation assets are defined")
    events = _latest_index_events(context.instance)
    if events is None:
        return dg.SkipReason("the indexes have not been materialized yet")
    seen = {name: r.storage_id for name, r in events.items()}
    if context.cursor and json.loads(context.cursor) == seen:
        return dg.SkipReason("no index materialization since the last evaluation")
    evaluated = _evaluated_after(context.instance, max(seen.values()))
    if evaluated is not None:
        # E.g. the quickstart's rag_pipeline run evaluated these indexes already: start the cursor here.
        context.update_cursor(json.dumps(seen))
        return dg.SkipReason(f"the current indexes were already evaluated (run {evaluated})")
    for record in events.values():
        run = context.instance.get_run_by_id(record.run_id) if record.run_id else None
        if run is not None and not run.is_finished:
            # The other index may still be coming in the same run: evaluate once both are in place.
            return dg.SkipReason(f"waiting for run {run.run_id} to finish")
    context.update_cursor(json.dumps(seen))
    materialization = events["vector_index"].asset_materialization
    version = materialization.metadata.get("lancedb_version") if materialization else None
    tags = {"rag/lancedb_version": str(version.value)} if version is not None else {}
    return dg.RunRequest(run_key=f"eval-{seen['vector_index']}-{seen['lexical_index']}", tags=tags)
