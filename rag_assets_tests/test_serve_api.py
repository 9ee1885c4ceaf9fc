"""The API under a real uvicorn on loopback, offline answerer, over the 3-page `built_index`: /query, /stream,
the OpenAI-compatible chat with the real `openai` client, multi-turn retrieval, feedback, bounds, auth, assets."""

import dagster as dg
import openai
import pytest
import requests

from rag_assets.cli.serve import bind_address
from rag_assets.lib.index import manifest
from rag_assets.lib.serve.app import create_app
from rag_assets.lib.serve.query_log import QueryLog
from rag_assets.lib.settings import Settings
from rag_assets_tests.serve_server import LiveServer, sse_events

CSV = "https://docs.python.org/3.11/library/csv.html"
JSON = "https://docs.python.org/3.11/library/json.html"


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("serve_log")  # the query log's data dir: built_index stays read-only


@pytest.fixture(scope="module")
def server(built_index, log_dir):
    """One offline server for the module (no token, default bounds)."""
    _, data_dir = built_index
    settings = Settings.from_env(data_dir=data_dir)
    app = create_app(settings, token=None, llm_base_url=None, query_log=QueryLog.for_data_dir(log_dir))
    live = LiveServer(app)
    yield live
    live.close()


def test_query_answers_with_sources_from_the_committed_index(server, built_index):
    r = server.post("/query", {"question": "How do I read rows from a CSV file?", "k": 3, "mode": "hybrid"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= {"question", "answer", "sources", "llm", "trace_id", "index", "latency_ms"}
    assert body["answer"].strip() and body["llm"] == "extractive"
    assert len(body["sources"]) == 3 and body["sources"][0]["url"].startswith(CSV)
    assert all(set(s) == {"url", "title", "score", "chunk_id"} and s["title"] for s in body["sources"])
    committed = manifest.read(built_index[1])
    assert body["index"] == {"version": committed.build_id, "model": committed.model}
    row = server.service.query_log.get(body["trace_id"])
    assert row["status"] == "ok" and row["endpoint"] == "/query" and row["answer"] == body["answer"]
    assert row["chunk_ids"] == [s["chunk_id"] for s in body["sources"]] and row["k"] == 3
    assert row["index_version"] == committed.build_id and row["route"] == "none"


def test_stream_sends_sources_then_tokens_then_done(server):
    with requests.post(server.url + "/stream", json={"question": "How do I decode a JSON document?"},
                       stream=True, timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = list(sse_events(r))
    kinds = [e for e, _ in events]
    assert kinds[0] == "sources" and kinds[-1] == "done" and set(kinds[1:-1]) == {"token"}
    sources, done = events[0][1], events[-1][1]
    assert sources["sources"][0]["url"].startswith(JSON)
    assert done["trace_id"] == sources["trace_id"] and done["completion_tokens"] == len(kinds) - 2
    row = server.service.query_log.get(done["trace_id"])
    assert row["answer"] == "".join(d["text"] for e, d in events if e == "token") and row["status"] == "ok"


def test_openai_client_sees_answer_and_sources(server):
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    assert "rag-assets" in [m.id for m in client.models.list()]
    messages = [{"role": "user", "content": "How do I write rows to a CSV file?"}]
    resp = client.chat.completions.create(model="rag-assets", messages=messages)
    message = resp.choices[0].message
    assert message.content.strip()
    assert resp.sources[0]["url"].startswith(CSV)
    assert message.annotations[0].type == "url_citation" and message.annotations[0].url_citation.url.startswith(CSV)

    chunks = list(client.chat.completions.create(model="rag-assets", messages=messages, stream=True))
    first_content = next(i for i, c in enumerate(chunks) if c.choices and c.choices[0].delta.content)
    assert chunks[0].sources[0]["url"].startswith(CSV) and first_content > 0  # sources before the first token
    assert chunks[0].choices[0].delta.annotations[0]["url_citation"]["url"].startswith(CSV)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == message.content  # same answer, streamed
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_follow_up_retrieves_the_right_page_only_with_the_first_turn(server):
    first = "How do I parse a JSON string into a Python object with json.loads?"
    follow_up = "And what error does it raise when the input is invalid?"

    def top_source(messages):
        r = server.post("/v1/chat/completions", {"model": "rag-assets", "messages": messages, "k": 3})
        assert r.status_code == 200, r.text
        return r.json()["sources"][0]["url"], r.json()["standalone_query"]

    alone, query_alone = top_source([{"role": "user", "content": follow_up}])
    answer = server.post("/v1/chat/completions", {"messages": [{"role": "user", "content": first}]}).json()
    in_chat, standalone = top_source([{"role": "user", "content": first},
                                      {"role": "assistant", "content": answer["choices"][0]["message"]["content"]},
                                      {"role": "user", "content": follow_up}])
    assert query_alone == follow_up and standalone.startswith(follow_up) and "json.loads" in standalone
    assert in_chat.startswith(JSON) and not alone.startswith(JSON)


def test_feedback_joins_its_trace(server):
    trace = server.post("/query", {"question": "What does csv.writer return?"}).json()["trace_id"]
    r = server.post("/feedback", {"trace_id": trace, "rating": -1, "comment": "wrong page",
                                  "correction": {"source_url": CSV + "#csv.writer", "tag": "wrong-source"},
                                  "visited_sources": [CSV]})
    assert r.status_code == 200, r.text
    rows = [f for f in server.service.query_log.feedback() if f["trace_id"] == trace]
    assert len(rows) == 1 and rows[0]["rating"] == -1 and rows[0]["correction_tag"] == "wrong-source"
    assert server.service.query_log.get(trace)["question"] == "What does csv.writer return?"
    missing = server.post("/feedback", {"trace_id": "no-such-trace", "rating": 1})
    assert missing.status_code == 404 and "no-such-trace" in missing.json()["error"]["message"]
    assert server.post("/feedback", {"trace_id": trace, "rating": 5}).status_code == 422


def test_each_bound_is_a_clear_json_error(server):
    s = server.service.settings
    cases = [
        (server.post("/query", {"question": "x" * (s.serve_max_question_chars + 1)}), 422, "question"),
        (server.post("/query", {"question": "csv", "k": s.serve_max_k + 1}), 422, "k must be between"),
        (server.post("/query", {"question": "csv", "k": 0}), 422, "k must be between"),
        (server.post("/query", {"question": "csv", "mode": "telepathy"}), 422, "mode"),
        (server.post("/query", {"question": "   "}), 422, "empty"),
        (server.post("/query", {"nope": 1}), 422, "question"),
        (server.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "csv"}]
                                              * (s.serve_max_messages + 1)}), 422, "messages"),
        (server.post("/v1/chat/completions", {"model": "gpt-9", "messages": [{"role": "user", "content": "csv"}]}),
         404, "gpt-9"),
        (requests.post(server.url + "/query", data=b"{" + b" " * s.serve_max_body_bytes + b"}",
                       headers={"Content-Type": "application/json"}, timeout=30), 413, "bytes"),
        (requests.post(server.url + "/query", data=iter([b"{", b" " * s.serve_max_body_bytes, b"}"]),
                       headers={"Content-Type": "application/json"}, timeout=30), 413, "bytes"),  # chunked
    ]
    for r, status, words in cases:
        assert r.status_code == status, (status, r.text)
        assert words in r.json()["error"]["message"]


