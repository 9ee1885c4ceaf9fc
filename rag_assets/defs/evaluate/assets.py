"""Evaluation assets (issue 4): eval_questions, reference_answers, responses, retrieval_scores, quality_scores,
score_report. Outputs are JSON under the data dir (eval/, reports/); the logic lives in lib/evaluate.py."""

import base64
import dataclasses
from typing import Optional

import dagster as dg

from rag_assets.defs.metadata import markdown_table
from rag_assets.defs.resources import RagSettings
from rag_assets.lib.evaluate import report as report_lib
from rag_assets.lib.evaluate.eval_data import EvalFiles, eval_set_version, from_feedback, gold_texts
from rag_assets.lib.evaluate.pipeline import (
    EvalConfig, generate_gold_responses, generate_responses, load_questions, make_generator, make_judge,
    score_quality, score_retrieval, write_reference_answers,
)
from rag_assets.lib.evaluate.judge import PROMPT_VERSION, JudgeCache
from rag_assets.lib.retrieve.retriever import Retriever
from rag_assets.lib.store import read_json, table_metadata, write_json
from rag_assets.lib.settings import llm_endpoint

GROUP = "evaluation"


# The `openai` kind only when the definitions load with an LLM endpoint: offline, these assets call none.
LLM_KINDS = {"openai"} if llm_endpoint() else set()


def _score_text(s: dict) -> dg.MetadataValue:
    return dg.MetadataValue.text(report_lib.fmt(s))


def _float(v) -> dg.MetadataValue:
    return dg.MetadataValue.float(float("nan") if v is None else float(v))


def _numbers(figures: dict) -> dict:
    """Counts as int metadata, other figures as float metadata."""
    return {k: dg.MetadataValue.int(v) if isinstance(v, int) else _float(v) for k, v in figures.items()}


def score_values(name: str, s: dict | None) -> dict:
    """A score as numbers (value, CI bounds, n): float/int metadata the Plots tab charts over materializations.
    A missing value is NaN rather than absent, so every materialization has the same numeric keys."""
    s = s or {}
    low, high = s.get("ci95") or [None, None]
    return {f"{name}_value": _float(s.get("value")), f"{name}_ci_low": _float(low), f"{name}_ci_high": _float(high),
            f"{name}_n": dg.MetadataValue.int(int(s.get("n") or 0))}


class EvalQuestionsConfig(dg.Config):
    eval_path: Optional[str] = None  # default RAG_EVAL_PATH, then the bundled set


@dg.asset(group_name=GROUP, kinds={"python"})
def eval_questions(config: EvalQuestionsConfig, rag: RagSettings) -> dg.MaterializeResult:
    """The eval set (JSONL: question, source URL[#anchor], optional reference_answer).

    Malformed rows fail the materialization, naming every bad line."""
    path = EvalConfig.from_settings(rag.settings(), eval_path=config.eval_path).eval_path
    rows = load_questions(path)
    version, n_feedback = eval_set_version(path), from_feedback(rows)
    write_json(EvalFiles(rag.layout()).questions,
               {"path": str(path), "rows": rows, "version": version, "from_feedback": n_feedback})
    return dg.MaterializeResult(metadata={
        "dagster/row_count": dg.MetadataValue.int(len(rows)),
        "path": dg.MetadataValue.path(str(path)),
        "eval_set_version": version,  # content hash; the eval-set sensor compares it with the file's
        "rows_from_feedback": dg.MetadataValue.int(n_feedback),
        "with_reference_answer": dg.MetadataValue.int(sum(1 for r in rows if r.get("reference_answer"))),
        "preview": dg.MetadataValue.md(markdown_table(rows[:5])),
    })


class JudgeConfig(dg.Config):
    judge_model: Optional[str] = None  # default RAG_JUDGE_MODEL, then RAG_LLM_MODEL


