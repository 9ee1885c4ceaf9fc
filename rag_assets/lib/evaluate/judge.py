"""Quality judges: an LLM with the seed's rubric, or the calibrated offline judge; judgements cached in sqlite.

Every judge has `.name` and `.score(question, answer, reference) -> {score, reasoning, judge, cached, error}`
(score None = missing, never 0) and `.score_many(rows)` for (question, answer, reference) triples.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rag_assets.lib.generate.llm import ChatClient, LLMError
from rag_assets.lib.settings import env_value, llm_endpoint

log = logging.getLogger(__name__)

# The seed's rubric, verbatim (its placeholders were never filled in: the values come in the user message).
JUDGE_SYSTEM_PROMPT = (
    "Your job is to rate the quality of our generated answer {generated_answer} given a query {query} and a "
    "reference answer {reference_answer}. Your score has to be between 1 and 5. You must return your response "
    "in a line with only the score. Do not return answers in any other format. On a separate line provide your "
    "reasoning for the score as well."
)
PROMPT_VERSION = "seed-rubric-v1"  # part of every cache key: change it when the rubric or parsing changes
UNPARSEABLE = "unparseable judge output"


def judge_user_content(question: str, answer: str, reference: str) -> str:
    return str({"question": question, "generated_answer": answer, "reference_answer": reference})


# "Score: 4", "rating is 4.5", "**Score**: 4/5", "score of 3 out of 5"
_LABELLED = re.compile(
    r"\b(?:score|rating|grade)\b\W{0,4}(?:is|of|=)?\W{0,4}(\d(?:\.\d)?)(?!\d|\.\d)(?:\s*(?:/|out of)\s*(\d+))?", re.I
)
# A line that starts with the score: "4", "4/5", "**4**", "4.0.", "(3 out of 5)", "4 - correct and complete"
_LEADING = re.compile(r"^\W*(\d(?:\.\d)?)(?!\d|\.\d)\s*(?:(?:/|out of)\s*(\d+))?(?!\w|\.\d)", re.I)


def parse_judgement(text: str | None) -> tuple[float | None, str]:
    """(score in [1, 5] or None, reasoning). The score line is the first non-blank one, else a labelled one."""
    lines = [ln.strip() for ln in (text or "").splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        return None, ""
    order = [0] + list(range(1, len(lines)))
    for i in order:
        m = _LEADING.match(lines[i]) if i == 0 else None
        m = m or _LABELLED.search(lines[i])
        score = _valid_score(m)
        if score is not None:
            rest = [ln for j, ln in enumerate(lines) if j != i] or [lines[i][m.end():]]
            return score, _reasoning(rest)
    return None, _reasoning(lines)


def _valid_score(m: re.Match | None) -> float | None:
    if m is None:
        return None
    value, scale = float(m.group(1)), m.group(2)
    if scale is not None and int(scale) != 5:
        return None
    return value if 1.0 <= value <= 5.0 else None


def _reasoning(lines: Sequence[str]) -> str:
    text = "\n".join(lines).strip()
    return re.sub(r"^\W*(?:reasoning\b\W*)?", "", text, flags=re.I).strip()


def judgement(score: float | None, reasoning: str, judge: str, error: str | None = None, **extra) -> dict:
    return {"score": score, "reasoning": reasoning, "judge": judge, "cached": False, "error": error, **extra}


class LLMJudge:
    """The seed's rubric at temperature 0; an unparseable score is asked again, then reported missing."""

    def __init__(self, client: ChatClient, model: str, parse_retries: int = 1, concurrency: int | None = None):
        self.client = client
        self.model = self.name = model
        self.cache_id = model
        self.parse_retries = parse_retries
        self.concurrency = concurrency or env_value("llm_concurrency")

    def score(self, question: str, answer: str, reference: str) -> dict:
        messages = [
            {"role": "system", "content": JUDGE_SYSTEM_PROMPT},
            {"role": "user", "content": judge_user_content(question, answer, reference)},
        ]
        raw = ""
        for _ in range(self.parse_retries + 1):
            try:
                raw = self.client.chat(self.model, messages).text
            except LLMError as exc:
                return judgement(None, "", self.name, str(exc), transient=True)
            score, reasoning = parse_judgement(raw)
            if score is not None:
                return judgement(score, reasoning, self.name)
        return judgement(None, raw.strip()[:2000], self.name, UNPARSEABLE)

    def score_many(self, rows: Sequence[tuple[str, str, str]]) -> list[dict]:
        with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
            return list(pool.map(lambda r: self.score(*r), rows))


