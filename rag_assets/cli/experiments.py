"""`rag-assets experiments [--json]` prints the latest experiments table; `--promote KEY` makes a variant production.

Promotion is gated: a variant is promoted only when the paired test over its per-question scores (from its
responses.json) and production's (eval/retrieval_scores.json) says it is better; `--force` overrides that.
"""

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
    p.add_argument("--force", action="store_true",
                   help="with --promote: promote even when the paired test does not show the variant beats production")
    p.add_argument("--gate-metric", default=promotion.GATE_METRIC,
                   help="per-question retrieval metric the promotion gate compares (default: %(default)s)")
    p.add_argument("--run", action="store_true",
                   help="first materialize every partition of the sweep (RAG_SWEEP_PATH) and the table through Dagster "
                        "(and, on a fresh data dir, the docs, sections and eval set they read)")
    cli.add_settings_flags(p)
    p.set_defaults(func=run)


def run(args) -> int:
    settings = cli.settings(args)
    if args.promote:
        verdict = promotion.gate(settings.data_dir, args.promote, args.gate_metric)
        if not verdict["ok"] and not args.force:
            print(f"rag-assets experiments: refusing to promote {args.promote}: {verdict['reason']} "
                  "(--force promotes anyway)", file=sys.stderr)
            return 3
        print(("gate: " if verdict["ok"] else "gate overridden by --force: ") + verdict["reason"])
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