@dg.asset(group_name=GROUP, deps=[eval_questions, "sections"], kinds={"python", *LLM_KINDS})
def reference_answers(context: dg.AssetExecutionContext, config: JudgeConfig, rag: RagSettings) -> dg.MaterializeResult:
    """References for rows without one, written by the judge LLM from the gold section (the seed's method);
    offline, only the eval set's own references."""
    files = EvalFiles(rag.layout())
    questions = read_json(files.questions)["rows"]
    out = write_reference_answers(questions, gold_texts(rag.layout(), questions), JudgeCache(files.judge_cache),
                                  config.judge_model or rag.settings().judge_model)
    write_json(files.references, out)
    for s in out["skipped"]:
        context.log.info(f"no reference for {s['question']!r}: {s['reason']}")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": dg.MetadataValue.int(sum(1 for r in out["rows"] if r["reference_answer"])),
        "written_now": dg.MetadataValue.int(out["written"]),
        "skipped": dg.MetadataValue.int(len(out["skipped"])),
        "writer": out["model"] or "offline (none written)",
    })


class ResponsesConfig(dg.Config):
    retrieval_mode: Optional[str] = None  # default RAG_RETRIEVAL_MODE, then hybrid
    num_chunks: Optional[int] = None  # default RAG_NUM_CHUNKS, then 5
    llm_model: Optional[str] = None  # default RAG_LLM_MODEL (used only with OPENAI_BASE_URL)
    reuse_answers: bool = True  # an identical prompt reuses its cached LLM answer (False: ask the LLM again)


@dg.asset(group_name=GROUP, deps=[eval_questions, "vector_index", "lexical_index"], kinds={"lancedb", *LLM_KINDS})
def responses(config: ResponsesConfig, rag: RagSettings) -> dg.MaterializeResult:
    """Per question: retrieve, generate; plus answers from the gold section alone (component-wise quality)."""
    layout, files = rag.layout(), EvalFiles(rag.layout())
    cfg = EvalConfig.from_settings(rag.settings(), retrieval_mode=config.retrieval_mode,
                                   num_chunks=config.num_chunks, llm_model=config.llm_model)
    questions = read_json(files.questions)["rows"]
    cache = JudgeCache(files.judge_cache) if config.reuse_answers else None
    retriever, generator = Retriever.open(layout.root), make_generator(cfg.llm_model, cache=cache)
    rows = generate_responses(retriever, questions, generator, cfg.retrieval_mode, cfg.num_chunks,
                              concurrency=cfg.llm_concurrency)
    gold = generate_gold_responses(questions, gold_texts(layout, questions), generator, cfg.llm_concurrency)
    write_json(files.responses, {
        "generator": generator.name, "mode": cfg.retrieval_mode, "num_chunks": cfg.num_chunks,
        "table_version": retriever.table_version, "embedding_model": retriever.model_name,
        "hybrid_params": dataclasses.asdict(retriever.hybrid_params), "rows": rows, "gold_context_rows": gold,
    })
    usage = report_lib.usage(rows)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": dg.MetadataValue.int(len(rows)),
        "generator": dg.MetadataValue.text(generator.name),
        "retrieval_mode": dg.MetadataValue.text(cfg.retrieval_mode),
        "num_chunks": dg.MetadataValue.int(cfg.num_chunks),
        "lancedb_version": dg.MetadataValue.int(retriever.table_version),
        "gold_context_answers": dg.MetadataValue.int(len(gold)),
        **_numbers(usage),
        "preview": dg.MetadataValue.md(markdown_table(
            [{"question": r["question"], "answer": r["answer"] or f"FAILED: {r['error']}"} for r in rows[:5]])),
    })


@dg.asset(group_name=GROUP, deps=[responses], kinds={"python"})
def retrieval_scores(rag: RagSettings) -> dg.MaterializeResult:
    """The seed's retrieval_score plus hit@k, recall@k, MRR, nDCG@k (page and section level), with 95% CIs."""
    files = EvalFiles(rag.layout())
    questions, doc = read_json(files.questions)["rows"], read_json(files.responses)
    scores = score_retrieval(questions, doc["rows"])
    write_json(files.retrieval, scores)
    shown = {name: s for name, s in scores["metrics"].items() if name in report_lib.TABLE_METRICS}
    return dg.MaterializeResult(metadata={
        "retrieval_score": _score_text(scores["retrieval_score"]),
        **score_values("retrieval_score", scores["retrieval_score"]),
        **{name: _score_text(s) for name, s in shown.items()},
        **{f"{name}_value": _float(s["value"]) for name, s in shown.items()},
    })


