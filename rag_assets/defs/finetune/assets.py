"""The `finetuned_embedding_model` asset (issue 14): a few lines over lib/finetune/run.py."""

import base64
from typing import Optional

import dagster as dg

from rag_assets.defs.resources import RagSettings
from rag_assets.lib.finetune.adapter import AdapterConfig
from rag_assets.lib.finetune.run import FinetuneConfig, fine_tune
from rag_assets.lib.finetune.train import TrainConfig
from rag_assets.lib.ray_cluster import ensure_ray

GROUP = "finetune"


class FinetuneRunConfig(dg.Config):
    batch_size: int = 32  # MNRL's global batch: batch_size - 1 in-batch negatives per question (+ hard ones)
    epochs: int = 1
    max_steps: int = 0  # 0: every full batch of every epoch
    learning_rate: float = 2e-5
    max_seq_length: int = 128
    hard_negatives: bool = True
    seed: int = 42
    workers: int = 0  # 0: one Ray Train worker per GPU, else one CPU worker
    full: bool = True
    adapter: bool = True
    adapter_epochs: int = 20
    adapter_batch_size: Optional[int] = None  # default: batch_size
    mining_mode: str = "hybrid"

    def finetune_config(self) -> FinetuneConfig:
        train = TrainConfig(batch_size=self.batch_size, epochs=self.epochs, max_steps=self.max_steps,
                            learning_rate=self.learning_rate, max_seq_length=self.max_seq_length,
                            hard_negatives=self.hard_negatives, seed=self.seed, workers=self.workers)
        adapter = AdapterConfig(batch_size=self.adapter_batch_size or self.batch_size, epochs=self.adapter_epochs,
                                hard_negatives=self.hard_negatives, seed=self.seed)
        return FinetuneConfig(train=train, adapter=adapter, full=self.full, with_adapter=self.adapter,
                              mining_mode=self.mining_mode)


@dg.asset(group_name=GROUP, deps=["synthetic_questions", "vector_index", "lexical_index"],
          kinds={"ray", "pytorch"}, pool="embedding")
def finetuned_embedding_model(context: dg.AssetExecutionContext, config: FinetuneRunConfig,
                              rag: RagSettings) -> dg.MaterializeResult:
    """The embedding model fine-tuned on the train split of `synthetic_questions` with hard negatives mined from
    our own indexes (MultipleNegativesRankingLoss on Ray Train), plus a query-side adapter over the frozen model.
    Model directories under <data dir>/models/ (aliases `finetuned`, `finetuned-adapter` for the sweep);
    nothing in production changes until a variant using them wins the paired test at promotion."""
    settings = rag.settings()
    cfg = config.finetune_config()
    if cfg.full:
        context.log.info(f"Ray: {ensure_ray(settings.ray_address)}")
    out = fine_tune(settings.data_dir, settings.embedding_model, cfg, settings.docs_base_url)
    context.log.info(f"seconds per stage: {out['timings']}")
    return dg.MaterializeResult(data_version=dg.DataVersion(out["data_version"]), metadata=finetune_metadata(out))


def finetune_metadata(out: dict) -> dict:
    """Numbers as float/int metadata (plottable across materializations), the curves as an inline PNG."""
    md = {
        "base_model": out["base_model"], "data_version": out["data_version"], "loss": out["loss"],
        "pairs": dg.MetadataValue.int(out["pairs"]),
        "validation_questions": dg.MetadataValue.int(out["validation_questions"]),
        "pairs_without_hard_negative": dg.MetadataValue.int(out["mining"]["without_negative"]),
        "questions_not_indexed": dg.MetadataValue.int(out["mining"]["skipped_not_indexed"]),
    }
    for metric, value in out["before"].items():
        md[f"base/{metric}"] = dg.MetadataValue.float(float(value))
    for kind, m in out["models"].items():
        md[f"{kind}/path"] = dg.MetadataValue.path(m["path"])
        md[f"{kind}/device"] = m["device"]
        md[f"{kind}/steps"] = dg.MetadataValue.int(m["steps"])
        md[f"{kind}/batch_size"] = dg.MetadataValue.int(m["batch_size"])
        md[f"{kind}/training_seconds"] = dg.MetadataValue.float(float(m["training_seconds"]))
        md[f"{kind}/seconds_per_1k_pairs"] = dg.MetadataValue.float(round(float(m["seconds_per_1k_pairs"]), 3))
        if m["final_loss"] is not None:
            md[f"{kind}/final_loss"] = dg.MetadataValue.float(float(m["final_loss"]))
        for metric, value in m["validation"]["after"].items():
            md[f"{kind}/{metric}"] = dg.MetadataValue.float(float(value))
        diff = m["validation"]["mrr@10_paired"]["diff"]
        if diff is not None:
            md[f"{kind}/mrr@10_gain"] = dg.MetadataValue.float(float(diff))
    for stage, seconds in out["timings"].items():
        md[f"seconds/{stage}"] = dg.MetadataValue.float(float(seconds))
    png = base64.b64encode(out["curves_png"]).decode()
    md["training_curves"] = dg.MetadataValue.md(f"![training curves](data:image/png;base64,{png})")
    return md