def test_health_and_readiness_name_the_index(server, built_index):
    assert server.get("/healthz").json() == {"status": "ok"}
    ready = server.get("/readyz").json()
    assert ready["status"] == "ready" and ready["index"]["version"] == manifest.read(built_index[1]).build_id


def test_auth_on_needs_the_bearer_token_and_cors_when_configured(server, built_index, tmp_path):
    settings = Settings.from_env(data_dir=built_index[1]).with_(serve_cors_origins="http://ui.example")
    app = create_app(settings, token="s3cret", llm_base_url=None, query_log=QueryLog.for_data_dir(tmp_path))
    live = LiveServer(app)
    try:
        question = {"question": "How do I read a CSV file?"}
        assert live.post("/query", question).status_code == 401
        wrong = live.post("/query", question, headers={"Authorization": "Bearer s3cre7"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert live.post("/query", question, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert live.get("/v1/models").status_code == 401
        assert live.get("/healthz").status_code == 200 and live.get("/readyz").status_code == 200
        preflight = {"Origin": "http://ui.example", "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "authorization,content-type"}
        r = requests.options(live.url + "/query", headers=preflight, timeout=30)  # a browser sends no token here
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://ui.example"
        r = requests.options(server.url + "/query", headers=preflight, timeout=30)  # CORS off by default
        assert "access-control-allow-origin" not in r.headers
    finally:
        live.close()


def test_without_a_token_the_cli_binds_loopback_only():
    assert bind_address(None, None)[0] == "127.0.0.1" and "127.0.0.1 only" in bind_address(None, None)[1]
    assert bind_address("0.0.0.0", None)[0] == "0.0.0.0"
    assert bind_address(None, "t")[0] == "127.0.0.1" and "auth on" in bind_address(None, "t")[1]


def test_query_log_and_feedback_assets(server, log_dir):
    from rag_assets.defs import serve
    from rag_assets.defs.resources import RagSettings

    trace = server.post("/query", {"question": "How do I handle an exception?"}).json()["trace_id"]
    server.post("/feedback", {"trace_id": trace, "rating": 1})
    result = dg.materialize(serve.ASSETS, resources={"rag": RagSettings(data_dir=str(log_dir))})
    assert result.success
    queries, feedback = server.service.query_log.queries(), server.service.query_log.feedback()
    q_md = result.asset_materializations_for_node("query_log")[0].metadata
    f_md = result.asset_materializations_for_node("feedback")[0].metadata
    assert q_md["dagster/row_count"].value == len(queries) and q_md["status_ok"].value == len(queries)
    assert "How do I handle an exception?" in q_md["preview"].value
    down = sum(1 for f in feedback if f["rating"] < 0)
    assert f_md["dagster/row_count"].value == len(feedback) >= 1
    assert f_md["thumbs_down_rate"].value == pytest.approx(down / len(feedback), abs=1e-4)


def test_only_a_follow_up_borrows_words_from_earlier_turns():
    from rag_assets.lib.serve.chat import standalone_query

    earlier = "How do I open a CSV file with csv.reader?"
    assert standalone_query([earlier, "and how do I close it?"]).startswith("and how do I close it? ")
    assert "csv.reader" in standalone_query([earlier, "and how do I close it?"])
    fresh = "What does json.dumps do with sort_keys?"
    assert standalone_query([earlier, fresh]) == fresh  # a new, complete question stays as asked
    assert standalone_query(["and then?"]) == "and then?"  # nothing to borrow from
