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

# Bump on any change to how documents become sections: every document is parsed again at the next
# refresh (unchanged documents included) and the index is rebuilt from the new sections.
PARSER_VERSION = "sections-v1"

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
_LIST_OR_QUOTE = re.compile(r"^\s*([-*+>]|\d+[.)])\s")
# YAML front matter (Jekyll, Hugo, Docusaurus): metadata, not text; its closing `---` is no heading.
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n.*?\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_HTML_TAG = re.compile(r"<[^>]+>")
# Emphasis markers around text (not inside words, so snake_case stays as written).
_EMPHASIS = re.compile(r"(?<![\w\\])(\*{1,3}|_{1,3}|~~)(?=\S)(.+?)(?<=\S)\1(?!\w)")


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

    content = _FRONT_MATTER.sub("", content.replace("\r\n", "\n"), count=1)
    lines = content.split("\n")
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
            and not line.startswith("    ")  # indented code
            and not _LIST_OR_QUOTE.match(line)
            and _SETEXT.match(lines[i + 1])
            and not _SETEXT.match(line)
        ):
            heading = line.strip()
            i += 1  # consume the underline
        if heading is not None:
            flush()
            title = heading_text(heading)
            anchor = github_slug(heading, slugs)
            body = [title] if title else []
        else:
            body.append(line)
        i += 1
    flush()
    return sections


def heading_text(heading: str) -> str:
    """The heading as GitHub renders it to text: code spans literal, links and images by their text,
    emphasis markers and HTML tags dropped."""
    parts, pos = [], 0
    for m in _CODE_SPAN.finditer(heading):
        parts.append(_inline_text(heading[pos : m.start()]))
        parts.append(m.group(2).strip() if m.group(2).strip() else m.group(2))
        pos = m.end()
    parts.append(_inline_text(heading[pos:]))
    return " ".join("".join(parts).split())


def _inline_text(text: str) -> str:
    text = _LINK.sub(r"\1", text)
    text = _HTML_TAG.sub("", text)
    previous = None
    while previous != text:  # nested emphasis: ***a*** or **_a_**
        previous, text = text, _EMPHASIS.sub(r"\2", text)
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text)  # backslash escapes


def github_slug(heading: str, seen: dict[str, int] | None = None) -> str:
    """GitHub's heading anchor (github-slugger): the rendered text lowercased, punctuation and symbols
    dropped (letters, marks, digits, connector punctuation such as `_`, `-` and spaces kept), each space a
    hyphen; repeats get -1, -2."""
    text = heading_text(heading).lower()
    text = "".join(ch for ch in text if ch in " -" or _slug_keeps(unicodedata.category(ch)))
    slug = text.replace(" ", "-")
    if seen is None:
        return slug
    candidate = slug
    while candidate in seen:
        seen[slug] += 1
        candidate = f"{slug}-{seen[slug]}"
    seen[candidate] = 0
    return candidate


def _slug_keeps(category: str) -> bool:
    return category[0] in ("L", "M") or category in ("Nd", "Nl", "Pc")
