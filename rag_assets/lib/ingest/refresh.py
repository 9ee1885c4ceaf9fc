"""Change detection on the docs source: per-document content hashes against what the indexes hold.

Each index records, after its commit, a stamp naming the documents, chunk settings and model it
was built from. Comparing the source with the stamps (not only with `docs.parquet`) means a run
killed half-way is seen as work left to do, never as "nothing changed".
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from rag_assets.lib.ingest.docs import load_documents
from rag_assets.lib.settings import Settings
from rag_assets.lib.store import Layout, read_json, read_table, write_json

INDEXES = ("vector_index", "lexical_index")
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
    docs = load_documents(settings.docs_dir, settings.docs_base_url).documents
    return [{"doc_id": d.doc_id, "url": d.url, "content_hash": d.content_hash} for d in docs]


def stamp_path(layout: Layout, index: str) -> Path:
    return layout.assets / f"{index}.stamp.json"


def write_stamp(layout: Layout, index: str, stamp: dict) -> None:
    write_json(stamp_path(layout, index), stamp)


def read_stamp(layout: Layout, index: str) -> dict | None:
    path = stamp_path(layout, index)
    if not path.exists():
        return None
    try:
        stamp = read_json(path)
    except (OSError, ValueError):
        return None  # unreadable: treated as "not built", so the next refresh rewrites it
    return stamp if isinstance(stamp, dict) else None


@dataclass
class Changes:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # why the indexes are not current
    key: str = ""  # digest of the wanted state: the sensor cursor

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
    return {
        "docs_digest": current_digest,
        "chunk_size": settings.chunk_size,
        "chunk_overlap": settings.chunk_overlap,
        "model": settings.embedding_model,
    }


def detect_changes(settings: Settings) -> Changes:
    """One round of change detection: the source against `docs.parquet` and the index stamps."""
    layout = Layout(settings.data_dir)
    rows = scan_source(settings)
    current = {r["doc_id"]: r["content_hash"] for r in rows}
    added, changed, deleted = diff(previous_docs(layout), current)
    wanted = wanted_state(settings, docs_digest(rows))
    changes = Changes(added, changed, deleted, key=digest(json.dumps(wanted, sort_keys=True)))
    changes.reasons = stale_reasons(layout, wanted)
    return changes


def stale_reasons(layout: Layout, wanted: dict) -> list[str]:
    reasons, ids = [], set()
    for index in INDEXES:
        stamp = read_stamp(layout, index)
        if stamp is None:
            reasons.append(f"{index} not built yet")
            continue
        ids.add(stamp.get("ids_digest"))
        if stamp.get("docs_digest") != wanted["docs_digest"]:
            reasons.append(f"{index} was built from other documents")
        if (stamp.get("chunk_size"), stamp.get("chunk_overlap")) != (wanted["chunk_size"], wanted["chunk_overlap"]):
            reasons.append(
                f"{index} chunk settings {stamp.get('chunk_size')}/{stamp.get('chunk_overlap')} "
                f"differ from {wanted['chunk_size']}/{wanted['chunk_overlap']}"
            )
        if index == "vector_index" and stamp.get("model") != wanted["model"]:
            reasons.append(f"vector_index model {stamp.get('model')!r} differs from {wanted['model']!r}")
    if len(ids) > 1:
        reasons.append("vector_index and lexical_index hold different chunk ids (a run stopped between them)")
    return reasons


def zero_counts() -> dict:
    return dict.fromkeys(COUNT_KEYS, 0)
