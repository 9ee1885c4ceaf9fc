"""The docs change sensor, the refresh schedule and the evaluate-after-reindex sensor (issue 5)."""

import importlib
import json
from datetime import datetime, timezone

import dagster as dg
import pytest
import yaml
from dagster._core.utils import make_new_run_id

from rag_assets.defs.evaluate import sensors as evaluate_sensors
from rag_assets.defs.ingest import schedules, sensors
from rag_assets.cli.refresh import refresh_once
from rag_assets.defs.resources import RagSettings
from rag_assets.lib.index import lock
from rag_assets_tests.test_refresh_kill import PROJECT_DAGSTER_YAML

BASE_URL = "https://docs.python.org/3.11/"


def rag_for(docs_dir, data_dir) -> RagSettings:
    return RagSettings(docs_dir=str(docs_dir), data_dir=str(data_dir), docs_base_url=BASE_URL)


def tick(rag, cursor=None, instance=None):
    instance = instance or dg.DagsterInstance.ephemeral()
    ctx = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"rag": rag})
    return sensors.docs_changed.evaluate_tick(ctx)


def add_run(instance, request, status) -> dg.DagsterRun:
    """A run of the refresh job as the daemon would create it from the sensor's request."""
    run = dg.DagsterRun(job_name="refresh", run_id=make_new_run_id(), tags=request.tags, status=status)
    return instance.add_run(run)


def test_docs_sensor_runs_only_when_a_document_changes_and_retries_a_failed_refresh(copy_built_index):
    docs_dir, data_dir = copy_built_index
    rag = rag_for(docs_dir, data_dir)
    instance = dg.DagsterInstance.ephemeral()

    quiet = tick(rag, instance=instance)
    assert not quiet.run_requests and "no change" in quiet.skip_message
    assert quiet.cursor

    page = docs_dir / "library/csv.html"
    page.write_text(page.read_text(encoding="utf-8").replace("</h1>", "</h1><p>New text.</p>", 1), encoding="utf-8")
    fired = tick(rag, quiet.cursor, instance)
    assert len(fired.run_requests) == 1
    assert fired.cursor in (None, quiet.cursor)  # the cursor moves only once the index is current
    request = fired.run_requests[0]
    assert request.job_name in (None, "refresh") and request.tags["rag/docs_changed"] == "1"
    assert request.tags[sensors.REFRESH_TAG] == "sensor"

    # While that run is queued or running: no second run.
    run = add_run(instance, request, dg.DagsterRunStatus.STARTED)
    waiting = tick(rag, quiet.cursor, instance)
    assert not waiting.run_requests and run.run_id in waiting.skip_message

    # It failed: a later tick asks again, under a new run key (the daemon skips a run key it has seen).
    instance.report_run_failed(run, "killed")
    retry = tick(rag, quiet.cursor, instance)
    assert len(retry.run_requests) == 1
    assert retry.run_requests[0].run_key != request.run_key
    assert retry.run_requests[0].tags[sensors.STATE_TAG] == request.tags[sensors.STATE_TAG]

    # A refresh holding the data dir's lock (e.g. `rag-assets refresh`) also defers the sensor.
    with lock.hold(data_dir):
        held = tick(rag, quiet.cursor, instance)
    assert not held.run_requests and "is writing" in held.skip_message

    # Once a refresh succeeded, the cursor advances to the indexed state and nothing more is asked.
    refresh_once(rag.model_copy(update={"ray_min_chunks": 100_000}), instance=dg.DagsterInstance.ephemeral())
    done = tick(rag, quiet.cursor, instance)
    assert not done.run_requests and "no change" in done.skip_message
    assert done.cursor and done.cursor != quiet.cursor


def test_refresh_runs_are_limited_to_one_at_a_time_by_the_project_instance(tmp_path):
    config = yaml.safe_load(PROJECT_DAGSTER_YAML.read_text())
    config.pop("run_monitoring", None)
    config["storage"] = {"sqlite": {"base_dir": str(tmp_path / "storage")}}
    config.pop("local_artifact_storage", None)
    config.pop("compute_logs", None)
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    assert {"key": sensors.REFRESH_TAG, "limit": 1} in limits
    from rag_assets.defs import jobs

    # Every job that writes the data dir carries the tag, whoever launches it.
    assert jobs.refresh.tags[sensors.REFRESH_TAG] and jobs.rag_pipeline.tags[sensors.REFRESH_TAG]


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


def test_evaluation_sensor_starts_after_an_evaluation_already_done():
    """The first `dagster dev` after the quickstart: its run evaluated the indexes it built."""
    instance = dg.DagsterInstance.ephemeral()

    def eval_tick(cursor):
        ctx = dg.build_sensor_context(instance=instance, cursor=cursor)
        return evaluate_sensors.evaluate_after_reindex.evaluate_tick(ctx)

    instance.report_runless_asset_event(dg.AssetMaterialization("vector_index", metadata={"lancedb_version": 2}))
    instance.report_runless_asset_event(dg.AssetMaterialization("lexical_index"))
    instance.report_runless_asset_event(dg.AssetMaterialization("score_report"))
    first = eval_tick(None)
    assert not first.run_requests and "already evaluated" in first.skip_message
    assert set(json.loads(first.cursor)) == {"vector_index", "lexical_index"}
    assert not eval_tick(first.cursor).run_requests

    instance.report_runless_asset_event(dg.AssetMaterialization("vector_index", metadata={"lancedb_version": 3}))
    instance.report_runless_asset_event(dg.AssetMaterialization("lexical_index"))
    after = eval_tick(first.cursor)
    assert len(after.run_requests) == 1 and after.run_requests[0].tags["rag/lancedb_version"] == "3"


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
