"""The LLM client and generator through the real `openai` client against the test server: retries, failures,
context lengths and trimming."""

import pytest

from rag_assets.lib.generate import llm
from rag_assets.lib.generate.answer import SYSTEM_PROMPT, ExtractiveGenerator, LLMGenerator, make_generator
from rag_assets.lib.retrieve.retriever import Hit
from rag_assets_tests.openai_server import openai_server  # noqa: F401 (fixture)

HITS = [
    Hit(id="1", source="https://docs.python.org/3.11/library/csv.html#examples", score=1.0,
        text="The simplest example of reading a CSV file uses csv.reader on an open file."),
    Hit(id="2", source="https://docs.python.org/3.11/library/json.html#basic-usage", score=0.5,
        text="json.dumps serializes an object to a JSON formatted str."),
]


def generator() -> LLMGenerator:
    return make_generator()


def test_answer_through_the_server(openai_server):
    out = generator().answer("How do I read a CSV file?", HITS)
    assert out["failed"] is False and out["error"] is None
    assert out["answer"].startswith("From the docs: The simplest example")
    assert out["llm"] == "test-llm"
    assert out["prompt_tokens"] > 0 and out["completion_tokens"] > 0
    assert out["sources"] == [h.source for h in HITS]
    req = [r for r in openai_server.requests if r["kind"] == "generate"][-1]
    assert req["temperature"] == 0 and req["model"] == "test-llm"


def test_retries_429_with_retry_after_then_succeeds(openai_server):
    openai_server.add_fault("generate", match="CSV", times=2, status=429, retry_after="0.01")
    out = generator().answer("How do I read a CSV file?", HITS)
    assert out["failed"] is False
    assert openai_server.count("generate", "CSV") == 3


def test_retries_500_and_a_timeout(openai_server, monkeypatch):
    monkeypatch.setenv("RAG_LLM_TIMEOUT_S", "0.3")
    openai_server.add_fault("generate", match="CSV", status=500)
    openai_server.add_fault("generate", match="CSV", delay_s=5.0)  # slower than the client waits
    out = generator().answer("How do I read a CSV file?", HITS)
    assert out["failed"] is False and out["answer"].startswith("From the docs:")
    assert openai_server.count("generate", "CSV") == 3


def test_a_question_that_keeps_failing_is_recorded_failed(openai_server):
    openai_server.add_fault("generate", match="CSV", times=100, status=503)
    out = generator().answer("How do I read a CSV file?", HITS)
    assert out["failed"] is True
    assert out["answer"] is None  # never an empty answer
    assert "503" in out["error"] and "4 attempts" in out["error"]
    assert openai_server.count("generate", "CSV") == 4  # RAG_LLM_MAX_RETRIES=3 retries


def test_client_errors_are_not_retried(openai_server):
    out = make_generator("no-such-model").answer("How do I read a CSV file?", HITS)
    assert out["failed"] is True and "404" in out["error"]
    assert openai_server.count("generate") == 1


def test_empty_completion_is_a_failure(openai_server):
    openai_server.add_fault("generate", text="   ")
    out = generator().answer("How do I read a CSV file?", HITS)
    assert out["failed"] is True and out["answer"] is None and out["error"] == "empty answer"


def test_backoff_grows_and_honours_retry_after():
    policy = llm.RetryPolicy(backoff_s=0.5, max_backoff_s=10.0)
    assert [policy.delay(a, None) for a in range(4)] == [0.5, 1.0, 2.0, 4.0]
    assert policy.delay(0, 3.0) == 3.0  # the server asks for longer
    assert policy.delay(3, 0.1) == 4.0  # ours is longer
    assert policy.delay(0, 120.0) == 10.0  # capped


def test_context_length_sources(openai_server, monkeypatch):
    client = llm.ChatClient()
    assert client.context_length("test-llm") == 4096  # vLLM-style max_model_len from /v1/models
    openai_server.max_model_len = 1234
    assert client.context_length("test-llm") == 4096  # asked once per model
    assert llm.ChatClient().context_length("test-llm") == 1234
    assert llm.ChatClient().context_length("gpt-4") == 8192  # not served here: the known table
    monkeypatch.setenv("RAG_LLM_CONTEXT_LENGTH", "2048")
    assert llm.ChatClient().context_length("test-llm") == 2048


def test_known_context_lengths():
    assert llm.known_context_length("gpt-4o-mini") == 128_000
    assert llm.known_context_length("gpt-4") == 8_192
    assert llm.known_context_length("gpt-3.5-turbo-0125") == 16_385
    assert llm.known_context_length("meta-llama/Llama-2-70b-chat-hf") == 4_096
    assert llm.known_context_length("meta-llama/Meta-Llama-3.1-8B-Instruct") == 131_072
    assert llm.known_context_length("mistralai/Mixtral-8x7B-Instruct-v0.1") == 32_768
    assert llm.known_context_length("some-new-model") == llm.DEFAULT_CONTEXT_LENGTH


def test_context_is_trimmed_to_the_window(openai_server):
    openai_server.max_model_len = 1000
    long_hits = [Hit(id=str(i), source=f"https://x/{i}.html#s", score=1.0, text=f"chunk{i} " + "word " * 600)
                 for i in range(4)]
    gen = LLMGenerator(llm.ChatClient(), "test-llm", max_answer_tokens=200)
    out = gen.answer("What is in the chunks?", long_hits)
    assert out["failed"] is False
    req = [r for r in openai_server.requests if r["kind"] == "generate"][-1]
    sent = llm.approx_tokens(SYSTEM_PROMPT) + llm.approx_tokens(req["user"])
    assert sent + req["max_tokens"] <= 1000
    assert "chunk0 " in req["user"] and "chunk3" not in req["user"]
    assert out["sources"] == [h.source for h in long_hits if f"chunk{h.id} " in req["user"]]


def test_offline_means_extractive(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert isinstance(make_generator(), ExtractiveGenerator)
    assert make_generator("gpt-4o").name == "extractive"


def test_online_without_a_model_is_a_clear_error(openai_server, monkeypatch):
    monkeypatch.delenv("RAG_LLM_MODEL")
    with pytest.raises(ValueError, match="RAG_LLM_MODEL"):
        make_generator()
