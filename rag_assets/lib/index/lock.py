"""One writer per data dir: a file lock around refreshes and ingestion writes.

`rag-assets refresh` holds it for its whole run (change detection, Dagster instance set-up, every
step); each ingestion/index asset takes it too, so a run launched by the daemon or the UI and a
CLI refresh never write the same data dir at once. Readers never take it: they read the manifest.

Reentrant in a thread (one lock object per path; other threads wait like other processes), and
passed to child processes through RAG_ASSETS_LOCKS_HELD (`path=pid` entries), so the steps of a
run whose launcher holds the lock, in a subprocess, do not wait for it.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock, Timeout

LOCK_FILE = ".rag-assets.lock"
OWNER_FILE = ".rag-assets.lock.owner"
HELD_ENV = "RAG_ASSETS_LOCKS_HELD"
_locks: dict[str, FileLock] = {}
_guard = threading.Lock()


class Busy(RuntimeError):
    """The lock is held by another process and the caller would not wait."""


def _held_entries() -> dict[str, int]:
    out = {}
    for entry in os.environ.get(HELD_ENV, "").split(os.pathsep):
        path, _, pid = entry.rpartition("=")
        if path and pid.isdigit():
            out[path] = int(pid)
    return out


def _held_by_parent(key: str) -> bool:
    """Whether a process that started this one holds the lock of `key` (not this process itself)."""
    pid = _held_entries().get(key)
    return pid is not None and pid != os.getpid() and process_alive(pid)


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists (a writer that died leaves its run, lock or temp dir behind)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def owner(root: Path | str) -> str:
    """Who holds (or last held) the lock, as written by its holder: 'pid N on HOST since TIME'."""
    try:
        return (Path(root) / OWNER_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return "unknown"


@contextmanager
def hold(root: Path | str, wait: bool = True, on_wait=None):
    """Hold the data dir's lock. `wait=False` raises Busy at once when another process holds it;
    `on_wait(message)` is called once before blocking (say why nothing seems to happen)."""
    root = Path(root).resolve()
    key = str(root)
    if _held_by_parent(key):
        yield
        return
    root.mkdir(parents=True, exist_ok=True)
    with _guard:
        lock = _locks.setdefault(key, FileLock(str(root / LOCK_FILE)))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        message = f"another refresh is writing {root} ({owner(root)})"
        if not wait:
            raise Busy(message) from None
        if on_wait is not None:
            on_wait(message + ": waiting for it to finish")
        lock.acquire()
    first = lock.lock_counter == 1
    if first:
        since = datetime.now(timezone.utc).isoformat(timespec="seconds")
        (root / OWNER_FILE).write_text(f"pid {os.getpid()} on {os.uname().nodename} since {since}\n", encoding="utf-8")
        previous = os.environ.get(HELD_ENV)
        entries = _held_entries() | {key: os.getpid()}
        os.environ[HELD_ENV] = os.pathsep.join(f"{k}={v}" for k, v in sorted(entries.items()))
    try:
        yield
    finally:
        if first:
            if previous is None:
                os.environ.pop(HELD_ENV, None)
            else:
                os.environ[HELD_ENV] = previous
        lock.release()


def is_held(root: Path | str) -> bool:
    """Whether some process (this one included) holds the lock now. Creates nothing."""
    root = Path(root).resolve()
    if not (root / LOCK_FILE).exists():
        return False
    with _guard:
        mine = _locks.get(str(root))
    if mine is not None and mine.is_locked:
        return True
    probe = FileLock(str(root / LOCK_FILE))
    try:
        probe.acquire(timeout=0)
    except Timeout:
        return True
    probe.release()
    return False
