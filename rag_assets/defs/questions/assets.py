"""Assets over the synthetic questions; the logic is in lib/questions and lib/retrieve/training.py."""

import dagster as dg

from rag_assets.defs.metadata import markdown_table, stage_metadata
from rag_assets.defs.resources import RagSettings
from rag_assets.lib.questions import stage as questions_stage
from rag_assets.lib.questions.synthetic import questions_path, validation_jsonl_path
from rag_assets.lib.retrieve import tags, training

GROUP = "cold_start"


class SyntheticQuestionsConfig(dg.Config):
    area_depth: int = 1  # path segments below the docs base URL that make a docs area
    max_per_section: int = 3
    validation_share: float = 0.2  # of the pages
    round_trip_k: int = 10


@dg.asset(group_name=GROUP, deps=["sections"], kinds={"python", "openai"})
def synthetic_questions(config: SyntheticQuestionsConfig, rag: RagSettings) -> dg.MaterializeResult:
    """Questions each section answers (LLM when configured, else offline templates), filtered, split by page.

    The validation split is also written as an eval set: RAG_EVAL_PATH=<data dir>/assets/synthetic_validation.jsonl."""
    settings = rag.settings()
    stats = questions_stage.build_synthetic_questions(
        settings, rag.layout(), config.area_depth, config.max_per_section, config.validation_share, config.round_trip_k)
    dropped = stats["dropped"]
    return dg.MaterializeResult(metadata=stage_metadata(
        stats, stats["questions"], questions_path(settings.data_dir),
        generator=stats["generator"],
        train=stats["splits"]["train"],
        validation=stats["splits"]["validation"],
        dropped=stats["splits"]["dropped"],
        **{f"dropped_{reason}": n for reason, n in dropped.items()},
        round_trip=stats["round_trip"],
        areas=stats["areas"],
        eval_set=dg.MetadataValue.path(str(validation_jsonl_path(settings.data_dir))),
    ))


class TagClassifierConfig(dg.Config):
    area_depth: int = 1
    kinds: list[str] = list(tags.KINDS)  # tried in turn; the best weighted F1 on validation is kept
    min_count: int = tags.DEFAULT_MIN_COUNT  # rarer areas are folded into `other`


@dg.asset(group_name=GROUP, deps=[synthetic_questions, "tag_corrections"], kinds={"scikitlearn"})
def tag_classifier(config: TagClassifierConfig, rag: RagSettings) -> dg.MaterializeResult:
    """The docs-area classifier for retrieval mode `rerank`, trained on the train split (plus user corrections in
    <data dir>/feedback/tag_corrections.jsonl), chosen and scored on the validation split."""
    stats = training.build_tag_classifier(rag.settings(), config.area_depth, config.kinds, config.min_count)
    v = stats["validation"] or {}
    return dg.MaterializeResult(metadata={
        "kind": stats["kind"],
        "classes": ", ".join(stats["classes"]),
        "train_rows": stats["train_rows"],
        "feedback_rows": stats["feedback_rows"],
        "validation_rows": stats["validation_rows"],
        "validation_weighted_f1": dg.MetadataValue.float(float(v.get("weighted_f1") or 0.0)),
        "validation_accuracy": dg.MetadataValue.float(float(v.get("accuracy") or 0.0)),
        "candidates": dg.MetadataValue.json(stats["candidates"]),
        "path": dg.MetadataValue.path(stats["path"]),
        "seconds": dg.MetadataValue.float(round(stats["seconds"], 2)),
    })


@dg.asset(group_name=GROUP, deps=[synthetic_questions, "vector_index", "lexical_index"], kinds={"python"})
def hybrid_tuning(rag: RagSettings) -> dg.MaterializeResult:
    """RRF weights, k and the BM25 title boost swept on the validation questions; the choice goes to
    <data dir>/models/hybrid_tuning.json, the default hybrid parameters unless env vars or a promoted variant say
    otherwise."""
    r = training.build_hybrid_tuning(rag.settings())
    return dg.MaterializeResult(metadata={
        "params": dg.MetadataValue.json(r["params"]),
        "adopted": r["adopted"],  # False: the best setting did not beat the default fusion significantly
        "best": dg.MetadataValue.json(r["best"]),
        "tuned": dg.MetadataValue.json(r["metrics"]),
        "semantic": dg.MetadataValue.json(r["semantic"]),
        "lexical": dg.MetadataValue.json(r["lexical"]),
        "vs_semantic_mrr": dg.MetadataValue.json(r["vs_semantic"]["mrr"]),
        "questions": f"{r['n']} ({r['questions']})",
        "grid_size": r["grid_size"],
        "top": dg.MetadataValue.md(markdown_table(r["table"][:10])),
        "seconds": dg.MetadataValue.float(round(r["seconds"], 2)),
    })
