"""The query log: every answered request and the feedback on it, in one SQLite file under the data dir.

One writer connection per process behind a lock (SQLite serialises writers anyway; WAL lets readers such as
the Dagster assets read while the server writes). Feedback joins a query by its trace id.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

MAX_COMMENT_CHARS = 4000
MAX_URL_CHARS = 2000
MAX_VISITED = 50
MAX_TAG_CHARS = 100

# Columns of `queries`; list-valued ones are stored as JSON text.
QUERY_COLUMNS = {
    "trace_id": "TEXT PRIMARY KEY",
    "ts": "TEXT NOT NULL",  # ISO 8601 UTC
    "question": "TEXT NOT NULL",
    "standalone_query": "TEXT",  # what was retrieved for (differs from question on chat follow-ups)
    "mode": "TEXT",
    "k": "INTEGER",
    "chunk_ids": "TEXT",  # JSON list, best first
    "scores": "TEXT",  # JSON list of floats, same order
    "sources": "TEXT",  # JSON list of source URLs, same order
    "index_version": "TEXT",  # the index manifest's build_id
    "lancedb_version": "INTEGER",
    "embedding_model": "TEXT",
    "llm": "TEXT",
    "route": "TEXT",  # open | strong | none
    "router_probability": "REAL",
    "prompt_tokens": "INTEGER",
    "completion_tokens": "INTEGER",
    "latency_ms": "REAL",
    "answer": "TEXT",
    "status": "TEXT NOT NULL",  # ok | error | timeout | cancelled
    "error": "TEXT",
    "endpoint": "TEXT",  # /query, /stream, /v1/chat/completions, cli
}
JSON_COLUMNS = ("chunk_ids", "scores", "sources")

FEEDBACK_COLUMNS = {
    "id": "INTEGER PRIMARY KEY AUTOINCREMENT",
    "trace_id": "TEXT NOT NULL REFERENCES queries(trace_id)",
    "ts": "TEXT NOT NULL",
    "rating": "INTEGER NOT NULL",  # +1 | -1
    "comment": "TEXT",
    "correction_source_url": "TEXT",
    "correction_tag": "TEXT",
    "visited_sources": "TEXT",  # JSON list of URLs
}


class UnknownTrace(KeyError):
    """Feedback for a trace id that the log does not hold."""


def query_log_path(data_dir: Path | str) -> Path:
    return Path(data_dir) / "serve" / "query_log.sqlite"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class QueryLog:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: no fsync per row (durable across a server crash, not a power cut): the log is off
        # the answer's critical path.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        with self._lock:
            self._conn.execute(_create("queries", QUERY_COLUMNS))
            self._conn.execute(_create("feedback", FEEDBACK_COLUMNS))
            self._conn.execute("CREATE INDEX IF NOT EXISTS feedback_trace ON feedback(trace_id)")

    @classmethod
    def for_data_dir(cls, data_dir: Path | str) -> "QueryLog":
        return cls(query_log_path(data_dir))

    def close(self) -> None:
        self._conn.close()

    def record(self, row: dict) -> None:
        """Insert (or, for the same trace id, replace) one query row; unknown keys are an error."""
        unknown = set(row) - set(QUERY_COLUMNS)
        if unknown:
            raise ValueError(f"unknown query log columns: {', '.join(sorted(unknown))}")
        values = {k: (json.dumps(v) if k in JSON_COLUMNS and v is not None else v) for k, v in row.items()}
        values.setdefault("ts", now_iso())
        cols = list(values)
        sql = f"INSERT OR REPLACE INTO queries ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
        with self._lock:
            self._conn.execute(sql, [values[c] for c in cols])

    def add_feedback(self, trace_id: str, rating: int, comment: str | None = None,
                     correction: dict | None = None, visited_sources: list[str] | None = None) -> int:
        """Validate everything first, then store one row in one statement: nothing partial on bad input."""
        if rating not in (1, -1) or isinstance(rating, bool):
            raise ValueError(f"rating must be +1 or -1, got {rating!r}")
        if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT_CHARS):
            raise ValueError(f"comment must be a string of at most {MAX_COMMENT_CHARS} characters")
        correction = correction or {}
        if not isinstance(correction, dict) or set(correction) - {"source_url", "tag"}:
            raise ValueError("correction may only hold source_url and tag")
        url, tag = correction.get("source_url"), correction.get("tag")
        if url is not None and (not isinstance(url, str) or len(url) > MAX_URL_CHARS):
            raise ValueError(f"correction.source_url must be a URL of at most {MAX_URL_CHARS} characters")
        if tag is not None and (not isinstance(tag, str) or not tag.strip() or len(tag) > MAX_TAG_CHARS):
            raise ValueError(f"correction.tag must be a non-empty string of at most {MAX_TAG_CHARS} characters")
        visited = visited_sources or []
        if (not isinstance(visited, list) or len(visited) > MAX_VISITED
                or any(not isinstance(u, str) or len(u) > MAX_URL_CHARS for u in visited)):
            raise ValueError(f"visited_sources must be a list of at most {MAX_VISITED} URLs")
        with self._lock:
            if self._conn.execute("SELECT 1 FROM queries WHERE trace_id = ?", (trace_id,)).fetchone() is None:
                raise UnknownTrace(trace_id)
            cur = self._conn.execute(
                "INSERT INTO feedback (trace_id, ts, rating, comment, correction_source_url, correction_tag, "
                "visited_sources) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (trace_id, now_iso(), rating, comment, url, tag, json.dumps(visited)),
            )
            return int(cur.lastrowid)

    def queries(self) -> list[dict]:
        return [_decode(r, JSON_COLUMNS) for r in self._select("SELECT * FROM queries ORDER BY ts")]

    def feedback(self) -> list[dict]:
        return [_decode(r, ("visited_sources",)) for r in self._select("SELECT * FROM feedback ORDER BY id")]

    def get(self, trace_id: str) -> dict | None:
        rows = self._select("SELECT * FROM queries WHERE trace_id = ?", (trace_id,))
        return _decode(rows[0], JSON_COLUMNS) if rows else None

    def _select(self, sql: str, params=()) -> list[dict]:
        with self._lock:
            cur = self._conn.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]


def read_log(data_dir: Path | str) -> tuple[list[dict], list[dict]]:
    """(queries, feedback) of a data dir's query log; empty lists when no server has written one yet."""
    path = query_log_path(data_dir)
    if not path.exists():
        return [], []
    log = QueryLog(path)
    try:
        return log.queries(), log.feedback()
    finally:
        log.close()


def _create(table: str, columns: dict) -> str:
    return f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(f'{c} {t}' for c, t in columns.items())})"


def _decode(row: dict, json_columns) -> dict:
    return {k: (json.loads(v) if k in json_columns and isinstance(v, str) else v) for k, v in row.items()}
