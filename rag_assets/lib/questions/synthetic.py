"""Cold-start questions: what a user would ask that each docs section answers, with the section as gold.

Generators: with OPENAI_BASE_URL and RAG_LLM_MODEL set, the LLM writes them (the seed's prompt, temperature 0,
completions cached like judgements); otherwise a deterministic generator from the section's title, API
signature and first sentence. Then the filter (lib/questions/filters.py) and a split by page.
Output: <data dir>/assets/synthetic_questions.parquet, one row per question (dropped rows kept with a reason).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from rag_assets.lib.retrieve.tags import docs_area
from rag_assets.lib.settings import llm_endpoint

OFFLINE_GENERATOR = "offline-templates-v1"
COLUMNS = ("question", "source", "page", "area", "split", "drop_reason", "generator")
SPLITS = ("train", "validation", "dropped")
DEFAULT_VALIDATION_SHARE = 0.2
VALIDATION_JSONL = "synthetic_validation.jsonl"  # a RAG_EVAL_PATH-compatible export of the validation split


def questions_path(data_dir: Path | str) -> Path:
    return Path(data_dir) / "assets" / "synthetic_questions.parquet"


def validation_jsonl_path(data_dir: Path | str) -> Path:
    return Path(data_dir) / "assets" / VALIDATION_JSONL


def read_questions(data_dir: Path | str, split: str | None = None) -> list[dict]:
    """The rows of synthetic_questions (all, or one split: train, validation, dropped)."""
    from rag_assets.lib.store import read_table

    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    path = questions_path(data_dir)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: materialize `synthetic_questions` first")
    rows = read_table(path).to_pylist()
    return [r for r in rows if split is None or r["split"] == split]


# --- the offline generator ----------------------------------------------------------------------

_NUMBERING = re.compile(r"^\s*(\d+(\.\d+)*\.?|[A-Z]\.)\s+")
_SIGNATURE = re.compile(r"^(?:(class|exception|async|awaitable)\s+)?([A-Za-z_][\w.]*)\s*(\((.*)\))?\s*$")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_GENERIC_TITLES = {"examples", "example", "notes", "introduction", "overview", "functions", "classes",
                   "constants", "exceptions", "usage", "reference", "summary", "details", "see also",
                   "module contents", "attributes", "methods", "other", "miscellaneous"}
_VERBS = {"return": "get", "returns": "get", "create": "create", "creates": "create", "convert": "convert",
          "converts": "convert", "get": "get", "set": "set", "read": "read", "write": "write", "open": "open",
          "remove": "remove", "add": "add", "compute": "compute", "encode": "encode", "decode": "decode",
          "parse": "parse", "format": "format", "print": "print", "load": "load", "save": "save",
          "start": "start", "stop": "stop", "run": "run", "register": "register", "generate": "generate",
          "build": "build", "copy": "copy", "delete": "delete", "change": "change", "send": "send",
          "wait": "wait", "split": "split", "join": "join", "sort": "sort", "find": "find", "search": "search",
          "replace": "replace", "check": "check", "test": "test", "raise": "raise", "close": "close",
          "construct": "construct", "calculate": "calculate", "serialize": "serialize", "compare": "compare"}
_PROVIDES = re.compile(r"^(?:This|The\s+\w+)\s+(?:module|package|library)\s+(?:provides|implements|defines|"
                       r"contains|offers)\s+(.+)$", re.IGNORECASE)
MAX_COPIED_WORDS = 7  # how much of a sentence a template question may reuse


def _pick(source: str, salt: str, n: int) -> int:
    return int(hashlib.sha1(f"{salt}:{source}".encode()).hexdigest(), 16) % n


def _clean_title(title: str) -> str:
    return _NUMBERING.sub("", " ".join((title or "").split())).strip(" .:")


def _page_name(source: str) -> str:
    return source.split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0]


def _body_lines(title: str, text: str) -> list[str]:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if lines and _clean_title(lines[0]) == _clean_title(title):
        lines = lines[1:]  # the section text starts with its heading
    return lines


def _signature(lines: Sequence[str]) -> tuple[str, str] | None:
    """(dotted name, arguments) of an API signature among the first lines, e.g. json.dumps(obj, ...)."""
    for line in lines[:3]:
        m = _SIGNATURE.match(line)
        if m and (m.group(1) or m.group(3)) and ("." in m.group(2) or m.group(3)) and len(line) < 200:
            return m.group(2), (m.group(4) or "").strip()
    return None


def _first_sentence(lines: Sequence[str]) -> str:
    prose = [line for line in lines if not _SIGNATURE.match(line) and len(line.split()) >= 3]
    text = " ".join(prose[:4])
    return _SENTENCE.split(text, 1)[0].strip() if text else ""


def _phrase(words: Sequence[str]) -> str:
    return " ".join(words[:MAX_COPIED_WORDS]).rstrip(".,;:")


def title_question(title: str, source: str) -> str | None:
    t = _clean_title(title)
    if not t or len(t) < 3:
        return None
    page = _page_name(source)
    if t.endswith("?"):
        return t
    first = t.split()[0].lower()
    if first in {"how", "why", "what", "when", "where", "which", "can", "is", "are", "do", "does", "should"}:
        return t.rstrip(".") + "?"
    if " — " in t:  # Sphinx module pages: "csv — CSV File Reading and Writing"
        name, what = t.split(" — ", 1)
        return [f"What is the {name} module used for?", f"Which module handles {what[0].lower() + what[1:]}?"][
            _pick(source, "mod", 2)]
    if t.lower() in _GENERIC_TITLES:
        return f"What are the {t.lower()} for {page}?"
    if re.fullmatch(r"[a-z_][\w.]*", t):
        return [f"What is the {t} module used for?", f"What does {t} do?"][_pick(source, "mod", 2)]
    if first.endswith("ing") and len(first) > 5:
        return f"How do I go about {t[0].lower() + t[1:]}?"
    templates = [f"What is {t}?", f"Can you explain {t}?", f"How does {t} work in {page}?"]
    return templates[_pick(source, "title", len(templates))]


def signature_question(lines: Sequence[str], source: str) -> str | None:
    sig = _signature(lines)
    if not sig:
        return None
    name, args = sig
    templates = [f"What does {name} do?", f"How do I use {name}?"]
    if args:
        templates.append(f"What arguments does {name}() take?")
    return templates[_pick(source, "sig", len(templates))]


def sentence_question(lines: Sequence[str], title: str) -> str | None:
    sentence = _first_sentence(lines)
    words = sentence.rstrip(".").split()
    if len(words) < 3:
        return None
    m = _PROVIDES.match(sentence.rstrip("."))
    if m:
        return f"Which module provides {_phrase(m.group(1).split())}?"
    verb = _VERBS.get(words[0].lower())
    if verb:
        sig = _signature(lines)
        if words[0].lower() in ("return", "returns") and sig:
            return f"What does {sig[0]} return?"
        return f"How do I {verb} {_phrase(words[1:])}?"
    return None


def offline_questions(section: dict, max_per_section: int = 3) -> list[str]:
    """Up to three deterministic questions: from the title, the API signature and the first sentence."""
    lines = _body_lines(section["title"], section["text"])
    out = []
    for q in (signature_question(lines, section["source"]), title_question(section["title"], section["source"]),
              sentence_question(lines, section["title"])):
        if q and q not in out:
            out.append(" ".join(q.split()))
    return out[:max_per_section]


# --- the LLM generator --------------------------------------------------------------------------

LLM_PROMPT_VERSION = "seed-synthetic-v1"
SYSTEM_PROMPT = ("Create {n} questions using only the context provided. Write them the way a user of these docs "
                 "would ask, without copying phrases from the context. End each question with a '?' character "
                 "and put each question on its own line. Write nothing else.")
MAX_CONTEXT_CHARS = 4000


def llm_questions(client, model: str, cache, section: dict, n: int = 3) -> list[str]:
    """The LLM's questions for one section (temperature 0; completions cached by model and messages)."""
    messages = [{"role": "system", "content": SYSTEM_PROMPT.format(n=n)},
                {"role": "user", "content": f"context:\n{section['text'][:MAX_CONTEXT_CHARS]}"}]
    text = cache.get_completion(model, messages) if cache is not None else None
    if text is None:
        text = client.chat(model, messages, max_tokens=300).text
        if cache is not None:
            cache.put_completion(model, messages, text)
    questions = []
    for line in text.splitlines():
        line = re.sub(r"^\s*(?:\d+[.)]|[-*•]|Q\d*[:.])\s*", "", line).strip()
        if line.endswith("?") and len(line.split()) >= 3 and line not in questions:
            questions.append(line)
    return questions[:n]


