"""A small real OpenAI-compatible HTTP server for tests: POST /v1/chat/completions, GET /v1/models.

Deterministic: an answer is the start of the context it was given; a judgement scores the share of the
reference's words that the answer contains. Faults are scripted per request (429 with Retry-After, 500,
a response slower than the client timeout, unparseable judge output, a raw non-JSON body such as an HTML
page with status 200) and every request is recorded.
`stream: true` requests get SSE chunks, one word each; `slow_stream(delay_s, words)` makes them long and
slow, and `tokens_served` counts the chunks actually written (a client that goes away stops the count).
"""

from __future__ import annotations

import ast
import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rag_assets.lib.generate.answer import SYSTEM_PROMPT
from rag_assets.lib.evaluate.judge import JUDGE_SYSTEM_PROMPT
from rag_assets.lib.serve.chat import CONDENSE_SYSTEM_PROMPT

_WORD = re.compile(r"[a-z0-9_]+")


@dataclass
class Fault:
    kind: str | None  # "generate", "judge" or None for any chat request
    match: str | None  # a substring of the user message, or None for any
    times: int
    status: int = 200
    retry_after: str | None = None
    delay_s: float = 0.0
    text: str | None = None  # replaces the completion (e.g. an unparseable judgement)
    body: str | None = None  # replaces the whole HTTP body (e.g. a proxy's HTML page answered with 200)
    content_type: str = "text/html; charset=utf-8"  # of `body`


def answer_for(user: str, answer_words: int = 30) -> str:
    context = user.split("context:", 1)[1].strip() if "context:" in user else ""
    words = context.split()
    return "From the docs: " + " ".join(words[:answer_words]) if words else "I don't know."


def condensed_for(user: str) -> str:
    """A deterministic 'rewrite': the first user turn of the conversation, then the last question."""
    firsts = [line[len("user: "):] for line in user.splitlines() if line.startswith("user: ")]
    last = user.rsplit("last question:", 1)[-1].strip()
    return f"{firsts[0] if firsts else ''} {last}".strip()


def judgement_for(user: str) -> tuple[int, str]:
    payload = ast.literal_eval(user)
    answer = set(_WORD.findall(payload["generated_answer"].lower()))
    reference = set(_WORD.findall(payload["reference_answer"].lower()))
    overlap = len(answer & reference) / max(1, len(reference))
    return 1 + min(4, int(8 * overlap)), f"The answer covers {overlap:.0%} of the reference's words."


