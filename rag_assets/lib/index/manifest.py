"""The index manifest: what the committed index pair (LanceDB table + Tantivy index) is and where it lives.

Readers (search, ask, evaluation, experiments, serving) open the index through `read(data_dir)` and
embed queries with the manifest's model, never with whatever the current settings say.

FIRST CUT: derived from the index stamps. The integrity work (issue 10) replaces the internals with a
manifest written in the same step that makes a new index visible; this API stays.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from rag_assets.lib.store import Layout


@dataclass(frozen=True)
class Manifest:
    build_id: str  # changes whenever a new index pair is committed (servers reload on it)
    model: str  # the embedding model's name or path, as given in settings
    model_fingerprint: str
    dim: int
    normalized: bool
    chunk_size: int
    chunk_overlap: int
    parser_version: str
    lancedb_dir: str
    lancedb_version: int
    tantivy_dir: str
    tantivy_commit: int | None
    rows: int
    built_at: str

    def as_dict(self) -> dict:
        return asdict(self)


def read(data_dir: Path | str) -> Manifest | None:
    """The committed index of a data dir, or None when nothing has been built there yet."""
    from rag_assets.lib.ingest import refresh

    layout = Layout(Path(data_dir))
    vec, lex = refresh.read_stamp(layout, "vector_index"), refresh.read_stamp(layout, "lexical_index")
    if not vec or not lex or not layout.lancedb.exists():
        return None
    return Manifest(
        build_id=f"{vec.get('ids_digest', '')[:12]}-{vec.get('version')}",
        model=vec.get("model") or "",
        model_fingerprint="",
        dim=0,
        normalized=True,
        chunk_size=vec.get("chunk_size") or 0,
        chunk_overlap=vec.get("chunk_overlap") or 0,
        parser_version="",
        lancedb_dir=str(layout.lancedb),
        lancedb_version=int(vec.get("version") or 0),
        tantivy_dir=str(layout.tantivy),
        tantivy_commit=None,
        rows=0,
        built_at="",
    )
