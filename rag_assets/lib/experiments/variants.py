"""Experiment variants on disk and their evaluation (the table is in table.py, promotion in promotion.py).

Under <data dir>/experiments/:
  chunkings/<cs700-ov50>/            chunks + Tantivy index of one (chunk size, overlap)
  embeddings/<cs700-ov50__model>/    embeddings + LanceDB table of one (chunking, model)
  variants/<variant key>/            result.json (its table row) and responses.json of one variant
  experiments_table.json / .csv, plots/*.png
Docs and sections are production's (same docs source); variants only add what differs.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from rag_assets.lib.ingest import embed, stages as ingest
from rag_assets.lib.evaluate import pipeline as evaluate
from rag_assets.lib.experiments import pricing
from rag_assets.lib.evaluate.eval_data import EvalFiles
from rag_assets.lib.retrieve.retriever import Retriever
from rag_assets.lib.settings import Settings
from rag_assets.lib.finetune import model_dir
from rag_assets.lib.store import Layout, read_json, read_table, table_metadata, write_json, write_table
from rag_assets.lib.experiments.sweep import EXTRACTIVE, Variant

SCORE_KEYS = ("value", "ci95", "n")


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
    layout.assets.mkdir(parents=True, exist_ok=True)
    if built != model:
        # A query adapter over production's model: its document vectors are production's, stamped with its name.
        write_table(layout.embeddings, read_table(prod), metadata={"model": model})
        return
    tmp = layout.embeddings.with_suffix(".seed.tmp")
    shutil.copyfile(prod, tmp)
    tmp.replace(layout.embeddings)


# --- one variant ------------------------------------------------------------------------------


def run_variant(settings: Settings, variant: Variant, eval_path: Path | str | None = None) -> dict:
    """Evaluate one variant on the eval set (RAG_EVAL_PATH) with its LLM and the shared, cached judge."""
    if variant.llm != EXTRACTIVE and not os.environ.get("OPENAI_BASE_URL"):
        raise ValueError(
            f"variant {variant.key} uses llm {variant.llm!r}: set OPENAI_BASE_URL to an endpoint serving it, "
            f"or sweep llm: [{EXTRACTIVE}]"
        )
    files = EvalFiles(Layout(settings.data_dir))  # production's eval files: the same questions and references
    questions = evaluate.load_questions(eval_path or evaluate.EvalConfig.from_env().eval_path)
    references = None
    if files.references.exists():  # written by the judge LLM for rows without one (online only)
        references = {r["question"]: r["reference_answer"] for r in read_json(files.references)["rows"] if r["reference_answer"]}
    generator = evaluate.make_generator(variant.llm)
    judge = evaluate.make_judge(files.judge_cache)  # one cache across variants, runs and production
    return evaluate_variant(settings, variant, questions, generator, judge, references)


def evaluate_variant(
    settings: Settings, variant: Variant, questions: list[dict], generator, judge, references=None
) -> dict:
    """Retrieve and answer every question with this variant, score it, and keep the row on disk."""
    layout = embedding_layout(settings.data_dir, variant.embedding_key, variant.chunking_key)
    retriever = Retriever.from_layout(layout)
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
    write_json(out / "responses.json", responses)
    return row


def summarize(variant: Variant, responses: list[dict], retrieval: dict, quality: dict, seconds: float, generator: str, judge: str) -> dict:
    n = max(len(responses), 1)
    prompt = sum(r.get("prompt_tokens") or 0 for r in responses) / n
    completion = sum(r.get("completion_tokens") or 0 for r in responses) / n
    return {
        "variant": variant.key,
        **variant.params(),
        "chunking": variant.chunking_key,
        "embedding": variant.embedding_key,
        "retrieval_score": _score(retrieval["retrieval_score"]),
        "quality_score": _score(quality["quality_score"]),
        "quality_missing": quality["quality_score"].get("missing", 0),
        "metrics": {k: _score(v) for k, v in retrieval["metrics"].items()},
        "prompt_tokens_per_query": round(prompt, 1),
        "completion_tokens_per_query": round(completion, 1),
        "cost_per_query": pricing.cost_per_query(variant.llm, prompt, completion),
        "latency_per_query": round(seconds / n, 4),
        "questions": len(responses),
        "failed": sum(1 for r in responses if r.get("failed")),
        "generator": generator,
        "judge": judge,
    }


def _score(s: dict) -> dict:
    return {k: s.get(k) for k in SCORE_KEYS}
