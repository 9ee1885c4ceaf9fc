"""Router classifiers: features, calibrated probability of "needs the strong LLM", a threshold for a target
share of strong calls, validation figures and the saved model directory (router.json + model.joblib).

Kinds tried (all logistic regression, sigmoid-calibrated):
  bow_lr             the seed's bag of words
  embedding_lr       the embedding model's question vectors
  char_embedding_lr  character n-gram TF-IDF and the question vectors side by side
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from rag_assets.lib.route.labels import STRONG

KINDS = ("bow_lr", "embedding_lr", "char_embedding_lr")
MODEL_FILE, META_FILE, CURVE_FILE = "model.joblib", "router.json", "threshold_curve.png"
MIN_PER_CLASS = 5  # fewer labelled rows of a class cannot be split for validation and calibration
_MEMO: dict | None = None  # question vectors while fitting (cross-validation embeds each question once)
_LAST: tuple | None = None  # ((model, questions), vectors) of the last call outside fitting


@contextlib.contextmanager
def embedding_memo():
    """Within the block, each (model, question) is embedded once; the memo is dropped afterwards."""
    global _MEMO
    outer, _MEMO = _MEMO, ({} if _MEMO is None else _MEMO)
    try:
        yield
    finally:
        _MEMO = outer


def question_vectors(model_name: str, questions) -> np.ndarray:
    from rag_assets.lib.ingest import embed

    global _LAST
    questions = [str(q) for q in questions]
    if _MEMO is None:
        # The calibrated model holds one pipeline per calibration fold, each asking for the same vectors.
        key, last = (model_name, tuple(questions)), _LAST
        if last is not None and last[0] == key:
            return last[1]
        vectors = embed.encode(embed.cached_model(model_name), questions)
        _LAST = (key, vectors)
        return vectors
    todo = list(dict.fromkeys(q for q in questions if (model_name, q) not in _MEMO))
    if todo:
        for q, v in zip(todo, embed.encode(embed.cached_model(model_name), todo)):
            _MEMO[(model_name, q)] = v
    return np.stack([_MEMO[(model_name, q)] for q in questions])


class QuestionFeatures(BaseEstimator, TransformerMixin):
    """Questions -> a sparse matrix of word counts, char n-gram TF-IDF and/or embedding vectors."""

    def __init__(self, words: bool = False, chars: bool = False, embedding_model: str | None = None):
        self.words, self.chars, self.embedding_model = words, chars, embedding_model

    def fit(self, X, y=None):
        from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

        X = [str(x) for x in X]
        self.words_ = CountVectorizer().fit(X) if self.words else None
        self.chars_ = (TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True).fit(X)
                       if self.chars else None)
        return self

    def transform(self, X):
        from scipy.sparse import csr_matrix, hstack

        X = [str(x) for x in X]
        parts = [v.transform(X) for v in (self.words_, self.chars_) if v is not None]
        if self.embedding_model:
            parts.append(csr_matrix(question_vectors(self.embedding_model, X)))
        return hstack(parts).tocsr()


def make_classifier(kind: str, embedding_model: str):
    """The uncalibrated pipeline for one kind (C values from cross-validation on routing-train.jsonl)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    if kind == "bow_lr":
        features, c = QuestionFeatures(words=True), 1.0  # the seed's CountVectorizer + LogisticRegression
    elif kind == "embedding_lr":
        features, c = QuestionFeatures(embedding_model=embedding_model), 3.0
    elif kind == "char_embedding_lr":
        features, c = QuestionFeatures(chars=True, embedding_model=embedding_model), 3.0
    else:
        raise ValueError(f"unknown router kind {kind!r}; one of {', '.join(KINDS)}")
    return Pipeline([("features", features), ("lr", LogisticRegression(C=c, max_iter=3000))])


def make_calibrated(kind: str, embedding_model: str, folds: int, seed: int):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import StratifiedKFold

    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return CalibratedClassifierCV(make_classifier(kind, embedding_model), method="sigmoid", cv=cv)


def p_strong(model, questions) -> np.ndarray:
    """The calibrated probability that each question needs the strong LLM (target 0)."""
    proba = model.predict_proba(np.asarray(list(questions), dtype=object))
    return proba[:, list(model.classes_).index(STRONG)]


