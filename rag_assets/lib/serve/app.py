"""The HTTP API: /query, /stream (SSE), OpenAI-compatible /v1/chat/completions and /v1/models, /feedback,
/healthz, /readyz. `create_app()` builds it for uvicorn (`rag-assets serve`) and for Ray Serve alike.
"""

from __future__ import annotations

import json
import logging
import os
import time
from contextlib import aclosing, asynccontextmanager
from typing import Literal

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, StrictInt
from sse_starlette.sse import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from rag_assets.lib.generate.llm import LLMError, LLMTimeout
from rag_assets.lib.serve.guard import Guard, error_response
from rag_assets.lib.serve.query_log import QueryLog, UnknownTrace
from rag_assets.lib.serve.service import (ENV, SERVED_MODEL, GenerationFailed, RagService, Turn, UnknownModel,
                                          available_llms)
from rag_assets.lib.settings import Settings

log = logging.getLogger(__name__)
Mode = Literal["semantic", "lexical", "hybrid"]


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.param = status, message, kind, param

    def response(self):
        return error_response(self.status, self.message, self.kind, self.param)

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.status}}


class QueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str
    k: int | None = None
    mode: Mode | None = None
    llm: str | None = None  # an answerer from /v1/models; default: the promoted production one


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: keep the text ones
            return " ".join(p.get("text", "") for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # temperature, max_tokens, ... of OpenAI clients: not ours to set
    model: str = SERVED_MODEL
    messages: list[ChatMessage]
    stream: bool = False
    k: int | None = None  # extensions (extra_body): retrieval depth and mode
    mode: Mode | None = None


class Correction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source_url: str | None = None
    tag: str | None = None


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    trace_id: str
    rating: StrictInt
    comment: str | None = None
    correction: Correction | None = None
    visited_sources: list[str] | None = None


def api_token() -> str | None:
    return os.environ.get("RAG_API_TOKEN") or None


def create_app(settings: Settings | None = None, token: str | None = ENV, warm_up: bool = True,
               llm_base_url: str | None = ENV, query_log: QueryLog | None = None) -> FastAPI:
    """token: the bearer token every non-health route needs (default RAG_API_TOKEN; None or "" = no auth).
    llm_base_url: the OpenAI-compatible LLM endpoint (default OPENAI_BASE_URL; None or "" = offline answers)."""
    settings = settings or Settings.from_env()
    token = api_token() if token is ENV else token
    service = RagService(settings, query_log, llm_base_url=llm_base_url)  # log default: <data dir>/serve/

    @asynccontextmanager
    async def lifespan(app):
        if warm_up:
            await anyio.to_thread.run_sync(service.warm_up)
        yield
        service.query_log.close()

    app = FastAPI(title="rag-assets", version="1", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.service = service
    app.add_middleware(Guard, token=token, max_body_bytes=settings.serve_max_body_bytes,
                       max_concurrency=settings.serve_max_concurrency)
    origins = [o.strip() for o in settings.serve_cors_origins.split(",") if o.strip()]
    if origins:  # outermost: a browser's preflight carries no token
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])
    _add_error_handlers(app)
    _add_routes(app, service, settings)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request, exc: ApiError):
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "body"
        return error_response(422, f"{where}: {first.get('msg', 'invalid request')}", "invalid_request_error", where)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc: StarletteHTTPException):
        return error_response(exc.status_code, str(exc.detail), "invalid_request_error")

    @app.exception_handler(Exception)
    async def unexpected(request, exc: Exception):
        log.exception("unexpected error on %s", request.url.path)
        return error_response(500, f"internal error: {type(exc).__name__}", "server_error")


def _check_text(text: str, limit: int, param: str) -> None:
    if not text.strip():
        raise ApiError(422, f"{param} is empty", param=param)
    if len(text) > limit:
        raise ApiError(422, f"{param} is {len(text)} characters, over the limit of {limit} "
                            "(RAG_SERVE_MAX_QUESTION_CHARS)", param=param)


def _check_k(k: int | None, limit: int) -> None:
    if k is not None and not 1 <= k <= limit:
        raise ApiError(422, f"k must be between 1 and {limit} (RAG_SERVE_MAX_K), got {k}", param="k")


