"""`rag-assets report [--json]`: the latest score report (materialize `score_report` first)."""

from __future__ import annotations

import json

from rag_assets import cli
from rag_assets.lib.evaluate import report as report_lib
from rag_assets.lib.evaluate.eval_data import EvalFiles
from rag_assets.lib.store import Layout, read_json


def register(sub) -> None:
    p = sub.add_parser("report", help="print the latest score report")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    cli.add_settings_flags(p)
    p.set_defaults(func=run)


def run(args) -> int:
    path = EvalFiles(Layout(cli.settings(args).data_dir)).report
    if not path.exists():
        raise FileNotFoundError(f"no score report at {path}: materialize the evaluation assets first")
    report = read_json(path)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"Score report {report['created_at']} (LanceDB version {report['index_version']})")
    print(f"generator: {report['generator']}   judge: {report['judge']}")
    q = report["quality_score"]
    print(f"retrieval_score            {report_lib.fmt(report['retrieval_score'])}")
    print(f"quality_score (1-5)        {report_lib.fmt(q, 2)}  missing {q.get('missing', 0)}, "
          f"no reference {q.get('no_reference', 0)}")
    print(f"quality, gold context      {report_lib.fmt(report['quality_with_gold_context'], 2)}")
    for name in report_lib.TABLE_METRICS:
        if name in report["metrics"]:
            print(f"{name:<27}{report_lib.fmt(report['metrics'][name])}")
    print("\nworst questions:")
    for w in report["worst_questions"]:
        quality = w["quality"] if w["quality"] is not None else w["quality_status"]
        print(f"- [{quality}, hit={'yes' if w['retrieval_hit'] else 'no'}] {w['question']}\n    gold {w['source']}")
    print(f"\nreport: {path}\nplot:   {report.get('plot')}")
    return 0
