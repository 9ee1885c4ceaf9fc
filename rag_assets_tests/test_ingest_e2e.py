"""End to end: the ingestion assets materialized with real Dagster, Ray, model, LanceDB and Tantivy."""

import dagster as dg
import numpy as np
import pyarrow as pa
import pytest

from rag_assets.defs import index, ingest
from rag_assets.defs.ingest import assets as ingest_assets
from rag_assets.defs.resources import RagSettings
from rag_assets.lib.ingest import embed
from rag_assets.lib.index import vector_store
from rag_assets.lib.index.consistency import committed_ids
from rag_assets.lib.retrieve.retriever import MODES, Retriever
from rag_assets.lib.settings import DEFAULT_EMBEDDING_MODEL
from rag_assets.lib.store import Layout, read_table, table_metadata

ASSETS = ["docs", "sections", "chunks", "embeddings", "vector_index", "lexical_index"]


def metadata_by_asset(result) -> dict[str, dict]:
    return {
        ev.asset_key.to_user_string(): {k: v.value for k, v in ev.materialization.metadata.items()}
        for ev in result.get_asset_materialization_events()
    }


def test_parquet_lancedb_and_tantivy_hold_the_same_chunk_ids(built_index):
    _, data_dir = built_index
    layout = Layout(data_dir)
    chunk_ids = read_table(layout.chunks, columns=["id"]).column("id").to_pylist()
    assert len(chunk_ids) == len(set(chunk_ids)) > 50
    assert read_table(layout.embeddings, columns=["id"]).column("id").to_pylist() == chunk_ids
    assert committed_ids(layout) == (set(chunk_ids), set(chunk_ids))  # the pair the manifest pins
    sources = set(read_table(layout.chunks, columns=["source"]).column("source").to_pylist())
    assert sources <= set(read_table(layout.sections, columns=["source"]).column("source").to_pylist())
    assert table_metadata(layout.chunks).items() >= {"chunk_size": 700, "chunk_overlap": 50}.items()
    assert table_metadata(layout.embeddings).items() >= {"model": DEFAULT_EMBEDDING_MODEL, "dim": 384}.items()


def test_three_pages_stay_below_the_ann_threshold_so_the_table_is_a_flat_scan(built_index, built_index_result):
    _, data_dir = built_index
    table = Retriever.open(data_dir).table
    assert table.count_rows() < vector_store.MIN_ROWS_FOR_ANN  # 120 chunks at the default 700/50
    assert table.list_indices() == []
    assert metadata_by_asset(built_index_result)["vector_index"]["index_type"] == "flat"


def test_each_materialization_records_counts_timings_sizes_model_and_device(built_index, built_index_result):
    _, data_dir = built_index
    layout = Layout(data_dir)
    md = metadata_by_asset(built_index_result)
    assert set(md) == set(ASSETS)
    rows = {name: read_table(path).num_rows for name, path in
            [("docs", layout.docs), ("sections", layout.sections), ("chunks", layout.chunks)]}
    assert md["docs"]["dagster/row_count"] == rows["docs"] == 3  # the number of documents
    assert md["sections"]["dagster/row_count"] == rows["sections"]
    for name in ("chunks", "embeddings", "vector_index", "lexical_index"):
        assert md[name]["dagster/row_count"] == rows["chunks"], name
    for name in ASSETS:
        assert md[name]["seconds"] >= 0, name
        assert md[name]["size_on_disk_bytes"] > 0, name
    for name in ("docs", "sections", "chunks"):
        assert md[name]["preview"].startswith("| "), name  # a markdown table
    assert md["docs"]["skipped_count"] == 0
    assert md["chunks"]["chunk_size"] == 700 and md["chunks"]["max_chars"] <= 700
    assert md["embeddings"]["model"] == DEFAULT_EMBEDDING_MODEL
    assert md["embeddings"]["device"] == embed.torch_device()
    assert md["embeddings"]["dim"] == 384
    assert md["embeddings"]["method"].startswith("ray data")
    assert md["embeddings"]["chunks_embedded"] == rows["chunks"]
    assert md["embeddings"]["chunks_per_second"] > 0


