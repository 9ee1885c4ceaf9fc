"""Answer a question from retrieved chunks: an OpenAI-compatible LLM (the seed's prompt) or, offline, extraction.

Both generators return the same dict: answer, llm, prompt_tokens, completion_tokens, latency_s, failed,
error, sources (the pages the answer drew on). A failed answer is None with its error, never "".
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Sequence

import numpy as np

from rag_assets.lib.ingest import embed
from rag_assets.lib.generate.llm import ChatClient, LLMError, approx_tokens, trim_to_tokens
from rag_assets.lib.retrieve.retriever import Hit, clean_query
from rag_assets.lib.settings import Settings, llm_endpoint

log = logging.getLogger(__name__)

SYSTEM_PROMPT = "Answer the query using the context provided. Be succinct."
# Prompt variants (the sweep's `prompt` key, RAG_PROMPT): a name here, or any other text used as the system prompt.
PROMPTS = {
    "default": SYSTEM_PROMPT,
    # The seed's variant for contexts that may not all be relevant.
    "ignore-irrelevant": SYSTEM_PROMPT + " Feel free to ignore any contexts that don't seem relevant to the query.",
}


def system_prompt(prompt: str | None = None) -> str:
    """The system prompt for a variant name (None: RAG_PROMPT or the promoted variant's, else the default)."""
    prompt = prompt or Settings.from_env().prompt
    return PROMPTS.get(prompt, prompt)
DEFAULT_MAX_ANSWER_TOKENS = 512
PROMPT_MARGIN_TOKENS = 32  # chat-template tokens around the messages


def user_content(question: str, context: str) -> str:
    return f"query: {question}\n\ncontext:\n{context}"


def result(answer: str | None, llm: str, started: float, sources: Sequence[str] = (), prompt_tokens: int = 0,
           completion_tokens: int = 0, error: str | None = None) -> dict:
    failed = error is not None or not (answer or "").strip()
    if failed and error is None:
        error = "empty answer"
    return {
        "answer": None if failed else answer.strip(),
        "llm": llm,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "latency_s": round(time.perf_counter() - started, 4),
        "failed": failed,
        "error": error,
        "sources": list(dict.fromkeys(sources)),
    }


ANSWER_CACHE_VERSION = "answer-v1"  # part of every answer-cache key


class LLMGenerator:
    """temperature 0, the seed's instruction, the context trimmed to the model's window in tokens.

    With a cache (the evaluation's sqlite), an answer to exactly the same prompt is reused, with the tokens and
    latency recorded when it was generated. LLM servers are not deterministic at temperature 0 (vLLM batches
    concurrent requests differently from run to run), so without it re-materializing unchanged responses gets
    slightly different answers, and every changed answer is judged again.
    """

    def __init__(self, client: ChatClient, model: str, max_answer_tokens: int | None = None, cache=None,
                 prompt: str | None = None):
        self.client = client
        self.cache = cache
        self.model = self.name = model
        self.system_prompt = system_prompt(prompt)
        self.max_answer_tokens = max_answer_tokens or int(
            os.environ.get("RAG_LLM_MAX_TOKENS") or DEFAULT_MAX_ANSWER_TOKENS
        )

    def context_budget(self, question: str) -> int:
        """Tokens left for context: the window minus the prompt around it and room for the answer."""
        frame = approx_tokens(self.system_prompt) + approx_tokens(user_content(question, ""))
        return self.client.context_length(self.model) - frame - self.max_answer_tokens - PROMPT_MARGIN_TOKENS

    def build_context(self, question: str, hits: Sequence[Hit], reserved: int = 0) -> tuple[str, list[Hit]]:
        """Chunks in rank order while they fit; the first that does not is cut at the budget."""
        budget, parts, used = self.context_budget(question) - reserved, [], []
        for hit in hits:
            need = approx_tokens(hit.text) + 1  # +1: the blank line between chunks
            if need > budget:
                if budget > 16:
                    parts.append(trim_to_tokens(hit.text, budget - 1))
                    used.append(hit)
                break
            parts.append(hit.text)
            used.append(hit)
            budget -= need
        return "\n\n".join(parts), used

    def prompt(self, question: str, hits: Sequence[Hit], history: Sequence[dict] = ()) -> tuple[list[dict], list[Hit]]:
        """The messages for one answer: the earlier chat turns as the client sent them (no retrieved context
        in them), then the question with this turn's context, trimmed to what the window leaves."""
        history = [{"role": m["role"], "content": m["content"]} for m in history]
        spent = sum(approx_tokens(m["content"]) + 4 for m in history)
        context, used = self.build_context(question, hits, reserved=spent)
        return ([{"role": "system", "content": SYSTEM_PROMPT}, *history,
                 {"role": "user", "content": user_content(question, context)}], used)

    def answer(self, question: str, hits: Sequence[Hit]) -> dict:
        started = time.perf_counter()
        question = clean_query(question)
        try:
            context, used = self.build_context(question, hits)
            messages = [
                {"role": "system", "content": self.system_prompt},
                {"role": "user", "content": user_content(question, context)},
            ]
            key = [ANSWER_CACHE_VERSION, messages, self.max_answer_tokens]
            kept = self._cached(key)
            if kept is not None:
                out = result(kept["text"], self.model, started, [h.source for h in used], kept["prompt_tokens"],
                             kept["completion_tokens"])
                return out | {"latency_s": kept["latency_s"], "answer_cached": True}
            res = self.client.chat(self.model, messages, max_tokens=self.max_answer_tokens)
        except LLMError as exc:
            return result(None, self.model, started, error=str(exc))
        out = result(res.text, self.model, started, [h.source for h in used], res.prompt_tokens,
                     res.completion_tokens)
        if self.cache is not None and not out["failed"]:  # failures are asked again next time
            self.cache.put_completion(self.model, key, json.dumps(
                {k: out[k] for k in ("prompt_tokens", "completion_tokens", "latency_s")} | {"text": res.text}))
        return out | {"answer_cached": False}

    def _cached(self, key: list) -> dict | None:
        raw = self.cache.get_completion(self.model, key) if self.cache is not None else None
        try:
            return json.loads(raw) if raw is not None else None
        except ValueError:
            return None


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(`])")
# Interactive sessions, shell prompts, indented or bracket-only lines: code, not sentences.
_CODE_LINE = re.compile(r"^(\s{2,}|>>>|\.\.\.|\$ |[{}\[\]()#])")
_ADMONITIONS = {"Note", "Warning", "See also", "Tip", "Important", "Caution", "Deprecated"}


def sentences(text: str, min_words: int = 4, max_chars: int = 400) -> list[str]:
    """Prose sentences of a chunk. Docs text wraps lines mid-sentence, so prose lines are joined first;
    code lines are left out, and so are the sentences the chunk boundaries cut in half."""
    blocks, current = [], []
    for line in text.splitlines():
        if not line.strip() or _CODE_LINE.match(line) or line.strip() in _ADMONITIONS:
            blocks.append(current)
            current = []
        else:
            current.append(line.strip())
    blocks.append(current)
    out = []
    for block in filter(None, blocks):
        out.extend(_SENTENCE_END.split(" ".join(block)))
    flat = " ".join(text.split())
    if out and flat[:1].islower() and flat.startswith(out[0]):
        out = out[1:]  # the chunk starts mid-sentence
    if out and flat[-1:] not in ".!?:)" and flat.endswith(out[-1]):
        out = out[:-1]  # the chunk ends mid-sentence
    return [s for s in out if len(s.split()) >= min_words and len(s) <= max_chars]


class ExtractiveGenerator:
    """Offline answerer: the retrieved sentences most similar to the question (embedding cosine)."""

    name = "extractive"

    def __init__(self, model_name: str | None = None, max_sentences: int = 3):
        self.model_name = model_name or Settings.from_env().embedding_model
        self.max_sentences = max_sentences

    def answer(self, question: str, hits: Sequence[Hit]) -> dict:
        started = time.perf_counter()
        question = clean_query(question)
        candidates = list(dict.fromkeys((s, h.source) for h in hits for s in sentences(h.text)))
        if not candidates:
            return result(None, self.name, started, error="no sentences in the retrieved context")
        model = embed.cached_model(self.model_name)
        vecs = embed.encode(model, [question] + [s for s, _ in candidates])
        sims = vecs[1:] @ vecs[0]
        best = [candidates[i] for i in np.argsort(-sims, kind="stable")[: self.max_sentences]]
        return result(" ".join(s for s, _ in best), self.name, started, [src for _, src in best])


def make_generator(model: str | None = None, cache=None, prompt: str | None = None):
    """The LLM generator when OPENAI_BASE_URL is set (model: the argument, else RAG_LLM_MODEL or the promoted
    variant's llm), else extractive (which has no prompt). cache: a JudgeCache whose answers are reused for
    identical prompts; `prompt`: a PROMPTS name or a system prompt."""
    model = model or Settings.from_env().llm_model
    if model == ExtractiveGenerator.name or not llm_endpoint():
        if model and model != ExtractiveGenerator.name:
            log.warning("OPENAI_BASE_URL is not set: answering %s offline with the extractive answerer", model)
        return ExtractiveGenerator()
    if not model:
        raise ValueError("OPENAI_BASE_URL is set but no model: set RAG_LLM_MODEL")
    return LLMGenerator(ChatClient(), model, cache=cache, prompt=prompt)
