"""The docs-area tag of a question: which part of the docs (library, tutorial, rllib, serve...) answers it.

The seed's reranker: a classifier predicts the area from the question text alone, and retrieval moves the
chunks of that area ahead when it is confident. Kinds of classifier, the best on validation is kept:
  tfidf  word 1-2-grams + char 2-5-grams (robust to typos and short questions), logistic regression
  embed  logistic regression over the embedding model's question vectors
  combo  both feature sets side by side
A model directory holds `model.joblib` and `meta.json` (kind, classes, base_url, depth, figures).
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

OTHER = "other"
KINDS = ("tfidf", "embed", "combo")
DEFAULT_MIN_COUNT = 20  # areas with fewer training questions are folded into `other`
MODEL_FILE, META_FILE = "model.joblib", "meta.json"


def docs_area(url: str, base_url: str, depth: int = 1) -> str:
    """First `depth` path segment(s) of a page below the docs base URL; a top-level page is its own area
    (its name without extension); a URL outside the base falls back to its own path."""
    page = (url or "").split("#", 1)[0]
    path = page[len(base_url):] if base_url and page.startswith(base_url) else urlsplit(page).path
    parts = [p for p in path.strip("/").split("/") if p]
    if not parts:
        return OTHER
    dirs = parts[:-1][: max(1, depth)]
    if not dirs:
        return parts[-1].rsplit(".", 1)[0] or OTHER
    return "/".join(dirs)


def fold_rare(tags: Sequence[str], min_count: int = DEFAULT_MIN_COUNT, keep: Sequence[str] | None = None) -> list[str]:
    """Areas outside `keep` (or, without it, seen fewer than min_count times) become `other`."""
    allowed = set(keep) if keep is not None else {t for t, n in Counter(tags).items() if n >= min_count}
    return [t if t in allowed else OTHER for t in tags]


# --- robustness: noisy copies of the training questions ---------------------------------------------

_KEYBOARD = "qwertyuiopasdfghjklzxcvbnm"


def noisy(question: str, rng: random.Random) -> str:
    """A messier copy of a question as users type them: lower case, no punctuation, a typo or two, cut short."""
    words = re.findall(r"\w+", question.lower())
    if len(words) > 6 and rng.random() < 0.5:
        start = rng.randrange(0, len(words) // 3 + 1)
        words = words[start : start + rng.randint(4, 8)]
    out = []
    for w in words:
        if len(w) > 3 and rng.random() < 0.15:
            i, op = rng.randrange(len(w)), rng.random()
            if op < 0.33:
                w = w[:i] + w[i + 1 :]  # dropped letter
            elif op < 0.66 and i < len(w) - 1:
                w = w[:i] + w[i + 1] + w[i] + w[i + 2 :]  # swapped letters
            else:
                w = w[:i] + rng.choice(_KEYBOARD) + w[i + 1 :]  # wrong letter
        out.append(w)
    return " ".join(out)


def augment(questions: Sequence[str], tags: Sequence[str], copies: int = 1, seed: int = 0):
    rng = random.Random(seed)
    qs, ts = list(questions), list(tags)
    for _ in range(copies):
        for q, t in zip(questions, tags):
            qs.append(noisy(q, rng))
            ts.append(t)
    return qs, ts


# --- the classifier ---------------------------------------------------------------------------------


_VECTORS: dict[str, dict[str, np.ndarray]] = {}  # model -> question -> vector, within one process


def _normalise(text: str) -> str:
    return " ".join(str(text).lower().split())


class TagClassifier:
    def __init__(self, kind: str = "tfidf", embedding_model: str | None = None, c: float = 10.0,
                 augment_copies: int = 0, base_url: str = "", depth: int = 1):
        if kind not in KINDS:
            raise ValueError(f"unknown tag classifier kind {kind!r}: choose one of {', '.join(KINDS)}")
        if kind != "tfidf" and not embedding_model:
            from rag_assets.lib.settings import DEFAULT_EMBEDDING_MODEL

            embedding_model = DEFAULT_EMBEDDING_MODEL
        self.kind, self.embedding_model, self.c = kind, embedding_model, c
        self.augment_copies, self.base_url, self.depth = augment_copies, base_url, depth
        self.vectorizers = None
        self.clf = None
        self.meta: dict = {}

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.clf.classes_]

    def _embed(self, questions: Sequence[str]) -> np.ndarray:
        from rag_assets.lib.ingest import embed

        texts = [str(q) for q in questions]
        memo = _VECTORS.setdefault(self.embedding_model, {})
        if len(memo) > 200_000:
            memo.clear()
        todo = list(dict.fromkeys(t for t in texts if t not in memo))
        if todo:  # fitting several kinds on the same questions embeds them once
            memo.update(zip(todo, embed.encode(embed.cached_model(self.embedding_model), todo)))
        return np.stack([memo[t] for t in texts]) if texts else np.zeros((0, 1), dtype=np.float32)

    def _features(self, questions: Sequence[str], fit: bool = False):
        from scipy import sparse

        texts = [_normalise(q) for q in questions]
        parts = []
        if self.kind in ("tfidf", "combo"):
            if fit:
                from sklearn.feature_extraction.text import TfidfVectorizer

                self.vectorizers = [
                    TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, min_df=1),
                    TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2),
                ]
                parts += [v.fit_transform(texts) for v in self.vectorizers]
            else:
                parts += [v.transform(texts) for v in self.vectorizers]
        if self.kind in ("embed", "combo"):
            parts.append(sparse.csr_matrix(self._embed(questions) * (2.0 if self.kind == "combo" else 1.0)))
        return sparse.hstack(parts).tocsr() if len(parts) > 1 else parts[0]

    def fit(self, questions: Sequence[str], tags: Sequence[str]) -> "TagClassifier":
        from sklearn.linear_model import LogisticRegression

        if len(questions) != len(tags) or not questions:
            raise ValueError("fit needs one tag per question and at least one question")
        if len(set(tags)) < 2:
            raise ValueError(f"fit needs at least two different tags, got {sorted(set(tags))}")
        qs, ts = augment(questions, tags, self.augment_copies) if self.augment_copies else (list(questions), list(tags))
        x = self._features(qs, fit=True)
        self.clf = LogisticRegression(C=self.c, max_iter=2000, class_weight="balanced")
        self.clf.fit(x, ts)
        self.meta = {"kind": self.kind, "embedding_model": self.embedding_model, "c": self.c,
                     "augment_copies": self.augment_copies, "base_url": self.base_url, "depth": self.depth,
                     "classes": self.classes, "train_rows": len(questions),
                     "train_counts": dict(sorted(Counter(tags).items()))}
        return self

    def predict_proba(self, questions: Sequence[str]) -> np.ndarray:
        """One row per question, one column per class (see `classes`)."""
        if self.clf is None:
            raise RuntimeError("the tag classifier is not fitted")
        if not questions:
            return np.zeros((0, len(self.classes)))
        return self.clf.predict_proba(self._features(questions))

    def predict(self, questions: Sequence[str]) -> list[str]:
        proba = self.predict_proba(questions)
        return [self.classes[i] for i in proba.argmax(axis=1)] if len(proba) else []

    def predict_one(self, question: str) -> tuple[str, float]:
        """(area, probability) of the most likely area."""
        proba = self.predict_proba([question])[0]
        i = int(proba.argmax())
        return self.classes[i], float(proba[i])

    def area_of(self, source: str) -> str:
        """The area of a chunk's source in this model's tag scheme (areas it was not trained on are `other`)."""
        area = docs_area(source, self.base_url, self.depth)
        return area if area in self.clf.classes_ else OTHER

    def save(self, model_dir: Path | str, **extra_meta) -> Path:
        import joblib

        from rag_assets.lib.store import write_json

        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        tmp = model_dir / f".{MODEL_FILE}.tmp"
        joblib.dump({"vectorizers": self.vectorizers, "clf": self.clf}, tmp)
        tmp.replace(model_dir / MODEL_FILE)
        self.meta.update(extra_meta)
        write_json(model_dir / META_FILE, self.meta)
        return model_dir

    @classmethod
    def load(cls, model_dir: Path | str) -> "TagClassifier":
        import joblib

        model_dir = Path(model_dir)
        if not (model_dir / MODEL_FILE).is_file() or not (model_dir / META_FILE).is_file():
            raise FileNotFoundError(f"no tag classifier in {model_dir}: run `rag-assets tags fit` or materialize "
                                    f"`tag_classifier`")
        meta = json.loads((model_dir / META_FILE).read_text(encoding="utf-8"))
        model = cls(meta["kind"], meta.get("embedding_model"), meta.get("c", 10.0), meta.get("augment_copies", 0),
                    meta.get("base_url", ""), meta.get("depth", 1))
        state = joblib.load(model_dir / MODEL_FILE)
        model.vectorizers, model.clf, model.meta = state["vectorizers"], state["clf"], meta
        return model


def evaluate(model: TagClassifier, questions: Sequence[str], tags: Sequence[str]) -> dict:
    """{"n", "accuracy", "weighted_f1", "macro_f1", "per_tag": {tag: {precision, recall, f1, support}}}."""
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    if not questions:
        raise ValueError("no test questions")
    pred = model.predict(questions)
    labels = sorted(set(tags) | set(pred))
    p, r, f, s = precision_recall_fscore_support(tags, pred, labels=labels, zero_division=0)
    return {
        "n": len(questions),
        "accuracy": round(float(accuracy_score(tags, pred)), 4),
        "weighted_f1": round(float(f1_score(tags, pred, average="weighted", zero_division=0)), 4),
        "macro_f1": round(float(f1_score(tags, pred, average="macro", zero_division=0)), 4),
        "per_tag": {t: {"precision": round(float(p[i]), 4), "recall": round(float(r[i]), 4),
                        "f1": round(float(f[i]), 4), "support": int(s[i])} for i, t in enumerate(labels)},
    }


def fit_best(train_q, train_t, val_q, val_t, kinds: Sequence[str] = KINDS, **kwargs) -> tuple[TagClassifier, dict]:
    """Fit each kind on train, keep the best weighted F1 on validation; returns it with every kind's figures."""
    scores, best, best_f1 = {}, None, -1.0
    for kind in kinds:
        model = TagClassifier(kind, **kwargs).fit(train_q, train_t)
        scores[kind] = evaluate(model, val_q, val_t) if val_q else {"weighted_f1": None}
        f1 = scores[kind]["weighted_f1"] if scores[kind]["weighted_f1"] is not None else 0.0
        if f1 > best_f1:
            best, best_f1 = model, f1
    return best, scores


