"""One answered turn, whatever the endpoint: retrieve, choose the generator, stream the answer, log it.

Every endpoint (/query, /stream, /v1/chat/completions) goes through `RagService`: `start` a turn, `prepare`
it (retrieval and the offline answer: blocking, run in a worker thread), iterate `tokens`, then `finish`,
which writes the query log row, also for failures (status error | timeout | cancelled).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass, field

from rag_assets.lib.generate.answer import ExtractiveGenerator, LLMGenerator
from rag_assets.lib.generate.llm import ChatClient, RetryPolicy, StreamUsage
from rag_assets.lib.retrieve.retriever import MODES, Hit
from rag_assets.lib.route.router import OPEN, STRONG, Router, load_router, strong_api_key
from rag_assets.lib.serve import chat
from rag_assets.lib.serve.index_holder import IndexHolder, LoadedIndex
from rag_assets.lib.serve.query_log import QueryLog
from rag_assets.lib.settings import Settings, llm_endpoint

log = logging.getLogger(__name__)

SERVED_MODEL = "rag-assets"  # the /v1/models id that means "the promoted production configuration"
EXTRACTIVE = ExtractiveGenerator.name


class GenerationFailed(RuntimeError):
    """The answerer produced no answer (the LLM's own errors stay LLMError / LLMTimeout)."""


class UnknownModel(LookupError):
    pass


@dataclass(frozen=True)
class Choice:
    """Which answerer serves a request. `route` / `router_probability` are the open-vs-strong router's (issue 13)."""

    llm: str
    route: str = "none"
    router_probability: float | None = None


def available_llms(settings: Settings, llm_base_url: str | None = None) -> list[str]:
    """The answerers a request may name: the offline one, the configured (open) LLM when an endpoint is set,
    and the strong LLM when routing is configured (issue 13)."""
    names = [EXTRACTIVE]
    if llm_base_url and settings.llm_model and settings.llm_model != EXTRACTIVE:
        names.append(settings.llm_model)
    if settings.strong_llm_model and settings.strong_llm_base_url and settings.strong_llm_model not in names:
        names.append(settings.strong_llm_model)
    return names


def choose_generator(settings: Settings, question: str, override: str | None = None,
                     llm_base_url: str | None = None, router: Router | None = None) -> Choice:
    """THE place that picks the answerer of a request: the request's choice when allowed, else production's,
    routed per question between the open and the strong LLM when a trained router and a strong LLM exist."""
    allowed = available_llms(settings, llm_base_url)
    if override and override != SERVED_MODEL:
        if override not in allowed:
            raise UnknownModel(f"model {override!r} is not served here: choose one of "
                               f"{', '.join([SERVED_MODEL, *allowed])}")
        return Choice(override, route=STRONG if override == settings.strong_llm_model else "none")
    open_llm = next((n for n in reversed(allowed) if n != settings.strong_llm_model), EXTRACTIVE)
    if router is None or not router.enabled:
        return Choice(open_llm)  # the configured LLM when there is one, else the offline answerer
    decision = router.route(question)
    if decision.route == STRONG:
        return Choice(settings.strong_llm_model, STRONG, decision.probability)
    return Choice(open_llm, OPEN, decision.probability)


@dataclass
class Turn:
    endpoint: str
    question: str  # the user's last message, as asked
    mode: str
    k: int
    history: list[dict]  # earlier chat messages (user/assistant), no retrieved context in them
    override: str | None = None
    trace_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: float = field(default_factory=time.perf_counter)
    standalone_query: str = ""
    index: LoadedIndex | None = None
    hits: list[Hit] = field(default_factory=list)
    choice: Choice | None = None
    offline_answer: str | None = None
    llm_messages: list[dict] | None = None
    usage: StreamUsage = field(default_factory=StreamUsage)
    parts: list[str] = field(default_factory=list)
    logged: dict | None = None

    @property
    def answer(self) -> str:
        return "".join(self.parts)

    def latency_ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 2)

    def sources(self) -> list[dict]:
        return [{"url": h.source, "title": self.index.title(h.id, h.source) if self.index else "",
                 "score": round(float(h.score), 6), "chunk_id": h.id} for h in self.hits]


ENV = object()  # "read OPENAI_BASE_URL from the environment"