@dg.asset(group_name=GROUP, deps=[responses, reference_answers], kinds={"python", *LLM_KINDS})
def quality_scores(config: JudgeConfig, rag: RagSettings) -> dg.MaterializeResult:
    """Judge scores (1-5) of the answers and of the gold-context answers; cached, so unchanged answers are free."""
    files = EvalFiles(rag.layout())
    doc = read_json(files.responses)
    refs = {r["question"]: r["reference_answer"] for r in read_json(files.references)["rows"] if r["reference_answer"]}
    judge = make_judge(files.judge_cache, config.judge_model or rag.settings().judge_model)
    overall = score_quality(doc["rows"], judge, refs)
    gold = score_quality(doc["gold_context_rows"], judge, refs)
    write_json(files.quality, {"judge": judge.name, "prompt_version": PROMPT_VERSION, "overall": overall,
                               "gold_context": gold})
    return dg.MaterializeResult(metadata={
        "judge": dg.MetadataValue.text(judge.name),
        "quality_score": _score_text(overall["quality_score"]),
        **score_values("quality_score", overall["quality_score"]),
        "quality_with_gold_context": _score_text(gold["quality_score"]),
        **score_values("quality_with_gold_context", gold["quality_score"]),
        "missing": dg.MetadataValue.int(overall["quality_score"]["missing"]),
        "no_reference": dg.MetadataValue.int(overall["quality_score"]["no_reference"]),
        "judge_calls": dg.MetadataValue.int(overall["judge_calls"] + gold["judge_calls"]),
        "cached_judgements": dg.MetadataValue.int(overall["cached"] + gold["cached"]),
    })


@dg.asset(group_name=GROUP, deps=[retrieval_scores, quality_scores], kinds={"python"})
def score_report(rag: RagSettings) -> dg.MaterializeResult:
    """What a user opens first: scores with CIs and n, k-metrics, by docs area, worst questions, full config."""
    settings, files = rag.settings(), EvalFiles(rag.layout())
    doc, quality = read_json(files.responses), read_json(files.quality)
    config = {
        "eval_path": read_json(files.questions)["path"],
        "docs_dir": str(settings.docs_dir),
        "docs_base_url": settings.docs_base_url,
        "chunk_size": table_metadata(rag.layout().chunks).get("chunk_size"),
        "chunk_overlap": table_metadata(rag.layout().chunks).get("chunk_overlap"),
        "embedding_model": doc["embedding_model"],
        "retrieval_mode": doc["mode"],
        "num_chunks": doc["num_chunks"],
        "hybrid_params": doc.get("hybrid_params") if doc["mode"] == "hybrid" else None,
        "generator": doc["generator"],
        "judge": quality["judge"],
        "judge_prompt_version": quality["prompt_version"],
        "lancedb_table_version": doc["table_version"],
    }
    report = report_lib.build_report(doc, read_json(files.retrieval), quality, config, settings.docs_base_url)
    report["eval_set"] = report_lib.eval_set_summary(read_json(files.questions))
    report["plot"] = str(report_lib.plot(report, files.plot))
    if files.report.exists():  # kept for the score-drop check
        write_json(files.previous_report, read_json(files.report))
    write_json(files.report, report)
    # The plot travels inside the metadata (a data URI), so the UI shows it wherever the files are.
    image = f"![scores](data:image/png;base64,{base64.b64encode(files.plot.read_bytes()).decode()})"
    return dg.MaterializeResult(metadata={
        "report": dg.MetadataValue.md(report_lib.markdown(report) + "\n\n" + image),
        "score_plot": dg.MetadataValue.md(image),
        "retrieval_score": _score_text(report["retrieval_score"]),
        "quality_score": _score_text(report["quality_score"]),
        **score_values("retrieval_score", report["retrieval_score"]),
        **score_values("quality_score", report["quality_score"]),
        **score_values("quality_with_gold_context", report["quality_with_gold_context"]),
        **_numbers(report["usage"]),
        "lancedb_version": dg.MetadataValue.int(doc["table_version"]),
        "eval_set_version": str(report["eval_set"]["version"]),
        "eval_rows_from_feedback": dg.MetadataValue.int(report["eval_set"]["from_feedback"]),
        "path": dg.MetadataValue.path(str(files.report)),
    })
