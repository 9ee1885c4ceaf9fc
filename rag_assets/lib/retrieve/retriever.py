"""The one retrieval module: semantic (cosine top-k), lexical (BM25), hybrid (reciprocal rank fusion) and
rerank (a wide hybrid first stage, then the chunks of the question's predicted docs area first).

Evaluation, experiments, the CLI and serving all retrieve through `Retriever`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from rag_assets.lib.ingest import embed
from rag_assets.lib.index import lexical, vector_store
from rag_assets.lib.store import Layout, table_metadata

MODES = ("semantic", "lexical", "hybrid", "rerank")


@dataclass(frozen=True)
class Hit:
    id: str
    source: str
    score: float
    text: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class HybridParams:
    rrf_k: int = 60  # the RRF constant: larger flattens the rank weights
    semantic_weight: float = 1.0
    lexical_weight: float = 1.0
    candidates: int = 50  # how deep each leg is read before fusing

    def __post_init__(self):
        if self.rrf_k < 0:
            raise ValueError(f"rrf_k must be >= 0, got {self.rrf_k}")
        if self.semantic_weight < 0 or self.lexical_weight < 0:
            raise ValueError("hybrid leg weights must be >= 0")
        if self.candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {self.candidates}")

    @classmethod
    def from_settings(cls, settings) -> "HybridParams":
        return cls(rrf_k=settings.rrf_k, semantic_weight=settings.hybrid_semantic_weight,
                   lexical_weight=settings.hybrid_lexical_weight)


@dataclass(frozen=True)
class RerankParams:
    """The docs-area reranker: `tags` reorders every mode's hits; mode `rerank` is hybrid with `tags`."""

    method: str = "none"  # none | tags
    candidates: int = 30  # how wide the first stage is read before reordering
    threshold: float = 0.9  # the classifier's confidence needed to reorder at all
    model_dir: str | None = None  # default <data dir>/models/tag_classifier
    title_boost: float = 1.0  # BM25 title-field boost (the lexical leg of every mode)

    @classmethod
    def from_settings(cls, settings) -> "RerankParams":
        return cls(settings.rerank, settings.rerank_candidates, settings.rerank_threshold,
                   title_boost=settings.bm25_title_boost)


def rrf(ranked_lists: list[list[str]], weights: list[float] | None = None, k: int = 60) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: score(d) = sum_i w_i / (k + rank_i(d)), ranks from 1; ties by first appearance."""
    weights = [1.0] * len(ranked_lists) if weights is None else weights
    if len(weights) != len(ranked_lists):
        raise ValueError("one weight per ranked list")
    if k < 0:
        raise ValueError(f"the RRF constant k must be >= 0, got {k}")
    scores: dict[str, float] = {}
    for ranked, w in zip(ranked_lists, weights):
        for rank, doc in enumerate(ranked, 1):
            scores[doc] = scores.get(doc, 0.0) + w / (k + rank)
    order = {doc: i for i, doc in enumerate(d for ranked in ranked_lists for d in ranked)}
    return sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))


class Retriever:
    def __init__(
        self,
        lancedb_dir: Path | str,
        tantivy_dir: Path | str,
        model_name: str,
        hybrid: HybridParams | None = None,
        table_version: int | None = None,
        rerank: RerankParams | None = None,
    ):
        self.model_name = model_name
        if hybrid is None or rerank is None:  # unset: the settings' (tuned or promoted) parameters
            from rag_assets.lib.settings import Settings

            settings = Settings.from_env()
            hybrid = hybrid or HybridParams.from_settings(settings)
            rerank = rerank or RerankParams.from_settings(settings)
        self.hybrid_params = hybrid
        self.rerank_params = rerank
        self._tagger = None
        self.table = vector_store.open_table(lancedb_dir, table_version)
        self.index = lexical.open_index(tantivy_dir)

    @classmethod
    def from_layout(cls, layout: Layout, model_name: str | None = None, **kwargs) -> "Retriever":
        if model_name is None and layout.embeddings.exists():
            model_name = table_metadata(layout.embeddings).get("model")
        if not model_name:
            raise FileNotFoundError(f"no index under {layout.root}: materialize the ingestion assets first")
        return cls(layout.lancedb, layout.tantivy, model_name, **kwargs)

    @classmethod
    def open(cls, data_dir: Path | str, **kwargs) -> "Retriever":
        """The committed index of a data dir, pinned to its manifest (model, LanceDB version, Tantivy dir)."""
        from rag_assets.lib.index import manifest as index_manifest

        m = index_manifest.read(data_dir)
        if m is None:
            raise FileNotFoundError(f"no index under {data_dir}: materialize the ingestion assets first")
        retriever = cls(m.lancedb_dir, m.tantivy_dir, m.model, table_version=m.lancedb_version, **kwargs)
        retriever.manifest = m
        return retriever

    @property
    def table_version(self) -> int:
        return self.table.version

    def semantic(self, query: str, k: int) -> list[Hit]:
        if not query.strip() or k <= 0:
            return []
        vector = embed.embed_query(self.model_name, query)
        return [Hit(**h) for h in vector_store.search(self.table, vector, k)]

    def lexical(self, query: str, k: int) -> list[Hit]:
        return [Hit(**h) for h in lexical.search(self.index, query, k, self.rerank_params.title_boost)]

    def hybrid(self, query: str, k: int) -> list[Hit]:
        p = self.hybrid_params
        depth = max(k, p.candidates)
        sem, lex = self.semantic(query, depth), self.lexical(query, depth)
        by_id = {h.id: h for h in lex} | {h.id: h for h in sem}
        fused = rrf([[h.id for h in sem], [h.id for h in lex]], [p.semantic_weight, p.lexical_weight], p.rrf_k)
        return [Hit(id=i, source=by_id[i].source, score=s, text=by_id[i].text) for i, s in fused[:k]]

    def tagger(self):
        """The docs-area classifier, loaded once (FileNotFoundError with the fix when it was never trained)."""
        if self._tagger is None:
            from rag_assets.lib.retrieve.tags import TagClassifier

            model_dir = self.rerank_params.model_dir
            if model_dir is None:
                from rag_assets.lib.settings import Settings

                model_dir = Path(Settings.from_env().data_dir) / "models" / "tag_classifier"
            self._tagger = TagClassifier.load(model_dir)
        return self._tagger

    def reranked(self, query: str, k: int, first_stage: str = "hybrid") -> list[Hit]:
        from rag_assets.lib.retrieve.rerank import move_area_ahead

        p = self.rerank_params
        hits = getattr(self, first_stage)(query, max(k, p.candidates))
        if not hits:
            return []
        try:
            tagger = self.tagger()
        except FileNotFoundError as exc:  # never trained: serve the first stage rather than fail every query
            if not getattr(self, "_warned_no_tagger", False):
                logging.getLogger(__name__).warning("rerank without reordering: %s", exc)
                self._warned_no_tagger = True
            return hits[:k]
        area, confidence = tagger.predict_one(query)
        return move_area_ahead(hits, area, confidence, p.threshold, tagger.area_of)[:k]

    def rerank(self, query: str, k: int) -> list[Hit]:
        return self.reranked(query, k, "hybrid")

    def search(self, query: str, mode: str = "hybrid", k: int = 5) -> list[Hit]:
        if mode not in MODES:
            raise ValueError(f"unknown search mode {mode!r}: choose one of {', '.join(MODES)}")
        if mode != "rerank" and self.rerank_params.method == "tags":
            return self.reranked(query, k, mode)
        return getattr(self, mode)(query, k)
