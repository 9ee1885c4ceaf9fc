"""Helpers for the evaluation tests: a small eval set on the three built pages, and materializing the group."""

import json
from pathlib import Path

import dagster as dg

from rag_assets.defs import evaluate
from rag_assets.defs.resources import RagSettings
from rag_assets_tests.conftest import PROJECT_ROOT

BUILT_PAGES = ("library/csv.html", "library/json.html", "tutorial/errors.html")
BASE_URL = "https://docs.python.org/3.11/"


def small_eval_set(path: Path, limit: int | None = None) -> list[dict]:
    """The bundled questions whose gold page is one of the three built pages (6 of 40, 2 with references)."""
    rows = [json.loads(line) for line in (PROJECT_ROOT / "data/eval/questions.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["source"].split("#")[0] in {BASE_URL + p for p in BUILT_PAGES}][:limit]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def rag_settings(docs_dir: Path, data_dir: Path) -> RagSettings:
    return RagSettings(docs_dir=str(docs_dir), data_dir=str(data_dir), docs_base_url=BASE_URL)


def materialize_evaluation(rag: RagSettings, selection=None, **kwargs) -> dg.ExecuteInProcessResult:
    """The evaluation assets (and the score-drop check) over an index that is already built."""
    return dg.materialize(
        [*evaluate.ASSETS, *evaluate.CHECKS],
        resources={"rag": rag},
        selection=selection,
        **kwargs,
    )
