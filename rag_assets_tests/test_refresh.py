"""Change detection and incremental reindex (issue 5), on a private copy of the built index."""

import json
import re

import dagster as dg
import pytest

from rag_assets.cli import main as cli_main
from rag_assets.cli.refresh import refresh_once
from rag_assets.defs.ingest import assets as ingest_assets
from rag_assets.defs.resources import RagSettings
from rag_assets.lib.index import lexical, manifest, vector_store
from rag_assets.lib.index.consistency import committed_ids
from rag_assets.lib.ingest import refresh
from rag_assets.lib.retrieve.retriever import Retriever
from rag_assets.lib.store import Layout, read_table

BASE_URL = "https://docs.python.org/3.11/"


def rag_for(docs_dir, data_dir, **kw) -> RagSettings:
    # Small deltas embed in-process, as in production below RAG_RAY_MIN_CHUNKS.
    return RagSettings(docs_dir=str(docs_dir), data_dir=str(data_dir), docs_base_url=BASE_URL, **kw)


def chunk_ids(layout: Layout, doc_id: str | None = None) -> set[str]:
    t = read_table(layout.chunks, columns=["id", "doc_id"]).to_pylist()
    return {r["id"] for r in t if doc_id is None or r["doc_id"] == doc_id}


def index_ids(layout: Layout) -> tuple[set[str], set[str]]:
    """(LanceDB ids, Tantivy ids) of the committed pair: what readers see."""
    return committed_ids(layout)


def add_paragraph(path, text: str) -> None:
    """A paragraph at the top of the page's first section (its own direct text)."""
    html = path.read_text(encoding="utf-8")
    first = r"(<section id=\"[^\"]+\">(?:(?!<section).)*?</h1>)"
    new, n = re.subn(first, lambda m: m.group(1) + f"<p>{text}</p>", html, count=1, flags=re.S)
    assert n == 1
    path.write_text(new, encoding="utf-8")


def latest_metadata(instance, key: str) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(key))
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_detect_changes(copy_built_index):
    docs_dir, data_dir = copy_built_index
    settings = rag_for(docs_dir, data_dir).settings()
    unchanged = refresh.detect_changes(settings)
    assert not unchanged.needs_run, unchanged.summary()
    assert unchanged.counts() == {"docs_added": 0, "docs_changed": 0, "docs_deleted": 0}

    add_paragraph(docs_dir / "library/json.html", "An edited paragraph.")
    (docs_dir / "tutorial/errors.html").unlink()
    (docs_dir / "notes.md").write_text("# Notes\n\nA new Markdown page.\n", encoding="utf-8")
    (docs_dir / "image.png").write_bytes(b"\x89PNG\x00\x00")  # not a doc type: ignored
    changes = refresh.detect_changes(settings)
    assert changes.added == ["notes.md"]
    assert changes.changed == ["library/json.html"]
    assert changes.deleted == ["tutorial/errors.html"]
    assert changes.needs_run and changes.key != unchanged.key

    # A setting that changes outputs is a change too, though no document changed.
    (docs_dir / "notes.md").unlink()
    other = refresh.detect_changes(settings.with_(chunk_size=500))
    assert any("chunk settings" in r for r in other.reasons)


def test_edit_one_doc_embeds_only_its_new_chunks(copy_built_index):
    docs_dir, data_dir = copy_built_index
    layout = Layout(data_dir)
    before_ids = chunk_ids(layout)
    before = manifest.read(data_dir)
    add_paragraph(docs_dir / "library/json.html", "JSON text written by this test: zyzzyvaquux marker.")

    instance = dg.DagsterInstance.ephemeral()
    counts, changes = refresh_once(rag_for(docs_dir, data_dir, ray_min_chunks=100_000), instance=instance)

    new_of_doc = chunk_ids(layout, "library/json.html") - before_ids
    assert 0 < len(new_of_doc) < len(chunk_ids(layout, "library/json.html"))
    assert counts["docs_changed"] == 1 and counts["docs_added"] == counts["docs_deleted"] == 0
    assert counts["chunks_embedded"] == len(new_of_doc)
    assert counts["chunks_reused"] == len(chunk_ids(layout)) - len(new_of_doc)
    assert counts["chunks_deleted"] == len(before_ids - chunk_ids(layout))
    assert latest_metadata(instance, "sections")["docs_parsed"] == 1  # only the edited page was re-parsed
    for other in ("library/csv.html", "tutorial/errors.html"):
        assert chunk_ids(layout, other) <= before_ids

    lance, tantivy = index_ids(layout)
    assert chunk_ids(layout) == lance == tantivy
    hits = Retriever.from_layout(layout).search("zyzzyvaquux", "lexical", 3)
    assert hits and hits[0].id in new_of_doc
    assert not refresh.detect_changes(rag_for(docs_dir, data_dir).settings()).needs_run

    # The version before the refresh can still be checked out, with the ids it held; the Tantivy
    # index before it is untouched (copy-on-write), so a reader that opened it still sees it whole.
    after = manifest.read(data_dir)
    assert after.build_id != before.build_id and after.lancedb_dir == before.lancedb_dir
    old = vector_store.open_table(before.lancedb_dir, before.lancedb_version)
    assert set(old.to_arrow().column("id").to_pylist()) == before_ids
    assert lexical.all_ids(lexical.open_index(before.tantivy_dir)) == before_ids != chunk_ids(layout)
    assert latest_metadata(instance, "vector_index")["lancedb_version"] == after.lancedb_version > before.lancedb_version

    # Data versions name the content: the chunks' one is the digest of their ids.
    event = instance.get_latest_materialization_event(dg.AssetKey("chunks"))
    ids_in_order = read_table(layout.chunks, columns=["id"]).column("id").to_pylist()
    assert event.asset_materialization.tags["dagster/data_version"] == refresh.digest(ids_in_order)


