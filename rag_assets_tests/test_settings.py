"""The one configuration resolver: precedence, sources, up-front validation, the resource, `rag-assets config`."""

import json
import re
import os
import stat

import dagster as dg
import pytest

from rag_assets.cli import main
from rag_assets.defs.resources import RagSettings
from rag_assets.lib import settings as settings_lib
from rag_assets.lib.evaluate.eval_data import EvalFiles
from rag_assets.lib.retrieve.retriever import MODES
from rag_assets.lib.settings import ConfigError, Settings
from rag_assets.lib.store import Layout, read_json, save_figure, write_json, write_table
from rag_assets_tests.conftest import PROJECT_ROOT
from rag_assets_tests.eval_fixtures import BASE_URL, materialize_evaluation, small_eval_set


def _production(data_dir, **values):
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "production.json").write_text(json.dumps({"variant": "v", **values}))


def test_tests_never_default_to_the_repository_data_dir():
    assert Settings.from_env().data_dir != (PROJECT_ROOT / "data").resolve()


def test_precedence_flag_over_env_over_production_over_default(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    _production(data_dir, num_chunks=3, chunk_size=900, retrieval="lexical", llm="extractive")
    monkeypatch.setenv("RAG_NUM_CHUNKS", "7")
    monkeypatch.setenv("RAG_RETRIEVAL_MODE", "semantic")
    s = Settings.from_env(data_dir=str(data_dir), retrieval_mode="hybrid")
    assert (s.retrieval_mode, s.num_chunks, s.chunk_size, s.chunk_overlap, s.llm_model) == (
        "hybrid", 7, 900, 50, "extractive")
    src = s.sources()
    assert src["retrieval_mode"] == "flag/config" and src["data_dir"] == "flag/config"
    assert src["num_chunks"] == "env RAG_NUM_CHUNKS"
    assert src["chunk_size"] == f"production.json ({data_dir / 'production.json'})"
    assert src["chunk_overlap"] == "default"
    # An empty variable counts as unset; a None override means "not given".
    monkeypatch.setenv("RAG_NUM_CHUNKS", "")
    assert Settings.from_env(data_dir=str(data_dir), num_chunks=None).num_chunks == 3


def test_every_problem_is_one_line_naming_its_source(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    _production(data_dir, num_chunks="3", chunk_size=300.5)
    monkeypatch.setenv("RAG_RETRIEVAL_MODE", "fuzzy")
    with pytest.raises(ConfigError) as err:
        Settings.from_env(data_dir=str(data_dir), ray_min_chunks=-1)
    prod = data_dir / "production.json"
    assert err.value.problems == [
        f'chunk_size: must be an integer, got 300.5 (from {prod}, key "chunk_size")',
        "ray_min_chunks: must be >= 0, got -1 (from flag/config)",
        "retrieval_mode: must be one of semantic, lexical, hybrid, rerank, got 'fuzzy' (from env RAG_RETRIEVAL_MODE)",
        f'num_chunks: must be an integer, got "3" (from {prod}, key "num_chunks")',
    ]
    monkeypatch.delenv("RAG_RETRIEVAL_MODE")
    monkeypatch.setenv("RAG_CHUNK_SIZE", "300.5")
    with pytest.raises(ConfigError, match=r"^chunk_size: must be an integer, got '300.5' \(from env RAG_CHUNK_SIZE\)$"):
        Settings.from_env()
    with pytest.raises(ConfigError, match="chunk_size: must be an integer, got 300.5 \\(from flag/config\\)"):
        Settings.from_env(chunk_size=300.5)
    monkeypatch.delenv("RAG_CHUNK_SIZE")
    with pytest.raises(ConfigError, match=r"chunk_overlap \(50, from default\) must be smaller than chunk_size "
                                          r"\(40, from flag/config\)"):
        Settings.from_env(chunk_size=40)


def test_a_broken_production_file_is_one_clear_line(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "production.json").write_text("{not json")
    with pytest.raises(ConfigError, match="production.json is not valid JSON"):
        Settings.from_env(data_dir=str(data_dir))


def test_the_resource_has_one_field_per_setting_and_resolves_through_the_table(tmp_path, monkeypatch):
    assert set(RagSettings.model_fields) == {f.name for f in settings_lib.fields()}
    monkeypatch.setenv("RAG_CHUNK_SIZE", "500")
    s = RagSettings(data_dir=str(tmp_path), chunk_overlap=10).settings()
    assert (s.data_dir, s.chunk_size, s.chunk_overlap) == (tmp_path.resolve(), 500, 10)
    assert s.sources()["chunk_overlap"] == "flag/config" and s.sources()["chunk_size"] == "env RAG_CHUNK_SIZE"
    assert settings_lib.RETRIEVAL_MODES == MODES


def test_a_missing_model_path_fails_first_with_one_line(tmp_path, monkeypatch, capsys):
    """Before any Ray or embedding work: refresh stops at the settings, the pipeline at its first step."""
    missing = tmp_path / "no-such-model"
    monkeypatch.setenv("RAG_EMBEDDING_MODEL", str(missing))
    assert main(["refresh"]) == 2
    err = capsys.readouterr().err
    assert err == f"rag-assets refresh: embedding_model: model path {missing} does not exist " \
                  f"(from env RAG_EMBEDDING_MODEL)\n"

    from rag_assets.defs import index, ingest

    result = dg.materialize([*ingest.ASSETS, *index.ASSETS], resources={"rag": RagSettings()}, raise_on_error=False)
    assert not result.success
    # The run fails as its resources start: no step ran, nothing was parsed, chunked or embedded.
    assert not [e for e in result.all_events if e.event_type_value == "STEP_START"]
    (init,) = [e for e in result.all_events if e.event_type_value == "RESOURCE_INIT_FAILURE"]
    assert f"invalid settings:\nembedding_model: model path {missing} does not exist" in init.event_specific_data.error.message


def test_config_command_prints_values_and_sources(tmp_path, monkeypatch, capsys):
    data_dir = tmp_path / "data"
    _production(data_dir, num_chunks=3)
    monkeypatch.setenv("RAG_CHUNK_SIZE", "600")
    assert main(["config", "--json", "--data-dir", str(data_dir)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {f.name for f in settings_lib.fields()}
    assert out["data_dir"] == {**out["data_dir"], "value": str(data_dir.resolve()), "source": "flag/config"}
    assert (out["chunk_size"]["value"], out["chunk_size"]["source"]) == (600, "env RAG_CHUNK_SIZE")
    assert out["num_chunks"]["source"].startswith("production.json") and out["num_chunks"]["value"] == 3
    assert (out["chunk_overlap"]["value"], out["chunk_overlap"]["source"]) == (50, "default")
    assert out["num_chunks"]["env"] == "RAG_NUM_CHUNKS" and out["num_chunks"]["promoted_key"] == "num_chunks"

    assert main(["config", "--data-dir", str(data_dir)]) == 0
    text = capsys.readouterr().out
    assert re.search(r"^chunk_size +600  \[env RAG_CHUNK_SIZE\]$", text, re.M)

    _production(data_dir, num_chunks="3")
    assert main(["config", "--data-dir", str(data_dir)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (f'rag-assets config: num_chunks: must be an integer, got "3" '
                            f'(from {data_dir / "production.json"}, key "num_chunks")\n')


def test_files_get_the_umask_mode_not_0600(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pyarrow as pa

    old = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        write_table(tmp_path / "t.parquet", pa.table({"x": [1]}))
        save_figure(plt.figure(), tmp_path / "p.png")
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    finally:
        os.umask(old)
    assert modes == {"a.json": 0o644, "t.parquet": 0o644, "p.png": 0o644}  # and no temporary file left


def test_a_data_dir_in_run_config_reaches_evaluation(copy_built_index, tmp_path, monkeypatch):
    """The run config's data_dir is the one whose production.json evaluation and generation use, even with
    RAG_DATA_DIR pointing elsewhere (the hermetic fixture sets it to an empty temp dir)."""
    docs_dir, data_dir = copy_built_index
    _production(data_dir, retrieval="lexical", num_chunks=2, llm="extractive")
    questions = small_eval_set(tmp_path / "questions.jsonl", limit=2)
    run_config = {"resources": {"rag": {"config": {
        "data_dir": str(data_dir), "docs_dir": str(docs_dir), "docs_base_url": BASE_URL,
        "eval_path": str(tmp_path / "questions.jsonl"),
    }}}}
    result = materialize_evaluation(RagSettings(), selection=["eval_questions", "responses"], run_config=run_config)
    assert result.success
    files = EvalFiles(Layout(data_dir))
    assert read_json(files.questions)["path"] == str(tmp_path / "questions.jsonl")
    doc = read_json(files.responses)
    assert (doc["mode"], doc["num_chunks"], doc["generator"]) == ("lexical", 2, "extractive")
    assert len(doc["rows"]) == len(questions) and all(len(r["retrieved_ids"]) == 2 for r in doc["rows"])
    assert not any((settings_lib.Path(os.environ["RAG_DATA_DIR"])).iterdir())


def test_a_sweep_model_path_that_does_not_exist_fails_before_embedding(tmp_path):
    from rag_assets.lib.experiments import variants as ex

    missing = tmp_path / "bge"
    with pytest.raises(ValueError, match=f"experiment embedding cs700-ov50__bge: model path {missing} does not exist"):
        ex.build_embedding(Settings(data_dir=tmp_path), "cs700-ov50__bge", "cs700-ov50", str(missing))
    assert not (tmp_path / "experiments").exists()
