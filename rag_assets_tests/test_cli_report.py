"""`rag-assets report` and `rag-assets ask`: the JSON shapes the issue names."""

import json

import pytest

from rag_assets.cli import main
from rag_assets.lib.evaluate import report as report_lib
from rag_assets.lib.evaluate.eval_data import EvalFiles
from rag_assets.lib.evaluate.pipeline import generate_responses, make_generator, make_judge, score_quality, score_retrieval
from rag_assets.lib.retrieve.retriever import Retriever
from rag_assets.lib.store import Layout, write_json
from rag_assets_tests.eval_fixtures import small_eval_set
from rag_assets_tests.openai_server import openai_server  # noqa: F401 (fixture)

SCORE_KEYS = {"value", "ci95", "n"}


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def test_ask_json_offline(built_index, offline, monkeypatch, capsys):
    monkeypatch.setenv("RAG_DATA_DIR", str(built_index[1]))
    assert main(["ask", "How do I write rows to a CSV file?", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["llm"] == "extractive" and out["answer"] and out["failed"] is False
    assert out["sources"] and set(out["sources"]) <= set(out["retrieved_sources"])
    assert all(s.startswith("https://docs.python.org/3.11/") for s in out["sources"])


def test_ask_json_online_and_text(built_index, openai_server, monkeypatch, capsys):
    monkeypatch.setenv("RAG_DATA_DIR", str(built_index[1]))
    assert main(["ask", "How do I parse JSON?", "--json", "-k", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["llm"] == "test-llm" and out["answer"].startswith("From the docs:")
    assert len(out["retrieved_sources"]) == 2
    assert main(["ask", "How do I parse JSON?"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("From the docs:") and "Sources:" in text
    openai_server.add_fault("generate", times=100, status=500)
    assert main(["ask", "How do I parse JSON?"]) == 1
    assert "HTTP 500" in capsys.readouterr().err


def test_report_json_and_text(built_index, offline, tmp_path, monkeypatch, capsys):
    data_dir = tmp_path / "data"
    monkeypatch.setenv("RAG_DATA_DIR", str(data_dir))
    assert main(["report", "--json"]) == 2
    assert "materialize the evaluation assets" in capsys.readouterr().err

    # A real report from the library on the built index (the assets do the same, test_eval_offline runs them).
    questions = small_eval_set(tmp_path / "q.jsonl", limit=3)
    rows = generate_responses(Retriever.from_layout(Layout(built_index[1])), questions, make_generator())
    quality = {"overall": score_quality(rows, make_judge(None)), "gold_context": None}
    doc = {"generator": "extractive", "rows": rows, "table_version": rows[0]["table_version"]}
    report = report_lib.build_report(doc, score_retrieval(questions, rows), quality, {"num_chunks": 5})
    write_json(EvalFiles(Layout(data_dir)).report, report)

    assert main(["report", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("retrieval_score", "quality_score"):
        assert SCORE_KEYS <= set(out[key]) and len(out[key]["ci95"]) == 2
    assert isinstance(out["retrieval_score"]["value"], float) and out["retrieval_score"]["n"] == 3
    assert out["generator"] == "extractive" and out["judge"] == "offline"
    assert all(SCORE_KEYS <= set(v) for v in out["metrics"].values()) and "hit@1" in out["metrics"]

    assert main(["report"]) == 0
    text = capsys.readouterr().out
    assert "retrieval_score" in text and "judge: offline" in text and "worst questions" in text
