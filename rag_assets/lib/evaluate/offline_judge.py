"""Offline quality judge: a 1-5 score from embedding similarity, token overlap and answer shape.

A ridge regression over 15 explainable features, fitted on real GPT-4 judgements
(`benchmarks/calibrate_offline_judge.py` writes the shipped coefficients to offline_judge_params.json).
Run time needs numpy and the embedding model only; no network, no scikit-learn.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from rag_assets.lib.ingest.embed import BUNDLED_MODEL

log = logging.getLogger(__name__)

PARAMS_PATH = Path(__file__).with_name("offline_judge_params.json")

# Answers are embedded from their first 128 tokens: the gist is up front, and half the model's 256 doubles
# CPU throughput at no cost (held-out Spearman 0.656 at 128, 0.652 at 256: the script's --max-tokens).
EMBED_MAX_TOKENS = 128

FEATURES = [
    "cos_answer_reference",
    "cos_answer_question",
    "cos_question_reference",
    "token_f1",
    "novel_f1",
    "novel_precision",
    "bigram_f1",
    "question_recall",
    "identifier_recall",
    "log_answer_tokens",
    "log_reference_tokens",
    "log_context_mentions",
    "refusal",
    "yes_no_conflict",
    "code_answer",
]
BINARY = {"refusal", "yes_no_conflict", "code_answer"}
# GPT-4's scale is not linear in the features. Overlaps enter as square roots (none to some matters more
# than some to much; monotone, so a copy of the reference is not marked down); the other continuous
# features enter with their squares.
ROOTED = ["token_f1", "novel_f1", "novel_precision", "bigram_f1"]
LINEAR = [f for f in FEATURES if f not in ROOTED]
SQUARED = [f for f in LINEAR if f not in BINARY]
COLUMNS = LINEAR + [f"{f}^2" for f in SQUARED] + [f"sqrt({f})" for f in ROOTED]
# Standardized features are clipped here: the fit knows nothing beyond, and a square must not run away.
CLIP_SD = 3.0

_TOKEN = re.compile(r"[a-z0-9_]+")
# Function words carry no content: overlap on them would reward any fluent English.
_STOPWORDS = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been being it its this that "
    "these those there here you your we our they their i me my he she his her them can could should would will "
    "may might must do does did not no yes so than then also which what who whom when where why how all any "
    "some such into about over under more most other only own same too very just use using used".split()
)
# GPT-4 scores answers that decline or blame the context low, whatever they overlap with.
_REFUSAL = re.compile(
    r"(i don'?t know|i do not know|i'?m sorry|i am sorry|(context|information|text)[^.]{0,40}"
    r"(does not|doesn'?t|do not|did not) (provide|mention|contain|include|specify|say)|not (explicitly )?"
    r"(mentioned|provided|specified) in the (given |provided )?(context|information|text)|"
    r"there is no (mention|information)|no information (about|on|regarding)|(unable|not able) to (answer|provide|find)"
    r"|cannot (answer|provide|determine)|can'?t (answer|determine))"
)
_CODE = re.compile(r"```|\b\w+\.\w+\(|\bimport \w+|\w+\s*=\s*\S")
# API names (ray.init, num_cpus): the answer either names the right one or it does not.
_IDENTIFIER = re.compile(r"\b[a-z_][a-z0-9_]*(?:[._][a-z0-9_]+)+")
_YES_NO = re.compile(r"^\W*(yes|no)\b")
_CONTEXT = re.compile(r"\bcontext\b")


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens without function words (the normalization for every overlap feature)."""
    return [t for t in _TOKEN.findall(text.lower()) if t not in _STOPWORDS]


def overlap(answer: Sequence, reference: Sequence) -> tuple[float, float, float]:
    """(F1, precision, recall) of the answer's items against the reference's, counting repeats (SQuAD style)."""
    common = sum((Counter(answer) & Counter(reference)).values())
    p = common / len(answer) if answer else 0.0
    r = common / len(reference) if reference else 0.0
    return (2 * p * r / (p + r) if p + r else 0.0), p, r


