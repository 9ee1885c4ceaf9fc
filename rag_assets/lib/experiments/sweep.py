"""The experiment sweep: a YAML file of parameter lists whose every combination is a variant.

Keys (each a list; a scalar counts as a one-item list; a key left out means the production default):
chunk_size, chunk_overlap, embedding_model, retrieval (semantic, lexical, hybrid, rerank), num_chunks, llm
(a model name, "extractive", or "routed": the trained router picks the open or the strong LLM per question);
and (issue 12) prompt (a name in lib/generate/answer.py PROMPTS: default, ignore-irrelevant), rerank (none | tags),
rerank_candidates, rerank_threshold, hybrid_semantic_weight, hybrid_lexical_weight, rrf_k. A variant key names
these only when the sweep file lists them, so existing partition keys do not change.
Variants sharing a chunking share its chunks and lexical index; variants sharing (chunking, model)
share one embedding run, so sweeping num_chunks, retrieval or llm never re-embeds.
embedding_model also takes `finetuned` (the latest full fine-tune of `finetuned_embedding_model`) and
`finetuned-adapter` (its query-side adapter over the frozen base model); they resolve to the committed model
directory when the variant is embedded (lib/finetune/model_dir.py), and an adapter reuses production's vectors.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from rag_assets.lib.retrieve.retriever import MODES
from rag_assets.lib.settings import DEFAULT_SWEEP_PATH, Settings, env_value, llm_endpoint  # noqa: F401 (re-export)
EXTRACTIVE = "extractive"  # the offline answerer: no LLM, no cost
ROUTED = "routed"  # per question, the router's choice between the open and the strong LLM (issue 13)
BASE_KEYS = ("chunk_size", "chunk_overlap", "embedding_model", "retrieval", "num_chunks", "llm")
# Retrieval and prompt keys (issue 12), with their short names in variant keys.
TUNING_KEYS = {"prompt": "p-", "rerank": "rr-", "rerank_candidates": "rn", "rerank_threshold": "rt",
               "hybrid_semantic_weight": "sw", "hybrid_lexical_weight": "lw", "rrf_k": "rrf"}
KEYS = BASE_KEYS + tuple(TUNING_KEYS)
FINETUNED_ALIASES = ("finetuned", "finetuned-adapter")  # = lib.finetune.model_dir.ALIASES


@dataclass(frozen=True)
class Variant:
    chunk_size: int
    chunk_overlap: int
    embedding_model: str
    retrieval: str
    num_chunks: int
    llm: str
    key: str  # e.g. cs700-ov50__minilm-l6-v2__hybrid__k5__extractive (the partition key)
    chunking_key: str  # cs700-ov50
    embedding_key: str  # cs700-ov50__minilm-l6-v2
    prompt: str = "default"
    rerank: str = "none"
    rerank_candidates: int = 30
    rerank_threshold: float = 0.9
    hybrid_semantic_weight: float = 1.0
    hybrid_lexical_weight: float = 1.0
    rrf_k: int = 60

    def params(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k in KEYS}


@dataclass(frozen=True)
class Sweep:
    path: Path
    variants: tuple[Variant, ...]

    @property
    def chunkings(self) -> dict[str, tuple[int, int]]:
        return {v.chunking_key: (v.chunk_size, v.chunk_overlap) for v in self.variants}

    @property
    def embeddings(self) -> dict[str, tuple[str, str]]:
        """embedding key -> (chunking key, model): one embedding run each."""
        return {v.embedding_key: (v.chunking_key, v.embedding_model) for v in self.variants}

    def variant(self, key: str) -> Variant:
        for v in self.variants:
            if v.key == key:
                return v
        raise KeyError(f"variant {key!r} is not in the sweep {self.path} (reload the definitions if it changed)")


def sweep_path(settings: Settings | None = None) -> Path:
    return settings.sweep_path if settings else Path(env_value("sweep_path"))


def default_llm(settings: Settings) -> str:
    """RAG_LLM_MODEL (or the promoted LLM) when an OpenAI-compatible endpoint is configured, else extractive."""
    if settings.llm_model and (settings.llm_model == EXTRACTIVE or settings.llm_endpoint):
        return settings.llm_model
    return EXTRACTIVE


def defaults(settings: Settings) -> dict:
    """What a key left out of the sweep means: the production configuration."""
    return {
        "chunk_size": settings.chunk_size,
        "chunk_overlap": settings.chunk_overlap,
        "embedding_model": settings.embedding_model,
        "retrieval": settings.retrieval_mode,
        "num_chunks": settings.num_chunks,
        "llm": default_llm(settings),
        **{k: getattr(settings, k) for k in TUNING_KEYS},
    }


def load_sweep(path: Path | str | None = None, settings: Settings | None = None) -> Sweep:
    path = Path(path) if path else sweep_path(settings)
    if not path.is_file():
        raise FileNotFoundError(f"sweep file {path} not found (set RAG_SWEEP_PATH or ship data/sweep.yaml)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"sweep file {path} is not valid YAML: {exc}") from None
    return parse_sweep(raw, settings or Settings.from_env(), path)


def parse_sweep(raw, settings: Settings, path: Path | str = "<sweep>") -> Sweep:
    where = f"sweep file {path}"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a mapping of {', '.join(KEYS)} to lists, got {type(raw).__name__}")
    unknown = sorted(str(k) for k in raw if k not in KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(KEYS)}")
    base = defaults(settings)
    lists = {k: _values(where, k, raw[k]) if k in raw else [base[k]] for k in KEYS}
    for k in lists["chunk_size"]:
        for o in lists["chunk_overlap"]:
            if o >= k:
                raise ValueError(f"{where}: chunk_overlap {o} must be smaller than chunk_size {k}")
    model_slugs = _slugs(lists["embedding_model"], _model_slug)
    llm_slugs = _slugs(lists["llm"], _llm_slug)
    variants = []
    named = [key for key in TUNING_KEYS if key in raw]  # only these appear in variant keys
    for values in itertools.product(*(lists[key] for key in KEYS)):
        cs, ov, model, mode, k, llm = values[: len(BASE_KEYS)]
        tuning = dict(zip(TUNING_KEYS, values[len(BASE_KEYS):]))
        ckey = f"cs{cs}-ov{ov}"
        ekey = f"{ckey}__{model_slugs[model]}"
        key = f"{ekey}__{mode}__k{k}__{llm_slugs[llm]}"
        if named:
            key += "__" + "-".join(f"{TUNING_KEYS[n]}{_slug(str(tuning[n])) or 'x'}" for n in named)
        variants.append(Variant(cs, ov, model, mode, k, llm, key=key, chunking_key=ckey, embedding_key=ekey, **tuning))
    return Sweep(Path(path), tuple(variants))


def _values(where: str, key: str, value) -> list:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ValueError(f"{where}: {key} is an empty list; leave the key out to use the default")
    checked = [_check(where, key, v) for v in values]
    dupes = sorted({str(v) for v in checked if checked.count(v) > 1})
    if dupes:
        raise ValueError(f"{where}: {key} lists {', '.join(dupes)} more than once")
    return checked


def _check(where: str, key: str, v):
    if key in ("hybrid_semantic_weight", "hybrid_lexical_weight", "rerank_threshold"):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or (key == "rerank_threshold" and v > 1):
            bound = "in [0, 1]" if key == "rerank_threshold" else ">= 0"
            raise ValueError(f"{where}: {key} values must be numbers {bound}, got {v!r}")
        return float(v)
    if key in ("chunk_size", "chunk_overlap", "num_chunks", "rerank_candidates", "rrf_k"):
        least = 0 if key in ("chunk_overlap", "rrf_k") else 1
        if isinstance(v, bool) or not isinstance(v, int) or v < least:
            raise ValueError(f"{where}: {key} values must be integers >= {least}, got {v!r}")
        return v
    if not isinstance(v, str) or not v.strip():
        raise ValueError(f"{where}: {key} values must be non-empty strings, got {v!r}")
    if key == "retrieval" and v not in MODES:
        raise ValueError(f"{where}: retrieval {v!r} is not one of {', '.join(MODES)}")
    if key == "rerank" and v not in ("none", "tags"):
        raise ValueError(f"{where}: rerank {v!r} is not one of none, tags")
    return v.strip()


# Short names for common sentence-transformers models in partition keys; others use their own name.
MODEL_ALIASES = {"all-minilm-l6-v2": "minilm", "all-minilm-l12-v2": "minilm-l12", "all-mpnet-base-v2": "mpnet"}


def _model_slug(name: str) -> str:
    slug = _slug(Path(name.rstrip("/")).name).removeprefix("gt-")
    return MODEL_ALIASES.get(slug, slug) or "model"


def _llm_slug(name: str) -> str:
    return _slug(name.rstrip("/").split("/")[-1]) or "llm"


def _slug(text: str) -> str:
    return re.sub(r"\.{2,}", ".", re.sub(r"[^a-z0-9.]+", "-", text.lower())).strip("-.")


def _slugs(names: list[str], slug) -> dict[str, str]:
    """Readable short names for partition keys; a hash suffix keeps two names with one slug apart."""
    plain = {n: slug(n) for n in names}
    taken = list(plain.values())
    return {n: s if taken.count(s) == 1 else f"{s}-{hashlib.sha1(n.encode()).hexdigest()[:6]}" for n, s in plain.items()}
