"""A refresh killed mid-embedding (SIGKILL) leaves the previous index searchable; the next run completes it.

The change is a new chunk size, so every chunk is new (a settings change rebuilds what depends on it).
Both runs use a persistent Dagster instance with the project's concurrency pools (DAGSTER_HOME), where
a killed run would otherwise keep the `embedding` slot.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import yaml

from rag_assets.cli.refresh import refresh_once, release_dead_runs
from rag_assets.defs.resources import RagSettings
from rag_assets.lib.index import manifest
from rag_assets.lib.index.consistency import committed_ids
from rag_assets.lib.ingest import refresh
from rag_assets.lib.ingest.embed_cache import VectorCache, text_hash
from rag_assets.lib.retrieve.retriever import Retriever
from rag_assets.lib.settings import DEFAULT_EMBEDDING_MODEL
from rag_assets.lib.store import Layout, read_table

BASE_URL = "https://docs.python.org/3.11/"
PROJECT_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "dagster.yaml"
NEW_CHUNK_SIZE = 400
SLICE = 16

# The real `rag-assets refresh`, with small slices and the second slice held until the test kills
# the process: the kill then lands mid-embedding whatever the machine's speed.
CHILD = f"""
import sys, threading
from rag_assets.lib.ingest import embed, stages as ingest
ingest.EMBED_SLICE = {SLICE}
real_encode, calls = embed.encode, []
def encode(model, texts, batch_size=64):
    calls.append(len(texts))
    if len(calls) > 1:
        threading.Event().wait()  # held here until SIGKILL
    return real_encode(model, texts, batch_size)
embed.encode = encode
from rag_assets.cli import main
sys.exit(main(["refresh", "--json"]))
"""


def ids_of(layout: Layout) -> tuple[set[str], set[str], set[str]]:
    """Chunk ids of chunks.parquet, and of the committed LanceDB and Tantivy pair (what readers see)."""
    chunks = set(read_table(layout.chunks, columns=["id"]).column("id").to_pylist())
    return chunks, *committed_ids(layout)


def texts_of(layout: Layout) -> dict[str, str]:
    t = read_table(layout.chunks, columns=["id", "text"])
    return dict(zip(t.column("id").to_pylist(), t.column("text").to_pylist()))


def wait_for_cached_slice(cache: VectorCache, proc: subprocess.Popen, log, limit_s: float = 600) -> None:
    deadline = time.monotonic() + limit_s  # only a guard against a hung test, not a timing assertion
    while not list(cache.dir.glob("part-*.parquet")):
        if proc.poll() is not None:
            raise AssertionError(f"refresh exited ({proc.returncode}) before embedding: {log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("no embedding slice was cached")
        time.sleep(0.05)


def dagster_home(tmp_path):
    """A DAGSTER_HOME with the project's concurrency settings and storage under tmp_path."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = {
        "storage": {"sqlite": {"base_dir": str(home / "storage")}},
        "telemetry": {"enabled": False},
        "concurrency": yaml.safe_load(PROJECT_DAGSTER_YAML.read_text())["concurrency"],
    }
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return home


def test_killed_refresh_keeps_previous_index_and_next_run_completes(copy_built_index, tmp_path):
    docs_dir, data_dir = copy_built_index
    home = dagster_home(tmp_path)
    layout = Layout(data_dir)
    old_chunks, old_lance, old_tantivy = ids_of(layout)
    assert old_chunks == old_lance == old_tantivy
    old_texts = set(texts_of(layout).values())
    old_build = manifest.read(data_dir).build_id

    env = dict(
        os.environ,
        RAG_DOCS_DIR=str(docs_dir),
        RAG_DATA_DIR=str(data_dir),
        RAG_DOCS_BASE_URL=BASE_URL,
        RAG_CHUNK_SIZE=str(NEW_CHUNK_SIZE),
        RAG_RAY_MIN_CHUNKS="1000000",  # in-process: no Ray in the child
        HF_HUB_OFFLINE="1",
        DAGSTER_HOME=str(home),
    )
    cache = VectorCache(layout.cache, DEFAULT_EMBEDDING_MODEL)
    log = tmp_path / "child.log"  # a file, not a pipe: Dagster's logs must never block the child
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for_cached_slice(cache, proc, log)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    instance = dg.DagsterInstance.from_config(str(home))
    (killed,) = instance.get_runs()
    assert killed.status == dg.DagsterRunStatus.STARTED  # nobody told Dagster

    # In between: chunks were rebuilt, but both indexes still hold the previous chunks and answer queries.
    new_chunks, lance, tantivy = ids_of(layout)
    assert new_chunks.isdisjoint(old_chunks)
    assert lance == tantivy == old_chunks and manifest.read(data_dir).build_id == old_build
    retriever = Retriever.open(data_dir)
    for mode in ("semantic", "lexical", "hybrid"):
        hits = retriever.search("read a csv file", mode, 3)
        assert hits and {h.id for h in hits} <= old_chunks
    new_texts = texts_of(layout)
    # Vectors are kept by text: texts the old chunking had too (short sections) are not embedded again.
    to_embed = {text_hash(t) for t in new_texts.values() if t not in old_texts}
    cached = set(cache.load())
    assert len(cached) == SLICE and cached <= to_embed

    rag = RagSettings(
        docs_dir=str(docs_dir), data_dir=str(data_dir), docs_base_url=BASE_URL,
        chunk_size=NEW_CHUNK_SIZE, ray_min_chunks=1_000_000,
    )
    assert refresh.detect_changes(rag.settings()).needs_run  # the killed run's work is still to do
    # The dead run gives back its embedding slot (else the next refresh would wait for it forever).
    assert instance.event_log_storage.get_concurrency_info("embedding").claimed_slots
    assert release_dead_runs(instance) == [killed.run_id]
    assert not instance.event_log_storage.get_concurrency_info("embedding").claimed_slots
    assert instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.FAILURE
    counts, _ = refresh_once(rag, instance=instance)

    # The slice embedded before the kill is not embedded again; every other new text is.
    embedded = sum(1 for t in new_texts.values() if text_hash(t) in to_embed - cached)
    assert 0 < embedded < len(new_chunks) - SLICE
    assert counts["chunks_embedded"] == embedded
    assert counts["chunks_reused"] == len(new_chunks) - embedded
    assert counts["chunks_deleted"] == len(old_chunks)
    final_chunks, lance, tantivy = ids_of(layout)
    assert final_chunks == new_chunks == lance == tantivy
    assert not list(cache.dir.glob("part-*.parquet"))
    assert not refresh.detect_changes(rag.settings()).needs_run
    committed = manifest.read(data_dir)
    assert committed.chunk_size == NEW_CHUNK_SIZE and committed.build_id != old_build
