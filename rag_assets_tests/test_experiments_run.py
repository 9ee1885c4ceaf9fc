"""`rag-assets experiments --run` on a fresh data dir builds production's docs, sections and eval set first."""

import json
import shutil

from rag_assets.cli import main
from rag_assets.lib.experiments import variants as ex
from rag_assets_tests.conftest import BUNDLED_CORPUS
from rag_assets_tests.eval_fixtures import BASE_URL, small_eval_set


def test_experiments_run_on_an_empty_data_dir(tmp_path, monkeypatch, capsys):
    docs = tmp_path / "docs"
    (docs / "library").mkdir(parents=True)
    shutil.copy(BUNDLED_CORPUS / "library" / "csv.html", docs / "library" / "csv.html")
    small_eval_set(tmp_path / "questions.jsonl", limit=2)
    (tmp_path / "sweep.yaml").write_text("chunk_size: [900]\nchunk_overlap: [0]\nretrieval: [lexical]\n"
                                          "num_chunks: [3]\nllm: [extractive]\n")
    data_dir = tmp_path / "fresh"
    monkeypatch.setenv("RAG_DOCS_DIR", str(docs))
    monkeypatch.setenv("RAG_DOCS_BASE_URL", BASE_URL)
    monkeypatch.setenv("RAG_EVAL_PATH", str(tmp_path / "questions.jsonl"))
    monkeypatch.setenv("RAG_SWEEP_PATH", str(tmp_path / "sweep.yaml"))
    monkeypatch.setenv("RAG_RAY_MIN_CHUNKS", "100000")  # a few dozen chunks: embed in-process
    assert ex.missing_upstream(data_dir) == list(ex.UPSTREAM)

    assert main(["experiments", "--run", "--json", "--data-dir", str(data_dir)]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["variant"] == "cs900-ov0__minilm__lexical__k3__extractive" and row["questions"] == 2
    assert ex.missing_upstream(data_dir) == []
    # Production's own index was not needed, and not built.
    assert not (data_dir / "lancedb").exists() and not (data_dir / "assets" / "chunks.parquet").exists()
