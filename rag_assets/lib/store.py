"""Where each stage's output lives under the data dir, and the one atomic write (`atomic_write`) every file goes through."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
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


def _umask() -> int:
    """The process umask, read without changing it where /proc allows (os.umask can only set it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_write(path: Path, suffix: str = ".tmp"):
    """Yield a temporary path beside `path`; when the block succeeds it replaces `path` in one step, so readers
    see the old file or the new one, never half of one. On failure the temporary file is removed.

    The file gets the mode a plain open() would give (0666 minus the umask), not mkstemp's 0600: a server
    running as another user must be able to read the index.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_table(path: Path, table: pa.Table, metadata: dict | None = None) -> None:
    """Write a Parquet file atomically."""
    if metadata:
        merged = dict(table.schema.metadata or {})
        merged.update({k.encode(): json.dumps(v).encode() for k, v in metadata.items()})
        table = table.replace_schema_metadata(merged)
    with atomic_write(path) as tmp:
        pq.write_table(table, tmp)


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
    write_text(path, json.dumps(obj, indent=2, default=str))


def write_text(path: Path, text: str) -> None:
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def copy_file(src: Path, dest: Path) -> None:
    with atomic_write(dest) as tmp:
        shutil.copyfile(src, tmp)


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

    try:
        with atomic_write(path, suffix=".tmp.png") as tmp:  # the suffix tells matplotlib the format
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)
    return path
