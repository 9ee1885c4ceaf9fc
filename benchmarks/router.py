"""Cross-validated router figures on the labelled routing questions, beside the always-open baseline.

For each router kind (lib/route/classifier.py): 5-fold stratified, duplicate-aware cross-validation; each
fold fits the calibrated classifier on the other four. The out-of-fold probabilities are pooled and the
threshold is set so that the target share of questions goes to the strong LLM (the threshold uses no
labels). Printed per kind: weighted and macro F1, strong (target 0) recall and precision, the share sent to
strong, ROC AUC; then the best weighted F1 any threshold reaches (an oracle, for reference); then the
routing time per query (one question at a time, as serving calls it) of the kind fitted on all rows.

Usage:
    nice -n 10 python benchmarks/router.py [--data ../shared/datasets/routing-train.jsonl] [--share 0.2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

from rag_assets.lib.route import classifier  # noqa: E402
from rag_assets.lib.route.labels import load_labelled  # noqa: E402
from rag_assets.lib.settings import DEFAULT_EMBEDDING_MODEL, SHARED_ROUTING_TRAIN  # noqa: E402

KEYS = ("weighted_f1", "macro_f1", "strong_recall", "strong_precision", "strong_share")


def cross_validated(kind: str, questions: list[str], y: np.ndarray, folds: int, seed: int, model: str) -> np.ndarray:
    from sklearn.model_selection import StratifiedGroupKFold

    X, out = np.asarray(questions, dtype=object), np.zeros(len(y))
    for tr, te in StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(X, y, classifier.group_ids(questions)):
        out[te] = classifier.p_strong(classifier.make_calibrated(kind, model, 3, seed).fit(X[tr], y[tr]), X[te])
    return out


def row(name: str, figures: dict, extra: str = "") -> str:
    return f"{name:20} " + "  ".join(f"{figures[k]:.3f}".rjust(len(k)) for k in KEYS) + f"  {extra}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SHARED_ROUTING_TRAIN)
    ap.add_argument("--share", type=float, default=0.2, help="target share of questions sent to strong")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kinds", default=",".join(classifier.KINDS))
    ap.add_argument("--timing-queries", type=int, default=200)
    args = ap.parse_args()

    questions, targets = load_labelled(args.data)
    y = np.asarray(targets)
    print(f"{args.data}: {len(y)} questions, {int((y == 0).sum())} strong (target 0), "
          f"{len(set(q.lower() for q in questions))} distinct; {args.folds}-fold CV, seed {args.seed}, "
          f"target strong share {args.share}")
    print(f"{'router':20} " + "  ".join(KEYS) + "  auc / oracle best weighted F1")
    print(row("always_open", classifier.classification_figures(y, np.zeros(len(y)), 1.1)))
    kinds = [k for k in args.kinds.split(",") if k]
    with classifier.embedding_memo():
        t0 = time.perf_counter()
        if any("embedding" in k for k in kinds):
            classifier.question_vectors(DEFAULT_EMBEDDING_MODEL, questions)
        print(f"(embedding {len(questions)} questions once: {time.perf_counter() - t0:.1f} s)")
        fitted = {}
        for kind in kinds:
            t0 = time.perf_counter()
            p = cross_validated(kind, questions, y, args.folds, args.seed, DEFAULT_EMBEDDING_MODEL)
            figures = classifier.classification_figures(y, p, classifier.threshold_for_share(p, args.share))
            auc = classifier.ranking_figures(y, p)["strong_auc"]
            oracle = max(classifier.classification_figures(y, p, t)["weighted_f1"] for t in np.linspace(0, 1, 101))
            print(row(kind, figures, f"{auc:.3f} / {oracle:.3f}  ({time.perf_counter() - t0:.0f} s)"))
            fitted[kind] = classifier.make_calibrated(kind, DEFAULT_EMBEDDING_MODEL, 3, args.seed).fit(
                np.asarray(questions, dtype=object), y)
    # Routing time: one question per call, embedding included (no memo), the model already loaded.
    probe = [f"{q} (variant {i})" for i, q in enumerate(questions[: args.timing_queries])]
    for kind, model in fitted.items():
        classifier.p_strong(model, probe[:3])  # warm up
        times = []
        for q in probe:
            t0 = time.perf_counter()
            classifier.p_strong(model, [q])
            times.append(time.perf_counter() - t0)
        print(f"routing time per query, {kind:18} p50 {statistics.median(times) * 1000:.2f} ms, "
              f"p90 {np.percentile(times, 90) * 1000:.2f} ms ({len(times)} queries, CPU)")


if __name__ == "__main__":
    main()
