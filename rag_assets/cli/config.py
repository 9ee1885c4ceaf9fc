"""`rag-assets config [--json]`: every resolved setting, and where its value came from."""

from __future__ import annotations

import json

from rag_assets import cli
from rag_assets.lib.settings import describe


def register(sub) -> None:
    p = sub.add_parser("config", help="print every setting, its value and where it came from")
    p.add_argument("--json", action="store_true", help="print {name: {value, source, env, promoted_key, help}}")
    cli.add_settings_flags(p)
    p.set_defaults(func=run)


def run(args) -> int:
    rows = describe(cli.settings(args))  # invalid settings raise ConfigError: one line per problem, exit 2
    if args.json:
        print(json.dumps({r.pop("name"): r for r in rows}, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {json.dumps(r['value'])}  [{r['source']}]")
    print("\nprecedence: flag/run config > environment > <data dir>/production.json > default")
    return 0
