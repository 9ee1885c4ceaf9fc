"""Read a docs source (HTML pages, Markdown files or a JSONL export) into documents.

A document keeps its full content so that sections are derived from one consistent snapshot
and change detection can compare content hashes.
"""

from __future__ import annotations

import codecs
import hashlib
import html
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import quote

HTML_SUFFIXES = {".html", ".htm"}
MARKDOWN_SUFFIXES = {".md", ".markdown"}
JSONL_SUFFIXES = {".jsonl"}
# Folders of build artefacts that never hold pages (Sphinx output, VCS, virtualenvs).
IGNORED_DIRS = {"_static", "_sources", "_images", "_downloads", ".git", ".venv", "node_modules", "__pycache__"}

_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_MD_H1_RE = re.compile(r"^\s{0,3}#\s+(.+?)\s*#*\s*$", re.MULTILINE)


class NoDocumentsError(ValueError):
    """The docs source holds no usable document."""


@dataclass(frozen=True)
class Document:
    doc_id: str  # path relative to the source folder (or the JSONL row's id/url)
    url: str
    title: str
    format: str  # "html" | "markdown"
    content: str
    content_hash: str
    size: int


@dataclass
class LoadResult:
    documents: list[Document]
    skipped: list[dict] = field(default_factory=list)  # {"path", "reason"}
    ignored: int = 0  # files of types that never hold docs (css, js, images, ...)

    def as_rows(self) -> list[dict]:
        return [asdict(d) for d in self.documents]


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def page_url(base_url: str, rel_path: str) -> str:
    if not base_url:
        return rel_path
    return base_url.rstrip("/") + "/" + rel_path.lstrip("/")


def file_url(base_url: str, rel_path: str) -> str:
    """A file's URL: its relative path percent-encoded (spaces, `#`, `?`, non-ASCII) under the base URL."""
    return page_url(base_url, quote(rel_path, safe="/-._~!$&'()*+,;=:@"))


def load_documents(source: Path | str, base_url: str = "") -> LoadResult:
    """Read every usable document under `source` (a folder, or a single .jsonl/.html/.md file).

    Files in another encoding than UTF-8 are decoded by their BOM, declared charset or a detected one;
    unreadable files (binary, undecodable, empty) are skipped and listed as {"path", "reason"}; a source with
    no usable document raises NoDocumentsError.
    """
    source = Path(source)
    if not source.exists():
        raise NoDocumentsError(f"docs source {source} does not exist (set RAG_DOCS_DIR to your docs folder)")
    result = LoadResult(documents=[])
    if source.is_file():
        files, root = [source], source.parent
    else:
        files, root = sorted(_iter_files(source)), source
    for path in files:
        rel = path.relative_to(root).as_posix()
        suffix = path.suffix.lower()
        if suffix not in HTML_SUFFIXES | MARKDOWN_SUFFIXES | JSONL_SUFFIXES:
            result.ignored += 1
            continue
        text, reason = _read_text(path)
        if reason:
            result.skipped.append({"path": rel, "reason": reason})
            continue
        if suffix in JSONL_SUFFIXES:
            _load_jsonl(text, rel, base_url, result)
            continue
        fmt = "html" if suffix in HTML_SUFFIXES else "markdown"
        result.documents.append(_make_doc(rel, file_url(base_url, rel), _title(text, fmt, rel), fmt, text))
    if not result.documents:
        listed = "; ".join(f"{s['path']}: {s['reason']}" for s in result.skipped[:10])
        raise NoDocumentsError(
            f"no usable document in {source}: expected .html, .md or .jsonl files"
            + (f" (skipped: {listed})" if listed else "")
        )
    return result


def _iter_files(folder: Path):
    for path in folder.rglob("*"):
        if any(part in IGNORED_DIRS or part.startswith(".") for part in path.relative_to(folder).parts[:-1]):
            continue
        if path.is_file() and not path.name.startswith("."):
            yield path


def _read_text(path: Path) -> tuple[str, str | None]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return "", f"unreadable: {exc.strerror or exc}"
    text, reason = decode(raw, html=path.suffix.lower() in HTML_SUFFIXES)
    if reason:
        return "", reason
    if not text.strip():
        return "", "empty"
    return text, None


