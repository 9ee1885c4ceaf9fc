"""One OpenAI-compatible chat client (vLLM, OpenAI, ...): retries with backoff, context lengths, token estimates.

Configuration: OPENAI_BASE_URL (unset = offline), OPENAI_API_KEY, RAG_LLM_TIMEOUT_S, RAG_LLM_MAX_RETRIES,
RAG_LLM_BACKOFF_S, RAG_LLM_MAX_BACKOFF_S, RAG_LLM_CONTEXT_LENGTH.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

# Context windows in tokens, matched by the longest prefix of the lower-cased name without its org
# ("meta-llama/Llama-2-70b-chat-hf" -> "llama-2-70b-chat-hf"). The seed assumed 4096 for all of them.
CONTEXT_LENGTHS = {
    "gpt-4o": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-4-turbo": 128_000,
    "gpt-4-1106": 128_000,
    "gpt-4-0125": 128_000,
    "gpt-4-32k": 32_768,
    "gpt-4": 8_192,
    "gpt-3.5-turbo": 16_385,
    "gpt-3.5-turbo-instruct": 4_096,
    "llama-2": 4_096,
    "codellama": 16_384,
    "meta-llama-3": 8_192,
    "meta-llama-3.1": 131_072,
    "llama-3.1": 131_072,
    "llama-3.2": 131_072,
    "llama-3.3": 131_072,
    "mistral": 32_768,
    "mixtral": 32_768,
    "gemma": 8_192,
    "qwen2": 32_768,
}
DEFAULT_CONTEXT_LENGTH = 4_096  # the smallest common window: safe for an unknown model
CHARS_PER_TOKEN = 3  # conservative: English is ~4 chars/token, code and URLs fewer


class LLMError(RuntimeError):
    """A chat call that failed after its retries (or a request the server refuses for good)."""


class LLMTimeout(LLMError):
    """The LLM sent nothing for RAG_LLM_TIMEOUT_S (a server answers 504)."""


@dataclass
class StreamUsage:
    """Token counts of a streamed completion, filled in as the stream runs (the server's, else counted)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class ChatResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    attempts: int


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 4
    backoff_s: float = 1.0  # doubles per attempt
    max_backoff_s: float = 30.0
    timeout_s: float = 60.0

    @classmethod
    def from_env(cls) -> "RetryPolicy":
        return cls(
            max_retries=int(_env_float("RAG_LLM_MAX_RETRIES", cls.max_retries)),
            backoff_s=_env_float("RAG_LLM_BACKOFF_S", cls.backoff_s),
            max_backoff_s=_env_float("RAG_LLM_MAX_BACKOFF_S", cls.max_backoff_s),
            timeout_s=_env_float("RAG_LLM_TIMEOUT_S", cls.timeout_s),
        )

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff; a server's Retry-After wins when longer; never above max_backoff_s."""
        wait = self.backoff_s * 2**attempt
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.max_backoff_s)


