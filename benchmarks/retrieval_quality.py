"""Retrieval quality on a real docs corpus: lexical, semantic, hybrid, tuned hybrid and rerank (issue 12).

1. Build the index of the docs once into --data-dir (a rerun reuses it; the embedding resumes from its cache).
   --page-share picks a deterministic share of the pages when the whole corpus cannot be embedded in time.
2. Synthetic questions over its sections (offline generator unless OPENAI_BASE_URL + RAG_LLM_MODEL are set),
   filtered and split by page; cached in the data dir.
3. The docs-area classifier: each kind fitted on the train split, scored on the validation split.
4. Hybrid fusion tuned on a sample of the TRAIN split (so the figures on validation stay held out).
5. On the validation questions (or --eval FILE, e.g. the bundled hand-written questions): page hit@1/5/10 and MRR
   per mode, per-query time p50/p95, and the paired test (lib/evaluate/metrics.py) of hybrid and tuned hybrid
   against semantic.

Usage:
    python benchmarks/retrieval_quality.py [--docs /usr/share/doc/python3.11/html] [--page-share 1.0]
        [--data-dir /tmp/rag_retrieval_quality] [--eval FILE] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from rag_assets.lib.ingest import stages  # noqa: E402
from rag_assets.lib.index import manifest  # noqa: E402
from rag_assets.lib.settings import Settings  # noqa: E402
from rag_assets.lib.store import Layout  # noqa: E402

PY_DOCS = Path("/usr/share/doc/python3.11/html")
PY_BASE_URL = "https://docs.python.org/3.11/"


def subset_docs(docs: Path, share: float, out: Path) -> Path:
    """A deterministic page subset (by a hash of the relative path) copied to `out`, for a smaller corpus."""
    import hashlib
    import shutil

    if share >= 1.0:
        return docs
    for path in sorted(docs.rglob("*")):
        rel = path.relative_to(docs).as_posix()
        if path.is_file() and (not rel.endswith(".html")
                               or int(hashlib.sha1(rel.encode()).hexdigest(), 16) % 1000 < share * 1000):
            target = out / rel
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
    return out


def build(docs: Path, data_dir: Path, base_url: str) -> float:
    """Ingest the docs into data_dir once; a rerun reuses everything (embedding resumes from its cache)."""
    t0 = time.perf_counter()
    settings = Settings.from_env(docs_dir=docs, docs_base_url=base_url, data_dir=data_dir)
    layout = Layout(settings.data_dir)
    if manifest.read(data_dir) is not None and layout.embeddings.exists():
        return 0.0
    for name, step in [
        ("docs", lambda: stages.build_docs(settings, layout)),
        ("sections", lambda: stages.build_sections(layout)),
        ("chunks", lambda: stages.build_chunks(layout, settings.chunk_size, settings.chunk_overlap)),
        # In-process (no Ray): fewer processes on a shared machine, and resumable slice by slice.
        ("embeddings", lambda: stages.build_embeddings(layout, settings.embedding_model, None, 10**9)),
        ("vector_index", lambda: stages.build_vector_index(layout)),
        ("lexical_index", lambda: stages.build_lexical_index(layout)),
    ]:
        t = time.perf_counter()
        stats = step()
        print(f"  {name}: {time.perf_counter() - t:.1f} s {({k: v for k, v in stats.items() if isinstance(v, (int, float))})}", flush=True)
    return time.perf_counter() - t0


def seed_vectors(data_dir: Path, embeddings: Path | None) -> None:
    """Start from another build's embeddings.parquet (same model): vectors of identical chunk ids are reused."""
    import shutil

    from rag_assets.lib.store import Layout

    target = Layout(data_dir).embeddings
    if embeddings and embeddings.is_file() and not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(embeddings, target)


def memoise_query_vectors(settings, texts: list[str], timed: int = 30) -> dict:
    """Embed every question once in batches and serve Retriever.semantic from that, so a slow shared machine
    measures retrieval quality in minutes; the time of one query embedding is measured apart, on `timed` queries."""
    from rag_assets.lib.ingest import embed

    model_name = manifest.read(settings.data_dir).model
    texts = list(dict.fromkeys(texts))
    original = embed.embed_query
    original(model_name, "warm up")
    times = []
    for t in texts[:timed]:
        t0 = time.perf_counter()
        original(model_name, t)
        times.append(time.perf_counter() - t0)
    memo = dict(zip(texts, embed.encode(embed.cached_model(model_name), texts)))
    embed.embed_query = lambda name, text: memo[text] if name == model_name and text in memo else original(name, text)
    return {"p50": round(1000 * percentile(times, 0.5), 1), "p95": round(1000 * percentile(times, 0.95), 1),
            "n": len(times)}


