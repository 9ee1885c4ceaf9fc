"""The `router` and `router_report` assets through real Dagster: offline, skipped, and with two LLM servers."""

import dagster as dg

from rag_assets.defs import route
from rag_assets.lib.store import read_json
from rag_assets_tests.eval_fixtures import materialize_evaluation, rag_settings, small_eval_set
from rag_assets_tests.openai_server import openai_server, two_llm_servers  # noqa: F401 (fixtures)
from rag_assets_tests.router_fixtures import write_labelled


def _metadata(result, key):
    [mat] = [m for m in result.get_asset_materialization_events() if m.asset_key.path[-1] == key]
    return mat.step_materialization_data.materialization.metadata


def test_router_offline_trains_and_reports_classifier_figures(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("RAG_STRONG_LLM_MODEL", raising=False)
    monkeypatch.setenv("RAG_ROUTER_TRAIN_PATH", str(write_labelled(tmp_path / "labels.jsonl")))
    monkeypatch.setenv("RAG_ROUTER_STRONG_SHARE", "0.5")
    data_dir = tmp_path / "data"
    result = dg.materialize(route.ASSETS, resources={"rag": rag_settings(tmp_path / "docs", data_dir)})
    assert result.success
    md = _metadata(result, "router")
    for key in ("validation_weighted_f1", "validation_macro_f1", "validation_strong_recall",
                "validation_strong_precision", "validation_strong_share", "threshold"):
        assert isinstance(md[key].value, float) and 0.0 <= md[key].value <= 1.0
    assert md["n_train"].value + md["n_validation"].value == 24
    assert "data:image/png;base64," in md["threshold_curve"].value
    assert all(kind in md["candidates"].value for kind in ("bow_lr", "embedding_lr", "char_embedding_lr"))
    assert (data_dir / "router" / "model" / "router.json").is_file()

    report_md = _metadata(result, "router_report")
    assert report_md["status"].value == "classifier figures only: routing off: RAG_STRONG_LLM_MODEL is not set"
    report = read_json(data_dir / "reports" / "router_report.json")
    assert report["router"]["validation"]["weighted_f1"] == md["validation_weighted_f1"].value
    assert "policies" not in report


def test_router_skips_without_labelled_data(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_ROUTER_TRAIN_PATH", str(tmp_path / "missing.jsonl"))
    result = dg.materialize([route.assets.router], resources={"rag": rag_settings(tmp_path, tmp_path / "data")})
    assert result.success
    assert result.get_asset_materialization_events() == []
    [observation] = [e.event_specific_data.asset_observation for e in result.all_events
                     if e.event_type_value == "ASSET_OBSERVATION"]
    assert observation.metadata["skipped"].value.startswith("router skipped: no labelled routing data")
    assert not (tmp_path / "data" / "router").exists()


def test_router_report_answers_with_both_llms(copy_built_index, two_llm_servers, tmp_path, monkeypatch):
    open_server, strong_server = two_llm_servers
    docs_dir, data_dir = copy_built_index
    questions = small_eval_set(tmp_path / "questions.jsonl", limit=4)
    monkeypatch.setenv("RAG_EVAL_PATH", str(tmp_path / "questions.jsonl"))
    monkeypatch.setenv("RAG_ROUTER_TRAIN_PATH", str(write_labelled(tmp_path / "labels.jsonl")))
    rag = rag_settings(docs_dir, data_dir)
    assert materialize_evaluation(rag, selection=["eval_questions", "reference_answers"]).success
    requests_before = len(open_server.requests)

    result = dg.materialize(route.ASSETS, resources={"rag": rag})
    assert result.success
    # Each LLM answered every eval question once, on its own server.
    assert strong_server.count("generate") == len(questions)
    assert sum(1 for r in open_server.requests if r["kind"] == "generate" and r["model"] == "test-llm") == 4
    report = read_json(data_dir / "reports" / "router_report.json")
    assert report["status"] == "compared" and report["n"] == 4
    assert (report["open_llm"], report["strong_llm"], report["judge"]) == ("test-llm", "test-strong-llm", "test-judge")
    # 4 questions x 2 LLMs judged once each (distinct judge prompts: a transport-level retry of one request by the
    # client's retry policy would repeat a prompt, not add a judgement).
    judged = {r["user"] for r in open_server.requests[requests_before:] if r["kind"] == "judge"}
    assert report["judge_calls"] == 8 and len(judged) == 8
    p = report["policies"]
    # The open server quotes 4 context words, the strong one 30: the strong answers score higher.
    assert p["always_strong"]["quality"] > p["always_open"]["quality"]
    rows = report["per_question"]
    chosen = [r["strong_score"] if r["route"] == "strong" else r["open_score"] for r in rows]
    assert p["router"]["quality"] == sum(chosen) / 4
    assert p["router"]["strong_share"] == sum(r["route"] == "strong" for r in rows) / 4
    gap = p["always_strong"]["quality"] - p["always_open"]["quality"]
    assert abs(report["apgr"] - (p["router"]["quality"] - p["always_open"]["quality"]) / gap) < 1e-9
    assert p["random"]["apgr"] == p["router"]["strong_share"] or abs(p["random"]["apgr"] - p["router"]["strong_share"]) < 1e-9
    md = _metadata(result, "router_report")
    assert md["apgr"].value == report["apgr"] and "| router |" in md["policies"].value

    # Judgements are cached: a second report answers again but judges nothing new.
    again = dg.materialize([route.assets.router_report], resources={"rag": rag})
    assert again.success and read_json(data_dir / "reports" / "router_report.json")["judge_calls"] == 0
