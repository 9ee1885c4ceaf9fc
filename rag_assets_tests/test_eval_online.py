"""The evaluation assets end to end against the OpenAI-compatible test server (real Dagster, LanceDB, Tantivy)."""

from rag_assets.lib.evaluate.eval_data import EvalFiles
from rag_assets.lib.store import Layout, read_json
from rag_assets_tests.eval_fixtures import materialize_evaluation, rag_settings, small_eval_set
from rag_assets_tests.openai_server import openai_server  # noqa: F401 (fixture)

DOWNSTREAM_OF_RESPONSES = ["responses", "retrieval_scores", "quality_scores", "score_report"]


def test_online_evaluation_end_to_end(copy_built_index, openai_server, tmp_path, monkeypatch):
    docs_dir, data_dir = copy_built_index
    questions = small_eval_set(tmp_path / "questions.jsonl", limit=4)
    monkeypatch.setenv("RAG_EVAL_PATH", str(tmp_path / "questions.jsonl"))
    # One question with its own reference keeps failing with 500s (its reference needs no LLM).
    failing = next(q["question"] for q in questions if q.get("reference_answer"))
    openai_server.add_fault("generate", match=failing, times=1000, status=500)
    # The same prompt gets a different answer each time (a real server under load): only reusing answers
    # keeps the judge cache valid when nothing changed.
    openai_server.vary_answers = True
    rag = rag_settings(docs_dir, data_dir)

    result = materialize_evaluation(rag)
    assert result.success
    files = EvalFiles(Layout(data_dir))

    # References: the eval set's own, and the judge model's from the gold section for the rest.
    refs = read_json(files.references)
    written = [r for r in refs["rows"] if r["origin"] == "written by test-judge"]
    assert len(written) == sum(1 for q in questions if not q.get("reference_answer")) > 0
    assert all(r["reference_answer"].startswith("From the docs:") for r in written)

    doc = read_json(files.responses)
    rows = {r["question"]: r for r in doc["rows"]}
    assert doc["generator"] == "test-llm" and len(rows) == 4
    assert rows[failing]["failed"] is True and rows[failing]["answer"] is None and "500" in rows[failing]["error"]
    for r in rows.values():
        if r["question"] == failing:
            continue
        assert r["failed"] is False and r["answer"].startswith("From the docs:")
        assert len(r["retrieved_ids"]) == 5 and len(r["ranked_ids"]) == 10
        assert r["prompt_tokens"] > 0 and r["completion_tokens"] > 0

    report = read_json(files.report)
    assert report["generator"] == "test-llm" and report["judge"] == "test-judge"
    q = report["quality_score"]
    assert q["n"] == 3 and q["missing"] == 1 and q["no_reference"] == 0  # the failed answer is missing, not 0
    assert 1 <= q["value"] <= 5 and q["ci95"][0] <= q["value"] <= q["ci95"][1]
    assert report["quality_with_gold_context"]["n"] == 3
    assert report["config"]["generator"] == "test-llm" and report["config"]["judge_prompt_version"]
    assert report["worst_questions"][0]["question"] == failing

    # Nothing changed: answers are reused (only the failed question is asked again), nothing is judged again.
    judge_calls, generate_calls = openai_server.count("judge"), openai_server.count("generate")
    failed_calls = openai_server.count("generate", failing)
    again = materialize_evaluation(rag, selection=DOWNSTREAM_OF_RESPONSES)
    assert again.success
    assert openai_server.count("generate") - generate_calls == openai_server.count("generate", failing) - failed_calls > 0
    assert openai_server.count("judge") == judge_calls
    rerun = {r["question"]: r for r in read_json(files.responses)["rows"]}
    assert all(r["answer_cached"] and r["answer"] == rows[q]["answer"] for q, r in rerun.items() if q != failing)
    quality = read_json(files.quality)
    assert quality["overall"]["judge_calls"] == 0 and quality["overall"]["cached"] == 3
    assert read_json(files.report)["quality_score"] == q
    check = again.get_asset_check_evaluations()[0]
    assert check.check_name == "scores_not_dropped" and check.passed