MODES = ("lexical", "semantic", "hybrid", "tuned hybrid", "rerank")


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else None


def run_modes(settings, questions: list[dict], tuned: dict, k: int = 10) -> dict:
    from rag_assets.lib.evaluate.metrics import paired_test
    from rag_assets.lib.ingest import embed
    from rag_assets.lib.retrieve.fusion import mean_metrics, page_metrics
    from rag_assets.lib.retrieve.retriever import HybridParams, RerankParams, Retriever
    from rag_assets.lib.retrieve.training import tag_model_dir

    default = Retriever.open(settings.data_dir, hybrid=HybridParams(), rerank=RerankParams())
    tuned_hybrid = HybridParams(rrf_k=tuned["rrf_k"], semantic_weight=tuned["hybrid_semantic_weight"],
                                lexical_weight=tuned["hybrid_lexical_weight"])
    tuned_rr = RerankParams("none", settings.rerank_candidates, settings.rerank_threshold,
                            model_dir=str(tag_model_dir(settings.data_dir)), title_boost=tuned["bm25_title_boost"])
    tuned_r = Retriever.open(settings.data_dir, hybrid=tuned_hybrid, rerank=tuned_rr)
    embed.cached_model(default.model_name)
    tuned_r.tagger().predict_proba([q["question"] for q in questions])  # an embedding classifier memoises its vectors
    runs = {"lexical": (default, "lexical"), "semantic": (default, "semantic"), "hybrid": (default, "hybrid"),
            "tuned hybrid": (tuned_r, "hybrid"), "rerank": (tuned_r, "rerank")}
    out, per_q = {}, {}
    for name, (retriever, mode) in runs.items():
        retriever.search(questions[0]["question"], mode, k)  # warm: model and classifier loaded before timing
        rows, times = [], []
        for q in questions:
            t0 = time.perf_counter()
            hits = retriever.search(q["question"], mode, k)
            times.append(time.perf_counter() - t0)
            rows.append(page_metrics(q["source"], [h.source for h in hits]))
        per_q[name] = rows
        out[name] = mean_metrics(rows) | {"p50_ms": round(1000 * percentile(times, 0.5), 1),
                                          "p95_ms": round(1000 * percentile(times, 0.95), 1)}
    tests = {}
    for name in ("hybrid", "tuned hybrid", "rerank"):
        for metric in ("hit@10", "mrr"):
            t = paired_test([r[metric] for r in per_q[name]], [r[metric] for r in per_q["semantic"]])
            tests[f"{name} - semantic, {metric}"] = {k2: t[k2] for k2 in ("n", "diff", "ci95", "p_value")}
    return {"modes": out, "paired_vs_semantic": tests}