def train_classifier(questions: Sequence[str], tags: Sequence[str], val_questions=(), val_tags=(),
                     kinds: Sequence[str] = KINDS, min_count: int = DEFAULT_MIN_COUNT, **kwargs):
    """Fold rare areas into `other` (the scheme is set by the training rows), pick the best kind on validation."""
    train_t = fold_rare(tags, min_count)
    if len(set(train_t)) < 2:  # a tiny corpus: keep every area rather than fold all of them away
        train_t = list(tags)
    keep = sorted(set(train_t))
    val_t = fold_rare(val_tags, keep=keep)
    if not val_questions or len(kinds) == 1:
        model = TagClassifier(kinds[0], **kwargs).fit(questions, train_t)
        return model, ({kinds[0]: evaluate(model, val_questions, val_t)} if val_questions else {})
    return fit_best(questions, train_t, list(val_questions), val_t, kinds, **kwargs)


# --- files of {"question", "tag"} or {"question", "source"} rows -----------------------------------


def read_rows(path: Path | str, base_url: str | None = None, depth: int = 1) -> tuple[list[str], list[str]]:
    """JSON (a list) or JSONL rows with question and tag, or question and source (tagged with base_url)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    text = path.read_text(encoding="utf-8")
    try:
        rows = json.loads(text)
        rows = rows if isinstance(rows, list) else [rows]
    except ValueError:
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    raise ValueError(f"{path}:{n}: not valid JSON") from None
    questions, tags = [], []
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not isinstance(row.get("question"), str) or not row["question"].strip():
            raise ValueError(f"{path}: row {n} has no 'question' string")
        if isinstance(row.get("tag"), str) and row["tag"].strip():
            tag = row["tag"].strip()
        elif isinstance(row.get("source"), str):
            if base_url is None:
                raise ValueError(f"{path}: row {n} has a 'source' but no 'tag': pass --base-url to derive tags")
            tag = docs_area(row["source"], base_url, depth)
        else:
            raise ValueError(f"{path}: row {n} has neither 'tag' nor 'source'")
        questions.append(row["question"].strip())
        tags.append(tag)
    if not questions:
        raise ValueError(f"{path} holds no rows")
    return questions, tags