MARKDOWN_GUIDE = """# Widget guide

Widgets are small reusable parts of a dashboard.

## Installing widgets

Run `pip install widgets` and restart the dashboard server.

## Colour themes

Each widget takes a theme: light, dark or high contrast. Set it with `widget.theme = "dark"`.

## Troubleshooting

If a widget shows a blank square, clear the browser cache and reload the page.
"""


def test_small_markdown_corpus_gets_a_flat_scan_and_searches_in_every_mode(tmp_path):
    docs_dir, data_dir = tmp_path / "docs", tmp_path / "data"
    docs_dir.mkdir()
    (docs_dir / "guide.md").write_text(MARKDOWN_GUIDE, encoding="utf-8")
    (docs_dir / "logo.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")  # listed, not fatal
    (docs_dir / "empty.md").write_text("", encoding="utf-8")
    rag = RagSettings(docs_dir=str(docs_dir), data_dir=str(data_dir), docs_base_url="https://example.com/docs/")
    result = dg.materialize([*ingest.ASSETS, *index.ASSETS], resources={"rag": rag})
    assert result.success
    md = metadata_by_asset(result)
    assert md["docs"]["dagster/row_count"] == 1
    assert md["docs"]["skipped_count"] == 2
    assert "logo.md" in md["docs"]["skipped"] and "binary content" in md["docs"]["skipped"]
    assert md["docs"]["skipped_files"] == [{"path": "empty.md", "reason": "empty"},
                                           {"path": "logo.md", "reason": "binary content"}]
    assert md["vector_index"]["index_type"] == "flat"
    assert md["embeddings"]["method"].startswith("in-process")  # 4 chunks: not worth Ray
    retriever = Retriever.open(data_dir)
    assert retriever.table.list_indices() == []
    for mode in MODES:
        hits = retriever.search("How do I pick a dark colour theme for a widget?", mode, 2)
        assert hits[0].source == "https://example.com/docs/guide.md#colour-themes", mode


def test_a_source_without_usable_documents_fails_the_docs_asset_clearly(tmp_path):
    docs_dir = tmp_path / "docs"
    docs_dir.mkdir()
    (docs_dir / "empty.html").write_text("   ", encoding="utf-8")
    rag = RagSettings(docs_dir=str(docs_dir), data_dir=str(tmp_path / "data"))
    result = dg.materialize([ingest_assets.docs], resources={"rag": rag}, raise_on_error=False)
    assert not result.success
    [failure] = [ev for ev in result.all_events if ev.is_step_failure]
    message = str(failure.step_failure_data.error)
    assert "NoDocumentsError" in message and "no usable document" in message and "empty.html: empty" in message
    assert not Layout(tmp_path / "data").docs.exists()  # nothing half-written


def test_256_rows_or_more_get_an_ivf_pq_index_that_still_finds_each_row(built_index, tmp_path):
    # Real vectors for just over 256 distinct short lines of the built corpus (short texts encode fast).
    _, data_dir = built_index
    texts = read_table(Layout(data_dir).chunks, columns=["text"]).column("text").to_pylist()
    lines = sorted({line.strip() for t in texts for line in t.split("\n") if 20 <= len(line.strip()) <= 60})
    lines = lines[: vector_store.MIN_ROWS_FOR_ANN + 4]
    assert len(lines) > vector_store.MIN_ROWS_FOR_ANN
    vectors = embed.encode(embed.cached_model(DEFAULT_EMBEDDING_MODEL), lines)
    rows = pa.table(
        {
            "id": [f"line-{i}" for i in range(len(lines))],
            "text": lines,
            "source": ["https://x.org/p.html#s"] * len(lines),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), vectors.shape[1]),
        }
    )
    synced = vector_store.sync(tmp_path / "lancedb", rows)
    assert synced.index_type == "IVF_PQ" and synced.rows == len(lines)
    table = vector_store.open_table(tmp_path / "lancedb")
    assert [i.index_type for i in table.list_indices()] == ["IvfPq"]
    for i in range(0, len(lines), 37):
        [top] = vector_store.search(table, vectors[i], 1)
        assert top["id"] == f"line-{i}" and top["score"] == pytest.approx(1.0, abs=1e-4)
    assert np.isfinite([h["score"] for h in vector_store.search(table, vectors[0], 10)]).all()