def print_table(result: dict) -> None:
    print(f"{'mode':14} {'hit@1':>6} {'hit@5':>6} {'hit@10':>6} {'MRR':>6} {'p50 ms':>7} {'p95 ms':>7}")
    for name, m in result["modes"].items():
        print(f"{name:14} {m['hit@1']:6.3f} {m['hit@5']:6.3f} {m['hit@10']:6.3f} {m['mrr']:6.3f} "
              f"{m['p50_ms']:7.1f} {m['p95_ms']:7.1f}")
    for name, t in result["paired_vs_semantic"].items():
        ci = ", ".join(f"{x:+.3f}" for x in t["ci95"]) if t["ci95"][0] is not None else "n/a"
        print(f"  {name}: diff {t['diff']:+.3f} (95% CI {ci}), p={t['p_value']:.3f}, n={t['n']}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=Path, default=PY_DOCS)
    ap.add_argument("--base-url", default=PY_BASE_URL)
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/rag_retrieval_quality"))
    ap.add_argument("--page-share", type=float, default=1.0, help="index this share of the pages (hash-picked)")
    ap.add_argument("--seed-embeddings", type=Path, help="an embeddings.parquet of the same model to reuse vectors from")
    ap.add_argument("--eval", type=Path, help="JSONL {question, source} to score on (default: synthetic validation)")
    ap.add_argument("--tune-sample", type=int, default=400, help="train questions the fusion is tuned on")
    ap.add_argument("--kinds", default="tfidf,embed,combo", help="tag classifier kinds to compare")
    ap.add_argument("--regenerate", action="store_true", help="rebuild the synthetic questions and the classifier")
    ap.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    ap.add_argument("--build-only", action="store_true")
    args = ap.parse_args()
    docs = subset_docs(args.docs, args.page_share, args.data_dir / "docs_subset")
    seed_vectors(args.data_dir, args.seed_embeddings)
    print(f"build: {build(docs, args.data_dir, args.base_url):.1f} s", flush=True)
    if args.build_only:
        return 0
    from rag_assets.lib.evaluate.eval_data import load_questions
    from rag_assets.lib.questions import stage as questions_stage
    from rag_assets.lib.questions.synthetic import questions_path, read_questions
    from rag_assets.lib.retrieve import fusion, training

    settings = Settings.from_env(docs_dir=docs, docs_base_url=args.base_url, data_dir=args.data_dir)
    figures: dict = {"docs": str(args.docs), "page_share": args.page_share}
    if args.regenerate or not questions_path(args.data_dir).exists():
        t0 = time.perf_counter()
        stats = questions_stage.build_synthetic_questions(settings)
        print(f"synthetic questions: {stats['questions']} from {stats['sections']} sections in "
              f"{time.perf_counter() - t0:.0f} s; splits {stats['splits']}; dropped {stats['dropped']}; "
              f"round trip on {stats['round_trip']}", flush=True)
    rows = read_questions(args.data_dir)
    figures["questions"] = {s: sum(r["split"] == s for r in rows) for s in ("train", "validation", "dropped")}
    figures["dropped"] = {r: sum(x["drop_reason"] == r for x in rows) for r in {x["drop_reason"] for x in rows} if r}
    print(f"questions: {figures['questions']}, dropped by reason {figures['dropped']}")
    model_dir = training.tag_model_dir(args.data_dir)
    if args.regenerate or not model_dir.exists():
        t0 = time.perf_counter()
        stats = training.build_tag_classifier(settings, kinds=args.kinds.split(","))
        figures["tag_classifier"] = {k: stats[k] for k in ("kind", "classes", "train_rows", "validation_rows",
                                                            "validation", "candidates")}
        print(f"tag classifier: kept {stats['kind']} (validation weighted F1 per kind {stats['candidates']}), "
              f"{len(stats['classes'])} areas, {time.perf_counter() - t0:.0f} s", flush=True)
    else:
        meta = json.loads((model_dir / "meta.json").read_text())
        figures["tag_classifier"] = {"kind": meta["kind"], "classes": meta["classes"], "validation": meta.get("validation"),
                                     "candidates": meta.get("candidates")}
        print(f"tag classifier (cached): {meta['kind']}, validation {meta.get('candidates')}")
    v = figures["tag_classifier"].get("validation") or {}
    print(f"  validation: n={v.get('n')} accuracy={v.get('accuracy')} weighted_f1={v.get('weighted_f1')} "
          f"macro_f1={v.get('macro_f1')}")
    if args.eval:
        questions, figures["eval_set"] = load_questions(args.eval), str(args.eval)
    else:
        questions, figures["eval_set"] = read_questions(args.data_dir, "validation"), "synthetic validation split"
    figures["query_embedding_ms"] = memoise_query_vectors(settings, [r["question"] for r in rows] +
                                                          [q["question"] for q in questions])
    print(f"query embedding alone: p50 {figures['query_embedding_ms']['p50']} ms, "
          f"p95 {figures['query_embedding_ms']['p95']} ms (mode times below exclude it)")
    train = [r for r in rows if r["split"] == "train"]
    sample = random.Random(0).sample(train, min(args.tune_sample, len(train)))
    from rag_assets.lib.retrieve.retriever import HybridParams, RerankParams, Retriever

    t0 = time.perf_counter()
    tuning = fusion.tune(Retriever.open(args.data_dir, hybrid=HybridParams(), rerank=RerankParams()), sample)
    figures["tuning"] = {k: tuning[k] for k in ("params", "metrics", "semantic", "lexical", "n", "grid_size")}
    print(f"fusion tuned on {len(sample)} train questions ({tuning['grid_size']} settings, "
          f"{time.perf_counter() - t0:.0f} s): {tuning['params']}", flush=True)
    print(f"\nevaluation on {len(questions)} questions ({figures['eval_set']}), page level, k=10:")
    result = run_modes(settings, questions, tuning["params"])
    figures |= result
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
