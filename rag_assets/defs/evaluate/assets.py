"""Evaluation assets (issue 4): eval_questions, reference_answers, responses, retrieval_scores, quality_scores,
score_report. Outputs are JSON under the data dir (eval/, reports/); the logic lives in lib/evaluate.py."""

import base64
import dataclasses
from typing import Optional

import dagster as dg

from rag_assets.defs.metadata import markdown_table
from rag_assets.defs.resources import RagSettings
from rag_assets.lib.evaluate import report as report_lib
from rag_assets.lib.evaluate.eval_data import EvalFiles, eval_set_version, from_feedback, section_texts
from rag_assets.lib.evaluate.pipeline import (
    EvalConfig, generate_gold_responses, generate_responses, load_questions, make_generator, make_judge,
    score_quality, score_retrieval, write_reference_answers,
)
from rag_assets.lib.evaluate.judge import PROMPT_VERSION, JudgeCache
from rag_assets.lib.retrieve.retriever import Retriever
from rag_assets.lib.store import read_json, table_metadata, write_json

GROUP = "evaluation"


def _score_text(s: dict) -> dg.MetadataValue:
    return dg.MetadataValue.text(report_lib.fmt(s))


class EvalQuestionsConfig(dg.Config):
    eval_path: Optional[str] = None  # default RAG_EVAL_PATH, then the bundled set


@dg.asset(group_name=GROUP, kinds={"python"})
def eval_questions(config: EvalQuestionsConfig, rag: RagSettings) -> dg.MaterializeResult:
    """The eval set (JSONL: question, source URL[#anchor], optional reference_answer).

    Malformed rows fail the materialization, naming every bad line."""
    path = EvalConfig.from_env(eval_path=config.eval_path).eval_path
    rows = load_questions(path)
    version, n_feedback = eval_set_version(path), from_feedback(rows)
    write_json(EvalFiles(rag.layout()).questions,
               {"path": str(path), "rows": rows, "version": version, "from_feedback": n_feedback})
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(rows),
        "path": dg.MetadataValue.path(str(path)),
        "eval_set_version": version,  # content hash; the eval-set sensor compares it with the file's
        "rows_from_feedback": dg.MetadataValue.int(n_feedback),
        "with_reference_answer": sum(1 for r in rows if r.get("reference_answer")),
        "preview": dg.MetadataValue.md(markdown_table(rows[:5])),
    })


class JudgeConfig(dg.Config):
    judge_model: Optional[str] = None  # default RAG_JUDGE_MODEL, then RAG_LLM_MODEL


@dg.asset(group_name=GROUP, deps=[eval_questions, "sections"], kinds={"openai"})
def reference_answers(context: dg.AssetExecutionContext, config: JudgeConfig, rag: RagSettings) -> dg.MaterializeResult:
    """References for rows without one, written by the judge LLM from the gold section (the seed's method);
    offline, only the eval set's own references."""
    files = EvalFiles(rag.layout())
    questions = read_json(files.questions)["rows"]
    out = write_reference_answers(questions, section_texts(rag.layout()), JudgeCache(files.judge_cache),
                                  config.judge_model)
    write_json(files.references, out)
    for s in out["skipped"]:
        context.log.info(f"no reference for {s['question']!r}: {s['reason']}")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": sum(1 for r in out["rows"] if r["reference_answer"]),
        "written_now": out["written"],
        "skipped": len(out["skipped"]),
        "writer": out["model"] or "offline (none written)",
    })


class ResponsesConfig(dg.Config):
    retrieval_mode: Optional[str] = None  # default RAG_RETRIEVAL_MODE, then hybrid
    num_chunks: Optional[int] = None  # default RAG_NUM_CHUNKS, then 5
    llm_model: Optional[str] = None  # default RAG_LLM_MODEL (used only with OPENAI_BASE_URL)