class ChatClient:
    """Chat completions through the `openai` client, whose own retries are off so that ours apply."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, policy: RetryPolicy | None = None):
        import openai

        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not self.base_url:
            raise ValueError("OPENAI_BASE_URL is not set: no LLM endpoint to call")
        self.policy = policy or RetryPolicy.from_env()
        # vLLM accepts any key; the client refuses to start without one.
        key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.client = openai.OpenAI(base_url=self.base_url, api_key=key, timeout=self.policy.timeout_s, max_retries=0)
        self._key = key
        self._async_client = None  # created on first stream, inside the event loop that uses it
        self._context_lengths: dict[str, int] = {}
        self._lock = threading.Lock()

    def chat(self, model: str, messages: list[dict], max_tokens: int | None = None) -> ChatResult:
        """One completion at temperature 0, retried on 408/409/429/5xx, timeouts and dropped connections."""
        import openai

        from rag_assets.lib.retrieve.retriever import clean_query

        # Text with lone surrogates (undecodable bytes from argv or JSON escapes) cannot be sent as UTF-8 JSON.
        messages = [m | {"content": clean_query(m["content"])} if isinstance(m.get("content"), str) else m
                    for m in messages]
        start = time.perf_counter()
        for attempt in range(self.policy.max_retries + 1):
            try:
                kwargs = {"max_tokens": max_tokens} if max_tokens else {}
                resp = self.client.chat.completions.create(model=model, messages=messages, temperature=0, **kwargs)
            except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                error, retry_after = f"{type(exc).__name__}: {exc}", None
            except openai.APIStatusError as exc:
                if exc.status_code not in (408, 409, 429) and exc.status_code < 500:
                    raise LLMError(f"{model}: HTTP {exc.status_code}: {exc.message}") from exc
                error, retry_after = f"HTTP {exc.status_code}: {exc.message}", _retry_after(exc.response)
            except openai.APIError as exc:  # a body the client could not read as a response (not retried)
                raise LLMError(f"{model}: unreadable response from {self.base_url}: {exc}") from exc
            else:
                text, usage = _completion(model, resp, self.base_url)
                return ChatResult(
                    text=text,
                    prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                    completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
                    latency_s=time.perf_counter() - start,
                    attempts=attempt + 1,
                )
            if attempt == self.policy.max_retries:
                raise LLMError(f"{model}: failed after {attempt + 1} attempts: {error}")
            wait = self.policy.delay(attempt, retry_after)
            log.warning("%s: %s; retry %d in %.2fs", model, error, attempt + 1, wait)
            time.sleep(wait)
        raise AssertionError("unreachable")

    async def astream(self, model: str, messages: list[dict], usage: StreamUsage,
                      max_tokens: int | None = None):
        """Yield the completion's text deltas (temperature 0) as the LLM produces them.

        Retried like `chat` only before the first delta; a timeout is not retried (someone is waiting) and
        raises LLMTimeout. Closing the generator (a client that went away) closes the HTTP stream to the
        LLM, which stops generating.
        """
        import asyncio

        import openai

        if self._async_client is None:
            self._async_client = openai.AsyncOpenAI(base_url=self.base_url, api_key=self._key,
                                                    timeout=self.policy.timeout_s, max_retries=0)
        kwargs = {"max_tokens": max_tokens} if max_tokens else {}
        for attempt in range(self.policy.max_retries + 1):
            try:
                stream = await self._async_client.chat.completions.create(
                    model=model, messages=messages, temperature=0, stream=True,
                    stream_options={"include_usage": True}, **kwargs)
                break
            except openai.APITimeoutError as exc:
                raise LLMTimeout(f"{model}: no response within {self.policy.timeout_s:g}s") from exc
            except openai.APIConnectionError as exc:
                error, retry_after = f"{type(exc).__name__}: {exc}", None
            except openai.APIStatusError as exc:
                if exc.status_code not in (408, 409, 429) and exc.status_code < 500:
                    raise LLMError(f"{model}: HTTP {exc.status_code}: {exc.message}") from exc
                error, retry_after = f"HTTP {exc.status_code}: {exc.message}", _retry_after(exc.response)
            if attempt == self.policy.max_retries:
                raise LLMError(f"{model}: failed after {attempt + 1} attempts: {error}")
            await asyncio.sleep(self.policy.delay(attempt, retry_after))
        try:
            async for chunk in stream:
                if chunk.usage is not None:
                    usage.prompt_tokens = int(chunk.usage.prompt_tokens or 0)
                    usage.completion_tokens = int(chunk.usage.completion_tokens or 0)
                text = chunk.choices[0].delta.content if chunk.choices else None
                if text:
                    if chunk.usage is None:
                        usage.completion_tokens += 1  # one delta ~ one token, until the server says
                    yield text
        except Exception as exc:  # mid-stream the transport's own errors surface, not openai's
            if "timeout" in type(exc).__name__.lower():
                raise LLMTimeout(f"{model}: the stream stalled for {self.policy.timeout_s:g}s") from exc
            raise LLMError(f"{model}: the stream broke: {type(exc).__name__}: {exc}") from exc
        finally:
            import anyio

            with anyio.CancelScope(shield=True):  # runs even when the request was cancelled
                await stream.close()

    def context_length(self, model: str) -> int:
        """RAG_LLM_CONTEXT_LENGTH, else the server's max_model_len (vLLM), else the known table, else 4096."""
        override = os.environ.get("RAG_LLM_CONTEXT_LENGTH")
        if override:
            return int(override)
        with self._lock:
            if model not in self._context_lengths:
                self._context_lengths[model] = self._served_context_length(model) or known_context_length(model)
            return self._context_lengths[model]

    def _served_context_length(self, model: str) -> int | None:
        """vLLM's /v1/models names the window it actually serves, which may be below the model's own."""
        import openai

        try:
            for m in self.client.models.list():
                if m.id == model:
                    served = (m.model_extra or {}).get("max_model_len")
                    return int(served) if served else None
        except (openai.OpenAIError, ValueError, TypeError) as exc:
            log.info("could not list models at %s: %s", self.base_url, exc)
        return None


def _completion(model: str, resp, base_url: str):
    """(text, usage) of a chat completion. A 200 whose body is not a completion (an HTML login or error page
    from a proxy, a JSON object without choices) is an LLMError, not an AttributeError deep in a run."""
    if isinstance(resp, (str, bytes)) or not hasattr(resp, "choices"):
        body = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)
        snippet = " ".join(body.split())[:120]
        raise LLMError(f"{model}: {base_url} answered with a body that is not JSON ({snippet!r}): "
                       "is OPENAI_BASE_URL the API's URL (ending in /v1)?")
    choices = resp.choices
    if not isinstance(choices, list) or not choices:
        raise LLMError(f"{model}: {base_url} answered without any choice (not a chat completion)")
    message = getattr(choices[0], "message", None)
    content = getattr(message, "content", None)
    if content is not None and not isinstance(content, str):
        raise LLMError(f"{model}: {base_url} answered with a non-text message content")
    return content or "", getattr(resp, "usage", None)


def known_context_length(model: str) -> int:
    name = model.lower().rsplit("/", 1)[-1]
    matches = [p for p in CONTEXT_LENGTHS if name.startswith(p)]
    if not matches:
        log.warning("unknown context length for %s: assuming %d (set RAG_LLM_CONTEXT_LENGTH)", model,
                    DEFAULT_CONTEXT_LENGTH)
        return DEFAULT_CONTEXT_LENGTH
    return CONTEXT_LENGTHS[max(matches, key=len)]


def approx_tokens(text: str) -> int:
    """A token count that errs high, so trimmed prompts fit without a tokenizer download."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def trim_to_tokens(text: str, max_tokens: int) -> str:
    return text[: max(0, max_tokens) * CHARS_PER_TOKEN]


def _retry_after(response) -> float | None:
    raw = response.headers.get("retry-after") if response is not None else None
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
