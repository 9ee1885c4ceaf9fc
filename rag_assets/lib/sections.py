"""Split documents into sections, each with a `page#anchor` source URL.

HTML follows the seed: every `<section id=...>` contributes its own direct text; nested
subsections are their own rows and never repeated in the parent; sections without an id are
dropped. Markdown: each heading starts a section, anchored by GitHub's slug rules.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from bs4 import BeautifulSoup, Comment, NavigableString, Tag

HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
# Sphinx's "¶" permalink anchors and non-content elements add noise, never meaning.
_SKIP_TAGS = {"script", "style", "template", "noscript"}
_SKIP_CLASSES = {"headerlink"}


@dataclass(frozen=True)
class Section:
    doc_id: str
    source: str  # page URL + "#anchor"
    title: str
    text: str


def split_sections(doc_id: str, url: str, fmt: str, content: str) -> list[Section]:
    if fmt == "html":
        return html_sections(doc_id, url, content)
    if fmt == "markdown":
        return markdown_sections(doc_id, url, content)
    raise ValueError(f"unknown document format {fmt!r} for {doc_id}")


# --- HTML ---------------------------------------------------------------------------------


def html_sections(doc_id: str, url: str, content: str) -> list[Section]:
    soup = BeautifulSoup(content, "lxml")
    out = []
    for section in soup.find_all("section"):
        anchor = section.get("id")
        if not anchor:
            continue
        text = _direct_text(section)
        if not text:
            continue
        out.append(Section(doc_id=doc_id, source=f"{url}#{anchor}", title=_heading(section) or anchor, text=text))
    return out


def _direct_text(section: Tag) -> str:
    parts = []
    for child in section.children:
        piece = _text_of(child)
        if piece:
            parts.append(piece)
    return _tidy("\n".join(parts))


def _text_of(node) -> str:
    if isinstance(node, Comment):
        return ""
    if isinstance(node, NavigableString):
        return str(node).strip()
    if not isinstance(node, Tag) or _skipped(node):
        return ""
    return "".join(_inline_strings(node)).strip()


def _inline_strings(tag: Tag):
    for child in tag.children:
        if isinstance(child, Comment):
            continue
        if isinstance(child, NavigableString):
            yield str(child)
        elif isinstance(child, Tag) and not _skipped(child):
            yield from _inline_strings(child)


def _skipped(tag: Tag) -> bool:
    if tag.name == "section" or tag.name in _SKIP_TAGS:
        return True
    classes = tag.get("class") or ()
    return any(c in _SKIP_CLASSES for c in classes)


def _heading(section: Tag) -> str:
    for child in section.children:
        if isinstance(child, Tag) and child.name in HEADINGS:
            return " ".join("".join(_inline_strings(child)).split())
    return ""


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# --- Markdown -----------------------------------------------------------------------------

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def markdown_sections(doc_id: str, url: str, content: str) -> list[Section]:
    base = url.split("#", 1)[0]
    slugs: dict[str, int] = {}
    sections: list[Section] = []
    title, anchor, body = "", None, []

    def flush():
        text = _tidy("\n".join(body))
        if text:
            source = f"{base}#{anchor}" if anchor is not None else url
            sections.append(Section(doc_id=doc_id, source=source, title=title or doc_id, text=text))

    lines = content.replace("\r\n", "\n").split("\n")
    fence = None
    i = 0
    while i < len(lines):
        line = lines[i]
        fence_match = _FENCE.match(line)
        if fence is not None:
            if fence_match and fence_match.group(1)[0] == fence[0] and len(fence_match.group(1)) >= len(fence):
                fence = None
            body.append(line)
            i += 1
            continue
        if fence_match:
            fence = fence_match.group(1)
            body.append(line)
            i += 1
            continue
        heading = None
        atx = _ATX.match(line)
        if atx:
            heading = (atx.group(2) or "").strip()
        elif (
            i + 1 < len(lines)
            and line.strip()
            and not body_is_list_or_quote(line)
            and _SETEXT.match(lines[i + 1])
            and not _SETEXT.match(line)
        ):
            heading = line.strip()
            i += 1  # consume the underline
        if heading is not None:
            flush()
            title = _plain_heading(heading)
            anchor = github_slug(heading, slugs)
            body = [title] if title else []
        else:
            body.append(line)
        i += 1
    flush()
    return sections


def body_is_list_or_quote(line: str) -> bool:
    return bool(re.match(r"^\s*([-*+>]|\d+[.)])\s", line))


def _plain_heading(text: str) -> str:
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links and images keep their text
    text = re.sub(r"<[^>]+>", "", text)
    return " ".join(text.split())


def github_slug(heading: str, seen: dict[str, int] | None = None) -> str:
    """GitHub's heading anchor: lowercase, punctuation dropped, spaces to hyphens, -N for repeats."""
    text = _plain_heading(heading).lower()
    text = "".join(
        ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in ("L", "N") or unicodedata.category(ch) == "Mn"
    )
    slug = text.replace(" ", "-")
    if seen is None:
        return slug
    if slug in seen:
        seen[slug] += 1
        candidate = f"{slug}-{seen[slug]}"
        while candidate in seen:
            seen[slug] += 1
            candidate = f"{slug}-{seen[slug]}"
        seen[candidate] = 0
        return candidate
    seen[slug] = 0
    return slug