class RagService:
    def __init__(self, settings: Settings, query_log: QueryLog | None = None, holder: IndexHolder | None = None,
                 llm_base_url: str | None = ENV):
        """llm_base_url: the OpenAI-compatible endpoint (default OPENAI_BASE_URL; None or "" = offline only).
        Taken once here, with the LLM retry policy, so a running server does not change with the environment."""
        self.settings = settings
        self.llm_base_url = llm_endpoint() if llm_base_url is ENV else llm_base_url
        self.llm_policy = RetryPolicy.from_env()
        self.query_log = query_log or QueryLog.for_data_dir(settings.data_dir)
        self.holder = holder or IndexHolder(settings.data_dir, settings.serve_reload_interval_s)
        self._generators: dict[str, object] = {}
        self._chat_client: ChatClient | None = None
        self.router = load_router(settings)  # routes everything to the open LLM unless trained and configured
        log.info("%s", self.router.status)

    # -- the turn -------------------------------------------------------------------------------------------
    def start(self, endpoint: str, question: str, mode: str | None = None, k: int | None = None,
              history: list[dict] | None = None, override: str | None = None) -> Turn:
        """Bounds are checked by the caller; the mode and k default to the promoted production ones."""
        mode = mode or self.settings.retrieval_mode
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        turn = Turn(endpoint, question, mode, k or self.settings.num_chunks,
                    [m for m in (history or []) if m["role"] in ("user", "assistant")], override)
        turn.choice = choose_generator(self.settings, question, override, self.llm_base_url, self.router)
        return turn

    def prepare(self, turn: Turn) -> None:
        """Blocking (run it in a worker thread): standalone query, retrieval, the LLM prompt. The sources are
        known after this; the answer comes from `tokens`."""
        turn.index = self.holder.current()
        turn.standalone_query = self.standalone_query(turn)
        turn.hits = turn.index.retriever.search(turn.standalone_query, turn.mode, turn.k)
        generator = self.generator(turn.choice.llm, turn.index)
        if isinstance(generator, LLMGenerator):
            turn.llm_messages, _ = generator.prompt(turn.question, turn.hits,
                                                    turn.history[-chat.MAX_HISTORY_MESSAGES:])

    def offline_answer(self, turn: Turn) -> str:
        """Blocking: the extractive answer of the standalone query from the turn's hits."""
        generator = self.generator(EXTRACTIVE, turn.index)
        out = generator.answer(turn.standalone_query, turn.hits)
        if out["failed"]:
            raise GenerationFailed(f"{generator.name}: {out['error']}")
        return out["answer"]

    async def tokens(self, turn: Turn):
        """The answer's pieces as they come: the LLM's deltas, or the offline answer word by word."""
        if turn.llm_messages is None:
            import anyio

            turn.offline_answer = await anyio.to_thread.run_sync(self.offline_answer, turn)
            for piece in re.findall(r"\S+\s*", turn.offline_answer):
                turn.parts.append(piece)
                turn.usage.completion_tokens += 1
                yield piece
            return
        generator = self._generators[turn.choice.llm]
        async for piece in generator.client.astream(generator.model, turn.llm_messages, turn.usage,
                                                    generator.max_answer_tokens):
            turn.parts.append(piece)
            yield piece
        if not turn.answer.strip():
            raise GenerationFailed(f"{generator.model}: empty answer")

    def finish(self, turn: Turn, status: str = "ok", error: str | None = None) -> dict:
        """Write the turn's query log row (once); returns it."""
        if turn.logged is not None:
            return turn.logged
        m = turn.index.manifest if turn.index else None
        row = {
            "trace_id": turn.trace_id, "question": turn.question, "standalone_query": turn.standalone_query or None,
            "mode": turn.mode, "k": turn.k, "chunk_ids": [h.id for h in turn.hits],
            "scores": [float(h.score) for h in turn.hits], "sources": [h.source for h in turn.hits],
            "index_version": m.build_id if m else None, "lancedb_version": m.lancedb_version if m else None,
            "embedding_model": m.model if m else None, "llm": turn.choice.llm if turn.choice else None,
            "route": turn.choice.route if turn.choice else None,
            "router_probability": turn.choice.router_probability if turn.choice else None,
            "prompt_tokens": turn.usage.prompt_tokens, "completion_tokens": turn.usage.completion_tokens,
            "latency_ms": turn.latency_ms(), "answer": turn.answer or None, "status": status, "error": error,
            "endpoint": turn.endpoint,
        }
        try:
            self.query_log.record(row)
        except Exception as exc:  # the log must never turn an answer into a failure
            log.error("query log write failed for %s: %s", turn.trace_id, exc)
        turn.logged = row
        return row

    # -- parts ----------------------------------------------------------------------------------------------
    def standalone_query(self, turn: Turn) -> str:
        users = [m["content"] for m in turn.history if m["role"] == "user"] + [turn.question]
        offline = chat.standalone_query(users)
        if (len(users) > 1 and self.settings.serve_condense == "llm"
                and turn.choice.llm != EXTRACTIVE and chat.is_follow_up(turn.question)):
            return chat.condense_with_llm(self.chat_client(), turn.choice.llm, turn.history, turn.question, offline)
        return offline

    def generator(self, name: str, index: LoadedIndex):
        """One generator per answerer per process (the LLM client keeps its connections)."""
        key = name if name != EXTRACTIVE else f"{EXTRACTIVE}:{index.manifest.model}"
        if key not in self._generators:
            if name == EXTRACTIVE:  # embeds with the index's model: one model in memory for both
                self._generators[key] = ExtractiveGenerator(index.manifest.model)
            elif name == self.settings.strong_llm_model:  # the strong role has its own endpoint and key
                client = ChatClient(self.settings.strong_llm_base_url, api_key=strong_api_key(), policy=self.llm_policy)
                self._generators[key] = LLMGenerator(client, name)
            else:
                self._generators[key] = LLMGenerator(self.chat_client(), name)
        return self._generators[key]

    def chat_client(self) -> ChatClient:
        if self._chat_client is None:
            self._chat_client = ChatClient(self.llm_base_url, policy=self.llm_policy)
        return self._chat_client

    def warm_up(self) -> LoadedIndex | None:
        """Open the index and load the query embedder before the first request; None while there is no index."""
        try:
            loaded = self.holder.current()
        except FileNotFoundError as exc:
            log.warning("%s", exc)
            return None
        loaded.retriever.search("warm up", "semantic", 1)
        return loaded
