"""Experiment variants on disk and their evaluation (the table is in table.py, promotion in promotion.py).

Under <data dir>/experiments/:
  chunkings/<cs700-ov50>/            chunks + Tantivy index of one (chunk size, overlap)
  embeddings/<cs700-ov50__model>/    embeddings + LanceDB table of one (chunking, model)
  variants/<variant key>/            result.json (its table row) and responses.json of one variant
  experiments_table.json / .csv, plots/*.png
Docs and sections are production's (same docs source); variants only add what differs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rag_assets.lib.ingest import embed, stages as ingest
from rag_assets.lib.evaluate import pipeline as evaluate
from rag_assets.lib.experiments import pricing
from rag_assets.lib.evaluate.eval_data import EvalFiles
from rag_assets.lib.evaluate.judge import JudgeCache
from rag_assets.lib.evaluate.metrics import percentiles, summarize as metrics_summarize
from rag_assets.lib.retrieve.retriever import Retriever
from rag_assets.lib.settings import Settings, local_model_exists
from rag_assets.lib.finetune import model_dir
from rag_assets.lib.store import Layout, copy_file, read_json, read_table, table_metadata, write_json, write_table
from rag_assets.lib.experiments.sweep import EXTRACTIVE, ROUTED, Variant

SCORE_KEYS = ("value", "ci95", "n")
LOWEST_QUALITY = 1.0  # the judge rubric's lowest score


@dataclass(frozen=True)
class ChunkingLayout(Layout):
    """A chunking reads production's sections: the docs source is the same, so nothing is re-parsed."""

    production: Layout = None

    @property
    def sections(self) -> Path:
        return self.production.sections


@dataclass(frozen=True)
class EmbeddingLayout(Layout):
    """An embedding reads its chunking's chunks and shares its lexical index; it owns vectors and LanceDB."""

    chunking: Layout = None

    @property
    def chunks(self) -> Path:
        return self.chunking.chunks

    @property
    def tantivy(self) -> Path:
        return self.chunking.tantivy


def root(data_dir: Path) -> Path:
    return Path(data_dir) / "experiments"


def chunking_layout(data_dir: Path, chunking_key: str) -> ChunkingLayout:
    return ChunkingLayout(root(data_dir) / "chunkings" / chunking_key, production=Layout(Path(data_dir)))


def embedding_layout(data_dir: Path, embedding_key: str, chunking_key: str) -> EmbeddingLayout:
    return EmbeddingLayout(root(data_dir) / "embeddings" / embedding_key, chunking=chunking_layout(data_dir, chunking_key))


def variant_dir(data_dir: Path, key: str) -> Path:
    return root(data_dir) / "variants" / key


# Production assets the experiments read, in the order they are built.
UPSTREAM = ("docs", "sections", "eval_questions", "reference_answers")


def missing_upstream(data_dir: Path) -> list[str]:
    """The production assets a sweep reads that this data dir lacks (all of them on a fresh data dir)."""
    layout, files = Layout(Path(data_dir)), EvalFiles(Layout(Path(data_dir)))
    have = {"docs": layout.docs, "sections": layout.sections, "eval_questions": files.questions,
            "reference_answers": files.references}
    missing = [name for name in UPSTREAM if not have[name].exists()]
    # Downstream of anything rebuilt is rebuilt too, so the set stays consistent.
    return list(UPSTREAM[UPSTREAM.index(missing[0]):]) if missing else []


def table_paths(data_dir: Path) -> dict[str, Path]:
    r = root(data_dir)
    return {
        "json": r / "experiments_table.json",
        "csv": r / "experiments_table.csv",
        "plot_chunk_size": r / "plots" / "score_vs_chunk_size.png",
        "plot_num_chunks": r / "plots" / "score_vs_num_chunks.png",
    }


# --- shared work -------------------------------------------------------------------------------


def build_chunking(settings: Settings, chunking_key: str, chunk_size: int, chunk_overlap: int) -> dict:
    layout = chunking_layout(settings.data_dir, chunking_key)
    if not layout.sections.exists():
        raise FileNotFoundError(f"{layout.sections} does not exist yet: materialize `sections` first")
    stats = ingest.build_chunks(layout, chunk_size, chunk_overlap)
    stats["lexical"] = ingest.build_lexical_index(layout)
    return stats


