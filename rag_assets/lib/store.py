"""Where each stage's output lives under the data dir, and atomic Parquet/JSON writes."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


@dataclass(frozen=True)
class Layout:
    """Files of one index build. Production uses the data dir; experiment variants get their own root."""

    root: Path

    @property
    def assets(self) -> Path:
        return self.root / "assets"

    @property
    def docs(self) -> Path:
        return self.assets / "docs.parquet"

    @property
    def sections(self) -> Path:
        return self.assets / "sections.parquet"

    @property
    def chunks(self) -> Path:
        return self.assets / "chunks.parquet"

    @property
    def embeddings(self) -> Path:
        return self.assets / "embeddings.parquet"

    @property
    def lancedb(self) -> Path:
        return self.root / "lancedb"

    @property
    def tantivy(self) -> Path:
        return self.root / "tantivy"

    @property
    def eval_dir(self) -> Path:
        return self.root / "eval"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def cache(self) -> Path:
        return self.root / "cache"


def write_table(path: Path, table: pa.Table, metadata: dict | None = None) -> None:
    """Write a Parquet file atomically: readers see the old file or the new one, never half of one."""
    if metadata:
        merged = dict(table.schema.metadata or {})
        merged.update({k.encode(): json.dumps(v).encode() for k, v in metadata.items()})
        table = table.replace_schema_metadata(merged)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_table(path: Path, columns: list[str] | None = None) -> pa.Table:
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist yet: materialize its asset first")
    return pq.read_table(path, columns=columns)


def table_metadata(path: Path) -> dict:
    raw = pq.read_schema(path).metadata or {}
    out = {}
    for k, v in raw.items():
        try:
            out[k.decode()] = json.loads(v)
        except (ValueError, UnicodeDecodeError):
            continue
    return out


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, default=str)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def save_figure(fig, path: Path) -> Path:
    """Save a matplotlib figure atomically (the UI and the CLI may read the PNG at any time), then close it."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return path
