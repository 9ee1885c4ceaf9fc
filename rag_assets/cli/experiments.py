"""`rag-assets experiments [--json]` prints the latest experiments table; `--promote KEY` makes a variant production."""

from __future__ import annotations

import json
import os
import sys

from rag_assets import cli
from rag_assets.lib.experiments import comparison, promotion, variants as ex
from rag_assets.lib.settings import Settings
from rag_assets.lib.experiments.sweep import load_sweep


def register(sub) -> None:
    p = sub.add_parser("experiments", help="print the latest experiments table, or promote a variant")
    p.add_argument("--json", action="store_true", help="print a JSON list of row objects, best first")
    p.add_argument("--promote", metavar="KEY", help="make this variant the production configuration")
    p.add_argument("--run", action="store_true",
                   help="first materialize every partition of the sweep (RAG_SWEEP_PATH) and the table through Dagster "
                        "(and, on a fresh data dir, the docs, sections and eval set they read)")
    cli.add_settings_flags(p)
    p.set_defaults(func=run)


def run(args) -> int:
    settings = cli.settings(args)
    if args.promote:
        return _promote(settings, args.promote)
    if args.run:
        try:
            _run_sweep(settings, args.data_dir)
        except RuntimeError as exc:
            print(f"rag-assets experiments: {exc}", file=sys.stderr)
            return 1
    table = comparison.read_table(settings.data_dir)
    if args.json:
        print(json.dumps(table["rows"], indent=2))
        return 0
    print(comparison.markdown(table["rows"], table["best"]))
    print(f"\n{table['variants']} variants, {table['embedding_runs']} embedding runs, {table['chunkings']} chunkings "
          f"(sweep {table['sweep']}, {table['generated_at']})")
    if table["missing"]:
        print(f"not evaluated yet: {', '.join(table['missing'])}")
    paths = ex.table_paths(settings.data_dir)
    print(f"JSON {paths['json']}\nCSV  {paths['csv']}")
    return 0


def _run_sweep(settings: Settings, data_dir: str | None) -> None:
    """What a UI backfill of the experiments group does; recorded in the instance at DAGSTER_HOME when set.
    Production's docs, sections and eval set are materialized first when missing (a fresh data dir)."""
    import dagster as dg

    from rag_assets.defs import evaluate, ingest
    from rag_assets.defs.experiments import assets
    from rag_assets.defs.resources import RagSettings

    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    resources = {"rag": RagSettings(data_dir=data_dir)}
    upstream = ex.missing_upstream(settings.data_dir)
    if upstream:
        defs = [a for a in [*ingest.ASSETS, *evaluate.ASSETS] if a.key.to_user_string() in upstream]
        result = dg.materialize(defs, resources=resources, instance=instance, raise_on_error=False,
                                tags={"rag/trigger": "cli experiments --run"})
        if not result.success:
            failed = [e.step_key for e in result.all_events if e.is_step_failure]
            raise RuntimeError(f"building {', '.join(upstream)} failed at {', '.join(failed) or 'an unknown step'}")
    sweep = load_sweep(settings=settings)
    assets.materialize_sweep(assets.build_experiment_assets(sweep), sweep, resources, instance)


def _promote(settings: Settings, key: str) -> int:
    try:
        sweep = load_sweep(settings=settings)
    except (FileNotFoundError, ValueError):
        sweep = None  # an evaluated variant can still be promoted from its result
    config = promotion.promote(settings.data_dir, key, sweep)
    print(f"promoted {key}: {json.dumps({k: v for k, v in config.items() if k != 'variant'})}")
    if promotion.env_overrides():
        print(f"note: {', '.join(promotion.env_overrides())} set in the environment still win over the promoted values")
    drift = promotion.production_drift(Settings.from_env(data_dir=settings.data_dir))  # with the promoted values
    if drift:
        print("production must be rebuilt (" + "; ".join(drift) + "): the docs_changed sensor does it under "
              "`dagster dev`, or run `dagster job execute -m rag_assets.definitions -j rag_pipeline`")
    return 0
