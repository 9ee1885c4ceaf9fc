"""The synthetic questions written by the `synthetic_questions` asset (the retrieval stage, issue 12).

Read straight from `<data dir>/assets/synthetic_questions.parquet` with pyarrow, so this stage does not import
the generator's module: columns question, source (gold `page#anchor`), page, area, split
("train" | "validation" | "dropped"), drop_reason, generator. The split is page-disjoint (a page's questions
are all train or all validation), which is what makes the validation numbers honest.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

COLUMNS = ("question", "source", "page", "area", "split", "drop_reason", "generator")
SPLITS = ("train", "validation", "dropped")


def questions_path(data_dir: Path | str) -> Path:
    return Path(data_dir) / "assets" / "synthetic_questions.parquet"


def read_questions(data_dir: Path | str, split: str | None = None) -> list[dict]:
    """Rows of one split (all rows when split is None); a clear error when the asset is missing or malformed."""
    path = questions_path(data_dir)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: materialize `synthetic_questions` first")
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    table = pq.read_table(path)
    missing = [c for c in ("question", "source", "split") if c not in table.column_names]
    if missing:
        raise ValueError(f"{path} lacks column(s) {', '.join(missing)}")
    rows = table.to_pylist()
    return [r for r in rows if split is None or r["split"] == split]


def write_questions(path: Path | str, rows: list[dict]) -> None:
    """Write rows in the same shape (tests and the benchmark make their own questions with it)."""
    from rag_assets.lib.store import write_table

    schema = pa.schema([(c, pa.string()) for c in COLUMNS])
    full = [{c: r.get(c) for c in COLUMNS} for r in rows]
    write_table(Path(path), pa.Table.from_pylist(full, schema=schema))


def data_version(rows: list[dict]) -> str:
    """A digest of the (question, source, split) rows a model was trained and validated on."""
    import hashlib

    h = hashlib.sha256()
    for r in sorted(rows, key=lambda r: (r["split"], r["source"], r["question"])):
        h.update(f"{r['split']}\x1f{r['source']}\x1f{r['question']}\x1e".encode())
    return h.hexdigest()[:16]
