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
from rag_assets.lib.store import Layout

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
    """Reciprocal rank fusion: score(d) = sum_i w_i / (k + rank_i(d)), ranks from 1.

    Equal scores are ordered by the best rank a document reached in any list (then by the earlier list, then
    by id), so a tie never depends on which list happened to mention a document last.
    """
    weights = [1.0] * len(ranked_lists) if weights is None else weights
    if len(weights) != len(ranked_lists):
        raise ValueError("one weight per ranked list")
    if k < 0:
        raise ValueError(f"the RRF constant k must be >= 0, got {k}")
    scores: dict[str, float] = {}
    best: dict[str, tuple[int, int]] = {}  # doc -> (best rank, index of the list it was reached in)
    for li, (ranked, w) in enumerate(zip(ranked_lists, weights)):
        for rank, doc in enumerate(ranked, 1):
            scores[doc] = scores.get(doc, 0.0) + w / (k + rank)
            best[doc] = min(best.get(doc, (rank, li)), (rank, li))
    return sorted(scores.items(), key=lambda kv: (-kv[1], best[kv[0]], kv[0]))


def clean_query(query: str) -> str:
    """A query as valid Unicode text: bytes that were not UTF-8 (which Python keeps as lone surrogates in argv
    and in surrogateescape'd input) become U+FFFD, so no tokenizer, index or JSON encoder trips on them."""
    if not isinstance(query, str):
        raise TypeError(f"a query must be a string, got {type(query).__name__}")
    try:
        query.encode("utf-8")
        return query
    except UnicodeEncodeError:
        raw = query.encode("utf-8", "surrogateescape" if _only_escaped(query) else "surrogatepass")
        return raw.decode("utf-8", "replace").encode("utf-8", "replace").decode("utf-8")


def _only_escaped(text: str) -> bool:
    # surrogateescape can only encode U+DC80..U+DCFF (one undecodable byte each); other lone surrogates
    # (from JSON "\\ud800" or broken UTF-16) go through surrogatepass and are then replaced.
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in text)


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
        self.manifest = None  # set when opened through the manifest (open / from_layout)
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
        """The committed index of a layout (the data dir's, or an experiment variant's), pinned to its manifest."""
        from rag_assets.lib.index import manifest as index_manifest

        m = index_manifest.read(layout.root)
        if m is None:
            raise FileNotFoundError(
                f"no committed index under {layout.root}: run `rag-assets refresh` (or materialize the ingestion assets)"
            )
        if model_name is not None and model_name != m.model:
            raise ValueError(f"the index under {layout.root} was embedded with {m.model!r}, not {model_name!r}")
        retriever = cls(m.lancedb_dir, m.tantivy_dir, m.model, table_version=m.lancedb_version, **kwargs)
        retriever.manifest = m
        return retriever

    @classmethod
    def open(cls, data_dir: Path | str | Layout, **kwargs) -> "Retriever":
        """The committed index of a data dir, pinned to its manifest (model, LanceDB version, Tantivy dir)."""
        return cls.from_layout(data_dir if isinstance(data_dir, Layout) else Layout(Path(data_dir)), **kwargs)

    def _check_model(self) -> None:
        """Queries must embed with the weights the index was built with, not just a model of that name."""
        if self.manifest is None or getattr(self, "_model_checked", False):
            return
        now = embed.model_fingerprint(self.model_name)
        if self.manifest.model_fingerprint and now != self.manifest.model_fingerprint:
            raise ValueError(
                f"the index was embedded with {self.model_name!r} fingerprint {self.manifest.model_fingerprint}, "
                f"but those weights are now {now}: run `rag-assets refresh` to re-embed"
            )
        self._model_checked = True

    @property
    def table_version(self) -> int:
        return self.table.version

    def semantic(self, query: str, k: int) -> list[Hit]:
        query = clean_query(query)
        if not query.strip() or k <= 0:
            return []
        self._check_model()
        vector = embed.embed_query(self.model_name, query)
        return [Hit(**h) for h in vector_store.search(self.table, vector, k)]

    def lexical(self, query: str, k: int) -> list[Hit]:
        return [Hit(**h) for h in lexical.search(self.index, clean_query(query), k, self.rerank_params.title_boost)]

    def hybrid(self, query: str, k: int) -> list[Hit]:
        p, query = self.hybrid_params, clean_query(query)
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
        query = clean_query(query)
        if mode != "rerank" and self.rerank_params.method == "tags":
            return self.reranked(query, k, mode)
        return getattr(self, mode)(query, k)
