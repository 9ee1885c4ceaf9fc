"""The synthetic questions written by the `synthetic_questions` asset (the retrieval stage, issue 12).

Columns question, source (gold `page#anchor`), page, area, split ("train" | "validation" | "dropped"),
drop_reason, generator. The split is page-disjoint (a page's questions
are all train or all validation), which is what makes the validation numbers honest.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

# One reader of the synthetic questions for every stage: the cold-start stage's own.
from rag_assets.lib.questions.synthetic import SPLITS, questions_path, read_questions  # noqa: F401 (re-exported)

COLUMNS = ("question", "source", "page", "area", "split", "drop_reason", "generator")


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
