"""Fine-tuned model directories under <data dir>/models/, each with its own manifest, committed atomically.

A run writes everything into `models/.tmp-<kind>-<pid>-<random>/` (weights first, manifest last), renames it
to `models/<kind>/<run id>/` when complete, and only then moves the alias pointer `models/<kind>.json` to it.
A run killed at any point leaves either an ignored temp dir or a complete directory the pointer does not name:
the alias (`finetuned`, `finetuned-adapter`) never resolves to half a model.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

from rag_assets.lib.ingest.embed import MODEL_MANIFEST
from rag_assets.lib.index.lock import process_alive
from rag_assets.lib.store import read_json, write_json

FULL, ADAPTER = "finetuned", "finetuned-adapter"
ALIASES = (FULL, ADAPTER)  # names the sweep and settings accept for "the latest fine-tuned model"
TMP_PREFIX = ".tmp-"


def models_root(data_dir: Path | str) -> Path:
    return Path(data_dir) / "models"


def new_tmp_dir(data_dir: Path | str, kind: str) -> Path:
    path = models_root(data_dir) / f"{TMP_PREFIX}{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    return path


def remove_stale_tmp(data_dir: Path | str) -> list[str]:
    """Temp dirs of runs that died (their pid is gone): never picked up, removed by the next run."""
    removed = []
    for tmp in models_root(data_dir).glob(f"{TMP_PREFIX}*"):
        try:
            pid = int(tmp.name[len(TMP_PREFIX):].split("-")[-2])
        except (ValueError, IndexError):
            continue
        if pid != os.getpid() and not process_alive(pid):
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp.name)
    return removed



def write_manifest(model_dir: Path, manifest: dict) -> None:
    write_json(model_dir / MODEL_MANIFEST, manifest)


def read_manifest(model_dir: Path | str) -> dict:
    path = Path(model_dir) / MODEL_MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir} has no {MODEL_MANIFEST}: not a complete fine-tuned model directory")
    return json.loads(path.read_text(encoding="utf-8"))


def commit(data_dir: Path | str, tmp: Path, kind: str) -> Path:
    """Rename a complete temp dir (manifest written last) into place, then point the alias at it."""
    read_manifest(tmp)  # refuses a directory whose manifest was never written
    run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + f"-{uuid.uuid4().hex[:6]}"
    final = models_root(data_dir) / kind / run_id
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)
    write_json(models_root(data_dir) / f"{kind}.json", {"path": str(final), "committed_at": run_id})
    return final


def resolve(data_dir: Path | str, name: str) -> str:
    """An alias -> the committed model directory it points to; any other model name is returned unchanged."""
    if name not in ALIASES:
        return name
    pointer = models_root(data_dir) / f"{name}.json"
    if not pointer.is_file():
        raise FileNotFoundError(f"no {name} model under {models_root(data_dir)}: materialize finetuned_embedding_model first")
    path = Path(read_json(pointer)["path"])
    read_manifest(path)
    return str(path)
