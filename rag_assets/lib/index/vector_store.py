"""The LanceDB vector index: chunk id, text, source, vector; cosine distance."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

TABLE_NAME = "chunks"
# IVF_PQ trains a 256-entry codebook per sub-vector: with fewer rows LanceDB silently builds an
# empty index, so below this the table is searched by a flat scan.
MIN_ROWS_FOR_ANN = 256
# Past this share of rows changed in one sync, the IVF_PQ index is retrained; below it, new rows are
# added to the existing index (seconds instead of a minute on ~20k rows).
RETRAIN_FRACTION = 0.2
# Table versions stay checkable (e.g. the one a score report evaluated) at least this long.
VERSION_RETENTION = timedelta(days=30)


@dataclass(frozen=True)
class SyncResult:
    version: int
    rows: int
    index_type: str  # "IVF_PQ" or "flat"
    inserted: int
    deleted: int


def schema(dim: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("text", pa.string()),
            pa.field("source", pa.string()),
            pa.field("vector", pa.list_(pa.float32(), dim)),
        ]
    )


def connect(db_dir: Path | str):
    # Imported on use: LanceDB's runtime warns when a process that loaded it forks (Dagster steps).
    import lancedb

    return lancedb.connect(str(db_dir))


def open_table(db_dir: Path | str, version: int | None = None):
    table = connect(db_dir).open_table(TABLE_NAME)
    if version is not None:
        table.checkout(version)
    return table


def table_exists(db_dir: Path | str) -> bool:
    try:
        connect(db_dir).open_table(TABLE_NAME)
        return True
    except (FileNotFoundError, ValueError):
        return False


def sync(db_dir: Path | str, rows: pa.Table) -> SyncResult:
    """Make the table hold exactly `rows` (by id): insert new ids and delete gone ones in one commit.

    Rows with an existing id are left alone: an id is a hash of source, text and splitter
    settings, so equal ids carry equal content. A reader sees the old or the new version, never
    a half-written one.
    """
    dim = rows.schema.field("vector").type.list_size
    rows = rows.select(["id", "text", "source", "vector"]).cast(schema(dim))
    db = connect(db_dir)
    try:
        table = db.open_table(TABLE_NAME)
        if table.schema.field("vector").type.list_size != dim:
            raise ValueError("dimension changed")
    except (FileNotFoundError, ValueError):
        table = db.create_table(TABLE_NAME, schema=schema(dim), mode="overwrite")
    before = table.count_rows()
    old_ids = set(table.to_arrow().column("id").to_pylist()) if before else set()
    new_ids = set(rows.column("id").to_pylist())
    inserted, deleted = len(new_ids - old_ids), len(old_ids - new_ids)
    if inserted or deleted:
        (
            table.merge_insert("id")
            .when_not_matched_insert_all()
            .when_not_matched_by_source_delete()
            .execute(rows)
        )
    n = table.count_rows()
    index_type = "flat"
    if n >= MIN_ROWS_FOR_ANN:
        if not table.list_indices() or inserted + deleted > RETRAIN_FRACTION * n:
            table.create_index("vector", config=ann_config(n, dim), replace=True)
        elif inserted or deleted:
            # Compacts and indexes the new rows; prunes only versions older than the retention.
            table.optimize(cleanup_older_than=VERSION_RETENTION)
        index_type = "IVF_PQ"
    elif table.list_indices():
        table.drop_index(table.list_indices()[0].name)
    return SyncResult(version=table.version, rows=n, index_type=index_type, inserted=inserted, deleted=deleted)


def ann_config(n_rows: int, dim: int):
    from lancedb.index import IvfPq

    partitions = max(1, min(int(math.sqrt(n_rows)), n_rows // 256))
    sub_vectors = next(s for s in (dim // 8, dim // 4, dim // 2, dim, 1) if s >= 1 and dim % s == 0)
    return IvfPq(distance_type="cosine", num_partitions=partitions, num_sub_vectors=sub_vectors)


def search(table, vector: np.ndarray, k: int) -> list[dict]:
    """Top-k by cosine distance; with an ANN index, candidates are re-ranked on exact vectors."""
    query = table.search(np.asarray(vector, dtype=np.float32), vector_column_name="vector").distance_type("cosine")
    if table.list_indices():
        query = query.nprobes(20).refine_factor(10)
    # `_distance` named explicitly: LanceDB warns that it will stop adding it unasked.
    rows = query.limit(k).select(["id", "text", "source", "_distance"]).to_list()
    return [
        {"id": r["id"], "text": r["text"], "source": r["source"], "score": 1.0 - float(r["_distance"])} for r in rows
    ]


def chunk_ids(db_dir: Path | str) -> set[str]:
    if not table_exists(db_dir):
        return set()
    return set(open_table(db_dir).to_arrow().column("id").to_pylist())
