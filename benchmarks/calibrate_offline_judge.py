"""Calibrate the offline judge on real GPT-4 judgements, holding out whole experiments.

    python benchmarks/calibrate_offline_judge.py            # cross-validate, refit on all, write params
    python benchmarks/calibrate_offline_judge.py --check    # evaluate only (also the shipped params)

Group k-fold over experiments: each fold fits on the other experiments' rows and is scored on its own,
so no experiment is judged by coefficients fitted on it (the 179 questions do recur across experiments).
Prints per-fold and pooled Spearman and MAE against GPT-4, beside token-F1 alone and cosine alone, and
a stricter figure that also holds out the questions. Exits 1 when the held-out Spearman misses 0.6.
Embedding the 3,807 distinct texts takes a few CPU minutes; --cache keeps them between runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag_assets.lib.evaluate import offline_judge as oj  # noqa: E402
from rag_assets.lib.ingest.embed import BUNDLED_MODEL  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "judge-calibration.jsonl"


def load_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def features(judge: oj.OfflineJudge, rows: list[dict], cache: Path | None) -> np.ndarray:
    """The feature matrix; embeddings optionally kept in an .npz keyed by text hash (for iterating)."""
    triples = [(r["question"], r["generated_answer"], r["reference_answer"]) for r in rows]
    texts = [t for tr in triples for t in tr]
    keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
    known: dict[str, np.ndarray] = {}
    if cache and cache.exists():
        with np.load(cache) as z:
            known = dict(zip(z["keys"].tolist(), z["vecs"]))
    missing = list(dict.fromkeys(t for t, k in zip(texts, keys) if k not in known))
    if missing:
        t0 = time.perf_counter()
        for t, v in zip(missing, judge.embed(missing)):
            known[hashlib.sha1(t.encode()).hexdigest()] = v
        print(f"embedded {len(missing)} texts in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        if cache:
            np.savez(cache, keys=np.array(list(known)), vecs=np.stack(list(known.values())))
    vecs = np.stack([known[k] for k in keys]).reshape(len(rows), 3, -1)
    return oj.feature_matrix(triples, vecs[:, 0], vecs[:, 1], vecs[:, 2])


def folds(experiments: list[str], k: int) -> list[list[str]]:
    """Deterministic groups: sorted experiment names dealt round-robin into k folds."""
    names = sorted(set(experiments))
    return [names[i::k] for i in range(k)]


def single_feature(x_train, y_train, x_test) -> np.ndarray:
    """A baseline: one feature mapped linearly to 1-5 (Spearman is that of the raw feature)."""
    slope, intercept = np.polyfit(x_train, y_train, 1)
    return np.clip(slope * x_test + intercept, 1, 5)


def cross_validate(x, y, groups, k, alpha) -> dict[str, np.ndarray]:
    cols = {name: oj.FEATURES.index(name) for name in ("token_f1", "cos_answer_reference")}
    preds = {"judge": np.zeros_like(y), **{name: np.zeros_like(y) for name in cols}}
    print(f"{'fold':<4} {'held-out experiments':<62} {'n':>4} {'spearman':>8} {'mae':>5} {'token_f1':>8} {'cosine':>7}")
    for i, held in enumerate(folds(groups.tolist(), k)):
        test = np.isin(groups, held)
        params = oj.fit(x[~test], y[~test], alpha)
        preds["judge"][test] = oj.predict(params, x[test])
        for name, c in cols.items():
            preds[name][test] = single_feature(x[~test, c], y[~test], x[test, c])
        rho = spearmanr(preds["judge"][test], y[test])[0]
        mae = np.abs(preds["judge"][test] - y[test]).mean()
        base = [spearmanr(preds[n][test], y[test])[0] for n in cols]
        print(f"{i:<4} {', '.join(held):<62} {test.sum():>4} {rho:>8.3f} {mae:>5.2f} {base[0]:>8.3f} {base[1]:>7.3f}")
    return preds


def cross_validate_questions(x, y, groups, questions, k, alpha) -> tuple[float, float, int]:
    """Stricter: fold i holds out its experiments AND a 1/k share of the questions (fits on neither)."""
    names = sorted(set(questions.tolist()))
    qfold = {q: i % k for i, q in enumerate(names)}
    qf = np.array([qfold[q] for q in questions.tolist()])
    preds, truth = [], []
    for i, held in enumerate(folds(groups.tolist(), k)):
        held_exp = np.isin(groups, held)
        train, test = ~held_exp & (qf != i), held_exp & (qf == i)
        preds.append(oj.predict(oj.fit(x[train], y[train], alpha), x[test]))
        truth.append(y[test])
    p, t = np.concatenate(preds), np.concatenate(truth)
    return float(spearmanr(p, t)[0]), float(np.abs(p - t).mean()), len(t)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--folds", type=int, default=7)
    ap.add_argument("--alpha", type=float, default=10.0, help="ridge penalty (the figures barely move with it)")
    ap.add_argument("--model", default=BUNDLED_MODEL)
    ap.add_argument("--max-tokens", type=int, default=oj.EMBED_MAX_TOKENS, help="embedding sequence length")
    ap.add_argument("--out", type=Path, default=oj.PARAMS_PATH)
    ap.add_argument("--cache", type=Path, help="an .npz keeping embeddings between runs, one per --model and --max-tokens (e.g. under /tmp)")
    ap.add_argument("--check", action="store_true", help="evaluate only; do not write params")
    args = ap.parse_args(argv)

    rows = load_rows(args.data)
    y = np.array([float(r["score"]) for r in rows])
    groups = np.array([r["experiment"] for r in rows])
    print(f"{len(rows)} judgements, {len(set(groups.tolist()))} experiments, {args.folds} folds; "
          f"model {args.model}, {args.max_tokens} tokens; {len(oj.FEATURES)} features")
    judge = oj.OfflineJudge(args.model, params={"model": args.model, "embed_max_tokens": args.max_tokens})
    x = features(judge, rows, args.cache)

    preds = cross_validate(x, y, groups, args.folds, args.alpha)
    print(f"\nheld-out experiments, pooled (n={len(y)}):")
    for name, p in preds.items():
        print(f"  {name:<22} spearman {spearmanr(p, y)[0]:.3f}  mae {np.abs(p - y).mean():.2f}")
    rho = spearmanr(preds["judge"], y)[0]
    questions = np.array([r["question"] for r in rows])
    q_rho, q_mae, q_n = cross_validate_questions(x, y, groups, questions, args.folds, args.alpha)
    print(f"held-out experiments and questions (n={q_n}):")
    print(f"  {'judge':<22} spearman {q_rho:.3f}  mae {q_mae:.2f}")

    params = oj.fit(x, y, args.alpha)
    params.update(model=args.model, embed_max_tokens=args.max_tokens, heldout_spearman=round(float(rho), 4),
                  heldout_mae=round(float(np.abs(preds["judge"] - y).mean()), 4),
                  heldout_questions_spearman=round(q_rho, 4), n=len(y))
    print("\ncoefficients fitted on all experiments (score points per standard deviation of the column):")
    for name, c in sorted(zip(params["columns"], params["coef"]), key=lambda t: -abs(t[1])):
        print(f"  {name:<24} {c:+.3f}")
    if args.check:
        if args.out.exists():
            shipped = oj.load_params(args.out)
            p = oj.predict(shipped, x)
            print(f"\nshipped params {args.out.name} on all rows (fitted on them): spearman {spearmanr(p, y)[0]:.3f}")
    else:
        args.out.write_text(json.dumps(params, indent=1) + "\n")
        print(f"\nwrote {args.out}")
    return 0 if rho >= 0.6 else 1


if __name__ == "__main__":
    sys.exit(main())
