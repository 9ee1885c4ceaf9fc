"""Hybrid weights, RRF k, rerank and prompt as settings and sweep keys; the fusion sweep (issue 12)."""

import json

import pytest

from rag_assets.lib.experiments.sweep import parse_sweep
from rag_assets.lib.generate.answer import PROMPTS, SYSTEM_PROMPT, make_generator
from rag_assets.lib.retrieve import fusion
from rag_assets.lib.retrieve.retriever import Hit, HybridParams, RerankParams, Retriever
from rag_assets.lib.settings import TUNED_FILE, Settings
from rag_assets_tests.openai_server import openai_server  # noqa: F401 (fixture)

TUNING_VARS = ("RAG_HYBRID_SEMANTIC_WEIGHT", "RAG_HYBRID_LEXICAL_WEIGHT", "RAG_RRF_K", "RAG_BM25_TITLE_BOOST",
               "RAG_RERANK", "RAG_RERANK_CANDIDATES", "RAG_RERANK_THRESHOLD", "RAG_PROMPT")


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for var in TUNING_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_hybrid_and_rerank_settings_from_env_then_tuned_file_then_defaults(clean_env, monkeypatch):
    s = Settings.from_env()
    assert (s.hybrid_semantic_weight, s.hybrid_lexical_weight, s.rrf_k, s.rerank, s.prompt) == (1.0, 1.0, 60, "none", "default")
    tuned = clean_env / TUNED_FILE
    tuned.parent.mkdir(parents=True)
    tuned.write_text(json.dumps({"params": {"hybrid_lexical_weight": 0.3, "rrf_k": 10, "bm25_title_boost": 2.0}}))
    s = Settings.from_env()
    assert (s.hybrid_lexical_weight, s.rrf_k, s.bm25_title_boost) == (0.3, 10, 2.0)
    monkeypatch.setenv("RAG_RRF_K", "20")
    monkeypatch.setenv("RAG_HYBRID_SEMANTIC_WEIGHT", "0.8")
    monkeypatch.setenv("RAG_RERANK", "tags")
    monkeypatch.setenv("RAG_RERANK_CANDIDATES", "40")
    monkeypatch.setenv("RAG_RERANK_THRESHOLD", "0.7")
    monkeypatch.setenv("RAG_PROMPT", "ignore-irrelevant")
    s = Settings.from_env()
    assert (s.rrf_k, s.hybrid_semantic_weight, s.hybrid_lexical_weight) == (20, 0.8, 0.3)
    assert HybridParams.from_settings(s) == HybridParams(rrf_k=20, semantic_weight=0.8, lexical_weight=0.3)
    assert RerankParams.from_settings(s) == RerankParams("tags", 40, 0.7, title_boost=2.0)
    assert s.prompt == "ignore-irrelevant"
    monkeypatch.setenv("RAG_RRF_K", "many")
    with pytest.raises(ValueError, match="rrf_k: must be an integer.*RAG_RRF_K"):
        Settings.from_env()
    monkeypatch.setenv("RAG_RRF_K", "20")
    monkeypatch.setenv("RAG_RERANK", "magic")
    with pytest.raises(ValueError, match="rerank: must be one of none, tags.*RAG_RERANK"):
        Settings.from_env()


def test_sweep_keys_for_prompt_rerank_and_hybrid_weights(clean_env):
    settings = Settings.from_env()
    plain = parse_sweep({"retrieval": ["hybrid"], "num_chunks": [5]}, settings)
    assert [v.key for v in plain.variants] == ["cs700-ov50__minilm__hybrid__k5__extractive"]
    assert plain.variants[0].params()["prompt"] == "default" and plain.variants[0].rrf_k == 60
    sweep = parse_sweep({"retrieval": ["hybrid"], "prompt": ["default", "ignore-irrelevant"], "rerank": ["none", "tags"],
                         "hybrid_lexical_weight": [0.3], "rrf_k": [10]}, settings)
    keys = [v.key for v in sweep.variants]
    assert len(keys) == len(set(keys)) == 4
    assert "cs700-ov50__minilm__hybrid__k5__extractive__p-ignore-irrelevant-rr-tags-lw0.3-rrf10" in keys
    v = sweep.variant(keys[-1])
    assert (v.prompt, v.rerank, v.hybrid_lexical_weight, v.rrf_k) == ("ignore-irrelevant", "tags", 0.3, 10)
    assert {"prompt", "rerank", "hybrid_lexical_weight", "rrf_k"} <= set(v.params())
    for raw, message in [({"rerank": ["magic"]}, "rerank 'magic'"), ({"hybrid_lexical_weight": [-1]}, ">= 0"),
                         ({"rerank_threshold": [1.5]}, r"in \[0, 1\]"), ({"rrf_k": ["x"]}, "integers")]:
        with pytest.raises(ValueError, match=message):
            parse_sweep(raw, settings)


