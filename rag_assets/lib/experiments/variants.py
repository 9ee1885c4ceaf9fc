"""Experiment variants on disk, their evaluation, the comparison table and promotion.

Under <data dir>/experiments/:
  chunkings/<cs700-ov50>/            chunks + Tantivy index of one (chunk size, overlap)
  embeddings/<cs700-ov50__model>/    embeddings + LanceDB table of one (chunking, model)
  variants/<variant key>/            result.json (its table row) and responses.json of one variant
  experiments_table.json / .csv, plots/*.png
Docs and sections are production's (same docs source); variants only add what differs.
"""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from rag_assets.lib.ingest import embed, stages as ingest
from rag_assets.lib.evaluate import pipeline as evaluate
from rag_assets.lib.experiments import pricing
from rag_assets.lib.evaluate.eval_data import EvalFiles
from rag_assets.lib.retrieve.retriever import Retriever
from rag_assets.lib.settings import PRODUCTION_FILE, Settings
from rag_assets.lib.store import Layout, read_json, save_figure, table_metadata, write_json
from rag_assets.lib.experiments.sweep import EXTRACTIVE, KEYS, Sweep, Variant

SCORE_KEYS = ("value", "ci95", "n")
BEST_RULE = "highest quality_score; equal quality_score values are decided by retrieval_score"


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
    _seed_from_production(layout, settings, model)
    stats = ingest.build_embeddings(layout, model, settings.ray_address, settings.ray_min_chunks)
    stats["vector"] = ingest.build_vector_index(layout)
    return stats


def _seed_from_production(layout: EmbeddingLayout, settings: Settings, model: str) -> None:
    """Chunk ids hash source, text and splitter settings, so production's vectors for the same chunking
    and model are exactly reusable: copy them in before the first run instead of re-embedding."""
    prod = Layout(settings.data_dir).embeddings
    if layout.embeddings.exists() or not prod.exists() or table_metadata(prod).get("model") != model:
        return
    layout.assets.mkdir(parents=True, exist_ok=True)
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


# --- the table -------------------------------------------------------------------------------


def collect_rows(sweep: Sweep, data_dir: Path) -> tuple[list[dict], list[str]]:
    """The rows of the sweep's evaluated variants, and the keys of those not evaluated yet."""
    rows, missing = [], []
    for v in sweep.variants:
        path = variant_dir(data_dir, v.key) / "result.json"
        (rows.append(read_json(path)) if path.exists() else missing.append(v.key))
    return rows, missing


def _value(row: dict, metric: str) -> float:
    v = row[metric]["value"]
    return -math.inf if v is None or (isinstance(v, float) and math.isnan(v)) else v


def choose_best(rows: list[dict]) -> dict:
    """The best variant by BEST_RULE, and whether its lead is larger than the CIs (they do not overlap)."""
    if not rows:
        raise ValueError("no evaluated variants: materialize experiment_results first")
    ranked = sorted(rows, key=lambda r: (-_value(r, "quality_score"), -_value(r, "retrieval_score"), r["variant"]))
    best = ranked[0]
    out = {"variant": best["variant"], "rule": BEST_RULE, "runner_up": None, "decided_by": "quality_score",
           "lead": None, "lead_exceeds_ci": None}
    if len(ranked) == 1:
        return out
    second = ranked[1]
    metric = "quality_score" if _value(best, "quality_score") != _value(second, "quality_score") else "retrieval_score"
    lead = _value(best, metric) - _value(second, metric)
    b_ci, s_ci = best[metric]["ci95"], second[metric]["ci95"]
    exceeds = bool(b_ci and s_ci and b_ci[0] is not None and s_ci[1] is not None and b_ci[0] > s_ci[1])
    return out | {"runner_up": second["variant"], "decided_by": metric,
                  "lead": None if math.isinf(lead) or math.isnan(lead) else round(lead, 4), "lead_exceeds_ci": exceeds}


def best_sentence(best: dict) -> str:
    if best["runner_up"] is None:
        return f"Best variant: `{best['variant']}` (the only one evaluated). Rule: {best['rule']}."
    if not best["lead"]:
        return (
            f"Best variant: `{best['variant']}`, tied with `{best['runner_up']}` on quality_score and retrieval_score "
            f"(first by key): no clear win. Rule: {best['rule']}."
        )
    verdict = (
        "its lead is larger than the CIs (the 95% CIs do not overlap)"
        if best["lead_exceeds_ci"]
        else "its lead is within the CIs (the 95% CIs overlap): not a clear win"
    )
    return (
        f"Best variant: `{best['variant']}`, ahead of `{best['runner_up']}` by {best['lead']} "
        f"{best['decided_by']}; {verdict}. Rule: {best['rule']}."
    )


FLAT_COLUMNS = ("variant", *KEYS)


def flat_row(row: dict) -> dict:
    """One CSV line: parameters, both scores with CI bounds and n, k-metric values, per-query figures."""
    out = {k: row[k] for k in FLAT_COLUMNS}
    for name in ("retrieval_score", "quality_score"):
        s = row[name]
        ci = s["ci95"] or [None, None]
        out |= {name: s["value"], f"{name}_ci_low": ci[0], f"{name}_ci_high": ci[1], f"{name}_n": s["n"]}
    out |= {k: v["value"] for k, v in row["metrics"].items()}
    for k in ("prompt_tokens_per_query", "completion_tokens_per_query", "cost_per_query", "latency_per_query", "failed"):
        out[k] = row[k]
    return out


