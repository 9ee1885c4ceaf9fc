"""The eval set: JSONL rows {"question", "source": URL[#anchor], optional "reference_answer"} (the seed's format).

Rows accepted from user feedback (issue 15) also carry a "provenance" object (origin "feedback", trace_id, ...).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from collections.abc import Sequence
from urllib.parse import urlsplit

from rag_assets.lib.ingest.sections import anchor_context
from rag_assets.lib.settings import DEFAULT_EVAL_PATH  # noqa: F401 (re-exported)
from rag_assets.lib.store import Layout, read_table


class EvalDataError(ValueError):
    """Malformed eval rows; `problems` maps each bad line number to what is wrong with it."""

    def __init__(self, path: Path | str, problems: dict[int, str]):
        self.path = str(path)
        self.problems = dict(sorted(problems.items()))
        lines = ", ".join(str(n) for n in self.problems)
        details = "; ".join(f"line {n}: {why}" for n, why in self.problems.items())
        super().__init__(f"{self.path}: malformed rows at lines {lines}: {details}")


def load_questions(path: Path | str) -> list[dict]:
    """Rows in file order; raises EvalDataError naming every bad line (blank lines are allowed)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"eval set {path} does not exist (set RAG_EVAL_PATH)")
    rows, problems, first_seen = [], {}, {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row, why = _parse_row(line)
        if row is not None and row["question"] in first_seen:
            row, why = None, f"duplicate question (first at line {first_seen[row['question']]})"
        if row is None:
            problems[n] = why
            continue
        first_seen[row["question"]] = n
        rows.append(row)
    if problems:
        raise EvalDataError(path, problems)
    if not rows:
        raise EvalDataError(path, {0: "no questions in the file"})
    return rows


def _parse_row(line: str) -> tuple[dict | None, str]:
    try:
        obj = json.loads(line)
    except ValueError as exc:
        return None, f"not JSON ({exc.msg})"
    if not isinstance(obj, dict):
        return None, "not a JSON object"
    question, source, reference = obj.get("question"), obj.get("source"), obj.get("reference_answer")
    if not isinstance(question, str) or not question.strip():
        return None, "'question' must be a non-empty string"
    # An empty source is the seed's "no gold page": it counts as a retrieval hit.
    if not isinstance(source, str):
        return None, "'source' must be a string (a URL, optionally with #anchor)"
    if reference is not None and not isinstance(reference, str):
        return None, "'reference_answer' must be a string"
    provenance = obj.get("provenance")
    if provenance is not None and not isinstance(provenance, dict):
        return None, "'provenance' must be a JSON object"
    row = {"question": question.strip(), "source": source.strip()}
    if reference and reference.strip():
        row["reference_answer"] = reference.strip()
    if provenance:
        row["provenance"] = provenance
    return row, ""


def normalize_question(text: str) -> str:
    """The form two questions are compared in: case, spacing and trailing punctuation do not make a new one."""
    return re.sub(r"\s+", " ", (text or "").casefold()).strip().rstrip("?!. ").strip()


def eval_set_version(path: Path | str) -> str:
    """The eval set's version: the first 12 hex digits of its content's SHA-256."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def from_feedback(rows: list[dict]) -> int:
    """How many eval rows were accepted from user feedback (`rag-assets feedback accept`)."""
    return sum(1 for r in rows if (r.get("provenance") or {}).get("origin") == "feedback")


def page_of(source: str) -> str:
    """The page URL without its #anchor (the seed's retrieval unit)."""
    return (source or "").split("#", 1)[0]


def docs_area(source: str, base_url: str = "") -> str:
    """Top-level docs area of a source, e.g. `library` or `tutorial`; a top-level page is its own area."""
    page = page_of(source)
    if not page:
        return "(no source)"
    path = page[len(base_url):] if base_url and page.startswith(base_url) else urlsplit(page).path
    parts = [p for p in path.strip("/").split("/") if p]
    if not parts:
        return "(root)"
    return parts[0] if len(parts) > 1 else parts[0].rsplit(".", 1)[0]


def section_texts(layout: Layout) -> dict[str, str]:
    """Gold section text by `page#anchor` source (the seed wrote references and perfect-context answers from it)."""
    table = read_table(layout.sections, columns=["source", "text"])
    return dict(zip(table.column("source").to_pylist(), table.column("text").to_pylist()))


def gold_texts(layout: Layout, questions: Sequence[dict]) -> dict[str, str]:
    """The gold context of each question's source, as the reference implementation found it.

    A source that is a section is that section's text. Any other anchor, such as an API object's
    `<dt id="csv.DictReader">` (the most common anchor in Sphinx API pages), is that element's block (the dt
    and its dd), else the section around it, else the whole page; a source without an anchor is the page.
    Sources whose page is not in the docs are left out.
    """
    sections = section_texts(layout)
    by_page: dict[str, list[str]] = {}
    for source, text in sections.items():
        by_page.setdefault(page_of(source), []).append(text)
    wanted = {q["source"] for q in questions if q.get("source")} - set(sections)
    docs = _docs_by_url(layout, {page_of(s) for s in wanted}) if wanted else {}
    out = {s: sections[s] for s in {q.get("source") for q in questions} if s in sections}
    for source in wanted:
        page, _, anchor = source.partition("#")
        text, enclosing = (None, None)
        if anchor and page in docs:
            text, enclosing = anchor_context(docs[page]["content"], docs[page]["format"], anchor)
        text = text or sections.get(f"{page}#{enclosing}") or "\n\n".join(by_page.get(page, []))
        if text:
            out[source] = text
    return out


def _docs_by_url(layout: Layout, urls: set[str]) -> dict[str, dict]:
    if not layout.docs.exists():
        return {}
    table = read_table(layout.docs, columns=["url", "format", "content"])
    return {r["url"]: r for r in table.to_pylist() if r["url"] in urls}


class EvalFiles:
    """Where the evaluation assets keep their outputs under a Layout (eval/, reports/, cache/)."""

    def __init__(self, layout: Layout):
        self.layout = layout

    @property
    def questions(self) -> Path:
        return self.layout.eval_dir / "questions.json"

    @property
    def references(self) -> Path:
        return self.layout.eval_dir / "reference_answers.json"

    @property
    def responses(self) -> Path:
        return self.layout.eval_dir / "responses.json"

    @property
    def retrieval(self) -> Path:
        return self.layout.eval_dir / "retrieval_scores.json"

    @property
    def quality(self) -> Path:
        return self.layout.eval_dir / "quality_scores.json"

    @property
    def report(self) -> Path:
        return self.layout.reports / "score_report.json"

    @property
    def previous_report(self) -> Path:
        """The report before the latest one: what the score-drop check compares against."""
        return self.layout.reports / "score_report.previous.json"

    @property
    def plot(self) -> Path:
        return self.layout.reports / "score_report.png"

    @property
    def judge_cache(self) -> Path:
        """Judgements and written references, shared by every run and experiment variant on this data dir."""
        return self.layout.cache / "judge.sqlite"
