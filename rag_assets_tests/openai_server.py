"""A small real OpenAI-compatible HTTP server for tests: POST /v1/chat/completions, GET /v1/models.

Deterministic: an answer is the start of the context it was given; a judgement scores the share of the
reference's words that the answer contains. Faults are scripted per request (429 with Retry-After, 500,
a response slower than the client timeout, unparseable judge output, a raw non-JSON body such as an HTML
page with status 200) and every request is recorded.
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
            user = next((m["content"] for m in messages if m["role"] == "user"), "")
            kind = {SYSTEM_PROMPT: "generate", JUDGE_SYSTEM_PROMPT: "judge"}.get(system, "other")
            fault = server.take_fault(kind, user)
            with server.lock:
                server.requests.append({"kind": kind, "model": body.get("model"), "user": user, "system": system,
                                        "fault": fault.status if fault else None,
                                        "max_tokens": body.get("max_tokens"),
                                        "temperature": body.get("temperature")})
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
            elif kind == "judge":
                score, why = judgement_for(user)
                text = f"{score}\n{why}"
            else:
                text = answer_for(user, server.answer_words)
                if server.vary_answers:
                    text += f" (answer {len(server.requests)})"
            prompt_tokens = sum(len(m["content"].split()) for m in messages)
            self._send(200, {
                "id": "cmpl-test", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(text.split()),
                          "total_tokens": prompt_tokens + len(text.split())},
            })

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