@dg.asset(group_name=GROUP, deps=[eval_questions, "vector_index", "lexical_index"], kinds={"openai", "lancedb"})
def responses(config: ResponsesConfig, rag: RagSettings) -> dg.MaterializeResult:
    """Per question: retrieve, generate; plus answers from the gold section alone (component-wise quality)."""
    layout, files = rag.layout(), EvalFiles(rag.layout())
    cfg = EvalConfig.from_env(retrieval_mode=config.retrieval_mode, num_chunks=config.num_chunks)
    questions = read_json(files.questions)["rows"]
    retriever, generator = Retriever.from_layout(layout), make_generator(config.llm_model)
    rows = generate_responses(retriever, questions, generator, cfg.retrieval_mode, cfg.num_chunks)
    gold = generate_gold_responses(questions, section_texts(layout), generator)
    write_json(files.responses, {
        "generator": generator.name, "mode": cfg.retrieval_mode, "num_chunks": cfg.num_chunks,
        "table_version": retriever.table_version, "embedding_model": retriever.model_name,
        "hybrid_params": dataclasses.asdict(retriever.hybrid_params), "rows": rows, "gold_context_rows": gold,
    })
    usage = report_lib.usage(rows)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(rows),
        "generator": generator.name,
        "retrieval_mode": cfg.retrieval_mode,
        "num_chunks": cfg.num_chunks,
        "lancedb_version": retriever.table_version,
        "gold_context_answers": len(gold),
        **usage,
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
    return dg.MaterializeResult(metadata={
        "retrieval_score": _score_text(scores["retrieval_score"]),
        "retrieval_score_value": dg.MetadataValue.float(scores["retrieval_score"]["value"]),
        **{name: _score_text(s) for name, s in scores["metrics"].items() if name in report_lib.TABLE_METRICS},
    })


@dg.asset(group_name=GROUP, deps=[responses, reference_answers], kinds={"openai"})
def quality_scores(config: JudgeConfig, rag: RagSettings) -> dg.MaterializeResult:
    """Judge scores (1-5) of the answers and of the gold-context answers; cached, so unchanged answers are free."""
    files = EvalFiles(rag.layout())
    doc = read_json(files.responses)
    refs = {r["question"]: r["reference_answer"] for r in read_json(files.references)["rows"] if r["reference_answer"]}
    judge = make_judge(files.judge_cache, config.judge_model)
    overall = score_quality(doc["rows"], judge, refs)
    gold = score_quality(doc["gold_context_rows"], judge, refs)
    write_json(files.quality, {"judge": judge.name, "prompt_version": PROMPT_VERSION, "overall": overall,
                               "gold_context": gold})
    value = overall["quality_score"]["value"]
    return dg.MaterializeResult(metadata={
        "judge": judge.name,
        "quality_score": _score_text(overall["quality_score"]),
        "quality_score_value": dg.MetadataValue.float(value if value is not None else float("nan")),
        "quality_with_gold_context": _score_text(gold["quality_score"]),
        "missing": overall["quality_score"]["missing"],
        "no_reference": overall["quality_score"]["no_reference"],
        "judge_calls": overall["judge_calls"] + gold["judge_calls"],
        "cached_judgements": overall["cached"] + gold["cached"],
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
    image = base64.b64encode(files.plot.read_bytes()).decode()
    return dg.MaterializeResult(metadata={
        "report": dg.MetadataValue.md(report_lib.markdown(report) + f"\n\n![scores](data:image/png;base64,{image})"),
        "retrieval_score": _score_text(report["retrieval_score"]),
        "quality_score": _score_text(report["quality_score"]),
        "lancedb_version": doc["table_version"],
        "eval_set_version": str(report["eval_set"]["version"]),
        "eval_rows_from_feedback": dg.MetadataValue.int(report["eval_set"]["from_feedback"]),
        "path": dg.MetadataValue.path(str(files.report)),
        "plot": dg.MetadataValue.path(str(files.plot)),
    })
