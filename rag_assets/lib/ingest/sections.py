"""Split documents into sections, each with a `page#anchor` source URL.

HTML, by what the page is made with:
- Sphinx (`<section id>`, or `<div class="section" id>` before Sphinx 4): every such container contributes
  its own direct text; nested subsections are their own rows and never repeated in the parent; containers
  without an id are dropped (the seed's rule).
- Otherwise (MkDocs/Material, Docusaurus, any page with `<main>`/`<article>`): the content root is split at
  each h1-h3 heading that has an id (or an `<a id|name>` inside it); text before the first one is the page's
  own section (no anchor).
- A page with neither becomes one section: its whole content, anchored at the page.
Two sections of one page with the same anchor become one row with both texts.
Markdown: each heading starts a section, anchored by GitHub's slug rules.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from bs4 import BeautifulSoup, Comment, NavigableString, Tag

# Bump on any change to how documents become sections: every document is parsed again at the next
# refresh (unchanged documents included) and the index is rebuilt from the new sections.
PARSER_VERSION = "sections-v2"  # v2: non-Sphinx sites, one section per unstructured page, merged duplicate anchors

HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
SPLIT_HEADINGS = {"h1", "h2", "h3"}
# Sphinx's "¶" permalink anchors and non-content elements add noise, never meaning. (Sphinx pages keep
# exactly these rules, so their sections do not change.)
_SKIP_TAGS = {"script", "style", "template", "noscript"}
_SKIP_CLASSES = {"headerlink"}
# Other generators' page chrome inside the content root: navigation, permalinks (Docusaurus' zero-width "#"),
# buttons, breadcrumbs, tables of contents, edit links, pagination.
_CHROME_TAGS = _SKIP_TAGS | {"nav", "button", "svg", "form", "select", "input", "iframe"}
_CHROME_CLASSES = _SKIP_CLASSES | {
    "hash-link", "anchorjs-link", "md-content__button", "md-source-file", "md-sidebar", "theme-doc-toc-mobile",
    "theme-doc-breadcrumbs", "theme-doc-footer", "theme-doc-version-badge", "pagination-nav", "navbar",
}
_SKIP_ROLES = {"navigation", "banner", "contentinfo", "search"}
# Elements that start a new line of text; everything else is inline and joins its neighbours.
_BLOCK_TAGS = {
    "address", "article", "blockquote", "dd", "details", "div", "dl", "dt", "figcaption", "figure", "header",
    "hr", "li", "main", "ol", "p", "pre", "section", "summary", "table", "tbody", "thead", "tfoot", "tr",
    "ul", "br", "caption", *HEADINGS,
}
# Where the content is, most specific first: Docusaurus, MkDocs Material, MkDocs themes, Sphinx, generic.
_CONTENT_ROOTS = (".theme-doc-markdown", "article.md-content__inner", ".md-content", "div[role=main]",
                  "[role=main]", "div.body", "article", "main", "body")


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
        return merge_duplicate_anchors(markdown_sections(doc_id, url, content))
    raise ValueError(f"unknown document format {fmt!r} for {doc_id}")


def merge_duplicate_anchors(sections: list[Section]) -> list[Section]:
    """One row per source: a repeated anchor on one page keeps all its text (in page order), not the last."""
    merged: dict[str, Section] = {}
    for s in sections:
        first = merged.get(s.source)
        merged[s.source] = s if first is None else Section(first.doc_id, first.source, first.title,
                                                           first.text + "\n\n" + s.text)
    return list(merged.values())


# --- HTML ---------------------------------------------------------------------------------


def html_sections(doc_id: str, url: str, content: str) -> list[Section]:
    soup = BeautifulSoup(content, "lxml")
    base = url.split("#", 1)[0]
    containers = [c for c in soup.find_all(_is_container) if c.get("id")]
    if containers:
        out = []
        for section in containers:
            text = _direct_text(section)
            if text:
                out.append(Section(doc_id, f"{base}#{section['id']}", _heading(section) or section["id"], text))
        return merge_duplicate_anchors(out)
    root = content_root(soup)
    if root is None:
        return []
    return merge_duplicate_anchors(_heading_sections(doc_id, base, root, _page_title(soup)))


def _is_container(tag: Tag) -> bool:
    """A Sphinx section: `<section>` (Sphinx 4+) or `<div class="section">` (older Sphinx, docutils)."""
    return tag.name == "section" or (tag.name == "div" and "section" in (tag.get("class") or ()))


def content_root(soup: BeautifulSoup) -> Tag | None:
    for selector in _CONTENT_ROOTS:
        found = soup.select(selector)
        if selector == "article" and len(found) > 1:
            continue  # a listing of several articles: take the page's main instead
        if found:
            return found[0]
    return soup if soup.find(string=lambda s: s.strip()) else None


def _heading_sections(doc_id: str, base: str, root: Tag, page_title: str) -> list[Section]:
    """Split the root at each h1-h3 with an anchor; text before the first is the page's own section."""
    segments: list[tuple[str | None, str, list[str]]] = [(None, "", [])]  # (anchor, title, text pieces)
    for kind, value in _walk(root):
        if kind == "heading":
            title = _heading_text(value)
            segments.append((heading_anchor(value), title, [title, "\n"]))
        else:
            segments[-1][2].append(value)
    out = []
    for anchor, title, pieces in segments:
        text = _tidy("".join(pieces))
        if not text:
            continue
        if anchor is None:
            title = title or _first_heading(root) or page_title or doc_id
        out.append(Section(doc_id, f"{base}#{anchor}" if anchor else base, title or anchor or doc_id, text))
    return out