class OfflineJudgeAdapter:
    """The calibrated offline judge (lib/offline_judge.py) behind the judge interface; embeds in batches."""

    name = "offline"

    def __init__(self, model_name: str | None = None):
        from rag_assets.lib.evaluate.offline_judge import OfflineJudge

        self.judge = OfflineJudge(model_name=model_name)
        params = json.dumps(self.judge.params, sort_keys=True, default=str)
        # New calibration params or another embedding model must not reuse old judgements.
        self.cache_id = f"offline:{self.judge.model_name}:{hashlib.sha256(params.encode()).hexdigest()[:12]}"

    def score(self, question: str, answer: str, reference: str) -> dict:
        return self.score_many([(question, answer, reference)])[0]

    def score_many(self, rows: Sequence[tuple[str, str, str]]) -> list[dict]:
        scores = self.judge.score_many(list(rows)) if rows else []
        return [judgement(round(float(s), 4), "offline judge: overlap and similarity features calibrated on "
                          "GPT-4 judgements", self.name) for s in scores]


class JudgeCache:
    """sqlite: judgements by (question, answer, reference, judge, prompt version); LLM answers and reference
    answers by (model, prompt)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")  # experiment variants read and write it concurrently
            db.execute(
                "CREATE TABLE IF NOT EXISTS judgements (key TEXT PRIMARY KEY, question TEXT, answer TEXT, "
                "reference TEXT, judge TEXT, prompt_version TEXT, score REAL, reasoning TEXT, error TEXT, "
                "created REAL)"
            )
            db.execute("CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, model TEXT, text TEXT, "
                       "created REAL)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60)

    @staticmethod
    def key(*parts: str) -> str:
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()

    def get(self, question: str, answer: str, reference: str, judge: str) -> dict | None:
        k = self.key(question, answer, reference, judge, PROMPT_VERSION)
        with self._connect() as db:
            row = db.execute("SELECT score, reasoning, error FROM judgements WHERE key = ?", (k,)).fetchone()
        return None if row is None else {"score": row[0], "reasoning": row[1], "error": row[2]}

    def put(self, question: str, answer: str, reference: str, judge: str, result: dict) -> None:
        k = self.key(question, answer, reference, judge, PROMPT_VERSION)
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO judgements VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (k, question, answer, reference, judge, PROMPT_VERSION, result["score"], result["reasoning"],
                 result.get("error"), time.time()),
            )

    def get_completion(self, model: str, messages: list[dict]) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT text FROM completions WHERE key = ?", (self.key(model, messages),)).fetchone()
        return None if row is None else row[0]

    def put_completion(self, model: str, messages: list[dict], text: str) -> None:
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO completions VALUES (?, ?, ?, ?)",
                       (self.key(model, messages), model, text, time.time()))


class CachedJudge:
    """A judge whose judgements are looked up first; transport failures are not cached (they may pass later)."""

    def __init__(self, inner, cache: JudgeCache | None):
        self.inner, self.cache = inner, cache
        self.name = inner.name
        self.calls = 0  # judgements the inner judge was asked for (not served from the cache)

    def score(self, question: str, answer: str, reference: str) -> dict:
        return self.score_many([(question, answer, reference)])[0]

    def score_many(self, rows: Sequence[tuple[str, str, str]]) -> list[dict]:
        rows = [tuple(str(x) for x in r) for r in rows]
        out: list[dict | None] = [None] * len(rows)
        if self.cache is not None:
            for i, r in enumerate(rows):
                hit = self.cache.get(*r, self.inner.cache_id)
                if hit is not None:
                    out[i] = judgement(hit["score"], hit["reasoning"], self.name, hit["error"]) | {"cached": True}
        todo = [i for i, o in enumerate(out) if o is None]
        if todo:
            self.calls += len(todo)
            for i, res in zip(todo, self.inner.score_many([rows[i] for i in todo])):
                transient = res.pop("transient", False)
                if self.cache is not None and not transient:
                    self.cache.put(*rows[i], self.inner.cache_id, res)
                out[i] = res
        return out


def judge_model() -> str | None:
    return os.environ.get("RAG_JUDGE_MODEL") or os.environ.get("RAG_LLM_MODEL")


def make_judge(cache_path: Path | str | None, model: str | None = None) -> CachedJudge:
    """The LLM judge (model, RAG_JUDGE_MODEL, then RAG_LLM_MODEL) when OPENAI_BASE_URL is set, else offline."""
    cache = JudgeCache(cache_path) if cache_path else None
    if not llm_endpoint() or model == OfflineJudgeAdapter.name:
        return CachedJudge(OfflineJudgeAdapter(), cache)
    model = model or judge_model()
    if not model:
        raise ValueError("OPENAI_BASE_URL is set but no judge model: set RAG_JUDGE_MODEL or RAG_LLM_MODEL")
    return CachedJudge(LLMJudge(ChatClient(), model), cache)
