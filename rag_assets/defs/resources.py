"""The `rag` resource: one optional config field per setting of lib/settings.py, built from that table.

A field set in run config (or in code, `RagSettings(data_dir=...)`) wins over the environment, which wins over
the promoted production.json, which wins over the defaults: `Settings.from_env` does the resolving, so the
resource, the CLI, evaluation and serving agree. Adding a setting to `Settings` adds its field here.
"""

from typing import Optional

import dagster as dg
from pydantic import Field

from rag_assets.lib import settings as settings_lib
from rag_assets.lib.settings import Settings
from rag_assets.lib.store import Layout

# Dagster config has no Path type: paths are strings in run config.
_CONFIG_TYPES = {int: int, float: float, bool: bool, str: str, settings_lib.Path: str}


def _settings(self) -> Settings:
    """Resolved settings; raises ConfigError (one line per problem) before any work starts."""
    return Settings.from_env(**{f.name: getattr(self, f.name) for f in settings_lib.fields()})


def _setup_for_execution(self, context) -> None:
    """Validate once when a run (or sensor tick) starts: bad settings fail it before any step does work, with
    the problems as the message (a Failure carries no stack trace to dig through)."""
    try:
        self.settings()
    except settings_lib.ConfigError as exc:
        raise dg.Failure(description=f"invalid settings:\n{exc}", allow_retries=False) from None


def _layout(self) -> Layout:
    return Layout(self.settings().data_dir)


def _resource_class() -> type:
    namespace = {
        "__module__": __name__,
        "__qualname__": "RagSettings",
        "__doc__": "Settings of the RAG pipeline; each unset field falls back to its environment variable, "
        "then to the promoted production.json, then to its default (see `rag-assets config`).",
        "__annotations__": {},
        "settings": _settings,
        "layout": _layout,
        "setup_for_execution": _setup_for_execution,
    }
    for f in settings_lib.fields():
        spec = settings_lib.spec(f)
        namespace["__annotations__"][f.name] = Optional[_CONFIG_TYPES[settings_lib.kind(f)]]
        where = f"default {spec.env}" if spec.env else "default"
        namespace[f.name] = Field(default=None, description=f"{spec.help} ({where}, then {f.default})")
    return type("RagSettings", (dg.ConfigurableResource,), namespace)


RagSettings = _resource_class()
