"""The index manifest: a new embedding model re-embeds every chunk (same dimension or not), is built
beside the committed index and switched to in one step; queries embed with the manifest's model; a
SIGKILL during the switch leaves the old pair serving and the next run finishes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from rag_assets.cli.refresh import refresh_once
from rag_assets.defs.resources import RagSettings
from rag_assets.lib.index import lexical, manifest, vector_store
from rag_assets.lib.index.consistency import committed_ids, index_consistency
from rag_assets.lib.ingest import embed, refresh
from rag_assets.lib.retrieve.retriever import MODES, Retriever
from rag_assets.lib.store import Layout, read_table
from rag_assets_tests.test_refresh import add_paragraph

BASE_URL = "https://docs.python.org/3.11/"
MARKER = "zyzzyvaquux"


def _bundled():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(embed.resolve_model(embed.BUNDLED_MODEL), device="cpu")


@pytest.fixture(scope="module")
def perturbed_model(tmp_path_factory) -> str:
    """The bundled model with noise on its word embeddings, saved to a temp dir: same name shape, same 384 dims."""
    import torch

    torch.manual_seed(0)
    model = _bundled()
    weights = model[0].auto_model.embeddings.word_embeddings.weight
    with torch.no_grad():
        weights.add_(torch.randn_like(weights) * weights.std() * 0.5)
    path = tmp_path_factory.mktemp("models") / "minilm-perturbed"
    model.save(str(path))
    return str(path)


@pytest.fixture(scope="module")
def dense_model(tmp_path_factory) -> str:
    """The bundled model with a Dense layer to 256 dimensions on top."""
    import torch
    from sentence_transformers import SentenceTransformer, models

    torch.manual_seed(0)
    dense = models.Dense(in_features=384, out_features=256, activation_function=torch.nn.Identity())
    model = SentenceTransformer(modules=[*_bundled(), dense], device="cpu")
    path = tmp_path_factory.mktemp("models") / "minilm-dense256"
    model.save(str(path))
    return str(path)


def rag_for(docs_dir, data_dir, model, **kw) -> RagSettings:
    return RagSettings(
        docs_dir=str(docs_dir), data_dir=str(data_dir), docs_base_url=BASE_URL, embedding_model=model,
        ray_min_chunks=1_000_000, **kw,
    )


def stored_vectors(m: manifest.Manifest) -> dict[str, np.ndarray]:
    t = vector_store.open_table(m.lancedb_dir, m.lancedb_version).to_arrow()
    matrix = t.column("vector").combine_chunks().flatten().to_numpy().reshape(t.num_rows, -1)
    return dict(zip(t.column("id").to_pylist(), matrix))


@pytest.mark.parametrize("which, dim", [("perturbed_model", 384), ("dense_model", 256)])
def test_a_new_model_re_embeds_every_chunk_and_search_embeds_with_it(copy_built_index, request, which, dim):
    model = request.getfixturevalue(which)
    docs_dir, data_dir = copy_built_index
    layout = Layout(data_dir)
    before = manifest.read(data_dir)
    assert before.model == embed.BUNDLED_MODEL and before.dim == 384
    reader = Retriever.open(data_dir)  # opened before the switch: keeps working on the old pair

    changes = refresh.detect_changes(rag_for(docs_dir, data_dir, model).settings())
    assert any("embedding model" in r for r in changes.reasons), changes.reasons
    counts, _ = refresh_once(rag_for(docs_dir, data_dir, model), instance=dg.DagsterInstance.ephemeral())

    chunks = read_table(layout.chunks, columns=["id", "text"]).to_pylist()
    assert counts["chunks_embedded"] == len(chunks) and counts["chunks_reused"] == 0
    after = manifest.read(data_dir)
    assert (after.model, after.dim, after.model_fingerprint) == (model, dim, embed.model_fingerprint(model))
    assert after.build_id != before.build_id and after.lancedb_dir != before.lancedb_dir  # built beside
    assert after.tantivy_dir == before.tantivy_dir  # same chunks: the lexical index is not rebuilt
    assert index_consistency(layout)["consistent"]

    # Every stored vector is the new model's vector of its chunk's text.
    new = embed.load_model(model, "cpu")
    vectors = stored_vectors(after)
    expected = embed.encode(new, [c["text"] for c in chunks])
    np.testing.assert_allclose(np.stack([vectors[c["id"]] for c in chunks]), expected, atol=1e-4)
    if dim == 384:  # the perturbation is real: the old vectors would have been wrong
        old = stored_vectors(before)
        cosines = [float(np.dot(old[c["id"]], vectors[c["id"]])) for c in chunks]
        assert min(cosines) < 0.95

    # Search embeds the query with the manifest's model: a chunk's own text finds it at cosine 1.
    retriever = Retriever.open(data_dir)
    assert retriever.model_name == model and retriever.manifest == after
    target = next(c for c in chunks if sum(d["text"] == c["text"] for d in chunks) == 1 and len(c["text"]) > 200)
    [top] = retriever.semantic(target["text"], 1)
    assert top.id == target["id"] and top.score == pytest.approx(1.0, abs=1e-3)
    for mode in MODES:
        assert retriever.search("write rows to a csv file", mode, 3)
        assert {h.id for h in reader.search("write rows to a csv file", mode, 3)} <= set(stored_vectors(before))
    assert not refresh.detect_changes(rag_for(docs_dir, data_dir, model).settings()).needs_run


def test_changed_weights_under_the_same_path_are_a_change(copy_built_index, perturbed_model, tmp_path):
    """The fingerprint, not the name, says which model made the vectors."""
    import shutil

    docs_dir, data_dir = copy_built_index
    model_dir = tmp_path / "model"
    shutil.copytree(embed.resolve_model(embed.BUNDLED_MODEL), model_dir)
    settings = rag_for(docs_dir, data_dir, str(model_dir)).settings()
    # Same weights under another name: nothing to re-embed.
    assert embed.model_fingerprint(str(model_dir)) == manifest.read(data_dir).model_fingerprint
    assert not refresh.detect_changes(settings).needs_run
    shutil.copy(Path(perturbed_model) / "model.safetensors", model_dir / "model.safetensors")
    changes = refresh.detect_changes(settings)
    assert changes.needs_run and any("fingerprint" in r or "embedding model" in r for r in changes.reasons)


# The real `rag-assets refresh --json`, held inside the switch (just before manifest.json is replaced)
# until the test kills it: the kill lands there whatever the machine's speed.
CHILD = """
import sys, threading
from pathlib import Path
from rag_assets.lib.index import manifest
real_switch = manifest.switch
def switch(root, record):
    Path(sys.argv[1]).write_text(record["build_id"])
    threading.Event().wait()  # held here until SIGKILL
