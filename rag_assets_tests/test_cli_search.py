"""`rag-assets search "QUERY" --mode semantic|lexical|hybrid -k N [--json]` over the built index."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from rag_assets.cli import main

CSV_PAGE = "https://docs.python.org/3.11/library/csv.html"


def rag_assets_cmd() -> list[str]:
    exe = shutil.which("rag-assets", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "rag_assets.cli"]


def run_cli(data_dir, *args) -> subprocess.CompletedProcess:
    env = dict(os.environ, RAG_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1", RAY_USAGE_STATS_ENABLED="0")
    return subprocess.run([*rag_assets_cmd(), "search", *args], env=env, capture_output=True, text=True, timeout=300)


# Each subprocess that embeds a query loads torch and the model (seconds on 2 cores): hybrid runs as a
# real subprocess, semantic through the same entry point in-process.
@pytest.mark.parametrize("mode, subprocess_run", [("hybrid", True), ("lexical", True), ("semantic", False)])
def test_json_hits_best_first(built_index, monkeypatch, capsys, mode, subprocess_run):
    _, data_dir = built_index
    args = ["How do I write a CSV file with a header row?", "--mode", mode, "-k", "3", "--json"]
    if subprocess_run:
        proc = run_cli(data_dir, *args)
        assert proc.returncode == 0, proc.stderr
        out = proc.stdout
    else:
        monkeypatch.setenv("RAG_DATA_DIR", str(data_dir))
        assert main(["search", *args]) == 0
        out = capsys.readouterr().out
    hits = json.loads(out)
    assert isinstance(hits, list) and 1 <= len(hits) <= 3
    for hit in hits:
        assert {"id", "source", "score", "text"} <= set(hit)
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert any(h["source"].startswith(CSV_PAGE + "#") for h in hits)


def test_tricky_query_in_a_subprocess_exits_0(built_index):
    # Lexical: query syntax only matters to Tantivy (semantic and hybrid are covered in test_search).
    _, data_dir = built_index
    proc = run_cli(data_dir, '"unterminated (a AND [1 TO foo:bar ray.init()?', "--mode", "lexical", "-k", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) <= 2


@pytest.mark.parametrize("query", ["ray.init()?", '"unterminated', "a AND (b", "[1 TO", "foo:bar", "", "   "])
def test_tricky_queries_exit_0_with_a_json_list(built_index, monkeypatch, capsys, query):
    _, data_dir = built_index
    monkeypatch.setenv("RAG_DATA_DIR", str(data_dir))
    assert main(["search", query, "--mode", "lexical", "-k", "4", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert isinstance(hits, list) and len(hits) <= 4
    if not query.strip():
        assert hits == []


def test_plain_output_lists_rank_score_and_source(built_index, monkeypatch, capsys):
    _, data_dir = built_index
    monkeypatch.setenv("RAG_DATA_DIR", str(data_dir))
    assert main(["search", "csv writer header", "--mode", "lexical", "-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("1. [") and "https://docs.python.org/3.11/" in lines[0]
    assert any(line.startswith("2. [") for line in lines)


def test_bad_k_and_missing_index_are_clear_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "nothing"))
    assert main(["search", "csv", "-k", "0"]) == 2
    assert "-k must be at least 1" in capsys.readouterr().err
    assert main(["search", "csv", "--mode", "lexical"]) == 2
    assert "materialize" in capsys.readouterr().err