def build_embedding(settings: Settings, embedding_key: str, chunking_key: str, model: str) -> dict:
    """Embed one chunking with one model (reusing vectors by chunk id), then sync its LanceDB table."""
    layout = embedding_layout(settings.data_dir, embedding_key, chunking_key)
    model = model_dir.resolve(settings.data_dir, model)  # `finetuned` / `finetuned-adapter`: the committed model dir
    missing = local_model_exists(model)  # before any Ray or embedding work
    if missing:
        raise ValueError(f"experiment embedding {embedding_key}: {missing}")
    _seed_from_production(layout, settings, model)
    stats = ingest.build_embeddings(layout, model, settings.ray_address, settings.ray_min_chunks)
    stats["vector"] = ingest.build_vector_index(layout)
    return stats


def _seed_from_production(layout: EmbeddingLayout, settings: Settings, model: str) -> None:
    """Chunk ids hash source, text and splitter settings, so production's vectors for the same chunking
    and model are exactly reusable: copy them in before the first run instead of re-embedding."""
    prod = Layout(settings.data_dir).embeddings
    if layout.embeddings.exists() or not prod.exists():
        return
    built = table_metadata(prod).get("model")
    if built != model and not (built and embed.is_adapter(model) and embed.document_model(model) == embed.document_model(built)):
        return
    if built != model:
        # A query adapter over production's model: its document vectors are production's, stamped with its name.
        write_table(layout.embeddings, read_table(prod), metadata={"model": model})
        return
    copy_file(prod, layout.embeddings)


# --- one variant ------------------------------------------------------------------------------


def run_variant(settings: Settings, variant: Variant, eval_path: Path | str | None = None) -> dict:
    """Evaluate one variant on the eval set (RAG_EVAL_PATH) with its LLM and the shared, cached judge."""
    if variant.llm not in (EXTRACTIVE, ROUTED) and not settings.llm_endpoint:
        raise ValueError(
            f"variant {variant.key} uses llm {variant.llm!r}: set OPENAI_BASE_URL to an endpoint serving it, "
            f"or sweep llm: [{EXTRACTIVE}]"
        )
    files = EvalFiles(Layout(settings.data_dir))  # production's eval files: the same questions and references
    questions = evaluate.load_questions(eval_path or settings.eval_path)
    references = None
    if files.references.exists():  # written by the judge LLM for rows without one (online only)
        references = {r["question"]: r["reference_answer"] for r in read_json(files.references)["rows"] if r["reference_answer"]}
    # One cache across variants, runs and production: identical prompts reuse answers, identical answers judgements.
    generator = routed_generator(settings) if variant.llm == ROUTED else evaluate.make_generator(
        variant.llm, cache=JudgeCache(files.judge_cache), prompt=variant.prompt)
    judge = evaluate.make_judge(files.judge_cache, settings.judge_model)
    return evaluate_variant(settings, variant, questions, generator, judge, references)


def evaluate_variant(
    settings: Settings, variant: Variant, questions: list[dict], generator, judge, references=None
) -> dict:
    """Retrieve and answer every question with this variant, score it, and keep the row on disk."""
    layout = embedding_layout(settings.data_dir, variant.embedding_key, variant.chunking_key)
    retriever = Retriever.open(layout.root, **retrieval_params(settings, variant))  # the variant's committed pair
    embed.cached_model(retriever.model_name)  # load before timing, so latency is per query only
    t0 = time.perf_counter()
    responses = evaluate.generate_responses(retriever, questions, generator, mode=variant.retrieval, num_chunks=variant.num_chunks)
    seconds = time.perf_counter() - t0
    retrieval = evaluate.score_retrieval(questions, responses)
    quality = evaluate.score_quality(responses, judge, references)
    row = summarize(variant, responses, retrieval, quality, seconds, generator.name, judge.name)
    row |= {"judge_calls": quality.get("judge_calls", 0), "judgements_cached": quality.get("cached", 0)}
    row["embedding_model_path"] = retriever.model_name  # what an alias (finetuned) resolved to: promotion pins it
    out = variant_dir(settings.data_dir, variant.key)
    write_json(out / "result.json", row)
    write_json(out / "responses.json", with_scores(responses, retrieval, quality))
    return row


