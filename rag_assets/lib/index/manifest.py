"""The index manifest: what the committed index pair (LanceDB table + Tantivy index) is and where it lives.

Readers (search, ask, evaluation, experiments, serving) open the index through `read(data_dir)` and
embed queries with the manifest's model, never with whatever the current settings say.

On disk, under a layout root (the data dir, or an experiment variant's root):

    manifest.json                    the committed pair: the one file readers trust
    lancedb/<model>-<fp12>/          one LanceDB database per embedding model (fingerprint); versions pinned
    lancedb/latest.json              the newest vector build (not yet committed, or committed)
    tantivy/gen-NNNNNN/              one Tantivy index per change of chunk ids, written copy-on-write
    tantivy/latest.json              the newest lexical build

Each index build writes its own `latest.json`; whichever of the two finishes second sees both agree
with `chunks.parquet` and commits: `manifest.json` is replaced atomically (`os.replace`), so a
reader sees the old pair or the new pair, never a mix or an empty table. A kill before that
replace leaves the old pair serving; the next run finds the builds done and only commits.
Builds no longer named by the committed or the previous manifest are then removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

from rag_assets.lib.store import Layout, read_json, table_metadata, write_json

MANIFEST_FILE = "manifest.json"
LATEST_FILE = "latest.json"
FORMAT = 1
_GEN = re.compile(r"^gen-(\d{6,})$")


@dataclass(frozen=True)
class Manifest:
    build_id: str  # changes whenever a new index pair is committed (servers reload on it)
    model: str  # the embedding model's name or path, as given in settings
    model_fingerprint: str  # sha256 (24 hex) of the model's weight and config files
    dim: int
    normalized: bool  # vectors (and queries) are L2-normalised: cosine = dot product
    chunk_size: int
    chunk_overlap: int
    parser_version: str  # rag_assets.lib.ingest.sections.PARSER_VERSION of the sections
    lancedb_dir: str  # absolute in what read() returns; relative to the root in manifest.json
    lancedb_version: int
    tantivy_dir: str
    tantivy_commit: int | None  # the Tantivy opstamp of that directory's last commit
    rows: int  # rows in the LanceDB table at lancedb_version (= chunks)
    built_at: str  # ISO 8601 UTC time of the commit
    tantivy_docs: int = 0  # documents in the Tantivy index (= rows when consistent)
    chunks_digest: str = ""  # sha256 of the chunk ids in order (chunks.parquet's `ids_digest`)
    docs_digest: str = ""  # sha256 of every document's id, URL and content hash
    splitter_version: str = ""
    index_type: str = ""  # "IVF_PQ" or "flat"
    format: int = FORMAT

    def as_dict(self) -> dict:
        return asdict(self)


def _root(data_dir) -> Path:
    return Path(data_dir.root if isinstance(data_dir, Layout) else data_dir)


def path(data_dir) -> Path:
    return _root(data_dir) / MANIFEST_FILE


def read(data_dir: Path | str | Layout) -> Manifest | None:
    """The committed index of a data dir (or a Layout / variant root), or None when nothing is committed."""
    root = _root(data_dir)
    raw = _read_dict(root / MANIFEST_FILE)
    if raw is None:
        return None
    known = {f.name for f in fields(Manifest)}
    values = {k: v for k, v in raw.items() if k in known}
    for key in ("lancedb_dir", "tantivy_dir"):
        values[key] = str((root / values[key]).resolve())
    try:
        return Manifest(**values)
    except TypeError:
        return None  # written by an incompatible version: treated as "not built", the next refresh rewrites it


def _read_dict(p: Path) -> dict | None:
    if not p.is_file():
        return None
    try:
        data = read_json(p)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# --- where builds go ----------------------------------------------------------------------------


def lancedb_build_dir(layout: Layout, model: str, fingerprint: str) -> Path:
    """The LanceDB database of one embedding model: a new model (any dimension) is built beside the old."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(model.rstrip("/")).name or "model").strip("-")[:40]
    return layout.lancedb / f"{slug}-{fingerprint[:12]}"


def latest_build(index_dir: Path) -> dict | None:
    """What the newest build of an index directory (layout.lancedb or layout.tantivy) holds."""
    part = _read_dict(Path(index_dir) / LATEST_FILE)
    if part is None or not (Path(index_dir) / part.get("dir", "\0")).exists():
        return None
    return part


def record_build(index_dir: Path, part: dict) -> None:
    write_json(Path(index_dir) / LATEST_FILE, part)


