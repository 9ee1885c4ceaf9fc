"""The evaluation assets offline (extractive answers, calibrated offline judge) end to end with real Dagster."""

import json

import pyarrow.parquet as pq
import pytest

from rag_assets.cli import main
from rag_assets.lib.evaluate import metrics
from rag_assets.lib.evaluate.eval_data import EvalFiles
from rag_assets.lib.store import Layout, read_json
from rag_assets_tests.eval_fixtures import BASE_URL, materialize_evaluation, rag_settings, small_eval_set


@pytest.fixture
def offline(monkeypatch):
    for name in ("OPENAI_BASE_URL", "RAG_LLM_MODEL", "RAG_JUDGE_MODEL", "RAG_RETRIEVAL_MODE", "RAG_NUM_CHUNKS"):
        monkeypatch.delenv(name, raising=False)


def test_offline_evaluation_end_to_end(copy_built_index, offline, tmp_path, monkeypatch, capsys):
    docs_dir, data_dir = copy_built_index
    questions = small_eval_set(tmp_path / "questions.jsonl", limit=4)  # csv and errors pages, 2 with references
    monkeypatch.setenv("RAG_EVAL_PATH", str(tmp_path / "questions.jsonl"))
    monkeypatch.setenv("RAG_DATA_DIR", str(data_dir))
    rag = rag_settings(docs_dir, data_dir)

    result = materialize_evaluation(rag)
    assert result.success
    files = EvalFiles(Layout(data_dir))
    with_ref = sum(1 for q in questions if q.get("reference_answer"))

    refs = read_json(files.references)
    assert refs["written"] == 0 and len(refs["skipped"]) == len(questions) - with_ref  # offline: none written

    # Extractive answers: sentences of the retrieved chunks, with those chunks' sources.
    doc = read_json(files.responses)
    assert doc["generator"] == "extractive" and len(doc["rows"]) == len(questions)
    chunks = pq.read_table(Layout(data_dir).chunks, columns=["id", "text"]).to_pylist()
    text_by_id = {c["id"]: " ".join(c["text"].split()) for c in chunks}
    for r in doc["rows"]:
        assert r["failed"] is False and r["answer"]
        assert set(r["sources"]) <= set(r["retrieved_sources"])
        context = " ".join(text_by_id[i] for i in r["retrieved_ids"])
        assert r["answer"][:20] in context and r["answer"] not in text_by_id.values()
    assert len(doc["gold_context_rows"]) == len(questions)

    report = read_json(files.report)
    assert report["generator"] == "extractive" and report["judge"] == "offline"
    expected = metrics.retrieval_score([q["source"] for q in questions], [r["retrieved_sources"] for r in doc["rows"]])
    assert report["retrieval_score"]["value"] == pytest.approx(expected)
    assert report["retrieval_score"]["n"] == len(questions)
    assert {"hit@1", "recall@5", "mrr", "ndcg@5", "section_hit@5"} <= set(report["metrics"])
    q = report["quality_score"]
    assert q["n"] == with_ref and q["no_reference"] == len(questions) - with_ref and q["missing"] == 0
    assert 1 <= q["value"] <= 5
    assert report["quality_with_gold_context"]["n"] == with_ref
    assert set(report["by_area"]) == {"library", "tutorial"}
    assert report["config"]["chunk_size"] == 700 and report["index_version"] == doc["table_version"]
    assert files.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = result.asset_materializations_for_node("score_report")[0].metadata["report"].value
    assert "retrieval_score" in md and "data:image/png;base64," in md

    assert main(["report", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["retrieval_score"] == report["retrieval_score"] and printed["judge"] == "offline"

    # Again with nothing changed: every judgement comes from the cache, and no score dropped.
    again = materialize_evaluation(rag, selection=["responses", "retrieval_scores", "quality_scores", "score_report"])
    assert again.success
    quality = read_json(files.quality)
    assert quality["overall"]["judge_calls"] == 0 and quality["overall"]["cached"] == with_ref
    assert quality["gold_context"]["judge_calls"] == 0
    assert read_json(files.report)["quality_score"] == q
    assert again.get_asset_check_evaluations()[0].passed

    # Three of four gold pages moved out of the index: retrieval drops by more than its CI and the check warns.
    moved = [dict(q, source=BASE_URL + "library/os.html#moved") if i else q for i, q in enumerate(questions)]
    (tmp_path / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in moved))
    dropped = materialize_evaluation(rag)
    assert dropped.success  # a warning, not a failure
    check = dropped.get_asset_check_evaluations()[0]
    assert not check.passed and check.severity.value == "WARN"
    assert "retrieval_score" in check.metadata["dropped"].value


def test_malformed_eval_set_fails_with_its_line_numbers(built_index, offline, tmp_path, monkeypatch):
    docs_dir, _ = built_index
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "ok?", "source": "https://x/a.html"}\n'
                    "not json\n\n"
                    '{"source": "https://x/a.html"}\n'
                    '{"question": "ok?", "source": "https://x/b.html"}\n')
    monkeypatch.setenv("RAG_EVAL_PATH", str(path))
    result = materialize_evaluation(rag_settings(docs_dir, tmp_path / "data"), selection=["eval_questions"],
                                    raise_on_error=False)
    assert not result.success
    error = result.get_step_failure_events()[0].event_specific_data.error
    error = error.message + (error.cause.message if error.cause else "")
    assert "lines 2, 4, 5" in error and "duplicate question" in error
    assert not EvalFiles(Layout(tmp_path / "data")).questions.exists()
