"""Sections: Sphinx `<section id>` direct text (HTML) and heading sections with GitHub slugs (Markdown)."""

import pytest
from bs4 import BeautifulSoup

from rag_assets.lib.ingest.sections import github_slug, html_sections, markdown_sections, split_sections
from rag_assets_tests.conftest import BUNDLED_CORPUS

URL = "https://docs.python.org/3/library/csv.html"

NESTED = """<html><body><div class="body">
<section id="top">
  <h1>Top<a class="headerlink" href="#top" title="Permalink to this heading">¶</a></h1>
  <p>Intro with <code>code</code> and <em>emphasis</em>.</p>
  <script>var tracking = 1;</script>
  <section id="child">
    <h2>Child<a class="headerlink" href="#child">¶</a></h2>
    <p>Child text.</p>
    <section id="grandchild"><h3>Grand</h3><p>Deep text.</p></section>
  </section>
  <p>Parent tail.</p>
  <section><h2>No id</h2><p>Anonymous text.</p></section>
  <div class="wrapper"><section id="wrapped"><h2>Wrapped</h2><p>Inside a div.</p></section></div>
</section></div></body></html>"""


def by_anchor(sections):
    return {s.source.split("#", 1)[1]: s for s in sections}


def test_nested_sphinx_sections_each_hold_only_their_own_text():
    got = by_anchor(html_sections("p.html", "https://x.org/p.html", NESTED))
    assert list(got) == ["top", "child", "grandchild", "wrapped"]  # document order; id-less section dropped
    assert got["top"].text == "Top\nIntro with code and emphasis.\nParent tail."
    assert got["child"].text == "Child\nChild text."
    assert got["grandchild"].text == "Grand\nDeep text."
    assert got["wrapped"].text == "Wrapped\nInside a div."
    assert got["child"].title == "Child"
    assert got["top"].source == "https://x.org/p.html#top"
    everything = "\n".join(s.text for s in got.values())
    assert "¶" not in everything and "tracking" not in everything and "Anonymous" not in everything


def test_real_sphinx_page_sections_never_repeat_text():
    html = (BUNDLED_CORPUS / "library" / "csv.html").read_text(encoding="utf-8")
    sections = html_sections("library/csv.html", URL, html)
    got = by_anchor(sections)
    assert {"module-csv", "module-contents", "dialects-and-formatting-parameters", "reader-objects",
            "writer-objects", "examples"} <= set(got)
    assert got["module-contents"].title == "Module Contents"
    assert got["module-contents"].source == URL + "#module-contents"
    assert "¶" not in "".join(s.text for s in sections)
    # Every paragraph of the page lands in exactly one section: children are never folded into parents.
    soup = BeautifulSoup(html, "lxml")
    paragraphs = [" ".join(p.get_text().split()) for p in soup.select("section p")]
    paragraphs = [p for p in paragraphs if len(p) > 60]
    assert len(paragraphs) > 20
    flat = [" ".join(s.text.split()) for s in sections]
    for p in paragraphs:
        assert sum(p in text for text in flat) == 1, p


@pytest.mark.parametrize(
    "broken",
    [
        '<section id="a"><h1>A</h1><p>unclosed <b>bold<section id="b"><h2>B</h2><p>b text <div></span></p>',
        '<<<>>> <section id="a"><h1>A</h1>&amp; text &#x27;q&#x27; <section id=><p>orphan',
        '<section id="a"><h1>A</h1><p>text</section></section></section><section id="b">B text',
    ],
)
def test_broken_html_still_yields_sections(broken):
    got = by_anchor(html_sections("p.html", "https://x.org/p.html", broken))
    assert "a" in got and got["a"].title == "A"
    assert got["a"].text.startswith("A\n")
    for anchor, s in got.items():
        for other in got.values():
            if other is not s:
                assert other.text not in s.text


def test_page_without_sections_is_one_section():
    (only,) = html_sections("p.html", "u", "<html><body><p>no sections here</p></body></html>")
    assert (only.source, only.text) == ("u", "no sections here")
    assert html_sections("p.html", "u", "") == []


@pytest.mark.parametrize(
    "heading, slug",
    [
        ("Hello, World!", "hello-world"),
        ("`ray.init()` options", "rayinit-options"),
        ("[Install](https://example.com/install) on Linux", "install-on-linux"),
        ("Foo & Bar", "foo--bar"),
        ("C++ API (v2.0)", "c-api-v20"),
        ("snake_case_name", "snake_case_name"),
        ("__init__ method", "init-method"),  # GitHub renders __init__ as bold "init"
        ("`__init__` method", "__init__-method"),  # ...but a code span is literal
        ("Émile's café — 2024", "émiles-café--2024"),
        ("**Bold** and *em*", "bold-and-em"),
        ("Step 1. Install <sup>new</sup>", "step-1-install-new"),
    ],
)
def test_github_slug_rules(heading, slug):
    assert github_slug(heading) == slug


def test_repeated_headings_get_numbered_slugs():
    seen: dict[str, int] = {}
    assert [github_slug(h, seen) for h in ("Usage", "Usage", "Usage-1", "Usage")] == [
        "usage", "usage-1", "usage-1-1", "usage-2"
    ]


MARKDOWN = """---
title: Guide
layout: page
---
Preamble before any heading.

# Getting started

Install it.

## `ray.init()` options

```python
# a comment, not a heading
ray.init()
```

~~~
## still code
~~~

    # indented code, not a heading
#hashtag is not a heading either

## Usage
first
## Usage
second

Setext Title
============

under the setext title

Sub *part*
----------

last words
"""


def test_markdown_headings_split_sections_with_github_anchors():
    sections = markdown_sections("guide.md", "https://x.org/guide.md", MARKDOWN)
    sources = [s.source for s in sections]
    assert sources == [
        "https://x.org/guide.md",  # text before the first heading: the page itself
        "https://x.org/guide.md#getting-started",
        "https://x.org/guide.md#rayinit-options",
        "https://x.org/guide.md#usage",
        "https://x.org/guide.md#usage-1",
        "https://x.org/guide.md#setext-title",
        "https://x.org/guide.md#sub-part",
    ]
    got = {s.source.rsplit("#", 1)[-1]: s for s in sections}
    assert sections[0].text == "Preamble before any heading."  # front matter is metadata, not text
    assert got["rayinit-options"].title == "ray.init() options"
    code = got["rayinit-options"].text
    assert "# a comment, not a heading" in code and "## still code" in code and "#hashtag" in code
    assert "# indented code, not a heading" in code
    assert got["usage"].text == "Usage\nfirst"
    assert got["usage-1"].text == "Usage\nsecond"
    assert got["setext-title"].text == "Setext Title\n\nunder the setext title"
    assert got["sub-part"].title == "Sub part"
    assert got["sub-part"].text == "Sub part\n\nlast words"


def test_split_sections_dispatches_on_format_and_rejects_unknown():
    assert split_sections("a.md", "u", "markdown", "# A\n\ntext")[0].source == "u#a"
    assert split_sections("a.html", "u", "html", '<section id="s"><p>t</p></section>')[0].source == "u#s"
    with pytest.raises(ValueError, match="unknown document format"):
        split_sections("a.txt", "u", "text", "x")
