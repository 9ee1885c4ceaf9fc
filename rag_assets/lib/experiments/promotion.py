"""Promotion: make one evaluated variant the production configuration (<data dir>/production.json)."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from rag_assets.lib.evaluate.eval_data import EvalFiles
from rag_assets.lib.evaluate.metrics import paired_test
from rag_assets.lib.experiments.sweep import KEYS, Sweep
from rag_assets.lib.experiments.variants import root, variant_dir
from rag_assets.lib import settings as settings_lib
from rag_assets.lib.finetune import model_dir
from rag_assets.lib.settings import PRODUCTION_FILE, Settings
from rag_assets.lib.store import Layout, read_json, table_metadata, write_json


def promote(data_dir: Path, key: str, sweep: Sweep | None = None) -> dict:
    """Make a variant the production configuration: <data dir>/production.json, read by Settings.from_env.

    The variant comes from its evaluated result (or the sweep). Environment variables still win over it.
    """
    result = variant_dir(data_dir, key) / "result.json"
    if result.exists():
        row = read_json(result)  # results written before a sweep key existed lack it: production default
        params = {k: row[k] for k in KEYS if k in row}
    else:
        try:
            params = (sweep.variant(key) if sweep else None).params()
        except (KeyError, AttributeError):
            known = sorted(p.name for p in (root(data_dir) / "variants").glob("*") if (p / "result.json").exists())
            raise ValueError(f"unknown variant {key!r}; evaluated variants: {', '.join(known) or 'none'}") from None
    if params.get("embedding_model") in model_dir.ALIASES:
        # Pin the exact model directory the variant was evaluated with (a later fine-tune moves the alias);
        # production.json then names a path, and the next refresh re-embeds through the model-change path.
        evaluated = read_json(result).get("embedding_model_path") if result.exists() else None
        params["embedding_model"] = evaluated or model_dir.resolve(data_dir, params["embedding_model"])
    missing = settings_lib.local_model_exists(params.get("embedding_model") or "")
    if missing:  # production.json naming a missing model would break every later command
        raise ValueError(f"cannot promote {key}: {missing}")
    config = {"variant": key, **params, "promoted_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    write_json(Path(data_dir) / PRODUCTION_FILE, config)
    return config


def production_drift(settings: Settings) -> list[str]:
    """How the built production index differs from the configured (e.g. just promoted) settings; [] if not built."""
    prod = Layout(settings.data_dir)
    drift = []
    if prod.chunks.exists():
        meta = table_metadata(prod.chunks)
        built = (meta.get("chunk_size"), meta.get("chunk_overlap"))
        if built != (settings.chunk_size, settings.chunk_overlap):
            drift.append(f"chunks built with {built[0]}/{built[1]}, configured {settings.chunk_size}/{settings.chunk_overlap}")
    if prod.embeddings.exists():
        model = table_metadata(prod.embeddings).get("model")
        if model != settings.embedding_model:
            drift.append(f"embeddings built with {model}, configured {settings.embedding_model}")
    return drift


# Promoted key -> the environment variable that wins over it, from the settings table.
ENV_OVER_PROMOTED = {settings_lib.spec(f).promoted: settings_lib.spec(f).env
                     for f in settings_lib.fields() if settings_lib.spec(f).promoted}


def env_overrides() -> list[str]:
    """Environment variables set now that win over a promoted value (Settings.from_env reads them first)."""
    return [name for name in ENV_OVER_PROMOTED.values() if os.environ.get(name)]


# --- the promotion gate (issue 14) ---------------------------------------------------------------
GATE_METRIC = "mrr"  # page-level MRR over the ranking each response keeps (ranked_sources)


def production_scores(data_dir: Path, metric: str = GATE_METRIC) -> dict[str, float]:
    """Per-question scores of production's own evaluation (<data dir>/eval/retrieval_scores.json)."""
    path = EvalFiles(Layout(Path(data_dir))).retrieval
    if not path.is_file():
        raise FileNotFoundError(f"production has no evaluation ({path}): materialize `retrieval_scores` first")
    return {r["question"]: r.get(metric) for r in read_json(path)["per_question"]}


def variant_scores(data_dir: Path, key: str, metric: str = GATE_METRIC) -> dict[str, float]:
    """Per-question scores of a variant, recomputed from its responses.json by the same evaluation code."""
    from rag_assets.lib.evaluate.pipeline import score_retrieval

    path = variant_dir(data_dir, key) / "responses.json"
    if not path.is_file():
        raise FileNotFoundError(f"variant {key} has not been evaluated ({path}): materialize its experiment_results")
    responses = read_json(path)
    questions = [{"question": r["question"], "source": r["source"]} for r in responses]
    return {r["question"]: r.get(metric) for r in score_retrieval(questions, responses)["per_question"]}


def gate(data_dir: Path, key: str, metric: str = GATE_METRIC) -> dict:
    """Whether a variant beats production by the paired test on the questions both were evaluated on.

    Returns {"ok", "reason" (one line), "test" (paired_test's dict)}; ok only when the variant's mean
    per-question `metric` is higher with a 95% paired-bootstrap CI above zero.
    """
    try:
        prod, var = production_scores(data_dir, metric), variant_scores(data_dir, key, metric)
    except FileNotFoundError as exc:
        return {"ok": False, "reason": str(exc), "test": None}
    shared = [q for q in var if q in prod]
    test = paired_test([var[q] for q in shared], [prod[q] for q in shared])
    if not test["n"]:
        return {"ok": False, "reason": f"no question with a {metric} score in both the variant's and production's "
                                       "evaluation", "test": test}
    low, high = test["ci95"]
    numbers = (f"{metric} {test['diff']:+.4f} vs production, 95% CI [{low:+.4f}, {high:+.4f}], "
               f"p={test['p_value']:.3g}, n={test['n']}")
    if test["a_better"]:
        return {"ok": True, "reason": f"better than production by the paired test: {numbers}", "test": test}
    return {"ok": False, "reason": f"not better than production by the paired test: {numbers}", "test": test}
