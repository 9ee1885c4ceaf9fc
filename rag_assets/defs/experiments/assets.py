"""Experiment assets (issue 6): the sweep's variants as partitions that share upstream work, and the table.

experiment_chunks (one partition per chunking) -> experiment_embeddings (per chunking x model)
-> experiment_results (per variant) -> experiments_table. Static partition mappings tie each level to
the next, so variants differing only in num_chunks, retrieval or llm share one embedding partition.
Partitions come from the sweep file (RAG_SWEEP_PATH) when the definitions load.
"""

import base64

import dagster as dg

from rag_assets.defs.evaluate.assets import LLM_KINDS, score_values
from rag_assets.defs.metadata import stage_metadata
from rag_assets.defs.resources import RagSettings
from rag_assets.lib.experiments import comparison, promotion, variants as ex
from rag_assets.lib.settings import Settings
from rag_assets.lib.experiments.sweep import Sweep, load_sweep

GROUP = "experiments"


def build_experiment_assets(sweep: Sweep) -> list[dg.AssetsDefinition]:
    chunkings = dg.StaticPartitionsDefinition(list(sweep.chunkings))
    embeddings = dg.StaticPartitionsDefinition(list(sweep.embeddings))
    variants = dg.StaticPartitionsDefinition([v.key for v in sweep.variants])
    to_embeddings = {c: [e for e, (c2, _) in sweep.embeddings.items() if c2 == c] for c in sweep.chunkings}
    to_variants = {e: [v.key for v in sweep.variants if v.embedding_key == e] for e in sweep.embeddings}

    @dg.asset(partitions_def=chunkings, deps=["sections"], group_name=GROUP, kinds={"python", "tantivy"})
    def experiment_chunks(context: dg.AssetExecutionContext, rag: RagSettings) -> dg.MaterializeResult:
        """Chunks and a BM25 index for one (chunk size, overlap) of the sweep, split from production's sections."""
        size, overlap = sweep.chunkings[context.partition_key]
        stats = ex.build_chunking(rag.settings(), context.partition_key, size, overlap)
        path = ex.chunking_layout(rag.settings().data_dir, context.partition_key).root
        return dg.MaterializeResult(
            metadata=stage_metadata(stats, stats["chunks"], path, chunk_size=size, chunk_overlap=overlap)
        )

    @dg.asset(
        partitions_def=embeddings,
        deps=[dg.AssetDep(experiment_chunks, partition_mapping=dg.StaticPartitionMapping(to_embeddings))],
        group_name=GROUP,
        kinds={"ray", "pytorch", "lancedb"},
        pool="embedding",
    )
    def experiment_embeddings(context: dg.AssetExecutionContext, rag: RagSettings) -> dg.MaterializeResult:
        """One embedding run per (chunking, model), then its LanceDB table; every variant on it reuses both."""
        chunking, model = sweep.embeddings[context.partition_key]
        stats = ex.build_embedding(rag.settings(), context.partition_key, chunking, model)
        path = ex.embedding_layout(rag.settings().data_dir, context.partition_key, chunking).root
        return dg.MaterializeResult(
            metadata=stage_metadata(
                stats, stats["chunks"], path, model=model, chunking=chunking, device=stats["device"],
                method=stats["method"], chunks_embedded=stats["chunks_embedded"], chunks_reused=stats["chunks_reused"],
            )
        )

    @dg.asset(
        partitions_def=variants,
        deps=[
            dg.AssetDep(experiment_embeddings, partition_mapping=dg.StaticPartitionMapping(to_variants)),
            "eval_questions",
            "reference_answers",
        ],
        group_name=GROUP,
        kinds={"python", *LLM_KINDS},
    )
    def experiment_results(context: dg.AssetExecutionContext, rag: RagSettings) -> dg.MaterializeResult:
        """One variant answered and scored on the eval set: retrieval_score, quality_score, k-metrics, cost."""
        row = ex.run_variant(rag.settings(), sweep.variant(context.partition_key))
        return dg.MaterializeResult(metadata=_row_metadata(row))

    @dg.asset(deps=[experiment_results], group_name=GROUP, kinds={"python"})
    def experiments_table(context: dg.AssetExecutionContext, rag: RagSettings) -> dg.MaterializeResult:
        """One row per variant, the best one (and whether a paired test says it beats the runner-up), plots;
        JSON/CSV on disk."""
        data_dir = rag.settings().data_dir
        rows, missing = comparison.collect_rows(sweep, data_dir)
        if missing:
            context.log.warning(f"{len(missing)} variant(s) not evaluated yet: {', '.join(missing)}")
        table = comparison.write_table(data_dir, sweep, rows, missing)
        return dg.MaterializeResult(metadata=_table_metadata(table, ex.table_paths(data_dir)))

    return [experiment_chunks, experiment_embeddings, experiment_results, experiments_table]


