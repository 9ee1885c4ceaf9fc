"""`rag-assets` command line: each subcommand lives in its own module with `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

# Every module under rag_assets.cli with a `register(subparsers)` is a subcommand; these come first in help.
FIRST = ("search", "ask", "report", "refresh", "experiments")


def command_modules() -> list[str]:
    found = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    return [n for n in FIRST if n in found] + sorted(n for n in found if n not in FIRST)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag-assets", description="RAG over your docs, as Dagster assets.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in command_modules():
        importlib.import_module(f"rag_assets.cli.{name}").register(sub)
    return parser


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """Flags every command that reads the settings accepts; they win over the environment (see `config`)."""
    parser.add_argument("--data-dir", default=None, help="data dir (default RAG_DATA_DIR, else ./data)")


def settings(args, **flags):
    """The settings for a command: its flags (None = not given) over env over production.json over defaults."""
    from rag_assets.lib.settings import Settings

    return Settings.from_env(data_dir=getattr(args, "data_dir", None), **flags)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError) as exc:
        # A ConfigError holds one line per problem: each gets the prefix.
        for line in str(exc).splitlines() or [""]:
            print(f"rag-assets {args.command}: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