def _add_routes(app: FastAPI, service: RagService, settings: Settings) -> None:
    def start(endpoint: str, question: str, mode, k, history=None, override=None) -> Turn:
        try:
            return service.start(endpoint, question, mode, k, history, override)
        except UnknownModel as exc:
            raise ApiError(404, str(exc), param="model") from None

    def failed(turn: Turn, exc: BaseException) -> ApiError:
        """Log the failed turn and say what the client gets."""
        if isinstance(exc, LLMTimeout):
            status, error = "timeout", ApiError(504, f"the LLM timed out: {exc}", "timeout")
        elif isinstance(exc, (LLMError, GenerationFailed)):
            status, error = "error", ApiError(502, f"no answer: {exc}", "llm_error")
        elif isinstance(exc, FileNotFoundError):
            status, error = "error", ApiError(503, str(exc), "index_unavailable")
        else:
            log.error("turn %s failed", turn.trace_id, exc_info=exc)
            status, error = "error", ApiError(500, f"internal error: {type(exc).__name__}", "server_error")
        service.finish(turn, status, f"{type(exc).__name__}: {exc}")
        return error

    async def prepare(turn: Turn) -> None:
        try:
            await anyio.to_thread.run_sync(service.prepare, turn)
        except Exception as exc:
            raise failed(turn, exc) from None

    async def answer_all(turn: Turn) -> None:
        await prepare(turn)
        try:
            async for _ in service.tokens(turn):
                pass
        except Exception as exc:
            raise failed(turn, exc) from None
        service.finish(turn)

    async def stream_pieces(turn: Turn, on_error):
        """The turn's pieces; logs the outcome: ok, a failure (then `on_error`'s event), or cancelled."""
        try:
            async for piece in service.tokens(turn):
                yield piece
        except Exception as exc:
            yield on_error(failed(turn, exc))
            return
        except BaseException:  # the client went away: the LLM stream is closed on the way out
            service.finish(turn, "cancelled", "the client disconnected")
            raise
        service.finish(turn)

    def index_info(turn: Turn) -> dict:
        return {"version": turn.index.manifest.build_id, "model": turn.index.manifest.model}

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz():
        try:
            loaded = await anyio.to_thread.run_sync(service.holder.current)
        except Exception as exc:
            return error_response(503, f"not ready: {exc}", "index_unavailable")
        return {"status": "ready", "index": loaded.identity()}

    @app.post("/query")
    async def query(req: QueryRequest):
        _check_text(req.question, settings.serve_max_question_chars, "question")
        _check_k(req.k, settings.serve_max_k)
        turn = start("/query", req.question, req.mode, req.k, override=req.llm)
        await answer_all(turn)
        return {"question": turn.question, "answer": turn.answer, "sources": turn.sources(),
                "llm": turn.choice.llm, "trace_id": turn.trace_id, "index": index_info(turn),
                "latency_ms": turn.logged["latency_ms"], "standalone_query": turn.standalone_query,
                "route": turn.choice.route, "router_probability": turn.choice.router_probability}

    @app.post("/stream")
    async def stream(req: QueryRequest):
        _check_text(req.question, settings.serve_max_question_chars, "question")
        _check_k(req.k, settings.serve_max_k)
        turn = start("/stream", req.question, req.mode, req.k, override=req.llm)
        await prepare(turn)  # retrieval errors are still plain HTTP errors

        async def events():
            yield {"event": "sources", "data": json.dumps({
                "trace_id": turn.trace_id, "sources": turn.sources(), "llm": turn.choice.llm,
                "index": index_info(turn), "route": turn.choice.route,
                "router_probability": turn.choice.router_probability})}
            on_error = lambda err: {"event": "error", "data": json.dumps(err.body())}  # noqa: E731
            async with aclosing(stream_pieces(turn, on_error)) as pieces:  # a client gone: closed (and logged) now
                async for item in pieces:
                    if isinstance(item, dict):
                        yield item
                        return
                    yield {"event": "token", "data": json.dumps({"text": item})}
            yield {"event": "done", "data": json.dumps({
                "trace_id": turn.trace_id, "prompt_tokens": turn.usage.prompt_tokens,
                "completion_tokens": turn.usage.completion_tokens, "latency_ms": turn.logged["latency_ms"]})}

        return EventSourceResponse(events())

    @app.get("/v1/models")
    async def models():
        ids = [SERVED_MODEL, *available_llms(settings, service.llm_base_url)]
        return {"object": "list", "data": [{"id": i, "object": "model", "created": 0, "owned_by": "rag-assets"}
                                           for i in ids]}

    @app.post("/v1/chat/completions")
    async def chat_completions(req: ChatRequest):
        if len(req.messages) > settings.serve_max_messages:
            raise ApiError(422, f"{len(req.messages)} messages, over the limit of {settings.serve_max_messages} "
                                "(RAG_SERVE_MAX_MESSAGES)", param="messages")
        if not req.messages or req.messages[-1].role != "user":
            raise ApiError(422, "the last message must be the user's question", param="messages")
        for i, m in enumerate(req.messages):
            if len(m.text()) > settings.serve_max_question_chars:
                _check_text(m.text(), settings.serve_max_question_chars, f"messages.{i}.content")
        question = req.messages[-1].text()
        _check_text(question, settings.serve_max_question_chars, f"messages.{len(req.messages) - 1}.content")
        _check_k(req.k, settings.serve_max_k)
        history = [{"role": m.role, "content": m.text()} for m in req.messages[:-1]]
        turn = start("/v1/chat/completions", question, req.mode, req.k, history, req.model)
        created, model = int(time.time()), req.model

        def chunk(delta: dict, finish: str | None = None, **extra) -> dict:
            return {"data": json.dumps({
                "id": f"chatcmpl-{turn.trace_id}", "object": "chat.completion.chunk", "created": created,
                "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})}

        if not req.stream:
            await answer_all(turn)
            return {
                "id": f"chatcmpl-{turn.trace_id}", "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "finish_reason": "stop", "message": {
                    "role": "assistant", "content": turn.answer,
                    "annotations": citations(turn.sources(), len(turn.answer))}}],
                "usage": usage(turn), "sources": turn.sources(), "trace_id": turn.trace_id,
                "index": index_info(turn), "llm": turn.choice.llm, "standalone_query": turn.standalone_query,
                "route": turn.choice.route, "router_probability": turn.choice.router_probability,
            }
        await prepare(turn)

        async def events():
            # Sources first, before any token: on the first chunk's delta and at its top level.
            yield chunk({"role": "assistant", "content": "", "annotations": citations(turn.sources(), 0)},
                        sources=turn.sources(), trace_id=turn.trace_id, index=index_info(turn), llm=turn.choice.llm,
                        standalone_query=turn.standalone_query)
            async with aclosing(stream_pieces(turn, lambda err: {"data": json.dumps(err.body())})) as pieces:
                async for item in pieces:
                    if isinstance(item, dict):
                        yield item
                        return
                    yield chunk({"content": item})
            yield chunk({}, "stop", usage=usage(turn), trace_id=turn.trace_id)
            yield {"data": "[DONE]"}

        return EventSourceResponse(events())

    @app.post("/feedback")
    async def feedback(req: FeedbackRequest):
        correction = req.correction.model_dump(exclude_none=True) if req.correction else None
        try:
            feedback_id = await anyio.to_thread.run_sync(
                lambda: service.query_log.add_feedback(req.trace_id, req.rating, req.comment, correction,
                                                       req.visited_sources))
        except UnknownTrace:
            raise ApiError(404, f"unknown trace_id {req.trace_id!r}", param="trace_id") from None
        except ValueError as exc:
            raise ApiError(422, str(exc)) from None
        return {"trace_id": req.trace_id, "feedback_id": feedback_id}


def citations(sources: list[dict], end: int) -> list[dict]:
    """OpenAI-style `url_citation` annotations, one per page, best first."""
    seen, out = set(), []
    for s in sources:
        if s["url"] not in seen:
            seen.add(s["url"])
            out.append({"type": "url_citation", "url_citation": {
                "url": s["url"], "title": s["title"], "start_index": 0, "end_index": end}})
    return out


def usage(turn: Turn) -> dict:
    p, c = turn.usage.prompt_tokens, turn.usage.completion_tokens
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