def test_delete_one_doc_removes_its_chunks_from_both_indexes(copy_built_index):
    docs_dir, data_dir = copy_built_index
    layout = Layout(data_dir)
    gone = chunk_ids(layout, "tutorial/errors.html")
    assert gone
    (docs_dir / "tutorial/errors.html").unlink()

    counts, _ = refresh_once(rag_for(docs_dir, data_dir, ray_min_chunks=100_000))

    assert counts["docs_deleted"] == 1 and counts["docs_added"] == counts["docs_changed"] == 0
    assert counts["chunks_deleted"] == len(gone) and counts["chunks_embedded"] == 0
    lance, tantivy = index_ids(layout)
    assert not gone & lance and not gone & tantivy
    assert chunk_ids(layout) == lance == tantivy
    retriever = Retriever.from_layout(layout)
    for mode in ("lexical", "semantic"):
        hits = retriever.search("handling exceptions try except", mode, 10)
        assert hits and all("tutorial/errors.html" not in h.source for h in hits)


def test_cli_refresh_json_nothing_changed_is_all_zeros(copy_built_index, monkeypatch, capsys):
    docs_dir, data_dir = copy_built_index
    monkeypatch.setenv("RAG_DOCS_DIR", str(docs_dir))
    monkeypatch.setenv("RAG_DATA_DIR", str(data_dir))
    monkeypatch.setenv("RAG_DOCS_BASE_URL", BASE_URL)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    layout = Layout(data_dir)
    mtimes = {p: p.stat().st_mtime_ns for p in (layout.embeddings, layout.chunks, layout.docs)}

    assert cli_main(["refresh", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == dict.fromkeys(refresh.COUNT_KEYS, 0) | {"skipped": [], "build_id": manifest.read(data_dir).build_id}
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes  # no stage ran, nothing embedded


def test_cli_refresh_on_missing_source_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RAG_DOCS_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    assert cli_main(["refresh", "--json"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_code_versions_follow_the_settings():
    settings = RagSettings().settings()
    assert ingest_assets.chunks.code_versions_by_key[dg.AssetKey("chunks")] == (
        f"recursive-v1:size={settings.chunk_size}:overlap={settings.chunk_overlap}"
    )
    embeddings_version = ingest_assets.embeddings.code_versions_by_key[dg.AssetKey("embeddings")]
    assert embeddings_version == f"model={settings.embedding_model}"


def test_missing_or_torn_manifest_means_work_to_do(copy_built_index):
    docs_dir, data_dir = copy_built_index
    path = manifest.path(data_dir)
    path.write_text("{not json", encoding="utf-8")  # not by this code (atomic replace), but by hand
    changes = refresh.detect_changes(rag_for(docs_dir, data_dir).settings())
    assert changes.needs_run and any("no committed index" in r for r in changes.reasons)
    path.unlink()
    assert refresh.detect_changes(rag_for(docs_dir, data_dir).settings()).needs_run


def test_small_delta_extends_the_ann_index_and_keeps_old_versions(tmp_path, monkeypatch):
    """Past 256 rows, a small change adds rows to the existing IVF_PQ index instead of retraining it."""
    import numpy as np
    import pyarrow as pa
    from lancedb.table import LanceTable

    trained = []  # a spy: the real create_index runs, each call is counted
    real_create_index = LanceTable.create_index
    def spy(self, *args, **kwargs):
        trained.append(1)
        return real_create_index(self, *args, **kwargs)

    monkeypatch.setattr(LanceTable, "create_index", spy)

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((400, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    def rows(ids, vecs):
        return pa.table({
            "id": ids, "text": [f"text {i}" for i in ids], "source": ["s"] * len(ids),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vecs.ravel()), 32),
        })

    ids = [f"c{i}" for i in range(300)]
    first = vector_store.sync(tmp_path, rows(ids, vectors[:300]))
    assert first.index_type == "IVF_PQ" and len(trained) == 1
    index_name = vector_store.open_table(tmp_path).list_indices()[0].name

    changed = ids[10:] + [f"n{i}" for i in range(10)]
    second = vector_store.sync(tmp_path, rows(changed, np.concatenate([vectors[10:300], vectors[300:310]])))
    assert (second.inserted, second.deleted, second.index_type) == (10, 10, "IVF_PQ")
    assert len(trained) == 1  # not retrained
    table = vector_store.open_table(tmp_path)
    stats = table.index_stats(index_name)  # the same index, now covering the new rows too
    assert stats.num_unindexed_rows == 0 and stats.num_indexed_rows == 300
    assert vector_store.search(table, vectors[305], 1)[0]["id"] == "n5"
    old = vector_store.open_table(tmp_path, first.version)
    assert set(old.to_arrow().column("id").to_pylist()) == set(ids)

    # A large change retrains.
    third = vector_store.sync(tmp_path, rows([f"m{i}" for i in range(300)], vectors[100:400]))
    assert (third.inserted, len(trained)) == (300, 2)
