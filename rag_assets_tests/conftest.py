"""Shared fixtures: one local Ray for the whole session, offline model loading, temp data dirs."""

import os
import shutil
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_CORPUS = PROJECT_ROOT / "data" / "corpus"
SHARED_DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for every test that embeds (starting Ray costs ~5 s)."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
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
