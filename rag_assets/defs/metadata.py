"""Turn stage figures into the Dagster metadata a user looks for in the UI."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from rag_assets.lib.store import dir_size


def markdown_table(rows: list[dict], max_cell: int = 120) -> str:
    if not rows:
        return "_(empty)_"
    cols = list(rows[0])
    def cell(v):
        s = " ".join(str(v).split())
        s = s if len(s) <= max_cell else s[: max_cell - 1] + "…"
        return s.replace("|", "\\|")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def stage_metadata(stats: dict, row_count: int, path: Path | None = None, **extra) -> dict:
    """Common metadata: row count, timing, size on disk, preview; plus the stage's own figures."""
    md = {"dagster/row_count": dg.MetadataValue.int(row_count)}
    if "seconds" in stats:
        md["seconds"] = dg.MetadataValue.float(round(float(stats["seconds"]), 3))
    if path is not None and path.exists():
        md["size_on_disk_bytes"] = dg.MetadataValue.int(dir_size(path))
        md["path"] = dg.MetadataValue.path(str(path))
    if stats.get("preview"):
        md["preview"] = dg.MetadataValue.md(markdown_table(stats["preview"]))
    for k, v in extra.items():
        md[k] = v
    return md
