"""The index a server answers from: the committed one, swapped for a newer commit without a restart.

A request takes `holder.current()` once and uses that `LoadedIndex` to its end, so a request in flight
finishes on the index it started with while the next one sees the new commit. Looking for a new commit
reads the manifest (a few small files) at most once per `reload_interval_s`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from rag_assets.lib.index import manifest as index_manifest
from rag_assets.lib.retrieve.retriever import Retriever
from rag_assets.lib.store import Layout

log = logging.getLogger(__name__)


@dataclass
class LoadedIndex:
    retriever: Retriever
    manifest: index_manifest.Manifest
    titles: dict[str, str] = field(default_factory=dict)  # chunk id -> its section title

    def title(self, chunk_id: str, url: str) -> str:
        return self.titles.get(chunk_id) or title_from_url(url)

    def identity(self) -> dict:
        return {"version": self.manifest.build_id, "model": self.manifest.model,
                "lancedb_version": self.manifest.lancedb_version}


def title_from_url(url: str) -> str:
    """`.../library/csv.html#csv.reader` -> `csv.reader (library/csv)`: a readable name when no title is known."""
    parts = urlsplit(url)
    page = parts.path.rstrip("/").rsplit("/", 2)[-2:]
    page = "/".join(page).removesuffix(".html") or parts.netloc
    return f"{parts.fragment} ({page})" if parts.fragment else page


def read_titles(data_dir: Path) -> dict[str, str]:
    """Section titles by chunk id from the chunks table (the vector index does not store them)."""
    path = Layout(data_dir).chunks
    if not path.exists():
        return {}
    try:
        import pyarrow.parquet as pq

        table = pq.read_table(path, columns=["id", "title"])
    except (OSError, ValueError, KeyError) as exc:
        log.warning("no chunk titles from %s: %s", path, exc)
        return {}
    return dict(zip(table.column("id").to_pylist(), table.column("title").to_pylist()))


class IndexHolder:
    def __init__(self, data_dir: Path | str, reload_interval_s: float = 2.0):
        self.data_dir = Path(data_dir)
        self.reload_interval_s = reload_interval_s
        self._loaded: LoadedIndex | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()
        self.reloads = 0  # how many times a newer commit was picked up

    def current(self) -> LoadedIndex:
        """The newest committed index; FileNotFoundError while none has been built."""
        loaded = self._loaded
        if loaded is not None and time.monotonic() - self._checked_at < self.reload_interval_s:
            return loaded
        with self._lock:  # one request looks; the others keep answering from the index they have
            if self._loaded is not None and time.monotonic() - self._checked_at < self.reload_interval_s:
                return self._loaded
            self._checked_at = time.monotonic()
            try:
                m = index_manifest.read(self.data_dir)
                if m is not None and (self._loaded is None or m.build_id != self._loaded.manifest.build_id):
                    self._loaded = self._open()
            except Exception as exc:  # a commit being switched or a broken one: keep serving the old index
                if self._loaded is None:
                    raise
                log.warning("kept index %s: reading the new one failed: %s", self._loaded.manifest.build_id, exc)
            if self._loaded is None:
                raise FileNotFoundError(
                    f"no index under {self.data_dir}: build it first (`rag-assets refresh` or the Dagster assets)")
            return self._loaded

    def _open(self) -> LoadedIndex:
        retriever = Retriever.open(self.data_dir)
        loaded = LoadedIndex(retriever, retriever.manifest, read_titles(self.data_dir))
        if self._loaded is not None:
            self.reloads += 1
            log.warning("serving the newly committed index %s (was %s)", loaded.manifest.build_id,
                        self._loaded.manifest.build_id)
        return loaded
