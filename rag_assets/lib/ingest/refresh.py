"""Change detection on the docs source: per-document content hashes against what the indexes hold.

The committed index manifest (lib/index/manifest.py) names the documents, chunk settings, parser
version and model fingerprint the index pair was built from. Comparing the source and the settings
with the manifest (not only with `docs.parquet`) means a run killed half-way is seen as work left
to do, never as "nothing changed".
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from rag_assets.lib.index import manifest as index_manifest
from rag_assets.lib.ingest.docs import load_documents
from rag_assets.lib.ingest.sections import PARSER_VERSION
from rag_assets.lib.settings import Settings
from rag_assets.lib.store import Layout, read_table

COUNT_KEYS = ("docs_added", "docs_changed", "docs_deleted", "chunks_embedded", "chunks_reused", "chunks_deleted")


def digest(values) -> str:
    """sha256 over a sequence of strings (order matters; callers sort when it must not)."""
    h = hashlib.sha256()
    for v in values:
        h.update(str(v).encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()


def docs_digest(rows) -> str:
    """What sections and chunks depend on: each document's id, URL and content hash."""
    rows = sorted(rows, key=lambda r: r["doc_id"])
    return digest(f"{r['doc_id']}\x1e{r['url']}\x1e{r['content_hash']}" for r in rows)


def scan_source(settings: Settings) -> list[dict]:
    """The source's documents as {doc_id, url, content_hash}, by the same reading rules as `docs`."""
    return scan(settings)[0]


def scan(settings: Settings) -> tuple[list[dict], list[dict]]:
    """(documents as {doc_id, url, content_hash}, skipped files as {path, reason})."""
    result = load_documents(settings.docs_dir, settings.docs_base_url)
    docs = [{"doc_id": d.doc_id, "url": d.url, "content_hash": d.content_hash} for d in result.documents]
    return docs, [{"path": str(s["path"]), "reason": str(s["reason"])} for s in result.skipped]


@dataclass
class Changes:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # why the indexes are not current
    key: str = ""  # digest of the wanted state: the sensor cursor
    skipped: list[dict] = field(default_factory=list)  # files of the source not read, {path, reason}

    @property
    def needs_run(self) -> bool:
        return bool(self.added or self.changed or self.deleted or self.reasons)

    def counts(self) -> dict:
        return {"docs_added": len(self.added), "docs_changed": len(self.changed), "docs_deleted": len(self.deleted)}

    def summary(self) -> str:
        if not self.needs_run:
            return "no change: the indexes hold the current docs"
        c = self.counts()
        parts = [f"{c['docs_added']} added, {c['docs_changed']} changed, {c['docs_deleted']} deleted"]
        return "; ".join(parts + self.reasons)


def diff(previous: dict[str, str], current: dict[str, str]) -> tuple[list[str], list[str], list[str]]:
    """(added, changed, deleted) doc ids between two {doc_id: content_hash} maps."""
    added = sorted(current.keys() - previous.keys())
    changed = sorted(k for k in current.keys() & previous.keys() if current[k] != previous[k])
    deleted = sorted(previous.keys() - current.keys())
    return added, changed, deleted


def previous_docs(layout: Layout) -> dict[str, str]:
    """{doc_id: content_hash} of the last `docs` materialization."""
    if not layout.docs.exists():
        return {}
    t = read_table(layout.docs, columns=["doc_id", "content_hash"])
    return dict(zip(t.column("doc_id").to_pylist(), t.column("content_hash").to_pylist()))


def wanted_state(settings: Settings, current_digest: str) -> dict:
    from rag_assets.lib.ingest.embed import model_fingerprint

    return {
        "docs_digest": current_digest,
        "chunk_size": settings.chunk_size,
        "chunk_overlap": settings.chunk_overlap,
        "model": settings.embedding_model,
        "model_fingerprint": model_fingerprint(settings.embedding_model),
        "parser_version": PARSER_VERSION,
    }


def detect_changes(settings: Settings) -> Changes:
    """One round of change detection: the source against `docs.parquet` and the committed manifest."""
    layout = Layout(settings.data_dir)
    rows, skipped = scan(settings)
    current = {r["doc_id"]: r["content_hash"] for r in rows}
    added, changed, deleted = diff(previous_docs(layout), current)
    wanted = wanted_state(settings, docs_digest(rows))
    changes = Changes(added, changed, deleted, key=digest(json.dumps(wanted, sort_keys=True)), skipped=skipped)
    changes.reasons = stale_reasons(layout, wanted)
    return changes


def stale_reasons(layout: Layout, wanted: dict) -> list[str]:
    """Why the committed index pair is not the one the wanted state makes (empty when it is)."""
    m = index_manifest.read(layout.root)
    if m is None:
        return ["no committed index yet (no readable manifest.json)"]
    reasons = []
    if m.docs_digest != wanted["docs_digest"]:
        reasons.append("the index was built from other documents")
    if (m.chunk_size, m.chunk_overlap) != (wanted["chunk_size"], wanted["chunk_overlap"]):
        reasons.append(
            f"index chunk settings {m.chunk_size}/{m.chunk_overlap} "
            f"differ from {wanted['chunk_size']}/{wanted['chunk_overlap']}"
        )
    if m.model_fingerprint != wanted["model_fingerprint"]:
        if m.model == wanted["model"]:
            reasons.append(f"the weights of embedding model {m.model!r} changed (fingerprint)")
        else:
            reasons.append(f"index embedding model {m.model!r} differs from {wanted['model']!r}")
    if m.parser_version != wanted["parser_version"]:
        reasons.append(f"parser version {m.parser_version!r} differs from {wanted['parser_version']!r}")
    return reasons


def zero_counts() -> dict:
    return dict.fromkeys(COUNT_KEYS, 0)