manifest.switch = switch
from rag_assets.cli import main
sys.exit(main(["refresh", "--json"]))
"""


def test_sigkill_during_the_switch_leaves_the_old_index_serving(copy_built_index, perturbed_model, tmp_path):
    docs_dir, data_dir = copy_built_index
    layout = Layout(data_dir)
    before = manifest.read(data_dir)
    old_ids = set(read_table(layout.chunks, columns=["id"]).column("id").to_pylist())
    # A new model and an edited page: both indexes change (a new LanceDB beside, a new Tantivy generation).
    add_paragraph(docs_dir / "library/json.html", f"A paragraph with the {MARKER} marker.")
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env.update(
        RAG_DOCS_DIR=str(docs_dir), RAG_DATA_DIR=str(data_dir), RAG_DOCS_BASE_URL=BASE_URL,
        RAG_EMBEDDING_MODEL=perturbed_model, RAG_RAY_MIN_CHUNKS="1000000", HF_HUB_OFFLINE="1",
    )
    marker, log = tmp_path / "switching", tmp_path / "child.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(marker)], env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 600  # only a guard against a hung test, not a timing assertion
        while not marker.exists():
            assert proc.poll() is None, f"refresh exited ({proc.returncode}): {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "the refresh never reached the switch"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    # Both new builds are on disk, complete, but readers still see the old pair, whole and consistent.
    new_ids = set(read_table(layout.chunks, columns=["id"]).column("id").to_pylist())
    assert new_ids != old_ids
    vec, lex = manifest.latest_build(layout.lancedb), manifest.latest_build(layout.tantivy)
    assert vec["dir"] != Path(before.lancedb_dir).name and lex["dir"] != Path(before.tantivy_dir).name
    assert manifest.read(data_dir) == before
    assert committed_ids(layout) == (old_ids, old_ids)
    retriever = Retriever.open(data_dir)
    assert retriever.model_name == embed.BUNDLED_MODEL
    for mode in MODES:
        hits = retriever.search(f"{MARKER} json", mode, 5)
        assert hits and {h.id for h in hits} <= old_ids
    assert not lexical.search(retriever.index, MARKER, 5)

    # The next run finds the builds done: nothing is embedded again, it only commits.
    rag = rag_for(docs_dir, data_dir, perturbed_model)
    assert refresh.detect_changes(rag.settings()).needs_run
    counts, _ = refresh_once(rag, instance=dg.DagsterInstance.ephemeral())
    assert counts["chunks_embedded"] == 0
    after = manifest.read(data_dir)
    assert after.build_id == marker.read_text() and after.model == perturbed_model
    assert committed_ids(layout) == (new_ids, new_ids)
    hits = Retriever.open(data_dir).search(MARKER, "lexical", 3)
    assert hits and hits[0].id in new_ids - old_ids
    # The old pair is kept until the next switch: a reader may still hold it.
    assert Path(before.lancedb_dir).exists() and Path(before.tantivy_dir).exists()


def test_a_new_parser_version_re_parses_unchanged_documents(copy_built_index, monkeypatch):
    docs_dir, data_dir = copy_built_index
    rag = rag_for(docs_dir, data_dir, embed.BUNDLED_MODEL)
    assert not refresh.detect_changes(rag.settings()).needs_run
    from rag_assets.lib.ingest import stages

    monkeypatch.setattr(stages, "PARSER_VERSION", "sections-test-next")
    monkeypatch.setattr(refresh, "PARSER_VERSION", "sections-test-next")
    changes = refresh.detect_changes(rag.settings())
    assert not (changes.added or changes.changed or changes.deleted)  # no document changed...
    assert any("parser version" in r for r in changes.reasons)  # ...but the parser did

    instance = dg.DagsterInstance.ephemeral()
    counts, _ = refresh_once(rag, instance=instance)
    sections = instance.get_latest_materialization_event(dg.AssetKey("sections")).asset_materialization
    assert sections.metadata["docs_parsed"].value == 3  # every document, though none changed
    assert counts["chunks_embedded"] == 0  # same sections, same texts: the vectors are reused
    assert manifest.read(data_dir).parser_version == "sections-test-next"
    assert not refresh.detect_changes(rag.settings()).needs_run
