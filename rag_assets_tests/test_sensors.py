"""The docs change sensor, the refresh schedule and the evaluate-after-reindex sensor (issue 5)."""

import importlib
import json
from datetime import datetime, timezone

import dagster as dg
import pytest

from rag_assets.defs.evaluate import sensors as evaluate_sensors
from rag_assets.defs.ingest import schedules, sensors
from rag_assets.defs.resources import RagSettings

BASE_URL = "https://docs.python.org/3.11/"


def rag_for(docs_dir, data_dir) -> RagSettings:
    return RagSettings(docs_dir=str(docs_dir), data_dir=str(data_dir), docs_base_url=BASE_URL)


def tick(rag, cursor=None):
    ctx = dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(), cursor=cursor, resources={"rag": rag})
    return sensors.docs_changed.evaluate_tick(ctx)


def test_docs_sensor_runs_only_when_a_document_changes(copy_built_index):
    docs_dir, data_dir = copy_built_index
    rag = rag_for(docs_dir, data_dir)

    quiet = tick(rag)
    assert not quiet.run_requests and "no change" in quiet.skip_message
    assert quiet.cursor

    page = docs_dir / "library/csv.html"
    page.write_text(page.read_text(encoding="utf-8").replace("</h1>", "</h1><p>New text.</p>", 1), encoding="utf-8")
    fired = tick(rag, quiet.cursor)
    assert len(fired.run_requests) == 1 and fired.cursor != quiet.cursor
    request = fired.run_requests[0]
    assert request.job_name in (None, "refresh") and request.tags["rag/docs_changed"] == "1"

    # The same state again (the run has not happened yet): no second run.
    again = tick(rag, fired.cursor)
    assert not again.run_requests and "already requested" in again.skip_message
    assert again.cursor in (None, fired.cursor)


def test_refresh_schedule_runs_only_when_a_document_changes(copy_built_index):
    docs_dir, data_dir = copy_built_index
    rag = rag_for(docs_dir, data_dir)
    when = datetime(2026, 1, 2, tzinfo=timezone.utc)

    def schedule_tick():
        ctx = dg.build_schedule_context(scheduled_execution_time=when, resources={"rag": rag})
        return schedules.refresh_schedule.evaluate_tick(ctx)

    quiet = schedule_tick()
    assert not quiet.run_requests and "no change" in quiet.skip_message
    (docs_dir / "library/json.html").unlink()
    fired = schedule_tick()
    assert len(fired.run_requests) == 1 and fired.run_requests[0].tags["rag/docs_deleted"] == "1"


def test_refresh_cron_comes_from_the_environment(monkeypatch):
    try:
        assert schedules.refresh_schedule.cron_schedule == (schedules.refresh_cron())
        monkeypatch.setenv("RAG_REFRESH_CRON", "15 */6 * * *")
        assert importlib.reload(schedules).refresh_schedule.cron_schedule == "15 */6 * * *"
        monkeypatch.setenv("RAG_REFRESH_CRON", "every day")
        with pytest.raises(ValueError, match="RAG_REFRESH_CRON"):
            importlib.reload(schedules)
        monkeypatch.delenv("RAG_REFRESH_CRON")
        assert importlib.reload(schedules).refresh_schedule.cron_schedule == "@daily"
    finally:
        monkeypatch.delenv("RAG_REFRESH_CRON", raising=False)
        importlib.reload(schedules)


def test_evaluation_reruns_after_a_reindex():
    instance = dg.DagsterInstance.ephemeral()

    def eval_tick(cursor):
        ctx = dg.build_sensor_context(instance=instance, cursor=cursor)
        return evaluate_sensors.evaluate_after_reindex.evaluate_tick(ctx)

    assert "not been materialized" in eval_tick(None).skip_message

    def reindexed(version):
        vector = dg.AssetMaterialization("vector_index", metadata={"lancedb_version": version})
        instance.report_runless_asset_event(vector)
        instance.report_runless_asset_event(dg.AssetMaterialization("lexical_index"))

    reindexed(3)
    first = eval_tick(None)
    assert len(first.run_requests) == 1 and first.run_requests[0].tags["rag/lancedb_version"] == "3"
    assert set(json.loads(first.cursor)) == {"vector_index", "lexical_index"}

    idle = eval_tick(first.cursor)
    assert not idle.run_requests and "no index materialization" in idle.skip_message

    reindexed(5)
    second = eval_tick(first.cursor)
    assert len(second.run_requests) == 1 and second.run_requests[0].tags["rag/lancedb_version"] == "5"
    assert second.run_requests[0].run_key != first.run_requests[0].run_key


def test_sensor_and_schedule_target_the_right_jobs():
    from rag_assets.definitions import defs

    repo = defs.get_repository_def()
    refresh_keys = repo.get_job("refresh").asset_layer.executable_asset_keys
    assert {k.to_user_string() for k in refresh_keys} == {
        "docs", "sections", "chunks", "embeddings", "vector_index", "lexical_index"
    }
    assert repo.get_sensor_def("docs_changed").job_name == "refresh"
    assert repo.get_schedule_def("refresh_schedule").job_name == "refresh"
    assert repo.get_sensor_def("evaluate_after_reindex").job_name == "evaluation"
    evaluation_keys = {k.to_user_string() for k in repo.get_job("evaluation").asset_layer.executable_asset_keys}
    assert "score_report" in evaluation_keys
