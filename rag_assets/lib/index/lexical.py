"""The Tantivy BM25 index over chunk ids (English stemming)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import tantivy

WRITER_HEAP = 64_000_000
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class SyncResult:
    docs: int
    inserted: int
    deleted: int
    commit: int | None = None  # the opstamp of the commit, None when nothing changed


def build_schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("id", stored=True, tokenizer_name="raw")  # raw: exact match for deletes
    sb.add_text_field("text", stored=True, tokenizer_name="en_stem")
    sb.add_text_field("title", stored=False, tokenizer_name="en_stem")
    sb.add_text_field("source", stored=True, tokenizer_name="raw")
    return sb.build()


def open_index(index_dir: Path | str, create: bool = False) -> tantivy.Index:
    index_dir = Path(index_dir)
    if not create and not (index_dir / "meta.json").exists():
        raise FileNotFoundError(f"no Tantivy index at {index_dir}")
    index_dir.mkdir(parents=True, exist_ok=True)
    return tantivy.Index(build_schema(), path=str(index_dir), reuse=True)


def index_exists(index_dir: Path | str) -> bool:
    return (Path(index_dir) / "meta.json").exists()


def all_ids(index: tantivy.Index) -> set[str]:
    index.reload()
    searcher = index.searcher()
    if searcher.num_docs == 0:
        return set()
    hits = searcher.search(tantivy.Query.all_query(), limit=searcher.num_docs).hits
    return {searcher.doc(addr)["id"][0] for _, addr in hits}


def sync(index_dir: Path | str, rows: list[dict]) -> SyncResult:
    """Make the index hold exactly `rows` (dicts with id, text, source, title) in one commit."""
    index = open_index(index_dir, create=True)
    old_ids = all_ids(index)
    wanted = {r["id"]: r for r in rows}
    gone = old_ids - wanted.keys()
    new = [r for i, r in wanted.items() if i not in old_ids]
    opstamp = None
    if gone or new or not old_ids:
        writer = index.writer(heap_size=WRITER_HEAP, num_threads=1)
        for cid in gone:
            writer.delete_documents_by_term("id", cid)
        for r in new:
            writer.add_document(
                tantivy.Document(id=r["id"], text=r["text"], title=r.get("title") or "", source=r["source"])
            )
        opstamp = writer.commit()  # one commit: a reader sees the old or the new index, never a mix
        writer.wait_merging_threads()
    index.reload()
    return SyncResult(docs=index.searcher().num_docs, inserted=len(new), deleted=len(gone), commit=opstamp)


def query_terms(text: str) -> str:
    """User text as plain words: query syntax (quotes, parentheses, field:, ranges) has no meaning here."""
    return " ".join(w.lower() for w in _WORD.findall(text))


def search(index: tantivy.Index, text: str, k: int, title_boost: float = 1.0) -> list[dict]:
    """BM25 over text and title; `title_boost` weighs a title match against a body match (1 = equal)."""
    terms = query_terms(text)
    if not terms or k <= 0:
        return []
    boosts = None if title_boost == 1.0 else {"title": float(title_boost), "text": 1.0}
    query, _errors = index.parse_query_lenient(terms, ["text", "title"], field_boosts=boosts)
    searcher = index.searcher()
    out = []
    for score, addr in searcher.search(query, limit=k).hits:
        doc = searcher.doc(addr)
        out.append({"id": doc["id"][0], "text": doc["text"][0], "source": doc["source"][0], "score": float(score)})
    return out
