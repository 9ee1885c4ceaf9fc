"""Ingestion assets: docs -> sections -> chunks -> embeddings -> vector_index, lexical_index."""

import dagster as dg

from rag_assets.defs.metadata import markdown_table, stage_metadata
from rag_assets.defs.resources import RagSettings
from rag_assets.lib.index import lock
from rag_assets.lib.ingest import stages as ingest
from rag_assets.lib.ingest.chunking import SPLITTER_VERSION
from rag_assets.lib.settings import Settings

GROUP = "ingestion"


def _load_time_settings() -> Settings | None:
    try:
        return Settings.from_env()
    except ValueError:
        return None  # bad settings fail the run with their message; the definitions still load


# Code versions from the settings in effect when the definitions load: a new chunk size, overlap or
# model marks chunks/embeddings (and what is downstream) stale in the UI.
_S = _load_time_settings()
CHUNKS_VERSION = f"{SPLITTER_VERSION}:size={_S.chunk_size}:overlap={_S.chunk_overlap}" if _S else None
EMBEDDINGS_VERSION = f"model={_S.embedding_model}" if _S else None


@dg.asset(group_name=GROUP, kinds={"python", "html"})
def docs(context: dg.AssetExecutionContext, rag: RagSettings) -> dg.MaterializeResult:
    """The documents of the docs source: one row per document with URL, content hash and size."""
    settings = rag.settings()
    with lock.hold(rag.layout().root):  # one writer per data dir
        stats = ingest.build_docs(settings, rag.layout())
    skipped = stats["skipped"]
    for s in skipped:
        context.log.warning(f"skipped {s['path']}: {s['reason']}")
    return dg.MaterializeResult(
        data_version=dg.DataVersion(stats["data_version"]),
        metadata=stage_metadata(
            stats,
            stats["documents"],
            rag.layout().docs,
            docs_source=dg.MetadataValue.path(str(settings.docs_dir)),
            base_url=settings.docs_base_url,
            total_bytes=stats["bytes"],
            docs_added=stats["docs_added"],
            docs_changed=stats["docs_changed"],
            docs_deleted=stats["docs_deleted"],
            skipped_count=len(skipped),
            skipped=dg.MetadataValue.md(markdown_table(skipped) if skipped else "_none_"),
            skipped_files=dg.MetadataValue.json(skipped),  # [{path, reason}], every one
            ignored_files=stats["ignored_files"],
        )
    )


@dg.asset(group_name=GROUP, deps=[docs], kinds={"python"})
def sections(rag: RagSettings) -> dg.MaterializeResult:
    """One row per `<section id>` (HTML) or heading (Markdown) with its own text and `page#anchor` source."""
    with lock.hold(rag.layout().root):  # one writer per data dir
        stats = ingest.build_sections(rag.layout())
    return dg.MaterializeResult(
        data_version=dg.DataVersion(stats["data_version"]),
        metadata=stage_metadata(
            stats,
            stats["sections"],
            rag.layout().sections,
            docs_parsed=stats["docs_parsed"],
            docs_without_sections=len(stats["docs_without_sections"]),
        )
    )


@dg.asset(group_name=GROUP, deps=[sections], kinds={"python"}, code_version=CHUNKS_VERSION)
def chunks(rag: RagSettings) -> dg.MaterializeResult:
    """Recursive character chunks of each section, never crossing a section; ids hash source, text, settings."""
    settings = rag.settings()
    with lock.hold(rag.layout().root):  # one writer per data dir
        stats = ingest.build_chunks(rag.layout(), settings.chunk_size, settings.chunk_overlap)
    return dg.MaterializeResult(
        data_version=dg.DataVersion(stats["data_version"]),
        metadata=stage_metadata(
            stats,
            stats["chunks"],
            rag.layout().chunks,
            chunk_size=stats["chunk_size"],
            chunk_overlap=stats["chunk_overlap"],
            mean_chars=round(stats["mean_chars"], 1),
            max_chars=stats["max_chars"],
        )
    )


@dg.asset(
    group_name=GROUP, deps=[chunks], kinds={"ray", "pytorch"}, pool="embedding", code_version=EMBEDDINGS_VERSION
)
def embeddings(rag: RagSettings) -> dg.MaterializeResult:
    """The chunks embedded with the configured sentence-transformers model, on Ray Data (GPU when present)."""
    settings = rag.settings()
    with lock.hold(rag.layout().root):
        stats = ingest.build_embeddings(
            rag.layout(), settings.embedding_model, settings.ray_address, settings.ray_min_chunks
        )
    rate = stats["chunks_per_second"]
    return dg.MaterializeResult(
        data_version=dg.DataVersion(stats["data_version"]),
        metadata=stage_metadata(
            stats,
            stats["chunks"],
            rag.layout().embeddings,
            model=stats["model"],
            model_fingerprint=stats["model_fingerprint"],
            dim=stats["dim"],
            device=stats["device"],
            method=stats["method"],
            chunks_embedded=stats["chunks_embedded"],
            chunks_reused=stats["chunks_reused"],
            chunks_resumed=stats["chunks_resumed"],
            chunks_deleted=stats["chunks_deleted"],
            chunks_per_second=dg.MetadataValue.float(round(rate, 1) if rate else 0.0),
        )
    )
