"""What the probes of issue 10 found: queries with bytes that are not UTF-8, and an LLM endpoint that answers
200 with an HTML page. Real openai client against the loopback server, real index, real CLI."""

import json
import os
import subprocess

from rag_assets.cli import main
from rag_assets.lib.evaluate import pipeline
from rag_assets.lib.generate.answer import make_generator
from rag_assets.lib.retrieve.retriever import Hit, Retriever
from rag_assets_tests.openai_server import openai_server  # noqa: F401 (fixture)
from rag_assets_tests.test_cli_search import rag_assets_cmd

HTML_PAGE = "<!doctype html><html><head><title>Sign in</title></head><body><h1>Please log in</h1></body></html>"
HITS = [Hit(id="1", source="https://docs.python.org/3.11/library/csv.html#examples", score=1.0,
            text="The simplest example of reading a CSV file uses csv.reader on an open file.")]


def test_200_with_an_html_body_is_a_failed_answer_not_a_crash(openai_server):
    openai_server.add_fault("generate", body=HTML_PAGE)
    out = make_generator().answer("How do I read a CSV file?", HITS)
    assert out["failed"] is True and out["answer"] is None
    assert "not JSON" in out["error"] and "Please log in" in out["error"]
    assert openai_server.count("generate") == 1  # a misdirected endpoint is not retried


def test_200_with_json_that_is_not_a_completion_is_a_failed_answer(openai_server):
    openai_server.add_fault("generate", body='{"status": "ok"}', content_type="application/json")
    out = make_generator().answer("How do I read a CSV file?", HITS)
    assert out["failed"] is True and out["answer"] is None and "without any choice" in out["error"]


def test_question_with_lone_surrogates_reaches_the_llm_as_valid_text(openai_server):
    out = make_generator().answer("caf\udce9: how do I read a CSV file?", HITS)
    assert out["failed"] is False
    sent = [r for r in openai_server.requests if r["kind"] == "generate"][-1]["user"]
    assert "caf\ufffd: how do I read" in sent


def test_evaluation_records_the_html_answer_as_failed_and_goes_on(built_index, openai_server):
    _, data_dir = built_index
    questions = [{"question": q, "source": "https://docs.python.org/3.11/library/csv.html"} for q in
                 ("How do I write a CSV file?", "How do I read CSV rows as dicts?", "What is a CSV dialect?")]
    openai_server.add_fault("generate", match="rows as dicts", body=HTML_PAGE, times=10)
    rows = pipeline.generate_responses(Retriever.open(data_dir), questions, make_generator(), mode="lexical",
                                       num_chunks=2)
    by_q = {r["question"]: r for r in rows}
    bad = by_q["How do I read CSV rows as dicts?"]
    assert bad["failed"] is True and bad["answer"] is None and "not JSON" in bad["error"]
    assert all(r["failed"] is False and r["answer"] for q, r in by_q.items() if q != bad["question"])
    judge = pipeline.make_judge(None)
    quality = pipeline.score_quality(rows, judge, {q["question"]: "Use csv.writer." for q in questions})
    assert quality["quality_score"]["n"] == 2 and quality["quality_score"]["missing"] == 1


def test_ask_with_invalid_utf8_and_an_html_endpoint_prints_json_not_a_traceback(built_index, openai_server,
                                                                                 monkeypatch, capsys):
    _, data_dir = built_index
    monkeypatch.setenv("RAG_DATA_DIR", str(data_dir))
    assert main(["ask", "caf\udce9 csv writer", "--mode", "semantic", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["failed"] is False and out["answer"].startswith("From the docs:")
    openai_server.add_fault("generate", body=HTML_PAGE)
    assert main(["ask", "csv writer", "--mode", "lexical", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["failed"] is True and out["answer"] is None and "not JSON" in out["error"]


def test_cli_ask_and_search_with_raw_latin1_bytes_in_argv(built_index):
    # The probe: `rag-assets ask $'caf\xe9'` (hybrid, offline) crashed with a traceback.
    _, data_dir = built_index
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_BASE_URL"}
    env |= {"RAG_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.run([*rag_assets_cmd(), "ask", b"caf\xe9 csv writer header", "--mode", "hybrid", "--json"],
                          env=env, capture_output=True, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr.decode(errors="replace")
    assert b"Traceback" not in proc.stderr
    out = json.loads(proc.stdout)
    assert any(s.startswith("https://docs.python.org/3.11/library/csv.html") for s in out["retrieved_sources"])


def test_identical_prompts_reuse_the_cached_answer(openai_server, tmp_path):
    from rag_assets.lib.evaluate.judge import JudgeCache

    openai_server.vary_answers = True  # the server never answers the same prompt the same way twice
    cache = JudgeCache(tmp_path / "cache.sqlite")
    first = make_generator(cache=cache).answer("How do I read a CSV file?", HITS)
    again = make_generator(cache=cache).answer("How do I read a CSV file?", HITS)
    assert openai_server.count("generate") == 1
    assert again["answer"] == first["answer"] and again["answer_cached"] and not first["answer_cached"]
    assert (again["prompt_tokens"], again["latency_s"]) == (first["prompt_tokens"], first["latency_s"])
    fresh = make_generator().answer("How do I read a CSV file?", HITS)  # no cache: asked again, answered otherwise
    assert openai_server.count("generate") == 2 and fresh["answer"] != first["answer"]
    other = make_generator(cache=cache).answer("How do I read a CSV file quickly?", HITS)
    assert openai_server.count("generate") == 3 and not other["answer_cached"]
    openai_server.add_fault("generate", match="TSV", body=HTML_PAGE, times=2)
    assert make_generator(cache=cache).answer("And a TSV file?", HITS)["failed"]
    assert not make_generator(cache=cache).answer("And a TSV file?", HITS).get("answer_cached")  # failures not kept