def _row_metadata(row: dict) -> dict:
    """Numbers as float/int metadata (the Plots tab charts them over materializations), the rest as text."""
    md = {k: dg.MetadataValue.json(row[k]) for k in ("retrieval_score", "quality_score", "metrics")}
    md |= score_values("retrieval_score", row["retrieval_score"]) | score_values("quality_score", row["quality_score"])
    if row.get("quality_for_ranking"):
        md |= score_values("quality_for_ranking", row["quality_for_ranking"])
    md |= {k: dg.MetadataValue.text(str(row[k])) for k in ("retrieval", "llm", "generator", "judge")}
    md |= {k: dg.MetadataValue.int(int(row.get(k) or 0))
           for k in ("num_chunks", "questions", "failed", "quality_missing", "judge_calls", "judgements_cached")}
    for k in ("cost_per_query", "latency_p50_s", "latency_p95_s", "prompt_tokens_per_query",
              "completion_tokens_per_query"):
        md[k] = _float(row.get(k))
    return md


def _table_metadata(table: dict, paths: dict) -> dict:
    best = table["best"]
    paired = best.get("paired") or {}
    md = {
        "dagster/row_count": dg.MetadataValue.int(len(table["rows"])),
        "table": dg.MetadataValue.md(comparison.markdown(table["rows"], best)),
        "best_variant": dg.MetadataValue.text(best["variant"]),
        "best_rule": dg.MetadataValue.text(best["rule"]),
        "beats_runner_up": dg.MetadataValue.bool(bool(best["beats_runner_up"])),
        "lead": _float(best.get("lead")),
        "paired_diff": _float(paired.get("diff")),
        "paired_p_value": _float(paired.get("p_value")),
        "paired_questions": dg.MetadataValue.int(int(paired.get("n") or 0)),
        "embedding_runs": dg.MetadataValue.int(table["embedding_runs"]),
        "variants_missing": dg.MetadataValue.int(len(table["missing"])),
        "json_path": dg.MetadataValue.path(str(paths["json"])),
        "csv_path": dg.MetadataValue.path(str(paths["csv"])),
    }
    best_row = next((r for r in table["rows"] if r["variant"] == best["variant"]), None)
    if best_row:
        md |= {f"best_{k}": v for k, v in score_values("quality_score", best_row["quality_score"]).items()}
        md |= {f"best_{k}": v for k, v in score_values("retrieval_score", best_row["retrieval_score"]).items()}
    for name in ("plot_chunk_size", "plot_num_chunks"):
        png = base64.b64encode(paths[name].read_bytes()).decode()
        md[name] = dg.MetadataValue.md(f"![{name}](data:image/png;base64,{png})")
    return md


def _float(value) -> dg.MetadataValue:
    # NaN, not a missing key or text, so the Plots tab keeps one numeric series per key.
    return dg.MetadataValue.float(float("nan") if value is None else float(value))


def materialize_sweep(assets: list, sweep: Sweep, resources: dict, instance: dg.DagsterInstance | None = None) -> dict:
    """Run every partition of a sweep through Dagster in dependency order, then the table (what a UI backfill
    of the experiments group does); the `rag-assets experiments --run` path. Returns the table's metadata."""
    chunks, embeddings, results, table = assets
    steps = [(chunks, k) for k in sweep.chunkings] + [(embeddings, k) for k in sweep.embeddings]
    steps += [(results, v.key) for v in sweep.variants] + [(table, None)]
    for asset, key in steps:
        res = dg.materialize([asset], partition_key=key, resources=resources, instance=instance)
        if not res.success:
            raise RuntimeError(f"materializing {asset.key.to_user_string()} {key or ''} failed")
    return res.asset_materializations_for_node(table.op.name)[0].metadata


class PromoteConfig(dg.Config):
    variant: str  # a variant key, e.g. cs700-ov50__minilm__hybrid__k5__extractive
    force: bool = False  # promote even when the paired test does not say the variant beats production
    gate_metric: str = promotion.GATE_METRIC  # the per-question metric the gate compares


@dg.op
def promote(context: dg.OpExecutionContext, config: PromoteConfig, rag: RagSettings) -> None:
    """Write <data dir>/production.json, gated like `rag-assets experiments --promote`. Settings.from_env reads it,
    so the docs_changed sensor sees the built indexes differ from the configuration and re-materializes production
    (then evaluation) with it."""
    data_dir = rag.settings().data_dir
    verdict = promotion.gate(data_dir, config.variant, config.gate_metric)
    if not verdict["ok"] and not config.force:
        raise dg.Failure(description=f"refusing to promote {config.variant}: {verdict['reason']} (force: true "
                                     "promotes anyway)")
    context.log.info(("gate: " if verdict["ok"] else "gate overridden by force: ") + verdict["reason"])
    production = promotion.promote(data_dir, config.variant, SWEEP)
    context.log.info(f"promoted {config.variant}: {production}")
    if promotion.env_overrides():
        context.log.warning(f"{', '.join(promotion.env_overrides())} set in the environment still win over the promoted values")


@dg.job(description="Make one experiment variant the production configuration (config: variant: KEY).")
def promote_variant():
    promote()


SWEEP = load_sweep(settings=Settings.from_env())
experiment_chunks, experiment_embeddings, experiment_results, experiments_table = build_experiment_assets(SWEEP)
JOBS = [promote_variant]
