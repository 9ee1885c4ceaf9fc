"""The flywheel end to end on the built index: queries recorded as the server records them, feedback with a
correction -> the feedback assets (real Dagster) -> a retrieval-labelled candidate -> `rag-assets feedback
accept` -> the eval set grows by one with provenance -> the eval-set sensor -> evaluation runs with it.

The HTTP path (`POST /query`, `POST /feedback`) is test_flywheel_http.py, once the server lands."""

import json
import uuid

import dagster as dg
import pytest

from rag_assets.cli import main
from rag_assets.defs import feedback as feedback_stage
from rag_assets.defs.feedback import sensors
from rag_assets.lib.evaluate.eval_data import EvalFiles, eval_set_version, load_questions, page_of
from rag_assets.lib.feedback.candidates import candidate_id
from rag_assets.lib.feedback.files import FeedbackFiles
from rag_assets.lib.generate.answer import ExtractiveGenerator
from rag_assets.lib.retrieve.retriever import Retriever
from rag_assets.lib.serve.query_log import QueryLog
from rag_assets.lib.store import Layout, read_json
from rag_assets_tests.eval_fixtures import BASE_URL, materialize_evaluation, rag_settings, small_eval_set

ERRORS_PAGE = BASE_URL + "tutorial/errors.html"
CORRECTED = ERRORS_PAGE + "#handling-exceptions"
MISSED = "How do I keep my program running when json.loads fails on invalid input?"
OFF_TOPIC = "How do I bake sourdough bread?"
GOOD = "How do I write rows to a csv file with DictWriter?"
POOR = "What does json.dumps do with the indent argument?"
REFUSAL = "I'm sorry, the context does not provide information about that."


def serve_like(log: QueryLog, retriever: Retriever, question: str, k: int = 3, mode: str = "hybrid",
               answer: str | None = None):
    """Retrieve and answer offline (or with the given answer, as a poor LLM would give it), then record one
    row as the server does for `POST /query`."""
    hits = retriever.search(question, mode, k)
    ans = ExtractiveGenerator(retriever.model_name).answer(question, hits)
    if answer is not None:
        ans.update(answer=answer, failed=False)
    trace = uuid.uuid4().hex
    log.record({
        "trace_id": trace, "question": question, "standalone_query": question, "mode": mode, "k": k,
        "chunk_ids": [h.id for h in hits], "scores": [h.score for h in hits], "sources": [h.source for h in hits],
        "index_version": retriever.manifest.build_id, "lancedb_version": retriever.table_version,
        "embedding_model": retriever.model_name, "llm": ans["generator"] if "generator" in ans else "extractive",
        "latency_ms": 1.0, "answer": ans["answer"], "status": "error" if ans["failed"] else "ok",
        "error": ans.get("error"), "endpoint": "/query",
    })
    return trace, hits


def metadata(result, key: str) -> dict:
    (m,) = [e.materialization for e in result.get_asset_materialization_events()
            if e.materialization.asset_key == dg.AssetKey(key)]
    return {k: getattr(v, "value", v) for k, v in m.metadata.items()}


@pytest.fixture
def offline(monkeypatch):
    for name in ("OPENAI_BASE_URL", "RAG_LLM_MODEL", "RAG_JUDGE_MODEL", "RAG_RETRIEVAL_MODE", "RAG_NUM_CHUNKS"):
        monkeypatch.delenv(name, raising=False)


