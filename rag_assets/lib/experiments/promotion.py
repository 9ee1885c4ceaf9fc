"""Promotion: make one evaluated variant the production configuration (<data dir>/production.json)."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from rag_assets.lib.experiments.sweep import KEYS, Sweep
from rag_assets.lib.experiments.variants import root, variant_dir
from rag_assets.lib import settings as settings_lib
from rag_assets.lib.settings import PRODUCTION_FILE, Settings
from rag_assets.lib.store import Layout, read_json, table_metadata, write_json


def promote(data_dir: Path, key: str, sweep: Sweep | None = None) -> dict:
    """Make a variant the production configuration: <data dir>/production.json, read by Settings.from_env.

    The variant comes from its evaluated result (or the sweep). Environment variables still win over it.
    """
    result = variant_dir(data_dir, key) / "result.json"
    if result.exists():
        params = {k: read_json(result)[k] for k in KEYS}
    else:
        try:
            params = (sweep.variant(key) if sweep else None).params()
        except (KeyError, AttributeError):
            known = sorted(p.name for p in (root(data_dir) / "variants").glob("*") if (p / "result.json").exists())
            raise ValueError(f"unknown variant {key!r}; evaluated variants: {', '.join(known) or 'none'}") from None
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