def _set_recall(needed: set, answer: set) -> float:
    return len(needed & answer) / len(needed) if needed else 1.0  # nothing to name: nothing missed


def text_features(question: str, answer: str, reference: str) -> dict[str, float]:
    """The lexical and shape features of one (question, answer, reference)."""
    q, a, r = tokens(question), tokens(answer), tokens(reference)
    qset = set(q)
    # Words beyond the question's: restating the question earns no credit.
    novel_f1, novel_precision, _ = overlap([t for t in a if t not in qset], [t for t in r if t not in qset])
    low_a, low_r = answer.lower(), reference.lower()
    yn_a, yn_r = _YES_NO.match(low_a), _YES_NO.match(low_r)
    return {
        "token_f1": overlap(a, r)[0],
        "novel_f1": novel_f1,
        "novel_precision": novel_precision,
        "bigram_f1": overlap(list(zip(a, a[1:])), list(zip(r, r[1:])))[0],
        "question_recall": _set_recall(qset, set(a)),
        "identifier_recall": _set_recall(set(_IDENTIFIER.findall(low_r)), set(_IDENTIFIER.findall(low_a))),
        "log_answer_tokens": math.log1p(len(a)),
        "log_reference_tokens": math.log1p(len(r)),
        # Answers that keep pointing at "the context" hedge or complain instead of answering.
        "log_context_mentions": math.log1p(len(_CONTEXT.findall(low_a))),
        "refusal": float(bool(_REFUSAL.search(low_a))),
        # A reference that opens "No" and an answer that opens "Yes" (or back): GPT-4 gives 1 or 2.
        "yes_no_conflict": float(bool(yn_a and yn_r and yn_a.group(1) != yn_r.group(1))),
        "code_answer": float(bool(_CODE.search(answer))),
    }


def feature_matrix(
    rows: Sequence[tuple[str, str, str]], q_vecs: np.ndarray, a_vecs: np.ndarray, r_vecs: np.ndarray
) -> np.ndarray:
    """Rows of FEATURES from (question, answer, reference) triples and their unit-norm embeddings."""
    cos = {
        "cos_answer_reference": np.sum(a_vecs * r_vecs, axis=1),
        "cos_answer_question": np.sum(a_vecs * q_vecs, axis=1),
        "cos_question_reference": np.sum(q_vecs * r_vecs, axis=1),
    }
    out = np.zeros((len(rows), len(FEATURES)), dtype=np.float64)
    for i, (q, a, r) in enumerate(rows):
        feats = text_features(q, a, r)
        for j, name in enumerate(FEATURES):
            out[i, j] = cos[name][i] if name in cos else feats[name]
    return out


