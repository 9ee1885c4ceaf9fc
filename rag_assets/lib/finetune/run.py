"""One fine-tuning run end to end: questions -> hard negatives -> full fine-tune and/or adapter -> validation
-> committed model directories. The `finetuned_embedding_model` asset is a few lines over `fine_tune`."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from rag_assets.lib.evaluate.eval_data import section_texts
from rag_assets.lib.evaluate.metrics import paired_test
from rag_assets.lib.finetune import model_dir, validate
from rag_assets.lib.finetune.adapter import AdapterConfig, fit_adapter
from rag_assets.lib.finetune.mining import mine_triples, retriever_ranker
from rag_assets.lib.finetune.plot import curves_png
from rag_assets.lib.finetune.questions import data_version, read_questions
from rag_assets.lib.finetune.train import LOSS, TrainConfig, fit_full
from rag_assets.lib.ingest import embed
from rag_assets.lib.store import Layout


@dataclass(frozen=True)
class FinetuneConfig:
    train: TrainConfig = field(default_factory=TrainConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    full: bool = True  # the full fine-tune on Ray Train
    with_adapter: bool = True  # the query-side adapter (seconds on CPU)
    mining_mode: str = "hybrid"  # how hard negatives are ranked from our own index
    mining_depth: int = 20


def fine_tune(
    data_dir: Path | str,
    base_model: str,
    config: FinetuneConfig = FinetuneConfig(),
    base_url: str = "",
    retriever=None,
    on_stage: Callable[[str, Path], None] | None = None,
) -> dict:
    """Train on the train split, validate on the validation split, commit the model directories.

    `retriever` ranks sections for hard-negative mining (default: the committed index, Retriever.open).
    `on_stage(stage, path)` sees "weights_written" (a complete model in its temp dir, no manifest yet) and
    "committed" (the final directory); it exists so tests can kill a run at a known point.
    """
    if not (config.full or config.with_adapter):
        raise ValueError("nothing to train: enable the full fine-tune, the adapter, or both")
    data_dir = Path(data_dir)
    on_stage = on_stage or (lambda stage, path: None)
    stale = model_dir.remove_stale_tmp(data_dir)
    train_q, val_q = read_questions(data_dir, "train"), read_questions(data_dir, "validation")
    if len(train_q) < 2:
        raise ValueError(f"{len(train_q)} training question(s) in synthetic_questions: need at least 2")
    sections = section_texts(Layout(data_dir))
    base_doc_model = embed.document_model(model_dir.resolve(data_dir, base_model))
    ranker = None
    if config.train.hard_negatives or config.adapter.hard_negatives:
        if retriever is None:
            from rag_assets.lib.retrieve.retriever import Retriever

            retriever = Retriever.open(data_dir)
        ranker = retriever_ranker(retriever, config.mining_mode, config.mining_depth)
    clock = Clock()
    triples, mining = mine_triples(train_q, sections, ranker, base_url)
    clock.lap("mining")
    if len(triples) < 2:
        raise ValueError(f"only {len(triples)} training question(s) have their gold section indexed: need at least 2")
    version = data_version(train_q + val_q)
    index = validate.SectionIndex(list(sections), list(sections.values()))
    common = {"base_model": base_doc_model, "data_version": version, "loss": LOSS, "pairs": len(triples),
              "validation_questions": len(val_q), "mining": mining | {"mode": config.mining_mode}}
    out = {**common, "stale_tmp_removed": stale, "models": {}}
    before = None  # validated after the first model is trained: a run that dies in training costs less
    runs = []
    if config.full:
        runs.append((model_dir.FULL, config.train, lambda tmp: fit_full(
            triples, embed.resolve_model(base_doc_model), config.train, data_dir / "cache" / "finetune", tmp)))
    if config.with_adapter:
        runs.append((model_dir.ADAPTER, config.adapter, lambda tmp: fit_adapter(
            triples, index.model(base_doc_model), config.adapter, tmp, embed.encode)))
    for kind, cfg, fit in runs:
        tmp = model_dir.new_tmp_dir(data_dir, kind)
        stats = fit(tmp)
        clock.lap(f"{kind}_fit")
        on_stage("weights_written", tmp)
        manifest = {
            "kind": "query_adapter" if kind == model_dir.ADAPTER else "sentence_transformer", **common,
            "steps": stats["steps"], "seed": cfg.seed, "batch_size": cfg.batch_size, "config": cfg.as_dict(),
            "device": stats["device"], "workers": stats["workers"], "training_seconds": round(stats["seconds"], 3),
            "pairs_seen": stats["pairs_seen"], "final_loss": stats["losses"][-1] if stats["losses"] else None,
            "weights_sha256": weights_digest(tmp), "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        model_dir.write_manifest(tmp, manifest)  # an adapter dir needs it to name its base before validation
        if before is None:
            clock.lap(f"{kind}_manifest")
            before = validate.evaluate(index, base_doc_model, val_q)
            out["before"] = validate.headline(before)
            clock.lap("validation_base")
        after = validate.evaluate(index, str(tmp), val_q)
        clock.lap(f"{kind}_validation")
        paired = paired_test(after["per_question_rr"], before["per_question_rr"])
        manifest["validation"] = {"before": validate.headline(before), "after": validate.headline(after),
                                  "mrr@10_paired": {k: paired[k] for k in ("n", "diff", "ci95", "p_value", "a_better")}}
        model_dir.write_manifest(tmp, manifest)
        final = model_dir.commit(data_dir, tmp, kind)
        on_stage("committed", final)
        out["models"][kind] = manifest | {"path": str(final), "losses": stats["losses"],
                                          "seconds_per_1k_pairs": 1000 * stats["seconds"] / max(1, stats["pairs_seen"])}
    out["timings"] = clock.laps
    out["curves_png"] = curves_png({k: m["losses"] for k, m in out["models"].items()})
    return out


class Clock:
    """Wall seconds per stage of a run (metadata, and where the time of a slow run went)."""

    def __init__(self):
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._t, 3)
        self._t = now


def weights_digest(path: Path) -> str:
    """sha256 over the weight files of a model directory (safetensors / npy), in name order."""
    h = hashlib.sha256()
    for f in sorted(p for p in Path(path).rglob("*") if p.suffix in (".safetensors", ".npy", ".bin")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]
