"""Routing through two OpenAI-compatible servers on loopback (open and strong), each counting its calls."""

import json

import pytest

from rag_assets.cli import main
from rag_assets.lib.retrieve.retriever import Hit
from rag_assets.lib.route.router import load_router
from rag_assets.lib.settings import Settings
from rag_assets_tests.openai_server import openai_server, two_llm_servers  # noqa: F401 (fixtures)
from rag_assets_tests.router_fixtures import EASY_QUESTION, HARD_QUESTION, fit_tiny_router, write_labelled

HITS = [Hit(id="c1", source="https://docs.python.org/3.11/library/json.html#basic-usage", score=1.0,
            text="json.dumps serializes obj to a JSON formatted str using this conversion table.")]


def generate_calls(server) -> int:
    return server.count("generate")


@pytest.fixture
def trained_router(tmp_path, monkeypatch):
    """A tiny bag-of-words router at RAG_ROUTER_DIR (tmp data dir), half of the questions to strong."""
    out = fit_tiny_router(write_labelled(tmp_path / "labels.jsonl"), tmp_path / "router")
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAG_ROUTER_DIR", str(out))
    return out


def test_hard_question_goes_to_the_strong_llm_and_overrides_win(two_llm_servers, trained_router):
    open_server, strong_server = two_llm_servers
    router = load_router(Settings.from_env())
    assert router.enabled and router.status.startswith("routing on")

    hard = router.answer(HARD_QUESTION, HITS)
    assert hard["route"] == "strong" and hard["llm"] == "test-strong-llm" and hard["failed"] is False
    assert hard["router_probability"] >= router.model.threshold
    assert (generate_calls(strong_server), generate_calls(open_server)) == (1, 0)
    assert strong_server.requests[-1]["model"] == "test-strong-llm"

    easy = router.answer(EASY_QUESTION, HITS)
    assert easy["route"] == "open" and easy["llm"] == "test-llm"
    assert easy["router_probability"] < router.model.threshold
    assert (generate_calls(strong_server), generate_calls(open_server)) == (1, 1)

    # Overrides: the router is not consulted (no probability), the named LLM answers.
    forced_open = router.answer(HARD_QUESTION, HITS, override="open")
    assert forced_open["route"] == "open" and forced_open["router_probability"] is None
    forced_strong = router.answer(EASY_QUESTION, HITS, override="strong")
    assert forced_strong["route"] == "strong" and forced_strong["llm"] == "test-strong-llm"
    assert (generate_calls(strong_server), generate_calls(open_server)) == (2, 2)
    with pytest.raises(ValueError, match="override must be one of"):
        router.route(EASY_QUESTION, "gpt")


def test_no_strong_model_means_routing_off(openai_server, trained_router, monkeypatch):
    monkeypatch.delenv("RAG_STRONG_LLM_MODEL", raising=False)
    router = load_router(Settings.from_env())
    assert not router.enabled and router.status == "routing off: RAG_STRONG_LLM_MODEL is not set"
    decision = router.route(HARD_QUESTION)
    assert (decision.route, decision.probability, decision.model) == ("open", None, "test-llm")
    assert decision.reason == router.status
    with pytest.raises(ValueError, match="cannot use the strong LLM: routing off"):
        router.route(HARD_QUESTION, "strong")


def test_strong_model_without_a_trained_router_answers_with_open(two_llm_servers, tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_ROUTER_DIR", str(tmp_path / "nothing-here"))
    decision = load_router(Settings.from_env()).route(HARD_QUESTION)
    assert decision.route == "open" and "no trained router" in decision.reason


def test_ask_routes_and_reports_the_route(built_index, two_llm_servers, trained_router, monkeypatch, capsys):
    open_server, strong_server = two_llm_servers
    monkeypatch.setenv("RAG_DATA_DIR", str(built_index[1]))  # read-only use of the built index
    assert main(["ask", HARD_QUESTION, "--json", "-k", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["route"] == "strong" and out["llm"] == "test-strong-llm"
    assert isinstance(out["router_probability"], float)
    assert (generate_calls(strong_server), generate_calls(open_server)) == (1, 0)

    assert main(["ask", HARD_QUESTION, "--json", "-k", "2", "--llm", "open"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["route"] == "open" and out["router_probability"] is None and out["llm"] == "test-llm"
    assert (generate_calls(strong_server), generate_calls(open_server)) == (1, 1)


def test_routed_sweep_value(two_llm_servers, trained_router, monkeypatch):
    from rag_assets.lib.experiments import variants
    from rag_assets.lib.experiments.sweep import ROUTED, parse_sweep

    open_server, strong_server = two_llm_servers
    settings = Settings.from_env()
    [variant] = parse_sweep({"llm": [ROUTED]}, settings).variants
    assert variant.llm == "routed" and variant.key.endswith("__routed")
    generator = variants.routed_generator(settings)
    assert generator.name == "routed"
    answers = [generator.answer(q, HITS) for q in (HARD_QUESTION, EASY_QUESTION)]
    assert [a["route"] for a in answers] == ["strong", "open"]
    assert (generate_calls(strong_server), generate_calls(open_server)) == (1, 1)
    # Cost per query: each answer at its own LLM's price ($ per 1M tokens: gpt-4o 2.5/10, gpt-4o-mini 0.15/0.6).
    priced = [{"llm": "gpt-4o", "prompt_tokens": 1000, "completion_tokens": 100},
              {"llm": "gpt-4o-mini", "prompt_tokens": 1000, "completion_tokens": 100}]
    assert variants.routed_cost(priced) == pytest.approx((0.0025 + 0.001 + 0.00015 + 0.00006) / 2)
    assert variants.routed_cost(answers) is None  # the test servers' models have no price
    monkeypatch.delenv("RAG_STRONG_LLM_MODEL")
    with pytest.raises(ValueError, match="needs a strong LLM and a trained router"):
        variants.routed_generator(Settings.from_env())
