"""Vectors embedded by a run that has not finished yet, kept so a killed embedding resumes.

Each finished slice is appended as its own Parquet part (atomic rename), under
`cache/embeddings/<model key>/`. The next run of the same model reuses them; once `embeddings.parquet`
holds them, the parts are removed.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa

from rag_assets.lib.store import read_table, table_metadata, write_table


class VectorCache:
    def __init__(self, cache_dir: Path, model_name: str):
        self.model_name = model_name
        key = hashlib.sha256(model_name.encode("utf-8")).hexdigest()[:16]
        self.dir = Path(cache_dir) / "embeddings" / key
        self._parts: list[Path] = []  # parts read or written by this run: removed by clear()

    def load(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if not self.dir.exists():
            return out
        for part in sorted(self.dir.glob("part-*.parquet")):
            try:
                if table_metadata(part).get("model") != self.model_name:
                    continue
                t = read_table(part)
            except (OSError, pa.ArrowException):
                continue  # unreadable part: its chunks are simply embedded again
            ids = t.column("id").to_pylist()
            if ids:
                matrix = t.column("vector").combine_chunks().flatten().to_numpy().reshape(len(ids), -1)
                out.update(zip(ids, matrix))
            self._parts.append(part)
        return out

    def append(self, ids: list[str], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if not len(ids):
            return
        table = pa.table(
            {
                "id": pa.array(list(ids), pa.string()),
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), vectors.shape[1]),
            }
        )
        part = self.dir / f"part-{os.getpid()}-{uuid.uuid4().hex[:12]}.parquet"
        write_table(part, table, metadata={"model": self.model_name})
        self._parts.append(part)

    def clear(self) -> None:
        for part in self._parts:
            part.unlink(missing_ok=True)
        self._parts = []