def to_csv(rows: list[dict]) -> str:
    flat = [flat_row(r) for r in rows]
    columns = list(dict.fromkeys(c for r in flat for c in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return buf.getvalue()


def _fmt(s: dict, digits: int = 3) -> str:
    if s["value"] is None:
        return "n/a"
    ci = s["ci95"]
    return f"{s['value']:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci and None not in ci else f"{s['value']:.{digits}f}"


def markdown(rows: list[dict], best: dict | None = None) -> str:
    head = ["variant", "chunk", "model", "retrieval", "k", "llm", "retrieval_score [95% CI]", "quality_score [95% CI]",
            "hit@1", "mrr", "tokens in/out", "$/query", "s/query"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        m = r["metrics"]
        cost = "n/a" if r["cost_per_query"] is None else f"{r['cost_per_query']:.6f}"
        cells = [
            ("**" + r["variant"] + "**") if best and r["variant"] == best["variant"] else r["variant"],
            f"{r['chunk_size']}/{r['chunk_overlap']}", r["embedding_model"], r["retrieval"], str(r["num_chunks"]), r["llm"],
            _fmt(r["retrieval_score"]), _fmt(r["quality_score"], 2),
            _fmt({"value": m.get("hit@1", {}).get("value"), "ci95": None}), _fmt({"value": m.get("mrr", {}).get("value"), "ci95": None}),
            f"{r['prompt_tokens_per_query']:.0f}/{r['completion_tokens_per_query']:.0f}", cost, f"{r['latency_per_query']:.3f}",
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + ("\n\n" + best_sentence(best) if best else "")


def plot(rows: list[dict], by: str, path: Path) -> Path:
    """retrieval_score and quality_score against `by` (chunk_size or num_chunks): one line per retrieval mode,
    the mean over the other parameters, with every variant as a dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, metric in zip(axes, ("retrieval_score", "quality_score")):
        for mode in sorted({r["retrieval"] for r in rows}):
            pts = [(r[by], r[metric]["value"]) for r in rows if r["retrieval"] == mode and r[metric]["value"] is not None]
            if not pts:
                continue
            xs = sorted({x for x, _ in pts})
            means = [sum(y for x2, y in pts if x2 == x) / sum(1 for x2, _ in pts if x2 == x) for x in xs]
            (line,) = ax.plot(xs, means, marker="o", label=mode)
            ax.scatter([x for x, _ in pts], [y for _, y in pts], s=12, alpha=0.4, color=line.get_color())
        ax.set_xticks(sorted({r[by] for r in rows}))
        ax.set_xlabel(by)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0].legend(title="retrieval", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def write_table(data_dir: Path, sweep: Sweep, rows: list[dict], missing: list[str]) -> dict:
    """Write the table (JSON, CSV, plots) and return it with the choice of the best variant."""
    rows = sorted(rows, key=lambda r: (-_value(r, "quality_score"), -_value(r, "retrieval_score"), r["variant"]))
    best = choose_best(rows)
    table = {
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "sweep": str(sweep.path),
        "variants": len(rows),
        "missing": missing,
        "embedding_runs": len({r["embedding"] for r in rows}),
        "chunkings": len({r["chunking"] for r in rows}),
        "best": best,
        "rows": rows,
    }
    paths = table_paths(data_dir)
    write_json(paths["json"], table)
    _write_text(paths["csv"], to_csv(rows))
    plot(rows, "chunk_size", paths["plot_chunk_size"])
    plot(rows, "num_chunks", paths["plot_num_chunks"])
    return table


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def read_table(data_dir: Path) -> dict:
    path = table_paths(data_dir)["json"]
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist yet: materialize `experiments_table` first")
    return read_json(path)


# --- promotion -------------------------------------------------------------------------------


def promote(data_dir: Path, key: str, sweep: Sweep | None = None) -> dict:
    """Make a variant the production configuration: <data dir>/production.json, read by Settings.from_env.

    The variant comes from its evaluated result (or the sweep). Environment variables still win over it.
    """
    result = variant_dir(data_dir, key) / "result.json"
    if result.exists():
        params = {k: read_json(result)[k] for k in KEYS}
    else:
        try:
            params = (sweep.variant(key) if sweep else None).params()
        except (KeyError, AttributeError):
            known = sorted(p.name for p in (root(data_dir) / "variants").glob("*") if (p / "result.json").exists())
            raise ValueError(f"unknown variant {key!r}; evaluated variants: {', '.join(known) or 'none'}") from None
    config = {"variant": key, **params, "promoted_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    write_json(Path(data_dir) / PRODUCTION_FILE, config)
    return config


def production_drift(settings: Settings) -> list[str]:
    """How the built production index differs from the configured (e.g. just promoted) settings; [] if not built."""
    prod = Layout(settings.data_dir)
    drift = []
    if prod.chunks.exists():
        meta = table_metadata(prod.chunks)
        built = (meta.get("chunk_size"), meta.get("chunk_overlap"))
        if built != (settings.chunk_size, settings.chunk_overlap):
            drift.append(f"chunks built with {built[0]}/{built[1]}, configured {settings.chunk_size}/{settings.chunk_overlap}")
    if prod.embeddings.exists():
        model = table_metadata(prod.embeddings).get("model")
        if model != settings.embedding_model:
            drift.append(f"embeddings built with {model}, configured {settings.embedding_model}")
    return drift


ENV_OVER_PROMOTED = {"chunk_size": "RAG_CHUNK_SIZE", "chunk_overlap": "RAG_CHUNK_OVERLAP",
                     "embedding_model": "RAG_EMBEDDING_MODEL", "retrieval": "RAG_RETRIEVAL_MODE",
                     "num_chunks": "RAG_NUM_CHUNKS", "llm": "RAG_LLM_MODEL"}


def env_overrides() -> list[str]:
    """Environment variables set now that win over a promoted value (Settings.from_env reads them first)."""
    return [name for name in ENV_OVER_PROMOTED.values() if os.environ.get(name)]