def heading_anchor(tag: Tag) -> str | None:
    """The anchor a heading is linked by: its id, else an `<a id>`/`<a name>` inside it."""
    if tag.get("id"):
        return tag["id"]
    inner = tag.find(lambda t: t.name == "a" and (t.get("id") or t.get("name")))
    return (inner.get("id") or inner.get("name")) if inner is not None else None


def _walk(node: Tag):
    """("text", str) pieces in document order ("\n" at block edges) and ("heading", tag) at split points."""
    for child in node.children:
        if isinstance(child, Comment):
            continue
        if isinstance(child, NavigableString):
            yield "text", str(child)
        elif isinstance(child, Tag) and not _chrome(child):
            if child.name in SPLIT_HEADINGS and heading_anchor(child):
                yield "heading", child
            elif child.name in _BLOCK_TAGS:
                yield "text", "\n"
                yield from _walk(child)
                yield "text", "\n"
            else:
                yield from _walk(child)


def _heading_text(tag: Tag) -> str:
    return " ".join("".join(_inline_strings(tag, _chrome)).split())


def _first_heading(root: Tag) -> str:
    h = root.find(["h1", "h2"])
    return _heading_text(h) if h is not None else ""


def _page_title(soup: BeautifulSoup) -> str:
    return " ".join(soup.title.get_text().split()) if soup.title is not None else ""


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


def _inline_strings(tag: Tag, skip=None):
    skip = skip or _skipped
    for child in tag.children:
        if isinstance(child, Comment):
            continue
        if isinstance(child, NavigableString):
            yield str(child)
        elif isinstance(child, Tag) and not skip(child):
            yield from _inline_strings(child, skip)


def _skipped(tag: Tag) -> bool:
    if _is_container(tag) or tag.name in _SKIP_TAGS:
        return True
    return any(c in _SKIP_CLASSES for c in tag.get("class") or ())


def _chrome(tag: Tag) -> bool:
    if tag.name in _CHROME_TAGS or tag.get("role") in _SKIP_ROLES:
        return True
    return any(c in _CHROME_CLASSES for c in tag.get("class") or ())


def _heading(section: Tag) -> str:
    for child in section.children:
        if isinstance(child, Tag) and child.name in HEADINGS:
            return " ".join("".join(_inline_strings(child)).split())
    return ""


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# --- Gold context for any anchor (evaluation) ---------------------------------------------


def anchor_context(content: str, fmt: str, anchor: str) -> tuple[str | None, str | None]:
    """(the text of the element an anchor names, the anchor of its enclosing section) on one HTML page.

    An API object's `<dt id="csv.DictReader">` gives the dt and its dd (the signature and its description);
    another element its own text; a bare target (`<span id=...></span>`) no text. The enclosing section is the
    nearest Sphinx section around the element, else the last h1-h3 with an anchor before it. (None, None) when
    the page has no such anchor (or is not HTML).
    """
    if fmt != "html" or not anchor:
        return None, None
    soup = BeautifulSoup(content, "lxml")
    target = soup.find(id=anchor) or soup.find("a", attrs={"name": anchor})
    if target is None:
        return None, None
    if target.name == "dt":
        parts = [target]
        for sib in target.find_next_siblings():
            if sib.name != "dd":
                break
            parts.append(sib)
        text = _tidy("\n".join(_block_text(p) for p in parts))
    elif _is_container(target) or target.name in HEADINGS:
        text = None  # a section or heading anchor: its section is the context
    else:
        text = _block_text(target)
    parent = target.find_parent(_is_container)
    while parent is not None and not parent.get("id"):
        parent = parent.find_parent(_is_container)
    enclosing = parent["id"] if parent is not None else None
    if enclosing is None:
        for h in target.find_all_previous(list(SPLIT_HEADINGS)) if target.name not in SPLIT_HEADINGS else [target]:
            if heading_anchor(h):
                enclosing = heading_anchor(h)
                break
    return text or None, enclosing


def _block_text(tag: Tag) -> str:
    return _tidy("".join(piece for kind, piece in _walk(tag) if kind == "text"))


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
