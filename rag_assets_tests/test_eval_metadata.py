"""Numbers a team can chart: evaluation metadata as float/int values, the score plot inline, and the `openai` kind
only when the definitions load with an LLM endpoint."""

import json
import os
import subprocess
import sys

import dagster as dg

from rag_assets_tests.conftest import PROJECT_ROOT

KINDS = """
import json
from rag_assets.defs.evaluate.assets import reference_answers, responses, quality_scores
from rag_assets.defs.experiments.assets import experiment_results
print(json.dumps({a.key.to_user_string(): sorted(set().union(*(s.kinds for s in a.specs)))
                  for a in (reference_answers, responses, quality_scores, experiment_results)}))
"""


def _kinds(**env) -> dict:
    base = {k: v for k, v in os.environ.items() if k != "OPENAI_BASE_URL"}
    proc = subprocess.run([sys.executable, "-c", KINDS], env=base | env | {"PYTHONPATH": str(PROJECT_ROOT)},
                          capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_openai_kind_only_with_an_llm_endpoint():
    offline = _kinds()
    assert all("openai" not in kinds for kinds in offline.values()), offline
    assert offline["responses"] == ["lancedb"] and offline["quality_scores"] == ["python"]
    online = _kinds(OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    assert all("openai" in kinds for kinds in online.values()), online


def _md(result, key: str) -> dict:
    (ev,) = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == key]
    return ev.materialization.metadata


def test_scores_are_numeric_metadata_and_the_plot_is_inline(copy_built_index, tmp_path, monkeypatch):
    from rag_assets_tests.eval_fixtures import materialize_evaluation, rag_settings, small_eval_set

    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    docs_dir, data_dir = copy_built_index
    small_eval_set(tmp_path / "q.jsonl", limit=3)
    monkeypatch.setenv("RAG_EVAL_PATH", str(tmp_path / "q.jsonl"))
    result = materialize_evaluation(rag_settings(docs_dir, data_dir))
    assert result.success
    retrieval, quality, report = (_md(result, k) for k in ("retrieval_scores", "quality_scores", "score_report"))
    for md, name in ((retrieval, "retrieval_score"), (quality, "quality_score"), (report, "retrieval_score"),
                     (report, "quality_score")):
        for suffix in ("value", "ci_low", "ci_high"):
            assert isinstance(md[f"{name}_{suffix}"], dg.FloatMetadataValue), (name, suffix)
        assert isinstance(md[f"{name}_n"], dg.IntMetadataValue)
    assert retrieval["retrieval_score_n"].value == 3
    assert isinstance(retrieval["hit@1_value"], dg.FloatMetadataValue)
    low, value, high = (retrieval[f"retrieval_score_{s}"].value for s in ("ci_low", "value", "ci_high"))
    assert low < high and low <= value <= high  # Wilson: not a zero-width interval even at 0 or 1
    assert isinstance(_md(result, "responses")["latency_p95_s"], dg.FloatMetadataValue)
    assert isinstance(report["latency_p50_s"], dg.FloatMetadataValue)
    assert isinstance(quality["judge_calls"], dg.IntMetadataValue)
    assert report["score_plot"].value.startswith("![scores](data:image/png;base64,iVBOR")
    assert "data:image/png;base64," in report["report"].value
    assert not any(isinstance(v, dg.PathMetadataValue) and v.value.endswith(".png") for v in report.values())