def with_scores(responses: list[dict], retrieval: dict, quality: dict) -> list[dict]:
    """Each response with its own scores, so that variants can be compared question by question."""
    return [
        r | {"retrieval_hit": ret["hit"], "quality": q["score"], "quality_status": q["status"],
             "quality_for_ranking": quality_for_ranking(q)}
        for r, ret, q in zip(responses, retrieval["per_question"], quality["per_question"])
    ]


def quality_for_ranking(q: dict) -> float | None:
    """A question's quality when variants are ranked: a failed or unscored answer counts as the rubric's
    lowest score (1), so leaving hard questions unanswered never raises a variant's mean; questions without
    a reference answer are left out (None) for every variant alike."""
    if q["status"] == "no_reference":
        return None
    return q["score"] if q["status"] == "scored" else LOWEST_QUALITY


def retrieval_params(settings: Settings, variant: Variant) -> dict:
    """The variant's fusion and rerank parameters; the tag classifier is production's (trained on its questions)."""
    from rag_assets.lib.retrieve.retriever import HybridParams, RerankParams

    return {
        "hybrid": HybridParams(rrf_k=variant.rrf_k, semantic_weight=variant.hybrid_semantic_weight,
                               lexical_weight=variant.hybrid_lexical_weight),
        "rerank": RerankParams(variant.rerank, variant.rerank_candidates, variant.rerank_threshold,
                               model_dir=str(Path(settings.data_dir) / "models" / "tag_classifier"),
                               title_boost=settings.bm25_title_boost),
    }


def summarize(variant: Variant, responses: list[dict], retrieval: dict, quality: dict, seconds: float, generator: str, judge: str) -> dict:
    """The variant's table row. Latency is per query (p50/p95 of each question's retrieval + answer time), not
    the evaluation's wall time over the number of questions (answers overlap, so that is throughput)."""
    n = max(len(responses), 1)
    prompt = sum(r.get("prompt_tokens") or 0 for r in responses) / n
    completion = sum(r.get("completion_tokens") or 0 for r in responses) / n
    latency = percentiles([r.get("query_latency_s", r.get("latency_s")) for r in responses])
    ranking = [quality_for_ranking(q) for q in quality["per_question"]]
    return {
        "variant": variant.key,
        **variant.params(),
        "chunking": variant.chunking_key,
        "embedding": variant.embedding_key,
        "retrieval_score": _score(retrieval["retrieval_score"]),
        "quality_score": _score(quality["quality_score"]),
        "quality_missing": quality["quality_score"].get("missing", 0),
        "quality_for_ranking": _score(metrics_summarize(ranking)),
        "metrics": {k: _score(v) for k, v in retrieval["metrics"].items()},
        "prompt_tokens_per_query": round(prompt, 1),
        "completion_tokens_per_query": round(completion, 1),
        "cost_per_query": routed_cost(responses) if variant.llm == ROUTED
        else pricing.cost_per_query(variant.llm, prompt, completion),
        "latency_p50_s": latency["p50"],
        "latency_p95_s": latency["p95"],
        "eval_seconds": round(seconds, 3),
        "questions": len(responses),
        "failed": sum(1 for r in responses if r.get("failed")),
        "generator": generator,
        "judge": judge,
    }


def routed_generator(settings: Settings):
    """`llm: routed`: the production router picks the open or the strong LLM per question."""
    from rag_assets.lib.route.router import RoutedGenerator, load_router

    return RoutedGenerator(load_router(settings))


def routed_cost(responses: list[dict]) -> float | None:
    """Mean of each answer's cost at the price of the LLM that gave it; None when a price is unknown."""
    from rag_assets.lib.route.report import response_cost

    costs = [response_cost(r) for r in responses]
    return None if not costs or any(c is None for c in costs) else sum(costs) / len(costs)


def _score(s: dict) -> dict:
    return {k: s.get(k) for k in SCORE_KEYS}
