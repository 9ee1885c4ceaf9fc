"""Where the flywheel keeps its outputs under the data dir, and the feedback watermark its sensor polls."""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path

from rag_assets.lib.serve.query_log import query_log_path


class FeedbackFiles:
    def __init__(self, data_dir: Path | str):
        self.dir = Path(data_dir) / "feedback"

    @property
    def underperforming(self) -> Path:
        return self.dir / "underperforming_queries.json"

    @property
    def candidates(self) -> Path:
        """Eval candidates and their state (pending, accepted, rejected): the asset adds, the CLI decides."""
        return self.dir / "eval_candidates.json"

    @property
    def tag_corrections(self) -> Path:
        """Rows {"question", "tag"} that `tag_classifier` trains on besides its own data."""
        return self.dir / "tag_corrections.jsonl"

    @property
    def docs_gaps(self) -> Path:
        return self.dir / "docs_gaps.json"

    @property
    def lock(self) -> Path:
        """Held while candidates or the eval set are rewritten (the asset and the CLI may run at once)."""
        return self.dir / ".candidates.lock"


def feedback_watermark(data_dir: Path | str) -> dict | None:
    """{"last_id", "rows"} of the feedback table, read-only; None when no server has written a log yet."""
    path = query_log_path(data_dir)
    if not path.exists():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        last_id, rows = conn.execute("SELECT COALESCE(MAX(id), 0), COUNT(*) FROM feedback").fetchone()
    except sqlite3.OperationalError:  # the file exists but its tables are not created yet
        return None
    finally:
        conn.close()
    return {"last_id": int(last_id), "rows": int(rows)}


def write_text_atomic(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