def threshold_for_share(probabilities: np.ndarray, share: float) -> float:
    """The lowest probability whose `>=` sends about `share` of these questions to the strong LLM."""
    if share <= 0:
        return 1.0 + 1e-9  # never strong
    if share >= 1:
        return 0.0
    return float(np.quantile(np.asarray(probabilities, dtype=float), 1.0 - share, method="higher"))


def classification_figures(targets, probabilities, threshold: float) -> dict:
    """The CLI's figures: "strong" is target 0, predicted when probability >= threshold."""
    from sklearn.metrics import f1_score, precision_score, recall_score

    y = np.asarray(targets, dtype=int)
    pred = np.where(np.asarray(probabilities) >= threshold, STRONG, 1 - STRONG)
    kw = {"labels": [0, 1], "zero_division": 0}
    return {
        "n": int(y.size),
        "weighted_f1": float(f1_score(y, pred, average="weighted", **kw)),
        "macro_f1": float(f1_score(y, pred, average="macro", **kw)),
        "strong_recall": float(recall_score(y, pred, pos_label=STRONG, zero_division=0)),
        "strong_precision": float(precision_score(y, pred, pos_label=STRONG, zero_division=0)),
        "strong_share": float(np.mean(pred == STRONG)) if y.size else 0.0,
    }


def ranking_figures(targets, probabilities) -> dict:
    """Threshold-free: ROC AUC and average precision for the strong class (None with one class only)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y_strong = (np.asarray(targets) == STRONG).astype(int)
    if y_strong.min() == y_strong.max():
        return {"strong_auc": None, "strong_average_precision": None}
    return {"strong_auc": float(roc_auc_score(y_strong, probabilities)),
            "strong_average_precision": float(average_precision_score(y_strong, probabilities))}


def threshold_curve(targets, probabilities, points: int = 51) -> list[dict]:
    return [{"threshold": float(t), **classification_figures(targets, probabilities, t)}
            for t in np.linspace(0.0, 1.0, points)]


def group_ids(questions) -> np.ndarray:
    """Repeated questions (the labelled file has some) stay on one side of every split."""
    ids: dict[str, int] = {}
    return np.asarray([ids.setdefault(" ".join(q.lower().split()), len(ids)) for q in questions])


def holdout_split(questions, targets, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stratified, seeded, duplicate-aware (train, validation) index split."""
    from sklearn.model_selection import StratifiedGroupKFold

    y = np.asarray(targets)
    counts = {c: int((y == c).sum()) for c in (0, 1)}
    if min(counts.values()) < MIN_PER_CLASS:
        raise ValueError(f"need at least {MIN_PER_CLASS} labelled questions of each target to train a router, "
                         f"got {counts[0]} with target 0 and {counts[1]} with target 1")
    splits = max(2, round(1 / val_fraction))
    train, val = next(StratifiedGroupKFold(splits, shuffle=True, random_state=seed)
                      .split(np.zeros(len(y)), y, group_ids(questions)))
    return train, val


def out_of_fold(kind, embedding_model, questions, targets, folds: int, seed: int) -> np.ndarray:
    """Calibrated P(strong) for each training question from models that did not see it."""
    from sklearn.model_selection import StratifiedGroupKFold

    X, y = np.asarray(questions, dtype=object), np.asarray(targets)
    out = np.zeros(len(y))
    for tr, te in StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(X, y, group_ids(questions)):
        inner = max(2, min(folds, int(np.bincount(y[tr], minlength=2).min())))
        out[te] = p_strong(make_calibrated(kind, embedding_model, inner, seed).fit(X[tr], y[tr]), X[te])
    return out


@dataclass
class FitResult:
    kind: str
    model: object
    threshold: float
    validation: dict  # classification + ranking figures on the held-out split
    candidates: dict  # kind -> its validation figures
    curve: list[dict]  # the chosen model's threshold curve on the validation split
    meta: dict = field(default_factory=dict)


