"""The evaluation library: generate answers for an eval set, score retrieval and quality (no Dagster here).

Evaluation assets, experiment variants and the refresh loop all call these functions, so a score means the
same thing everywhere.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rag_assets.lib.evaluate import metrics
from rag_assets.lib.evaluate.eval_data import EvalDataError, load_questions, page_of
from rag_assets.lib.generate.answer import SYSTEM_PROMPT, LLMGenerator, make_generator
from rag_assets.lib.evaluate.judge import JudgeCache, judge_model, make_judge
from rag_assets.lib.generate.llm import ChatClient
from rag_assets.lib.evaluate.metrics import bootstrap_ci, summarize
from rag_assets.lib.retrieve.retriever import MODES, Hit
from rag_assets.lib.settings import DEFAULT_EVAL_PATH, Settings, env_value, llm_endpoint
from rag_assets.lib.store import Layout, read_table

__all__ = [
    "EvalConfig", "EvalDataError", "load_questions", "make_generator", "make_judge", "generate_responses",
    "generate_gold_responses", "score_retrieval", "score_quality", "bootstrap_ci", "write_reference_answers",
    "index_consistency", "DEFAULT_KS",
]

DEFAULT_KS = (1, 3, 5, 10)
REFERENCE_PROMPT_VERSION = "seed-reference-v1"


@dataclass(frozen=True)
class EvalConfig:
    """What evaluation reads from the settings: the eval set, retrieval mode and num_chunks, the LLMs."""

    eval_path: Path = DEFAULT_EVAL_PATH
    retrieval_mode: str = "hybrid"
    num_chunks: int = 5
    llm_model: str | None = None
    judge_model: str | None = None
    llm_concurrency: int = 4

    def __post_init__(self):
        if self.retrieval_mode not in MODES:
            raise ValueError(f"retrieval mode must be one of {', '.join(MODES)}, got {self.retrieval_mode!r}")
        if self.num_chunks < 1:
            raise ValueError(f"num_chunks must be at least 1, got {self.num_chunks}")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> "EvalConfig":
        """From resolved settings (the run's `rag` resource, the CLI's flags); non-None overrides win."""
        values = {f: getattr(settings, f) for f in cls.__dataclass_fields__}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @classmethod
    def from_env(cls, settings: Settings | None = None, **overrides) -> "EvalConfig":
        # Kept for callers without settings at hand; pass the run's settings so its data_dir is the one used.
        return cls.from_settings(settings or Settings.from_env(), **overrides)


def relevant_chunk_counts(retriever) -> tuple[Counter, Counter]:
    """Chunks per page and per `page#anchor` in the index: the denominators of recall@k and nDCG@k."""
    sources = retriever.table.search().select(["source"]).limit(None).to_arrow().column("source").to_pylist()
    return Counter(page_of(s) for s in sources), Counter(sources)


def generate_responses(retriever, questions: Sequence[dict], generator, mode: str = "hybrid",
                       num_chunks: int = 5, depth: int = max(DEFAULT_KS), concurrency: int | None = None) -> list[dict]:
    """Retrieve and answer each question. The first num_chunks hits are the context (and the seed's
    retrieved_sources); the ranking is read `depth` deep for the k-metrics (ranked_ids, ranked_sources)."""
    if num_chunks < 1:
        raise ValueError(f"num_chunks must be at least 1, got {num_chunks}")
    pages, sections = relevant_chunk_counts(retriever)
    version = retriever.table_version
    ranked, retrieval_s = [], []
    for q in questions:
        t0 = time.perf_counter()
        ranked.append(retriever.search(q["question"], mode, max(num_chunks, depth)))
        retrieval_s.append(time.perf_counter() - t0)
    answers = _answer_all(generator, [(q["question"], hits[:num_chunks]) for q, hits in zip(questions, ranked)],
                          concurrency)
    rows = []
    for q, hits, ans, took in zip(questions, ranked, answers, retrieval_s):
        context = hits[:num_chunks]
        rows.append({
            "question": q["question"],
            "source": q["source"],
            "reference_answer": q.get("reference_answer"),
            "retrieved_ids": [h.id for h in context],
            "retrieved_sources": [h.source for h in context],
            "ranked_ids": [h.id for h in hits],
            "ranked_sources": [h.source for h in hits],
            "relevant_chunks": {"page": pages.get(page_of(q["source"]), 0), "section": sections.get(q["source"], 0)},
            "mode": mode,
            "num_chunks": num_chunks,
            "table_version": version,
            **ans,
            # Per query: this question's own retrieval and answer times (answers overlap, so not wall time / n).
            "retrieval_latency_s": round(took, 4),
            "query_latency_s": round(took + (ans.get("latency_s") or 0.0), 4),
        })
    return rows


def generate_gold_responses(questions: Sequence[dict], gold_texts: dict[str, str], generator,
                            concurrency: int | None = None) -> list[dict]:
    """The seed's component-wise view: answers with the gold section as the only context ("perfect retrieval").
    Questions whose gold section is not in the index are left out (their count is len(questions) - len(rows))."""
    todo = [q for q in questions if gold_texts.get(q["source"])]
    context = [(q["question"], [Hit(id="gold", source=q["source"], score=1.0, text=gold_texts[q["source"]])])
               for q in todo]
    return [
        {"question": q["question"], "source": q["source"], "reference_answer": q.get("reference_answer"), **ans}
        for q, ans in zip(todo, _answer_all(generator, context, concurrency))
    ]


def _answer_all(generator, items: list[tuple[str, list[Hit]]], concurrency: int | None = None) -> list[dict]:
    """LLM calls overlap (the llm_concurrency setting); the local extractive answerer runs in turn."""
    if not isinstance(generator, LLMGenerator):
        return [generator.answer(q, hits) for q, hits in items]
    workers = concurrency or env_value("llm_concurrency")
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda item: generator.answer(*item), items))


def score_retrieval(questions: Sequence[dict], responses: Sequence[dict], ks: Sequence[int] = DEFAULT_KS) -> dict:
    """The seed's retrieval_score over retrieved_sources, plus page- and section-level k-metrics over the ranking.

    Questions without a gold source count as hits in retrieval_score (the seed's rule) and are left out of the
    k-metrics, whose n says how many were measured.
    """
    if len(questions) != len(responses):
        raise ValueError(f"{len(questions)} questions but {len(responses)} responses")
    per_question, columns = [], {}
    for q, r in zip(questions, responses):
        if q["question"] != r["question"]:
            raise ValueError(f"responses are not in question order at {q['question']!r}")
        row = {
            "question": q["question"],
            "source": q["source"],
            "hit": float(metrics.retrieval_hit(q["source"], r["retrieved_sources"])),
            "retrieved_sources": r["retrieved_sources"],
        }
        if page_of(q["source"]):
            ranked = r.get("ranked_sources") or r["retrieved_sources"]
            row.update(metrics.question_metrics(q["source"], ranked, ks, r.get("relevant_chunks")))
        per_question.append(row)
        for name, value in row.items():
            if name != "hit" and isinstance(value, float):
                columns.setdefault(name, []).append(value)
    return {
        "retrieval_score": summarize([row["hit"] for row in per_question], binary=True),
        "metrics": {name: summarize(values, binary=metrics.is_binary_metric(name)) for name, values in columns.items()},
        "per_question": per_question,
    }


def score_quality(responses: Sequence[dict], judge, references: dict[str, str] | None = None) -> dict:
    """Judge each answer against its reference. Failed answers and unparseable judgements are `missing`
    (never scored 0); answers without a reference are `no_reference`. Both are counted, neither averaged."""
    refs = [(references or {}).get(r["question"]) or r.get("reference_answer") for r in responses]
    todo = [i for i, r in enumerate(responses) if refs[i] and not r.get("failed") and r.get("answer")]
    before = getattr(judge, "calls", 0)
    verdicts = dict(zip(todo, judge.score_many([(responses[i]["question"], responses[i]["answer"], refs[i])
                                                for i in todo]))) if todo else {}
    per_question = []
    for i, r in enumerate(responses):
        v = verdicts.get(i, {})
        if not refs[i]:
            status = "no_reference"
        elif r.get("failed") or not r.get("answer"):
            status, v = "missing", {"error": f"generation failed: {r.get('error')}"}
        else:
            status = "scored" if v.get("score") is not None else "missing"
        per_question.append({
            "question": r["question"], "source": r.get("source"), "answer": r.get("answer"),
            "reference_answer": refs[i], "score": v.get("score"), "reasoning": v.get("reasoning"),
            "judge": getattr(judge, "name", None), "cached": v.get("cached", False), "status": status,
            "error": v.get("error"),
        })
    counts = Counter(p["status"] for p in per_question)
    summary = summarize([p["score"] for p in per_question if p["status"] == "scored"])
    return {
        "quality_score": summary | {"missing": counts["missing"], "no_reference": counts["no_reference"]},
        "judge": getattr(judge, "name", None),
        "judge_calls": getattr(judge, "calls", 0) - before,
        "cached": sum(1 for p in per_question if p["cached"]),
        "per_question": per_question,
    }


def write_reference_answers(questions: Sequence[dict], gold_texts: dict[str, str], cache: JudgeCache | None,
                            model: str | None = None, client: ChatClient | None = None) -> dict:
    """The seed's references: the judge LLM answers each question from its gold section's text.

    Rows that carry a reference keep it. Offline (no OPENAI_BASE_URL) nothing is written. Answers are cached
    by (model, question, section text), so re-materializing calls the LLM only for what changed.
    """
    rows, skipped = [], []
    if not llm_endpoint():
        model = None
    else:
        model = model or judge_model()
        if not model:
            raise ValueError("OPENAI_BASE_URL is set but no judge model: set RAG_JUDGE_MODEL or RAG_LLM_MODEL")
    writer = LLMGenerator(client or ChatClient(), model) if model else None
    written = 0
    for q in questions:
        row = {"question": q["question"], "source": q["source"], "reference_answer": q.get("reference_answer"),
               "origin": "eval set" if q.get("reference_answer") else None}
        text = gold_texts.get(q["source"])
        if row["reference_answer"] is None:
            if writer is None:
                skipped.append({"question": q["question"], "reason": "offline: no judge LLM"})
            elif not text:
                skipped.append({"question": q["question"], "reason": f"gold page of {q['source']!r} is not in the docs"})
            else:
                key = [REFERENCE_PROMPT_VERSION, SYSTEM_PROMPT, q["question"], text]
                cached = cache.get_completion(model, key) if cache else None
                if cached is None:
                    ans = writer.answer(q["question"], [Hit(id="gold", source=q["source"], score=1.0, text=text)])
                    if ans["failed"]:
                        skipped.append({"question": q["question"], "reason": ans["error"]})
                    else:
                        cached = ans["answer"]
                        written += 1
                        if cache:
                            cache.put_completion(model, key, cached)
                if cached is not None:
                    row.update(reference_answer=cached, origin=f"written by {model}")
        rows.append(row)
    return {"rows": rows, "skipped": skipped, "written": written, "model": model}


def index_consistency(layout: Layout) -> dict:
    """Whether chunks.parquet and the committed LanceDB table and Tantivy index hold the same chunk ids."""
    from rag_assets.lib.index.consistency import index_consistency as committed_pair_consistency

    return committed_pair_consistency(layout)
