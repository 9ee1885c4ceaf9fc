"""The flywheel's thresholds and triage speed, measured on real questions.

1. Index the bundled corpus (23 Python 3.11 docs pages) into a temp data dir (the ingestion assets).
2. Best cosine in that index for in-domain questions (data/eval/questions.jsonl: gold page in the corpus)
   and out-of-domain ones (real Ray user questions from ../shared/datasets/routing-train.jsonl): the share
   under RAG_FEEDBACK_DOCS_SIMILARITY is the docs-gap rate (wanted: ~0 in-domain, high out-of-domain).
3. docs_gaps clustering on synthetic Ray questions of known docs areas (embedding_qa.json): topics, purity
   and adjusted Rand index against the areas, at the default RAG_FEEDBACK_GAP_DISTANCE and around it.
4. Triage speed: every question logged as a served query with a thumbs-down, then `triage_data_dir`
   (embedding, index search, offline judge); queries per second.

    python benchmarks/feedback_triage.py [--ood 300] [--per-area 40]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
AREAS = ("rllib", "tune", "train", "serve", "data", "cluster")


def build_index(data_dir: Path) -> None:
    import dagster as dg

    from rag_assets.defs import index, ingest
    from rag_assets.defs.resources import RagSettings

    rag = RagSettings(docs_dir=str(ROOT / "data" / "corpus"), data_dir=str(data_dir),
                      docs_base_url="https://docs.python.org/3.11/", ray_min_chunks=10**9)  # in-process encode
    assert dg.materialize([*ingest.ASSETS, *index.ASSETS], resources={"rag": rag}).success


def share_below(values, threshold) -> str:
    v = np.asarray(values)
    return f"{(v < threshold).mean():.3f} ({int((v < threshold).sum())}/{len(v)})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ood", type=int, default=300, help="out-of-domain user questions (routing-train.jsonl)")
    ap.add_argument("--per-area", type=int, default=40, help="embedding_qa questions per docs area")
    args = ap.parse_args()

    from sklearn.metrics import adjusted_rand_score

    from rag_assets.lib.feedback import evidence, gaps
    from rag_assets.lib.feedback.triage import Thresholds
    from rag_assets.lib.retrieve.retriever import Retriever
    from rag_assets.lib.serve.query_log import QueryLog
    from rag_assets.lib.settings import Settings

    settings = Settings()
    rng = random.Random(1234)
    in_domain = [json.loads(line)["question"] for line in (ROOT / "data/eval/questions.jsonl").read_text().splitlines()]
    ray_users = [json.loads(line)["question"] for line in (SHARED / "routing-train.jsonl").read_text().splitlines()]
    ood = rng.sample(ray_users, min(args.ood, len(ray_users)))

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        t0 = time.perf_counter()
        build_index(data_dir)
        print(f"index of the bundled corpus built in {time.perf_counter() - t0:.1f} s")
        retriever = Retriever.open(data_dir)

        sims_in = evidence.max_similarities(retriever, in_domain)
        sims_out = evidence.max_similarities(retriever, ood)
        print(f"\nbest cosine in the index      median   p10    p90")
        for name, s in (("in-domain (eval set)", sims_in), ("out-of-domain (Ray users)", sims_out)):
            print(f"  {name:<28}{np.median(s):.3f}  {np.percentile(s, 10):.3f}  {np.percentile(s, 90):.3f}")
        print(f"min in-domain {min(sims_in):.3f}; defaults: docs gap {settings.feedback_docs_similarity}, "
              f"low similarity {settings.feedback_low_similarity}")
        print("  threshold  share under it: in-domain   out-of-domain")
        for thr in sorted({0.25, 0.3, 0.35, 0.4, 0.45, 0.5, settings.feedback_docs_similarity,
                           settings.feedback_low_similarity}):
            print(f"  {thr:<10} {share_below(sims_in, thr):<24}{share_below(sims_out, thr)}")

        qa = json.loads((SHARED / "embedding_qa.json").read_text())
        by_area = {a: [r["question"] for r in qa if r["source"].split("/en/master/")[-1].split("/")[0] == a] for a in AREAS}
        sample = [(a, q) for a in AREAS for q in rng.sample(by_area[a], min(args.per_area, len(by_area[a])))]
        vecs = evidence.query_vectors(retriever.model_name, [q for _, q in sample])
        truth = [a for a, _ in sample]
        print(f"\ndocs_gaps topics on {len(sample)} questions of {len(AREAS)} Ray docs areas")
        print("  distance  topics  purity  ARI   (topics of >= 3 questions)")
        for d in sorted({0.4, 0.5, settings.feedback_gap_distance, 0.7, 0.8}):
            labels = gaps.cluster(vecs, d)
            groups: dict[int, list[str]] = {}
            for lab, area in zip(labels, truth):
                groups.setdefault(lab, []).append(area)
            purity = sum(Counter(g).most_common(1)[0][1] for g in groups.values()) / len(truth)
            big = sum(1 for g in groups.values() if len(g) >= 3)
            mark = "  <- default" if d == settings.feedback_gap_distance else ""
            print(f"  {d:<9} {len(groups):<7} {purity:.3f}   {adjusted_rand_score(truth, labels):.3f} ({big}){mark}")

        log = QueryLog.for_data_dir(data_dir)
        for q in in_domain + ood:
            hits = retriever.search(q, "hybrid", 5)
            trace = uuid.uuid4().hex
            log.record({"trace_id": trace, "question": q, "mode": "hybrid", "k": 5, "chunk_ids": [h.id for h in hits],
                        "scores": [h.score for h in hits], "sources": [h.source for h in hits],
                        "answer": hits[0].text[:300] if hits else None, "status": "ok", "endpoint": "benchmark"})
            log.add_feedback(trace, -1)
        log.close()
        t0 = time.perf_counter()
        result = evidence.triage_data_dir(data_dir, Thresholds.from_settings(settings), "https://docs.python.org/3.11/")
        took = time.perf_counter() - t0
        n = result["summary"]["queries_considered"]
        print(f"\ntriage of {n} logged queries with feedback: {took:.1f} s ({n / took:.0f} queries/s, model load "
              f"included); labels {result['summary']['by_label']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