def fit_router(questions, targets, strong_share: float, embedding_model: str, kinds=KINDS, seed: int = 0,
               val_fraction: float = 0.2, folds: int = 3) -> FitResult:
    """Fit each kind on the training split with its threshold from out-of-fold probabilities (so the
    validation split is never used to fit anything); keep the best weighted F1 on validation."""
    started = time.perf_counter()
    questions, y = list(questions), np.asarray(targets, dtype=int)
    train, val = holdout_split(questions, y, val_fraction, seed)
    X = np.asarray(questions, dtype=object)
    folds = max(2, min(folds, int(np.bincount(y[train], minlength=2).min())))
    fitted = {}
    with embedding_memo():
        for kind in kinds:
            oof = out_of_fold(kind, embedding_model, X[train].tolist(), y[train], folds, seed)
            threshold = threshold_for_share(oof, strong_share)
            model = make_calibrated(kind, embedding_model, folds, seed).fit(X[train], y[train])
            probs = p_strong(model, X[val])
            figures = classification_figures(y[val], probs, threshold) | ranking_figures(y[val], probs)
            fitted[kind] = (model, threshold, probs, figures | {"threshold": threshold})
    best = max(fitted, key=lambda k: (fitted[k][3]["weighted_f1"], fitted[k][3]["strong_recall"]))
    model, threshold, probs, figures = fitted[best]
    always_open = classification_figures(y[val], np.zeros(len(val)), 1.0 + 1e-9)
    return FitResult(
        kind=best, model=model, threshold=threshold, validation=figures,
        candidates={k: v[3] for k, v in fitted.items()}, curve=threshold_curve(y[val], probs),
        meta={"n_train": int(len(train)), "n_validation": int(len(val)), "strong_share_target": strong_share,
              "embedding_model": embedding_model, "seed": seed, "val_fraction": val_fraction,
              "labelled_strong_share": float(np.mean(y == 0)), "always_open_validation": always_open,
              "fit_seconds": round(time.perf_counter() - started, 2)},
    )


@dataclass
class RouterModel:
    """A saved router: P(strong) for questions, and the threshold chosen for the target strong share."""

    model: object
    kind: str
    threshold: float
    meta: dict

    def probability(self, question: str) -> float:
        return float(p_strong(self.model, [question])[0])

    def probabilities(self, questions) -> np.ndarray:
        return p_strong(self.model, list(questions))

    def figures(self, questions, targets) -> dict:
        return classification_figures(targets, self.probabilities(questions), self.threshold)


def save(result: FitResult, out_dir: Path | str, trained_on: str | None = None) -> Path:
    """Write the router directory whole: a new one replaces the old only once complete."""
    import joblib
    import sklearn

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    joblib.dump(result.model, tmp / MODEL_FILE)
    meta = {"kind": result.kind, "threshold": result.threshold, "validation": result.validation,
            "candidates": result.candidates, "trained_on": trained_on, "sklearn_version": sklearn.__version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **result.meta}
    plot_curve(result.curve, result.threshold, tmp / CURVE_FILE)
    (tmp / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    if out_dir.exists():
        out_dir.replace(old)
    tmp.replace(out_dir)
    shutil.rmtree(old, ignore_errors=True)
    return out_dir


def load(model_dir: Path | str) -> RouterModel:
    import joblib

    model_dir = Path(model_dir)
    meta_path = model_dir / META_FILE
    if not meta_path.is_file() or not (model_dir / MODEL_FILE).is_file():
        raise FileNotFoundError(f"no trained router in {model_dir} (run `rag-assets router fit` or materialize "
                                f"the `router` asset)")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    return RouterModel(joblib.load(model_dir / MODEL_FILE), meta["kind"], float(meta["threshold"]), meta)


def plot_curve(curve: list[dict], threshold: float, path: Path) -> Path:
    """Strong recall, precision, share and weighted F1 against the threshold; the chosen one marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rag_assets.lib.store import save_figure

    t = [r["threshold"] for r in curve]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for key, label in (("weighted_f1", "weighted F1"), ("strong_recall", "strong recall"),
                       ("strong_precision", "strong precision"), ("strong_share", "share routed to strong")):
        ax.plot(t, [r[key] for r in curve], label=label)
    ax.axvline(min(threshold, 1.0), color="grey", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set_xlabel("threshold on calibrated P(needs strong LLM)")
    ax.set_ylim(0, 1.02)
    ax.set_title("Router on the validation split")
    ax.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    return save_figure(fig, path)
