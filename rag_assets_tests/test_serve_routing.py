"""Serving routes each question (issue 13 in issue 11's API): a hard question is answered by the strong LLM, an
easy one by the open LLM, each a real loopback server counting its calls; the route lands in the query log."""

import pytest

from rag_assets.lib.serve.app import create_app
from rag_assets.lib.serve.query_log import QueryLog
from rag_assets.lib.settings import Settings
from rag_assets_tests.openai_server import openai_server, two_llm_servers  # noqa: F401 (fixtures)
from rag_assets_tests.router_fixtures import EASY_QUESTION, HARD_QUESTION, fit_tiny_router, write_labelled
from rag_assets_tests.serve_server import LiveServer


@pytest.fixture
def routed_server(built_index, tmp_path, two_llm_servers):  # noqa: F811
    open_server, _ = two_llm_servers
    router_dir = fit_tiny_router(write_labelled(tmp_path / "labels.jsonl"), tmp_path / "router")
    settings = Settings.from_env(data_dir=built_index[1], router_dir=str(router_dir)).with_(llm_model="test-llm")
    live = LiveServer(create_app(settings, token=None, llm_base_url=open_server.base_url,
                                 query_log=QueryLog.for_data_dir(tmp_path)))
    yield live
    live.close()


def test_query_is_routed_per_question_and_logged(routed_server, two_llm_servers):  # noqa: F811
    open_server, strong_server = two_llm_servers
    assert routed_server.service.router.enabled

    hard = routed_server.post("/query", {"question": HARD_QUESTION}).json()
    assert (hard["route"], hard["llm"]) == ("strong", "test-strong-llm") and hard["router_probability"] is not None
    assert (strong_server.count("generate"), open_server.count("generate")) == (1, 0)

    easy = routed_server.post("/query", {"question": EASY_QUESTION}).json()
    assert (easy["route"], easy["llm"]) == ("open", "test-llm")
    assert easy["router_probability"] < hard["router_probability"]
    assert (strong_server.count("generate"), open_server.count("generate")) == (1, 1)

    forced = routed_server.post("/query", {"question": EASY_QUESTION, "llm": "test-strong-llm"}).json()
    assert (forced["route"], forced["router_probability"]) == ("strong", None)
    assert strong_server.count("generate") == 2

    rows = {r["trace_id"]: r for r in routed_server.service.query_log.queries()}
    assert rows[hard["trace_id"]]["route"] == "strong" and rows[easy["trace_id"]]["route"] == "open"
    assert rows[hard["trace_id"]]["router_probability"] == pytest.approx(hard["router_probability"])
