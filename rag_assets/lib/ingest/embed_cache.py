"""Vectors embedded by a run that has not finished yet, kept so a killed embedding resumes.

Keyed by (model fingerprint, chunk text hash): a vector depends on the model's weights and the text,
nothing else. Each finished slice is appended as its own Parquet part (atomic rename), under
`cache/embeddings/<model fingerprint>/`. The next run of the same weights reuses them; once
`embeddings.parquet` holds them, the parts are removed.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa

from rag_assets.lib.store import read_table, table_metadata, write_table


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class VectorCache:
    def __init__(self, cache_dir: Path, model_name: str, fingerprint: str | None = None):
        if fingerprint is None:
            from rag_assets.lib.ingest.embed import model_fingerprint

            fingerprint = model_fingerprint(model_name)
        self.model_name, self.fingerprint = model_name, fingerprint
        self.dir = Path(cache_dir) / "embeddings" / fingerprint
        self._parts: list[Path] = []  # parts read or written by this run: removed by clear()

    def load(self) -> dict[str, np.ndarray]:
        """{text hash: vector} of every readable part made by these weights."""
        out: dict[str, np.ndarray] = {}
        if not self.dir.exists():
            return out
        for part in sorted(self.dir.glob("part-*.parquet")):
            try:
                if table_metadata(part).get("model_fingerprint") != self.fingerprint:
                    continue
                t = read_table(part)
            except (OSError, pa.ArrowException):
                continue  # unreadable part: its chunks are simply embedded again
            hashes = t.column("text_hash").to_pylist()
            if hashes:
                matrix = t.column("vector").combine_chunks().flatten().to_numpy().reshape(len(hashes), -1)
                out.update(zip(hashes, matrix))
            self._parts.append(part)
        return out

    def append(self, hashes: list[str], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if not len(hashes):
            return
        table = pa.table(
            {
                "text_hash": pa.array(list(hashes), pa.string()),
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), vectors.shape[1]),
            }
        )
        part = self.dir / f"part-{os.getpid()}-{uuid.uuid4().hex[:12]}.parquet"
        write_table(part, table, metadata={"model": self.model_name, "model_fingerprint": self.fingerprint})
        self._parts.append(part)

    def clear(self) -> None:
        for part in self._parts:
            part.unlink(missing_ok=True)
        self._parts = []