def test_prompt_variant_is_the_system_prompt_sent(openai_server):  # noqa: F811
    hits = [Hit("1", "https://docs.python.org/3.11/library/csv.html#x", 1.0, "csv.reader reads rows from a file.")]
    make_generator(prompt="ignore-irrelevant").answer("How do I read a CSV file?", hits)
    make_generator().answer("How do I read a CSV file?", hits)
    systems = [r["system"] for r in openai_server.requests if r["model"] == "test-llm" and r["user"]]
    assert systems[-2:] == [PROMPTS["ignore-irrelevant"], SYSTEM_PROMPT]
    assert PROMPTS["default"] == "Answer the query using the context provided. Be succinct."
    assert "ignore" in PROMPTS["ignore-irrelevant"]


def test_fusion_sweep_picks_a_setting_at_least_as_good_as_semantic(built_index):
    _, data_dir = built_index
    retriever = Retriever.open(data_dir, hybrid=HybridParams(), rerank=RerankParams())
    base = "https://docs.python.org/3.11/"
    questions = [{"question": "How do I write rows to a CSV file?", "source": base + "library/csv.html#writer-objects"},
                 {"question": "serialize a Python object to a JSON string", "source": base + "library/json.html"},
                 {"question": "What does the finally clause do?", "source": base + "tutorial/errors.html"}]
    result = fusion.tune(retriever, questions, {"hybrid_lexical_weight": [0.0, 0.5, 1.0], "rrf_k": [10, 60],
                                                "bm25_title_boost": [1.0, 3.0]})
    assert result["grid_size"] == 2 + 2 * 2 * 2  # a zero lexical weight ignores the title boost
    best = result["metrics"]
    assert best["mrr"] + best["hit@10"] >= result["semantic"]["mrr"] + result["semantic"]["hit@10"]
    assert set(result["params"]) == {"hybrid_semantic_weight", "hybrid_lexical_weight", "rrf_k", "bm25_title_boost"}
    # The lexical leg honours the title boost (it changes BM25 scores when titles match).
    boosted = Retriever.open(data_dir, hybrid=HybridParams(), rerank=RerankParams(title_boost=5.0))
    plain_scores = [h.score for h in retriever.lexical("Writer Objects", 3)]
    assert [h.score for h in boosted.lexical("Writer Objects", 3)] != plain_scores


def test_hybrid_tuning_asset_records_its_choice_for_settings(copy_built_index, monkeypatch):
    import dagster as dg

    from rag_assets.defs.questions import assets as q_assets
    from rag_assets.defs.resources import RagSettings

    docs_dir, data_dir = copy_built_index
    for var in ("OPENAI_BASE_URL", "RAG_LLM_MODEL", *TUNING_VARS):
        monkeypatch.delenv(var, raising=False)
    rag = RagSettings(docs_dir=str(docs_dir), data_dir=str(data_dir), docs_base_url="https://docs.python.org/3.11/")
    result = dg.materialize([q_assets.synthetic_questions, q_assets.hybrid_tuning], resources={"rag": rag})
    assert result.success
    recorded = json.loads((data_dir / TUNED_FILE).read_text())
    assert recorded["adopted"] in (True, False) and recorded["table"]
    assert recorded["params"] == (recorded["best"] if recorded["adopted"] else fusion.DEFAULT_PARAMS)
    settings = Settings.from_env(data_dir=str(data_dir))
    assert settings.rrf_k == recorded["params"]["rrf_k"]
    assert settings.hybrid_lexical_weight == recorded["params"]["hybrid_lexical_weight"]
