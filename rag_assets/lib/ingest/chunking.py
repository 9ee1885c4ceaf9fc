"""Recursive character splitting of sections into chunks with deterministic ids.

Same algorithm as the seed's splitter (LangChain's RecursiveCharacterTextSplitter with
separators blank line, newline, space, character; separators kept at the start of the next
piece; chunks stripped). Chunks never cross a section: each section is split on its own.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

SEPARATORS = ("\n\n", "\n", " ", "")
SPLITTER_VERSION = "recursive-v1"


@dataclass(frozen=True)
class Chunk:
    id: str
    doc_id: str
    source: str
    title: str
    text: str


def chunk_id(source: str, text: str, chunk_size: int, chunk_overlap: int) -> str:
    key = "\x1f".join([SPLITTER_VERSION, str(chunk_size), str(chunk_overlap), source, text])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def chunk_sections(sections, chunk_size: int, chunk_overlap: int) -> list[Chunk]:
    """Split each section (objects with doc_id, source, title, text) into chunks, dropping exact repeats."""
    splitter = RecursiveSplitter(chunk_size, chunk_overlap)
    out, seen = [], set()
    for s in sections:
        for piece in splitter.split(s.text):
            cid = chunk_id(s.source, piece, chunk_size, chunk_overlap)
            if cid in seen:  # the same text twice in one section adds nothing to retrieval
                continue
            seen.add(cid)
            out.append(Chunk(id=cid, doc_id=s.doc_id, source=s.source, title=s.title, text=piece))
    return out


class RecursiveSplitter:
    def __init__(self, chunk_size: int, chunk_overlap: int, separators=SEPARATORS):
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        if not 0 <= chunk_overlap < chunk_size:
            raise ValueError("chunk_overlap must be in [0, chunk_size)")
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.separators = tuple(separators)

    def split(self, text: str) -> list[str]:
        return self._split(text, self.separators)

    def _split(self, text: str, separators) -> list[str]:
        separator, rest = separators[-1], ()
        for i, sep in enumerate(separators):
            if sep == "":
                separator = sep
                break
            if sep in text:
                separator, rest = sep, separators[i + 1 :]
                break
        chunks, good = [], []
        for piece in _split_keep(text, separator):
            if len(piece) < self.chunk_size:
                good.append(piece)
                continue
            if good:
                chunks.extend(self._merge(good))
                good = []
            if rest:
                chunks.extend(self._split(piece, rest))
            else:
                chunks.append(piece)
        if good:
            chunks.extend(self._merge(good))
        return chunks

    def _merge(self, pieces: list[str]) -> list[str]:
        # Separators are kept on the pieces, so they join with "".
        docs, current, total = [], [], 0
        for piece in pieces:
            n = len(piece)
            if total + n > self.chunk_size and current:
                _append_stripped(docs, "".join(current))
                while total > self.chunk_overlap or (total + n > self.chunk_size and total > 0):
                    total -= len(current[0])
                    current = current[1:]
            current.append(piece)
            total += n
        _append_stripped(docs, "".join(current))
        return docs


def _split_keep(text: str, separator: str) -> list[str]:
    if not separator:
        return list(text)
    parts = re.split(f"({re.escape(separator)})", text)
    pieces = [parts[0]] + [parts[i] + parts[i + 1] for i in range(1, len(parts) - 1, 2)]
    return [p for p in pieces if p]


def _append_stripped(docs: list[str], text: str) -> None:
    text = text.strip()
    if text:
        docs.append(text)
