"""Concurrent and failed refreshes (issue 10 §3, §5): one writer per data dir, queries never break,
`--no-wait`, `--json` keeps stdout pure JSON, and a torn index fails the refresh loudly."""

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time

import dagster as dg

from rag_assets.cli import main as cli_main
from rag_assets.cli import refresh as cli_refresh
from rag_assets.lib.index import lexical, lock, manifest
from rag_assets.lib.index.consistency import committed_ids
from rag_assets.lib.ingest import stages
from rag_assets.lib.retrieve.retriever import MODES, Retriever
from rag_assets.lib.store import Layout, read_table
from rag_assets_tests.test_eval_checks import drop_from_tantivy
from rag_assets_tests.test_refresh import add_paragraph
from rag_assets_tests.test_refresh_kill import dagster_home

BASE_URL = "https://docs.python.org/3.11/"
MARKER = "quuxzyzzyva"
CHILD = "import sys\nfrom rag_assets.cli import main\nsys.exit(main(['refresh', '--json']))\n"


def env_for(docs_dir, data_dir, monkeypatch=None, **extra) -> dict:
    values = dict(RAG_DOCS_DIR=str(docs_dir), RAG_DATA_DIR=str(data_dir), RAG_DOCS_BASE_URL=BASE_URL, **extra)
    if monkeypatch is not None:
        for k, v in values.items():
            monkeypatch.setenv(k, v)
        monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return dict(os.environ, HF_HUB_OFFLINE="1", **values)


def pair_is_whole(retriever: Retriever) -> bool:
    """The LanceDB version and the Tantivy index a reader opened hold the same ids."""
    lance = set(retriever.table.to_arrow().column("id").to_pylist())
    return lance == lexical.all_ids(retriever.index)


def test_two_refreshes_at_once_serialise_and_queries_never_break(copy_built_index, tmp_path):
    docs_dir, data_dir = copy_built_index
    layout = Layout(data_dir)
    home = dagster_home(tmp_path)  # a fresh instance: its set-up must happen once, under the lock
    add_paragraph(docs_dir / "library/csv.html", f"A paragraph with the {MARKER} marker.")
    env = env_for(docs_dir, data_dir, RAG_RAY_MIN_CHUNKS="1000000", DAGSTER_HOME=str(home))

    procs, logs = [], []
    with lock.hold(data_dir):  # both start while a writer holds the data dir: both must wait
        for i in range(2):
            out, err = open(tmp_path / f"out{i}", "w"), open(tmp_path / f"err{i}", "w")
            procs.append(subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdout=out, stderr=err))
            logs.append(tmp_path / f"err{i}")
        deadline = time.monotonic() + 600  # a guard against a hung test, not a timing assertion
        while not all("waiting for it to finish" in p.read_text() for p in logs):
            assert all(p.poll() is None for p in procs), [p.read_text()[-2000:] for p in logs]
            assert time.monotonic() < deadline
            time.sleep(0.05)
    queries = 0
    while any(p.poll() is None for p in procs) or queries == 0:  # readers during both refreshes
        retriever = Retriever.open(data_dir)
        assert pair_is_whole(retriever)
        for mode in MODES:
            assert retriever.search(f"csv {MARKER}", mode, 3)
        queries += 1
    assert [p.wait() for p in procs] == [0, 0], [p.read_text()[-2000:] for p in logs]

    docs = [json.loads((tmp_path / f"out{i}").read_text()) for i in range(2)]  # stdout is one JSON document
    assert sorted(d["docs_changed"] for d in docs) == [0, 1]  # the second waited, then found it done
    assert all(d["skipped"] == [] and d["build_id"] == manifest.read(data_dir).build_id for d in docs)
    chunks = set(read_table(layout.chunks, columns=["id"]).column("id").to_pylist())
    assert committed_ids(layout) == (chunks, chunks)
    hits = Retriever.open(data_dir).search(MARKER, "lexical", 3)
    assert hits and "library/csv.html" in hits[0].source

    instance = dg.DagsterInstance.from_config(str(home))
    assert [r.status for r in instance.get_runs()] == [dg.DagsterRunStatus.SUCCESS]
    for db in (home / "storage").glob("**/*.db"):
        with sqlite3.connect(db) as conn:
            heads = conn.execute("select version_num from alembic_version").fetchall()
        assert len(heads) == 1, (db, heads)  # one schema migration head


def test_no_wait_exits_at_once_with_a_clear_message(copy_built_index, monkeypatch, capfd):
    docs_dir, data_dir = copy_built_index
    env_for(docs_dir, data_dir, monkeypatch)
    (docs_dir / "tutorial/errors.html").unlink()  # work to do
    result = []
    with lock.hold(data_dir):  # held by this thread: the refresh runs in another, like another process
        worker = threading.Thread(target=lambda: result.append(cli_main(["refresh", "--no-wait"])))
        worker.start()
        worker.join()
    assert result == [cli_refresh.BUSY_EXIT]
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "another refresh is writing" in err[0] and "--no-wait" in err[0]
    assert f"pid {os.getpid()}" in err[0]
    assert refresh_needed(docs_dir, data_dir)  # nothing was done


def refresh_needed(docs_dir, data_dir) -> bool:
    from rag_assets.defs.resources import RagSettings
    from rag_assets.lib.ingest import refresh

    rag = RagSettings(docs_dir=str(docs_dir), data_dir=str(data_dir), docs_base_url=BASE_URL)
    return refresh.detect_changes(rag.settings()).needs_run


def test_refresh_json_stdout_is_only_json_whatever_writes_to_fd_1(copy_built_index, monkeypatch, capfd):
    docs_dir, data_dir = copy_built_index
    env_for(docs_dir, data_dir, monkeypatch)
    (docs_dir / "tutorial/errors.html").unlink()
    (docs_dir / "blank.html").write_text("  \n", encoding="utf-8")  # a file the loader skips, with its reason
    real_build_docs = stages.build_docs

    def noisy_build_docs(*args, **kwargs):
        os.write(1, b"(raylet) noise written straight to file descriptor 1\n")  # as Ray's processes do
        print("a library printing to stdout")
        return real_build_docs(*args, **kwargs)

    monkeypatch.setattr(stages, "build_docs", noisy_build_docs)
    assert cli_main(["refresh", "--json"]) == 0
    out, err = capfd.readouterr()
    doc = json.loads(out)
    assert doc["docs_deleted"] == 1 and doc["chunks_deleted"] > 0
    assert doc["skipped"] == [{"path": "blank.html", "reason": doc["skipped"][0]["reason"]}]
    assert doc["skipped"][0]["reason"] and doc["build_id"] == manifest.read(data_dir).build_id
    assert "raylet" in err and "a library printing" in err


def test_refresh_fails_loudly_when_the_committed_index_is_torn(copy_built_index, monkeypatch, capfd):
    docs_dir, data_dir = copy_built_index
    env_for(docs_dir, data_dir, monkeypatch)
    committed = manifest.read(data_dir)
    gone = sorted(lexical.all_ids(lexical.open_index(committed.tantivy_dir)))[0]
    drop_from_tantivy(committed.tantivy_dir, gone)  # e.g. a disk error: nothing in the source changed

    assert cli_main(["refresh", "--json"]) == 1
    out, err = capfd.readouterr()
    assert out == ""
    [line] = err.strip().splitlines()
    assert "chunk_ids_consistent failed" in line and "missing in tantivy: 1" in line
