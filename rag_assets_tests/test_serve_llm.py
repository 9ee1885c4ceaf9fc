"""The API in front of an LLM (the loopback OpenAI-compatible server): streaming through, history without
retrieved context, a client that leaves cancels the LLM stream, 429 past the concurrency bound, 504 on an LLM
timeout (logged), and the optional LLM condense step."""

import openai
import pytest
import requests

from rag_assets.lib.serve.app import create_app
from rag_assets.lib.serve.query_log import QueryLog
from rag_assets.lib.settings import Settings
from rag_assets_tests.openai_server import openai_server  # noqa: F401 (fixture)
from rag_assets_tests.serve_server import LiveServer, sse_events

JSON = "https://docs.python.org/3.11/library/json.html"


def start(built_index, tmp_path, llm_base_url, **settings):
    s = Settings.from_env(data_dir=built_index[1]).with_(llm_model="test-llm", **settings)
    return LiveServer(create_app(s, token=None, llm_base_url=llm_base_url, query_log=QueryLog.for_data_dir(tmp_path)))


@pytest.fixture
def llm_server(built_index, tmp_path, openai_server):  # noqa: F811
    live = start(built_index, tmp_path, openai_server.base_url)
    yield live
    live.close()


def wait_for_row(log: QueryLog, trace_id: str, status: str) -> dict:
    """The row a cancelled request writes as its task unwinds, a moment after the client left."""
    import time

    for _ in range(1500):
        row = log.get(trace_id)
        if row is not None and row["status"] == status:
            return row
        time.sleep(0.02)
    raise AssertionError(f"no {status} row for {trace_id}: {log.get(trace_id)}")


def test_llm_answer_streams_through_with_sources_and_token_counts(llm_server, openai_server):  # noqa: F811
    client = openai.OpenAI(base_url=llm_server.url + "/v1", api_key="unused", max_retries=0)
    assert "test-llm" in [m.id for m in client.models.list()]
    first = [{"role": "user", "content": "How do I parse JSON with json.loads?"}]
    resp = client.chat.completions.create(model="rag-assets", messages=first)
    answer = resp.choices[0].message.content
    assert answer.startswith("From the docs:") and resp.llm == "test-llm" and resp.usage.completion_tokens > 0
    chunks = list(client.chat.completions.create(
        model="rag-assets", stream=True,
        messages=[*first, {"role": "assistant", "content": answer}, {"role": "user", "content": "and its errors?"}]))
    assert chunks[0].sources[0]["url"].startswith(JSON)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).startswith("From the docs:")
    sent = openai_server.requests[-1]["messages"]  # the follow-up as the LLM got it
    assert openai_server.requests[-1]["stream"] and [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[1]["content"] == first[0]["content"] and sent[2]["content"] == answer  # no context echoed back
    assert "context:" in sent[3]["content"]
    row = llm_server.service.query_log.get(chunks[0].trace_id)
    assert row["llm"] == "test-llm" and row["prompt_tokens"] > 0 and row["completion_tokens"] > 0


def test_client_disconnect_cancels_the_llm_stream(llm_server, openai_server):  # noqa: F811
    openai_server.slow_stream(delay_s=0.05, words=400)
    with requests.post(llm_server.url + "/stream", json={"question": "How do I decode JSON?"}, stream=True,
                       timeout=60) as r:
        events = sse_events(r)
        kind, sources = next(events)
        assert kind == "sources"
        for _ in range(3):
            assert next(events)[0] == "token"
    # the response is closed here: the client went away after 3 tokens
    assert openai_server.wait_stream_ended() == ["client gone"]
    assert openai_server.tokens_served < 400
    row = wait_for_row(llm_server.service.query_log, sources["trace_id"], "cancelled")
    assert row["completion_tokens"] >= 3 and row["endpoint"] == "/stream"


def test_over_the_concurrency_bound_is_429_with_retry_after(built_index, tmp_path, openai_server):  # noqa: F811
    live = start(built_index, tmp_path, openai_server.base_url, serve_max_concurrency=1)
    openai_server.slow_stream(delay_s=0.05, words=400)
    try:
        with requests.post(live.url + "/stream", json={"question": "How do I decode JSON?"}, stream=True,
                           timeout=60) as busy:
            assert next(sse_events(busy))[0] == "sources"  # holds the only slot while it streams
            r = live.post("/query", {"question": "How do I read a CSV file?"})
            assert r.status_code == 429 and r.headers["retry-after"] == "1"
            assert "RAG_SERVE_MAX_CONCURRENCY" in r.json()["error"]["message"]
            assert live.get("/healthz").status_code == 200  # health is never refused
    finally:
        live.close()


def test_llm_timeout_is_504_and_the_log_keeps_it(llm_server, openai_server):  # noqa: F811
    openai_server.add_fault(kind="generate", delay_s=3.0)  # the client timeout is 1 s
    r = llm_server.post("/query", {"question": "How do I decode JSON?"})
    assert r.status_code == 504 and "timed out" in r.json()["error"]["message"]
    row = llm_server.service.query_log.queries()[-1]
    assert row["status"] == "timeout" and row["question"] == "How do I decode JSON?" and row["chunk_ids"]
    assert llm_server.post("/query", {"question": "How do I decode JSON?"}).status_code == 200  # and recovers


def test_llm_condense_step_behind_its_setting(built_index, tmp_path, openai_server):  # noqa: F811
    live = start(built_index, tmp_path, openai_server.base_url, serve_condense="llm")
    try:
        messages = [{"role": "user", "content": "How do I parse JSON with json.loads?"},
                    {"role": "assistant", "content": "Use json.loads."},
                    {"role": "user", "content": "and what does it raise on bad input?"}]
        body = live.post("/v1/chat/completions", {"messages": messages}).json()
        assert openai_server.count("condense") == 1
        assert body["standalone_query"] == "How do I parse JSON with json.loads? and what does it raise on bad input?"
        assert body["sources"][0]["url"].startswith(JSON)
    finally:
        live.close()