# <meta charset="...">, <meta http-equiv="Content-Type" content="text/html; charset=...">, <?xml encoding="..."?>
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9._:-]+)""", re.IGNORECASE)
# What browsers do (WHATWG Encoding): a page labelled Latin-1 or ASCII is decoded as windows-1252.
_WHATWG_ALIASES = {"iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
                   "l1": "cp1252", "ascii": "cp1252", "us-ascii": "cp1252", "windows-1252": "cp1252"}


def declared_charset(raw: bytes) -> str | None:
    """The charset an HTML page declares in its first 4 KiB (meta tag or XML declaration), if Python knows it."""
    head = raw[:4096]
    match = _XML_ENCODING.search(head) or _META_CHARSET.search(head)
    if not match:
        return None
    label = match.group(1).decode("ascii", "replace").strip().lower()
    label = _WHATWG_ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def decode(raw: bytes, html: bool = True) -> tuple[str, str | None]:
    """(text, None), or ("", why it is not text). A BOM wins, then the page's declared charset, then UTF-8,
    then the encoding charset-normalizer detects; bytes that are none of these are binary or undecodable."""
    if raw.startswith(codecs.BOM_UTF8):
        return _strict(raw[3:], "utf-8")
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _strict(raw, "utf-16")
    if b"\x00" in raw[:8192]:
        return "", "binary content"
    declared = declared_charset(raw) if html else None
    for encoding in dict.fromkeys(e for e in (declared, "utf-8") if e):
        text, _ = _strict(raw, encoding)
        if text or not raw:
            return text, None
    detected = _detect(raw)
    if detected is not None:
        return detected, None
    what = f"not valid {declared}" + (" as declared" if declared != "utf-8" else "") if declared else "not UTF-8"
    return "", f"{what}, and no other text encoding detected"


def _strict(raw: bytes, encoding: str) -> tuple[str, str | None]:
    try:
        return raw.decode(encoding), None
    except UnicodeDecodeError as exc:
        return "", f"not valid {encoding.upper()} (byte {exc.start})"


def _detect(raw: bytes) -> str | None:
    """The encoding charset-normalizer finds most coherent; among about equally good guesses windows-1252 (the
    most common legacy encoding of Western docs: a short Latin-1 text fits a dozen code pages about as well)."""
    from charset_normalizer import from_bytes

    matches = list(from_bytes(raw[:200_000]))
    if not matches:
        return None
    best = min(matches, key=lambda m: (m.chaos, -m.coherence))
    tied = [e for m in matches if m.chaos == best.chaos and m.coherence >= best.coherence - 0.1
            for e in m.could_be_from_charset]
    for encoding in (["cp1252"] if "cp1252" in tied else []) + [best.encoding]:
        try:
            return raw.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    return None


def _load_jsonl(text: str, rel: str, base_url: str, result: LoadResult) -> None:
    seen = {d.doc_id for d in result.documents}
    # Rows end at "\n" only: str.splitlines() would also cut at U+2028, \x1c... that JSON strings may hold raw.
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        where = f"{rel}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            result.skipped.append({"path": where, "reason": f"invalid JSON: {exc.msg}"})
            continue
        if not isinstance(row, dict):
            result.skipped.append({"path": where, "reason": "row is not a JSON object"})
            continue
        body = row.get("text")
        ident = row.get("url") or row.get("id")
        if not isinstance(body, str) or not body.strip():
            result.skipped.append({"path": where, "reason": "missing or empty 'text'"})
            continue
        if not ident:
            result.skipped.append({"path": where, "reason": "missing 'url' or 'id'"})
            continue
        ident = str(ident)
        if ident in seen:
            result.skipped.append({"path": where, "reason": f"duplicate id {ident!r}"})
            continue
        url = ident if re.match(r"^[a-z][a-z0-9+.-]*://", ident) else page_url(base_url, ident)
        title = str(row.get("title") or ident)
        seen.add(ident)
        result.documents.append(_make_doc(ident, url, title, "markdown", body))


def _make_doc(doc_id: str, url: str, title: str, fmt: str, text: str) -> Document:
    return Document(
        doc_id=doc_id,
        url=url,
        title=title,
        format=fmt,
        content=text,
        content_hash=content_hash(text),
        size=len(text.encode("utf-8")),
    )


def _title(text: str, fmt: str, rel: str) -> str:
    match = (_TITLE_RE if fmt == "html" else _MD_H1_RE).search(text)
    if match:
        title = " ".join(html.unescape(re.sub(r"<[^>]+>", "", match.group(1))).split())
        if title:
            return title
    return rel