def test_feedback_to_eval_set_to_evaluation(copy_built_index, offline, tmp_path, monkeypatch, capsys):
    docs_dir, data_dir = copy_built_index
    eval_path = tmp_path / "questions.jsonl"
    seed_rows = small_eval_set(eval_path, limit=2)
    monkeypatch.setenv("RAG_EVAL_PATH", str(eval_path))
    monkeypatch.setenv("RAG_DATA_DIR", str(data_dir))
    rag = rag_settings(docs_dir, data_dir)
    instance = dg.DagsterInstance.ephemeral()

    def feedback_tick(cursor=None):
        ctx = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"rag": rag})
        return sensors.new_feedback.evaluate_tick(ctx)

    def eval_set_tick(cursor=None):
        return sensors.evaluate_after_eval_set_change.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))

    assert "no feedback" in feedback_tick().skip_message

    # Three questions served; feedback as users give it.
    log, retriever = QueryLog.for_data_dir(data_dir), Retriever.open(data_dir)
    missed, hits = serve_like(log, retriever, MISSED)
    assert ERRORS_PAGE not in {page_of(h.source) for h in hits}  # the premise: retrieval missed the page
    off_topic, _ = serve_like(log, retriever, OFF_TOPIC)
    good, good_hits = serve_like(log, retriever, GOOD)
    poor, poor_hits = serve_like(log, retriever, POOR, answer=REFUSAL)
    log.add_feedback(missed, -1, comment="wrong page: this is about handling exceptions",
                     correction={"source_url": CORRECTED, "tag": "tutorial"})
    log.add_feedback(off_topic, -1)
    log.add_feedback(good, 1, visited_sources=[good_hits[0].source])
    log.add_feedback(poor, -1, visited_sources=[poor_hits[0].source])  # the right page, a useless answer

    fired = feedback_tick()
    assert len(fired.run_requests) == 1 and fired.run_requests[0].tags["rag/feedback_rows"] == "4"
    assert "no new feedback" in feedback_tick(fired.cursor).skip_message

    result = dg.materialize(feedback_stage.ASSETS, resources={"rag": rag}, instance=instance)
    assert result.success
    md = metadata(result, "underperforming_queries")
    assert md["queries_considered"] == 4 and md["dagster/row_count"] == 3
    assert (md["label_retrieval"], md["label_docs"], md["label_generation"], md["label_unknown"]) == (1, 1, 1, 0)
    assert md["signal_thumbs_down"] == 3 and md["signal_low_judge_score"] == 1 and "### retrieval (1)" in md["queries"]
    rows = {r["trace_id"]: r for r in read_json(FeedbackFiles(data_dir).underperforming)["rows"]}
    assert set(rows) == {missed, off_topic, poor}  # the thumbs-up with a visit and a close match is fine
    assert rows[missed]["label"] == "retrieval" and rows[missed]["docs_area"] == "tutorial"
    assert rows[off_topic]["label"] == "docs" and rows[off_topic]["max_similarity"] < 0.3
    assert rows[poor]["label"] == "generation" and rows[poor]["judge_score"] < 2.5

    cid = candidate_id(missed)
    candidates = metadata(result, "eval_candidates")
    assert candidates["pending"] == 2 and cid in candidates["pending_candidates"]
    assert candidate_id(poor) in candidates["pending_candidates"]
    gaps = metadata(result, "docs_gaps")
    assert gaps["dagster/row_count"] == 1 and OFF_TOPIC in gaps["topics"]
    tag_rows = [json.loads(line) for line in FeedbackFiles(data_dir).tag_corrections.read_text().splitlines()]
    assert tag_rows == [{"question": MISSED, "tag": "tutorial"}]

    # The eval set as last evaluated (its eval_questions materialization); the eval-set sensor has nothing to do.
    assert materialize_evaluation(rag, selection=["eval_questions"], instance=instance).success
    before = eval_set_version(eval_path)
    assert "last evaluated" in eval_set_tick().skip_message

    assert main(["feedback", "list"]) == 0
    assert cid in capsys.readouterr().out
    assert main(["feedback", "accept", cid]) == 0
    assert f"accepted {cid}" in capsys.readouterr().out
    grown = load_questions(eval_path)
    assert len(grown) == len(seed_rows) + 1
    added = grown[-1]
    assert (added["question"], added["source"]) == (MISSED, CORRECTED)
    assert added["provenance"]["trace_id"] == missed and added["provenance"]["origin"] == "feedback"
    assert added["provenance"]["comment"].startswith("wrong page") and added["provenance"]["accepted_at"]
    assert main(["feedback", "accept", cid]) == 2  # never twice
    assert "already accepted" in capsys.readouterr().err and len(load_questions(eval_path)) == len(grown)

    after = eval_set_version(eval_path)
    request = eval_set_tick()
    assert after != before and len(request.run_requests) == 1
    assert request.run_requests[0].tags["rag/eval_set_version"] == after
    assert "already requested" in eval_set_tick(request.cursor).skip_message

    evaluation = materialize_evaluation(rag, instance=instance)
    assert evaluation.success
    report_md = metadata(evaluation, "score_report")
    assert report_md["eval_rows_from_feedback"] == 1 and report_md["eval_set_version"] == after
    assert f"**eval set** `{after}`" in report_md["report"] and "1 from feedback" in report_md["report"]
    files = EvalFiles(Layout(data_dir))
    assert MISSED in [r["question"] for r in read_json(files.responses)["rows"]]
    assert read_json(files.report)["eval_set"] == {"path": str(eval_path), "version": after,
                                                    "rows": len(grown), "from_feedback": 1}
    assert "last evaluated" in eval_set_tick(request.cursor).skip_message

    # More feedback: the triage runs again.
    log.add_feedback(good, -1)
    assert len(feedback_tick(fired.cursor).run_requests) == 1
    log.close()


def test_the_flywheel_is_in_the_code_location():
    from rag_assets.definitions import defs

    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.get_job("feedback_triage").asset_layer.executable_asset_keys}
    assert keys == {"underperforming_queries", "eval_candidates", "tag_corrections", "docs_gaps"}
    graph = defs.resolve_asset_graph()
    parents = lambda k: {p.to_user_string() for p in graph.get(dg.AssetKey(k)).parent_keys}  # noqa: E731
    assert parents("underperforming_queries") == {"query_log", "feedback"}
    assert parents("eval_candidates") == {"underperforming_queries"} == parents("docs_gaps")
    assert repo.get_sensor_def("new_feedback").job_name == "feedback_triage"
    assert repo.get_sensor_def("evaluate_after_eval_set_change").job_name == "evaluation"