def new_tantivy_dir(layout: Layout) -> Path:
    """A fresh generation directory (copy-on-write: a committed generation is never written again)."""
    gens = [int(m.group(1)) for p in _children(layout.tantivy) if (m := _GEN.match(p.name))]
    return layout.tantivy / f"gen-{max(gens, default=0) + 1:06d}"


def _children(d: Path) -> list[Path]:
    return sorted(d.iterdir()) if d.is_dir() else []


# --- the switch ---------------------------------------------------------------------------------


def commit(layout: Layout) -> Manifest | None:
    """Commit the newest vector and lexical builds as one pair when both hold the chunks' ids.

    Returns the manifest now committed (unchanged when it already named these builds), or None
    when one build is missing or behind (the other index step commits once it is done).
    """
    if not layout.chunks.exists():
        return None
    chunks = table_metadata(layout.chunks)
    vec, lex = latest_build(layout.lancedb), latest_build(layout.tantivy)
    want = chunks.get("ids_digest")
    if not vec or not lex or not want or vec.get("ids_digest") != want or lex.get("ids_digest") != want:
        return None
    root = layout.root
    lancedb_dir, tantivy_dir = layout.lancedb / vec["dir"], layout.tantivy / lex["dir"]
    rel = {
        "lancedb_dir": os.path.relpath(lancedb_dir, root),
        "tantivy_dir": os.path.relpath(tantivy_dir, root),
    }
    record = {
        "model": vec["model"],
        "model_fingerprint": vec["model_fingerprint"],
        "dim": int(vec["dim"]),
        "normalized": bool(vec.get("normalized", True)),
        "chunk_size": int(chunks.get("chunk_size") or 0),
        "chunk_overlap": int(chunks.get("chunk_overlap") or 0),
        "parser_version": str(chunks.get("parser_version") or ""),
        "lancedb_dir": rel["lancedb_dir"],
        "lancedb_version": int(vec["version"]),
        "tantivy_dir": rel["tantivy_dir"],
        "tantivy_commit": lex.get("commit"),
        "rows": int(vec["rows"]),
        "tantivy_docs": int(lex.get("docs", 0)),
        "chunks_digest": want,
        "docs_digest": str(chunks.get("docs_digest") or ""),
        "splitter_version": str(chunks.get("splitter_version") or ""),
        "index_type": str(vec.get("index_type") or ""),
        "format": FORMAT,
    }
    # The pair and its lineage (documents, parser, chunking, model): a parser or document change that
    # leaves every chunk id as it was is still a new build, so change detection sees it done.
    build_id = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]
    old = read(root)
    if old is not None and old.build_id == build_id:
        return old
    record = {"build_id": build_id, **record, "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    switch(root, record)
    new = read(root)
    collect_garbage(layout, keep=[new, old])
    return new


def switch(root: Path, record: dict) -> None:
    """The one step that makes a new index pair visible: an atomic replace of manifest.json."""
    write_json(Path(root) / MANIFEST_FILE, record)


def collect_garbage(layout: Layout, keep: list[Manifest | None]) -> list[str]:
    """Remove LanceDB model databases no longer named by the committed or the previous manifest.

    (Tantivy generations are removed by the lexical build, which owns them: an experiment's
    chunking shares its Tantivy directory with several embedding variants.)
    """
    named = {Path(m.lancedb_dir).resolve() for m in keep if m is not None}
    newest = latest_build(layout.lancedb)
    if newest:
        named.add((layout.lancedb / newest["dir"]).resolve())
    removed = []
    for p in _children(layout.lancedb):
        if p.is_dir() and p.resolve() not in named:
            shutil.rmtree(p, ignore_errors=True)  # also a database left by code before manifests
            removed.append(p.name)
    return removed


def collect_tantivy_generations(layout: Layout, keep_dirs: list[Path]) -> list[str]:
    """Remove Tantivy generations older than the two newest, except those the root's manifest names,
    and the flat index code before manifests wrote directly in layout.tantivy."""
    committed = read(layout.root)
    keep = {Path(p).resolve() for p in keep_dirs}
    if committed is not None:
        keep.add(Path(committed.tantivy_dir).resolve())
    gens = sorted((p for p in _children(layout.tantivy) if _GEN.match(p.name)), key=lambda p: p.name)
    keep.update(p.resolve() for p in gens[-2:])
    removed = []
    for p in _children(layout.tantivy):
        if p.name == LATEST_FILE or p.resolve() in keep:
            continue
        if _GEN.match(p.name):
            shutil.rmtree(p, ignore_errors=True)
        elif p.is_file() and (p.name == "meta.json" or p.name.startswith(".") or "." in p.name):
            p.unlink(missing_ok=True)  # a flat index from before manifests
        else:
            continue
        removed.append(p.name)
    return removed