def llm_model_from_env() -> str | None:
    """The LLM that writes questions: RAG_LLM_MODEL when OPENAI_BASE_URL is set (else None: offline)."""
    model = os.environ.get("RAG_LLM_MODEL")
    if llm_endpoint() and model and model != "extractive":
        return model
    return None


# --- generate, filter, split ---------------------------------------------------------------------


def split_pages(pages: Sequence[str], validation_share: float = DEFAULT_VALIDATION_SHARE) -> dict[str, str]:
    """page -> train | validation, by a hash of the page URL: deterministic, stable when pages are added, and
    at least one validation page once there are two pages."""
    unique = sorted(set(pages), key=lambda p: hashlib.sha1(p.encode()).hexdigest())
    if len(unique) < 2:
        return {p: "train" for p in unique}
    n_val = min(len(unique) - 1, max(1, math.ceil(len(unique) * validation_share)))
    return {p: ("validation" if i < n_val else "train") for i, p in enumerate(unique)}


def generate(sections: Sequence[dict], base_url: str, depth: int = 1, max_per_section: int = 3,
             llm: tuple | None = None) -> list[dict]:
    """Candidate rows (not yet filtered). `llm` = (client, model, cache) to have an LLM write them."""
    rows = []
    for s in sections:
        if llm:
            client, model, cache = llm
            qs, gen = llm_questions(client, model, cache, s, max_per_section), f"llm:{model}:{LLM_PROMPT_VERSION}"
        else:
            qs, gen = offline_questions(s, max_per_section), OFFLINE_GENERATOR
        page = s["source"].split("#", 1)[0]
        rows += [{"question": q, "source": s["source"], "page": page, "area": docs_area(page, base_url, depth),
                  "split": None, "drop_reason": None, "generator": gen} for q in qs]
    return rows


def assign_splits(rows: list[dict], validation_share: float = DEFAULT_VALIDATION_SHARE) -> list[dict]:
    by_page = split_pages([r["page"] for r in rows], validation_share)
    for r in rows:
        r["split"] = "dropped" if r["drop_reason"] else by_page[r["page"]]
    return rows


def to_table(rows: Sequence[dict]) -> pa.Table:
    return pa.table({c: pa.array([r[c] for r in rows], pa.string()) for c in COLUMNS})
