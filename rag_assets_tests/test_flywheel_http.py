"""The flywheel over HTTP on loopback: `rag-assets serve` -> POST /query -> POST /feedback with a correction ->
the feedback assets -> a retrieval-labelled candidate -> `rag-assets feedback accept` -> the eval set grows.

Written against the serving issue's contract (issue 11); skipped until `rag-assets serve` exists on this
branch. The lead un-skips it at merge by merging the serve branch (the skip is only on the module's absence).
"""

import json
import os
import socket
import subprocess
import sys
import time

import dagster as dg
import pytest
import requests

from rag_assets.cli import main
from rag_assets.defs import feedback as feedback_stage
from rag_assets.lib.evaluate.eval_data import load_questions, page_of
from rag_assets.lib.feedback.candidates import candidate_id
from rag_assets.lib.feedback.files import FeedbackFiles
from rag_assets.lib.serve.query_log import MAX_COMMENT_CHARS, QueryLog
from rag_assets.lib.store import read_json
from rag_assets_tests.eval_fixtures import BASE_URL, rag_settings, small_eval_set


CORRECTED = BASE_URL + "tutorial/errors.html#handling-exceptions"
MISSED = "How do I keep my program running when json.loads fails on invalid input?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopbackClient(requests.Session):
    """requests with a base URL and a timeout on every call."""

    def __init__(self, base_url: str):
        super().__init__()
        self.base_url = base_url

    def request(self, method, url, *args, **kwargs):
        kwargs.setdefault("timeout", 60)
        return super().request(method, self.base_url + url, *args, **kwargs)


@pytest.fixture
def server(copy_built_index, tmp_path, monkeypatch):
    docs_dir, data_dir = copy_built_index
    for name in ("OPENAI_BASE_URL", "RAG_API_TOKEN", "RAG_RETRIEVAL_MODE", "RAG_NUM_CHUNKS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAG_DATA_DIR", str(data_dir))
    monkeypatch.setenv("RAG_LLM_MODEL", "extractive")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "rag_assets.cli", "serve", "--host", "127.0.0.1",
                             "--port", str(port)], env=dict(os.environ), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    client = LoopbackClient(f"http://127.0.0.1:{port}")
    try:
        for _ in range(600):  # the model and the index load first
            if proc.poll() is not None:
                pytest.fail(f"the server exited: {proc.stderr.read()[-2000:]}")
            try:
                if client.get("/readyz").status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail("the server did not become ready")
        yield client, docs_dir, data_dir
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=30)


def test_http_query_feedback_accept(server, tmp_path, monkeypatch, capsys):
    client, docs_dir, data_dir = server
    eval_path = tmp_path / "questions.jsonl"
    seed_rows = small_eval_set(eval_path, limit=2)
    monkeypatch.setenv("RAG_EVAL_PATH", str(eval_path))

    answered = client.post("/query", json={"question": MISSED, "k": 3})
    assert answered.status_code == 200
    body = answered.json()
    trace = body["trace_id"]
    assert CORRECTED.split("#")[0] not in {page_of(s["url"]) for s in body["sources"]}

    # Bad feedback: clear errors, nothing stored.
    assert client.post("/feedback", json={"trace_id": "no-such-trace", "rating": -1}).status_code == 404
    assert client.post("/feedback", json={"trace_id": trace, "rating": 7}).status_code in (400, 422)
    huge = client.post("/feedback", json={"trace_id": trace, "rating": -1, "comment": "x" * (MAX_COMMENT_CHARS + 1)})
    assert huge.status_code in (400, 413, 422) and isinstance(huge.json(), dict)  # a JSON error, never a 500
    log = QueryLog.for_data_dir(data_dir)
    assert log.feedback() == []

    ok = client.post("/feedback", json={"trace_id": trace, "rating": -1, "comment": "wrong page",
                                        "correction": {"source_url": CORRECTED, "tag": "tutorial"}})
    assert ok.status_code in (200, 201)
    assert [f["trace_id"] for f in log.feedback()] == [trace]
    log.close()

    result = dg.materialize(feedback_stage.ASSETS, resources={"rag": rag_settings(docs_dir, data_dir)})
    assert result.success
    rows = {r["trace_id"]: r for r in read_json(FeedbackFiles(data_dir).underperforming)["rows"]}
    assert rows[trace]["label"] == "retrieval"

    assert main(["feedback", "accept", candidate_id(trace)]) == 0
    grown = load_questions(eval_path)
    assert len(grown) == len(seed_rows) + 1 and grown[-1]["provenance"]["trace_id"] == trace
    assert json.loads(FeedbackFiles(data_dir).tag_corrections.read_text().splitlines()[0])["tag"] == "tutorial"
