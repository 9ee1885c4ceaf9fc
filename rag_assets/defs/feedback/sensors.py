"""Sensors: new feedback re-triages; a changed eval set (accepted candidates) re-evaluates."""

import json

import dagster as dg

from rag_assets.defs import jobs
from rag_assets.defs.resources import RagSettings
from rag_assets.lib.evaluate.eval_data import eval_set_version
from rag_assets.lib.evaluate.pipeline import EvalConfig
from rag_assets.lib.feedback.files import feedback_watermark

# underperforming_queries and what follows it (eval_candidates, docs_gaps), plus tag_corrections.
feedback_triage = dg.define_asset_job(
    "feedback_triage",
    selection=dg.AssetSelection.groups("feedback"),
    description="Triage the query log and its feedback: underperforming queries, eval candidates, tag corrections, docs gaps.",
)


@dg.sensor(job=feedback_triage, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def new_feedback(context: dg.SensorEvaluationContext, rag: RagSettings):
    """Re-materialize the feedback group when feedback arrived since the last request.

    The cursor is the feedback table's watermark (highest id, row count)."""
    mark = feedback_watermark(rag.settings().data_dir)
    if mark is None or mark["rows"] == 0:
        return dg.SkipReason("no feedback in the query log yet")
    if context.cursor and json.loads(context.cursor) == mark:
        return dg.SkipReason(f"no new feedback since id {mark['last_id']}")
    context.update_cursor(json.dumps(mark))
    return dg.RunRequest(run_key=f"feedback-{mark['last_id']}-{mark['rows']}",
                         tags={"rag/feedback_last_id": str(mark["last_id"]), "rag/feedback_rows": str(mark["rows"])})


@dg.sensor(job=jobs.evaluation, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def evaluate_after_eval_set_change(context: dg.SensorEvaluationContext):
    """Run the evaluation when the eval set file (RAG_EVAL_PATH) differs from the one last evaluated, e.g.
    after `rag-assets feedback accept`. Compares its content hash with the `eval_set_version` metadata of the
    latest `eval_questions` materialization; the first evaluation is evaluate_after_reindex's."""
    path = EvalConfig.from_env().eval_path
    if not path.is_file():
        return dg.SkipReason(f"no eval set at {path}")
    version = eval_set_version(path)
    records = context.instance.fetch_materializations(dg.AssetKey("eval_questions"), limit=1).records
    if not records:
        return dg.SkipReason("the evaluation has not run yet (evaluate_after_reindex starts it)")
    md = records[0].asset_materialization.metadata if records[0].asset_materialization else {}
    evaluated = md["eval_set_version"].value if "eval_set_version" in md else None
    if evaluated == version:
        return dg.SkipReason(f"eval set {version} is the one last evaluated")
    if context.cursor == version:
        return dg.SkipReason(f"an evaluation of eval set {version} was already requested")
    context.update_cursor(version)
    return dg.RunRequest(run_key=f"eval-set-{version}",
                         tags={"rag/eval_set_version": version, "rag/reason": "eval set changed"})