class OpenAICompatibleServer:
    def __init__(self, models=("test-llm", "test-judge"), max_model_len: int = 4096, vary_answers: bool = False,
                 answer_words: int = 30):
        self.models, self.max_model_len = list(models), max_model_len
        # Like a real server at temperature 0 under concurrent load (vLLM batching): the same prompt does not
        # always get the same answer. Each answer then ends with its request number.
        self.vary_answers = vary_answers
        self.answer_words = answer_words  # a weaker server quotes less of its context
        self.requests: list[dict] = []
        self.faults: list[Fault] = []
        self.lock, self.stop = threading.Lock(), threading.Event()
        self.stream_delay_s, self.stream_words = 0.0, 0  # slow streaming mode (0 words: the plain answer)
        self.tokens_served = 0  # streamed chunks written to a client that was still there
        self.streams_ended: list[str] = []  # per streamed request: "complete" or "client gone"
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def add_fault(self, kind=None, match=None, times=1, **how) -> None:
        with self.lock:
            self.faults.append(Fault(kind, match, times, **how))

    def count(self, kind: str | None = None, match: str | None = None) -> int:
        with self.lock:
            return sum(1 for r in self.requests if (kind is None or r["kind"] == kind)
                       and (match is None or match in r["user"]))

    def take_fault(self, kind: str, user: str) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if f.times > 0 and f.kind in (None, kind) and (f.match is None or f.match in user):
                    f.times -= 1
                    return f
        return None

    def slow_stream(self, delay_s: float, words: int) -> None:
        """Stream `words` chunks, `delay_s` apart, for every streamed request from now on."""
        with self.lock:
            self.stream_delay_s, self.stream_words = delay_s, words

    def wait_stream_ended(self, n: int = 1, timeout_s: float = 30.0) -> list[str]:
        """Block until `n` streamed responses have ended (fully or by the client leaving)."""
        deadline = threading.Event()
        for _ in range(int(timeout_s / 0.02)):
            with self.lock:
                if len(self.streams_ended) >= n:
                    return list(self.streams_ended)
            deadline.wait(0.02)
        raise TimeoutError(f"{n} streams did not end within {timeout_s}s")

    def close(self) -> None:
        self.stop.set()  # releases slow responses
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def _handler(server: OpenAICompatibleServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet test output
            pass

        def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def _send_raw(self, status: int, body: str, content_type: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path.rstrip("/") != "/v1/models":
                return self._send(404, {"error": {"message": "not found"}})
            with server.lock:
                server.requests.append({"kind": "models", "model": None, "user": ""})
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "tests",
                     "max_model_len": server.max_model_len} for m in server.models]
            self._send(200, {"object": "list", "data": data})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if self.path.rstrip("/") != "/v1/chat/completions":
                return self._send(404, {"error": {"message": "not found"}})
            messages = body.get("messages") or []
            system = next((m["content"] for m in messages if m["role"] == "system"), "")
            # The last user message: chat requests carry earlier turns before the one with the context.
            user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
            kind = {SYSTEM_PROMPT: "generate", JUDGE_SYSTEM_PROMPT: "judge",
                    CONDENSE_SYSTEM_PROMPT: "condense"}.get(system, "other")
            fault = server.take_fault(kind, user)
            with server.lock:
                server.requests.append({"kind": kind, "model": body.get("model"), "user": user, "system": system,
                                        "fault": fault.status if fault else None,
                                        "max_tokens": body.get("max_tokens"),
                                        "temperature": body.get("temperature"), "messages": messages,
                                        "stream": bool(body.get("stream"))})
            if body.get("model") not in server.models:
                return self._send(404, {"error": {"message": f"model {body.get('model')} not found"}})
            if fault and fault.delay_s:
                server.stop.wait(fault.delay_s)
            if fault and fault.body is not None:
                return self._send_raw(fault.status, fault.body, fault.content_type)
            if fault and fault.status != 200:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                return self._send(fault.status, {"error": {"message": f"scripted {fault.status}"}}, headers)
            if fault and fault.text is not None:
                text = fault.text
            elif kind == "condense":
                text = condensed_for(user)
            elif kind == "judge":
                score, why = judgement_for(user)
                text = f"{score}\n{why}"
            else:
                text = answer_for(user, server.answer_words)
                if server.vary_answers:
                    text += f" (answer {len(server.requests)})"
            prompt_tokens = sum(len(m["content"].split()) for m in messages)
            if body.get("stream"):
                return self._stream(body, text, prompt_tokens)
            self._send(200, {
                "id": "cmpl-test", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(text.split()),
                          "total_tokens": prompt_tokens + len(text.split())},
            })

        def _stream(self, body: dict, text: str, prompt_tokens: int) -> None:
            with server.lock:
                delay, n = server.stream_delay_s, server.stream_words
            words = text.split()
            if n:
                words = [words[i % len(words)] for i in range(n)]
            base = {"id": "cmpl-test", "object": "chat.completion.chunk", "created": 0, "model": body["model"]}

            def event(payload: dict) -> None:
                self.wfile.write(b"data: " + json.dumps({**base, **payload}).encode() + b"\n\n")
                self.wfile.flush()

            outcome = "complete"
            try:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for i, word in enumerate(words):
                    if delay and server.stop.wait(delay):
                        break
                    event({"choices": [{"index": 0, "delta": {"content": word if i == 0 else " " + word},
                                        "finish_reason": None}]})
                    with server.lock:
                        server.tokens_served += 1
                event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                if (body.get("stream_options") or {}).get("include_usage"):
                    event({"choices": [], "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(words),
                                                    "total_tokens": prompt_tokens + len(words)}})
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                outcome = "client gone"
            finally:
                self.close_connection = True
                with server.lock:
                    server.streams_ended.append(outcome)

    return Handler


@pytest.fixture
def openai_server(monkeypatch):
    """The server, with OPENAI_* and RAG_LLM_* set to reach it with short backoff and timeout."""
    server = OpenAICompatibleServer()
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("RAG_LLM_MODEL", "test-llm")
    monkeypatch.setenv("RAG_JUDGE_MODEL", "test-judge")
    monkeypatch.setenv("RAG_LLM_BACKOFF_S", "0.01")
    monkeypatch.setenv("RAG_LLM_MAX_BACKOFF_S", "0.2")
    monkeypatch.setenv("RAG_LLM_TIMEOUT_S", "1.0")
    monkeypatch.setenv("RAG_LLM_MAX_RETRIES", "3")
    monkeypatch.delenv("RAG_LLM_CONTEXT_LENGTH", raising=False)
    yield server
    server.close()


@pytest.fixture
def two_llm_servers(openai_server, monkeypatch):
    """(open, strong): the open LLM (and judge) at `openai_server`, a second server on another port as the
    strong LLM (model "test-strong-llm", its own key), each recording its own calls. The open server quotes
    fewer context words, so the strong one's answers score higher."""
    strong = OpenAICompatibleServer(models=("test-strong-llm",))
    openai_server.answer_words = 4
    monkeypatch.setenv("RAG_STRONG_LLM_MODEL", "test-strong-llm")
    monkeypatch.setenv("RAG_STRONG_LLM_BASE_URL", strong.base_url)
    monkeypatch.setenv("RAG_STRONG_LLM_API_KEY", "strong-test-key")
    yield openai_server, strong
    strong.close()
