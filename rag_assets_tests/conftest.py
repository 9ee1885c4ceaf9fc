"""Shared fixtures: one local Ray for the whole session, offline model loading, temp data dirs."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from rag_assets.lib import settings as settings_lib

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
# Before any definitions load (they read the settings at import): the defaults, and a data dir that is not the
# repository's, so no test sees a developer's RAG_* variables or data/production.json.
for _f in settings_lib.fields():
    os.environ.pop(settings_lib.spec(_f).env or "", None)
os.environ["RAG_DATA_DIR"] = tempfile.mkdtemp(prefix="rag-tests-data-")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_CORPUS = PROJECT_ROOT / "data" / "corpus"
SHARED_DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"


def _repo_data_state() -> dict:
    """Every file under the repository's data/ with its size and mtime (data/dagster is a developer's
    `dagster dev` instance, which may be running while the tests do: left out)."""
    root = PROJECT_ROOT / "data"
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] != "dagster"
    }


@pytest.fixture(scope="session", autouse=True)
def repo_data_untouched():
    """Hermetic tests: fail the session when any test wrote, changed or deleted a file under data/."""
    before = _repo_data_state()
    yield
    after = _repo_data_state()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"tests modified the repository's data/: {changed[:10]}"


@pytest.fixture(autouse=True)
def hermetic_settings(tmp_path_factory, monkeypatch):
    """Every test starts from the defaults with its data dir in a temp dir, never the repository's data/ or
    production.json, and without the developer's RAG_*/OPENAI_* settings or Dagster instance. Tests that
    need a setting set it themselves (monkeypatch.setenv, RagSettings(...), CLI flags)."""
    for f in settings_lib.fields():
        if settings_lib.spec(f).env:
            monkeypatch.delenv(settings_lib.spec(f).env, raising=False)
    for name in ("OPENAI_API_KEY", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path_factory.mktemp("rag-data")))


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for every test that embeds (starting Ray costs ~5 s)."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=512 * 1024**2)
    yield ray
    ray.shutdown()


@pytest.fixture
def small_corpus(tmp_path) -> Path:
    """Three real Sphinx pages from the bundled corpus (a few hundred chunks)."""
    dest = tmp_path / "docs"
    for rel in ("library/csv.html", "library/json.html", "tutorial/errors.html"):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(BUNDLED_CORPUS / rel, dest / rel)
    return dest


@pytest.fixture
def rag_env(tmp_path, small_corpus, monkeypatch):
    """RAG_* variables pointing at the small corpus and a temp data dir."""
    data_dir = tmp_path / "data"
    monkeypatch.setenv("RAG_DOCS_DIR", str(small_corpus))
    monkeypatch.setenv("RAG_DATA_DIR", str(data_dir))
    monkeypatch.setenv("RAG_DOCS_BASE_URL", "https://docs.python.org/3.11/")
    return data_dir


@pytest.fixture(scope="session")
def built_index(tmp_path_factory, ray_session):
    """The ingestion assets materialized once (real Dagster, Ray, model, LanceDB, Tantivy) on three pages.

    Read-only for tests: a test that changes docs or indexes copies it first (`copy_built_index`).
    Returns (docs_dir, data_dir).
    """
    import dagster as dg

    from rag_assets.defs import index, ingest
    from rag_assets.defs.resources import RagSettings

    root = tmp_path_factory.mktemp("built")
    docs_dir = root / "docs"
    for rel in ("library/csv.html", "library/json.html", "tutorial/errors.html"):
        (docs_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(BUNDLED_CORPUS / rel, docs_dir / rel)
    data_dir = root / "data"
    rag = RagSettings(
        docs_dir=str(docs_dir),
        data_dir=str(data_dir),
        docs_base_url="https://docs.python.org/3.11/",
        ray_min_chunks=0,  # always go through Ray Data here
    )
    result = dg.materialize([*ingest.ASSETS, *index.ASSETS], resources={"rag": rag})
    assert result.success
    _BUILT_INDEX_RESULT.append(result)
    return docs_dir, data_dir


_BUILT_INDEX_RESULT: list = []


@pytest.fixture(scope="session")
def built_index_result(built_index):
    """The `dg.materialize` result behind `built_index`: its events and materialization metadata."""
    return _BUILT_INDEX_RESULT[0]


@pytest.fixture
def copy_built_index(built_index, tmp_path):
    """A private, writable copy of `built_index`: (docs_dir, data_dir)."""
    docs_dir, data_dir = built_index
    new_docs, new_data = tmp_path / "docs", tmp_path / "data"
    shutil.copytree(docs_dir, new_docs)
    shutil.copytree(data_dir, new_data)
    return new_docs, new_data
