"""Eval candidates: underperforming queries with a known good page, waiting for a person to accept or reject.

The `eval_candidates` asset adds new ones (pending); `rag-assets feedback accept|reject ID` decides. An
accepted candidate is appended to the eval set file with its provenance, never duplicating a question.
State lives in <data dir>/feedback/eval_candidates.json; both writers hold one file lock.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock

from rag_assets.lib.evaluate.eval_data import normalize_question
from rag_assets.lib.feedback.files import FeedbackFiles, write_text_atomic
from rag_assets.lib.store import read_json, write_json

STATES = ("pending", "accepted", "rejected")


class CandidateError(ValueError):
    """An accept or reject that cannot be done (unknown id, already decided, duplicate question)."""


def candidate_id(trace_id: str) -> str:
    """Stable across re-materializations, short enough to type."""
    return "c" + hashlib.sha256(trace_id.encode()).hexdigest()[:8]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def build_candidates(rows: list[dict], eval_questions: set[str]) -> list[dict]:
    """Candidate eval rows from triage rows with a known good page; questions already in the eval set (by
    normalized text) and repeats of a question (the first asked wins) are left out."""
    seen, out = set(eval_questions), []
    for r in sorted(rows, key=lambda r: r["asked_at"]):
        key = normalize_question(r["question"])
        if not r.get("known_source") or not key or key in seen:
            continue
        seen.add(key)
        out.append({
            "id": candidate_id(r["trace_id"]),
            "question": r["question"].strip(),
            "source": r["known_source"],
            "label": r["label"],
            "docs_area": r["docs_area"],
            "provenance": {
                "origin": "feedback",
                "trace_id": r["trace_id"],
                "feedback_ids": r["feedback_ids"],
                "rating": r["rating"],
                "comment": r["comment"],
                "source_from": r["known_source_from"],
                "label": r["label"],
                "signals": r["signals"],
                "asked_at": r["asked_at"],
                "feedback_at": r["feedback_at"],
            },
        })
    return out


def eval_questions_in(path: Path) -> dict[str, int]:
    """Normalized question -> line number of an eval set file; unparseable lines are skipped here (the
    eval loader names them)."""
    out = {}
    if not path.is_file():
        return out
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            q = json.loads(line).get("question") if line.strip() else None
        except (ValueError, AttributeError):
            continue
        if isinstance(q, str) and normalize_question(q):
            out.setdefault(normalize_question(q), n)
    return out


class CandidateStore:
    def __init__(self, data_dir: Path | str):
        self.files = FeedbackFiles(data_dir)
        self.path = self.files.candidates

    def _lock(self) -> FileLock:
        self.files.dir.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.files.lock), timeout=60)

    def load(self) -> list[dict]:
        return read_json(self.path)["candidates"] if self.path.exists() else []

    def _save(self, candidates: list[dict]) -> None:
        write_json(self.path, {"updated_at": _now(), "candidates": candidates})

    def merge(self, new: list[dict]) -> dict:
        """Add new candidates as pending; known ones keep their state (a rejected one stays rejected)."""
        with self._lock():
            current = self.load()
            known = {c["id"] for c in current}
            added = [dict(c, state="pending", created_at=_now()) for c in new if c["id"] not in known]
            self._save(current + added)
            counts = {s: sum(1 for c in current + added if c["state"] == s) for s in STATES}
            return {"added": len(added), **counts}

    def get(self, cid: str) -> dict:
        return _find(self.load(), cid)

    def _require(self) -> None:
        if not self.path.exists():
            raise CandidateError(f"no eval candidates at {self.path}: materialize `eval_candidates` first")

    def reject(self, cid: str, reason: str | None = None) -> dict:
        self._require()
        with self._lock():
            current = self.load()
            c = _find(current, cid)
            if c["state"] == "accepted":
                raise CandidateError(f"{cid} is already in the eval set ({c.get('eval_path')}); edit that file to remove it")
            c.update(state="rejected", decided_at=_now(), reason=reason)
            self._save(current)
            return c

    def accept(self, cid: str, eval_path: Path | str) -> dict:
        """Append the candidate to the eval set (atomically, with provenance) and mark it accepted.

        Returns the eval row written. A question already in the eval set (normalized) is refused."""
        eval_path = Path(eval_path)
        self._require()
        with self._lock():
            current = self.load()
            c = _find(current, cid)
            if c["state"] == "accepted":
                raise CandidateError(f"{cid} was already accepted into {c.get('eval_path')}")
            existing = eval_questions_in(eval_path)
            line = existing.get(normalize_question(c["question"]))
            if line is not None:
                raise CandidateError(f"{cid}: the question is already in {eval_path} (line {line}); reject it instead")
            row = {"question": c["question"], "source": c["source"],
                   "provenance": dict(c["provenance"], candidate_id=cid, accepted_at=_now())}
            old = eval_path.read_text(encoding="utf-8") if eval_path.exists() else ""
            if old and not old.endswith("\n"):
                old += "\n"
            write_text_atomic(eval_path, old + json.dumps(row, ensure_ascii=False) + "\n")
            c.update(state="accepted", decided_at=row["provenance"]["accepted_at"], eval_path=str(eval_path))
            self._save(current)
            return row


def _find(candidates: list[dict], cid: str) -> dict:
    for c in candidates:
        if c["id"] == cid:
            return c
    raise CandidateError(f"no eval candidate {cid!r}: see `rag-assets feedback list`")