def _columns(params: Mapping, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    z = np.clip((x - np.asarray(params["mean"])) / np.asarray(params["scale"]), -CLIP_SD, CLIP_SD)
    linear = z[:, [FEATURES.index(f) for f in LINEAR]]
    squared = z[:, [FEATURES.index(f) for f in SQUARED]] ** 2
    rooted = np.sqrt(np.clip(x[:, [FEATURES.index(f) for f in ROOTED]], 0.0, None))
    return np.column_stack([linear, squared, rooted])


def design(params: Mapping, x: np.ndarray) -> np.ndarray:
    """Rows of FEATURES -> standardized COLUMNS: a weight reads as score points per standard deviation."""
    return (_columns(params, x) - np.asarray(params["column_mean"])) / np.asarray(params["column_scale"])


def _standardize(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, scale = a.mean(axis=0), a.std(axis=0)
    scale[scale == 0] = 1.0  # a constant column gets a zero weight, not a division by zero
    return mean, scale


def fit(x: np.ndarray, y: np.ndarray, alpha: float = 10.0) -> dict:
    """Closed-form ridge over `design`; returns JSON-ready params (see `predict`)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    mean, scale = _standardize(x)
    params: dict = {"features": FEATURES, "columns": COLUMNS, "mean": mean.tolist(), "scale": scale.tolist()}
    col_mean, col_scale = _standardize(_columns(params, x))
    params.update(column_mean=col_mean.tolist(), column_scale=col_scale.tolist())
    d = design(params, x)
    coef = np.linalg.solve(d.T @ d + alpha * np.eye(d.shape[1]), d.T @ (y - y.mean()))
    params.update(coef=coef.tolist(), intercept=float(y.mean()), alpha=alpha)
    return params


def predict(params: Mapping, x: np.ndarray) -> np.ndarray:
    """Scores in [1, 5] for rows of FEATURES."""
    if "coef" not in params:
        raise ValueError("offline judge params hold no coefficients; run benchmarks/calibrate_offline_judge.py")
    if list(params["features"]) != FEATURES or list(params["columns"]) != COLUMNS:
        raise ValueError("offline judge params were fitted on different features; rerun the calibration")
    return np.clip(design(params, x) @ np.asarray(params["coef"]) + params["intercept"], 1.0, 5.0)


def load_params(path: str | Path = PARAMS_PATH) -> dict:
    return json.loads(Path(path).read_text())


def _triple(row) -> tuple[str, str, str]:
    """(question, answer, reference) from a 3-tuple or a mapping (the calibration data's names work too)."""
    if isinstance(row, Mapping):
        answer = row["answer"] if "answer" in row else row["generated_answer"]
        reference = row["reference"] if "reference" in row else row["reference_answer"]
        return str(row["question"] or ""), str(answer or ""), str(reference or "")
    q, a, r = row
    return str(q or ""), str(a or ""), str(r or "")


class OfflineJudge:
    """Scores an answer 1-5 against a reference, calibrated on GPT-4 judgements; no network."""

    name = "offline"

    def __init__(self, model_name: str | None = None, params: Mapping | str | Path | None = None, batch_size: int = 64):
        """`params`: a mapping, or a JSON path (default: the shipped, calibrated file)."""
        self.params = dict(params) if isinstance(params, Mapping) else load_params(params or PARAMS_PATH)
        fitted_on = self.params.get("model", BUNDLED_MODEL)
        self.model_name = model_name or fitted_on
        if self.model_name != fitted_on:
            # Cosines from another model sit on another scale: the scores still rank, but less well.
            log.warning("offline judge calibrated with %s, running with %s", fitted_on, self.model_name)
        self.batch_size = batch_size
        self._model = None

    @property
    def model(self):
        if self._model is None:
            from rag_assets.lib.ingest.embed import load_model

            self._model = load_model(self.model_name)
            self._model.max_seq_length = int(self.params.get("embed_max_tokens", EMBED_MAX_TOKENS))
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for distinct texts, each embedded once (questions and references repeat)."""
        from rag_assets.lib.ingest.embed import encode

        distinct = list(dict.fromkeys(texts))
        vecs = encode(self.model, distinct, self.batch_size) if distinct else np.zeros((0, 1), np.float32)
        pos = {t: i for i, t in enumerate(distinct)}
        return vecs[[pos[t] for t in texts]] if texts else vecs

    def features(self, rows: Iterable) -> np.ndarray:
        triples = [_triple(r) for r in rows]
        if not triples:
            return np.zeros((0, len(FEATURES)))
        vecs = self.embed([t for tr in triples for t in tr]).reshape(len(triples), 3, -1)
        return feature_matrix(triples, vecs[:, 0], vecs[:, 1], vecs[:, 2])

    def score_many(self, rows: Iterable) -> list[float]:
        """Scores for (question, answer, reference) triples or mappings, embedded in batches."""
        x = self.features(rows)
        return predict(self.params, x).tolist() if len(x) else []

    def score(self, question: str, answer: str, reference: str) -> float:
        return self.score_many([(question, answer, reference)])[0]
