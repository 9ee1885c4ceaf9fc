"""Sections from what real docs sites produce besides Sphinx 4+: old Sphinx, MkDocs Material, Docusaurus, any
`<main>`/`<article>` page with heading ids, pages with no structure, duplicate anchors; and the gold context of an
anchor that is not a section (an API object's `<dt id>`)."""

from pathlib import Path

import pytest

from rag_assets.lib.ingest.sections import anchor_context, html_sections, merge_duplicate_anchors, Section
from rag_assets_tests.conftest import BUNDLED_CORPUS

SITES = Path(__file__).parent / "fixtures" / "sites"
URL = "https://x.org/docs/page.html"


def sections_of(name: str) -> dict:
    html = (SITES / name).read_text(encoding="utf-8")
    return {s.source.removeprefix(URL): s for s in html_sections(name, URL, html)}


def test_old_sphinx_div_sections():
    got = sections_of("old_sphinx.html")
    assert list(got) == ["#module-csv", "#module-contents", "#examples"]
    assert got["#module-csv"].title == "14.1. csv — CSV File Reading and Writing"
    assert "most common import and\nexport format" in got["#module-csv"].text
    assert "Module Contents" not in got["#module-csv"].text  # the child section is its own row
    contents = got["#module-contents"].text
    assert "class csv.DictReader(f, fieldnames=None)" in contents and "maps the\ninformation read" in contents
    assert "reader = csv.reader(f)" in got["#examples"].text
    everything = "\n".join(s.text for s in got.values())
    for noise in ("¶", "Navigation", "Previous topic", "Copyright", "jquery"):
        assert noise not in everything


def test_mkdocs_material_headings_with_ids():
    got = sections_of("mkdocs_material.html")
    assert list(got) == ["#getting-started", "#installation", "#with-pip", "#with-docker"]
    assert got["#getting-started"].text.startswith("Getting started\n\nMaterial for MkDocs is a powerful")
    pip = got["#with-pip"]
    assert pip.title == "with pip recommended"
    assert "pip install mkdocs-material" in pip.text and "Tip" in pip.text
    assert "with extras" in pip.text and "social plugin" in pip.text  # an h4 stays in its h3's section
    assert "Docker image" in got["#with-docker"].text and "Docker" not in pip.text
    everything = "\n".join(s.text for s in got.values())
    for noise in ("¶", "Skip to content", "Home", "Last update", "Copyright", "Edit this page"):
        assert noise not in everything


def test_docusaurus_intro_is_the_page_and_h2_h3_are_sections():
    got = sections_of("docusaurus.html")
    assert list(got) == ["", "#requirements", "#scaffold-project-website", "#project-structure"]
    intro = got[""]
    assert intro.source == URL and intro.title == "Installation"
    assert intro.text.startswith("Installation\n\nDocusaurus is essentially a set of npm packages.")
    assert "Fast Track" in intro.text
    assert got["#requirements"].title == "Requirements"  # the zero-width hash link is dropped
    assert "npx create-docusaurus@latest my-website classic" in got["#scaffold-project-website"].text
    everything = "\n".join(s.text for s in got.values())
    for noise in ("\u200b", "Skip to main content", "Breadcrumbs", "On this page", "Edit this page", "Copy",
                  "Next", "Built with Docusaurus", "Introduction", "localStorage"):
        assert noise not in everything


GENERIC = """<!doctype html><html><head><title>Guide · Acme</title></head><body>
<header class="site"><a href="/">Acme</a></header>
<main>
  <p>Welcome to the guide.</p>
  <h2 id="setup">Setup</h2><p>Run <code>acme init</code>.</p>
  <h2><a name="usage"></a>Usage</h2><p>Call <em>acme run</em>.</p><h4>Details</h4><p>More.</p>
  <h3 id="options">Options</h3><ul><li>--fast</li><li>--slow</li></ul>
</main></body></html>"""


def test_any_main_page_splits_at_h1_h3_anchors():
    got = {s.source.removeprefix(URL): s for s in html_sections("g.html", URL, GENERIC)}
    assert list(got) == ["", "#setup", "#usage", "#options"]
    assert got[""].text == "Welcome to the guide." and got[""].title == "Setup"  # no h1: the first heading
    assert got["#usage"].text == "Usage\n\nCall acme run.\n\nDetails\n\nMore."
    assert got["#options"].text == "Options\n\n--fast\n\n--slow"
    assert "Acme" not in "".join(s.text for s in got.values())  # the site header is outside <main>


@pytest.mark.parametrize("html, text", [
    ("<html><head><title>Notes</title></head><body><p>no sections here</p></body></html>", "no sections here"),
    ("<p>bare   fragment</p><div>second block</div>", "bare   fragment\n\nsecond block"),
    ("<html><body><article><h2>Untitled heading</h2><p>text only</p></article></body></html>",
     "Untitled heading\n\ntext only"),
])
def test_a_page_without_structure_is_one_section(html, text):
    (only,) = html_sections("p.html", URL + "#ignored", html)
    assert only.source == URL and only.text == text


def test_pages_with_nothing_to_say_give_no_section():
    assert html_sections("p.html", URL, "") == []
    assert html_sections("p.html", URL, "<html><head><script>x()</script></head><body>  </body></html>") == []


def test_duplicate_anchors_keep_all_their_text():
    sphinx = ('<section id="a"><h2>A</h2><p>first text</p></section>'
              '<section id="b"><h2>B</h2><p>b</p></section><section id="a"><h2>A again</h2><p>second text</p></section>')
    got = html_sections("p.html", URL, sphinx)
    assert [s.source for s in got] == [URL + "#a", URL + "#b"]
    assert got[0].text == "A\nfirst text\n\nA again\nsecond text" and got[0].title == "A"
    headings = '<main><h2 id="x">X</h2><p>one</p><h2 id="y">Y</h2><p>y</p><h2 id="x">X</h2><p>two</p></main>'
    got = {s.source: s.text for s in html_sections("p.html", URL, headings)}
    assert "one" in got[URL + "#x"] and "two" in got[URL + "#x"] and len(got) == 2
    rows = [Section("d", "u#s", "S", "1"), Section("d", "u#t", "T", "2"), Section("d", "u#s", "S", "3")]
    assert merge_duplicate_anchors(rows) == [Section("d", "u#s", "S", "1\n\n3"), Section("d", "u#t", "T", "2")]


def test_anchor_context_of_an_api_object_is_its_dt_and_dd():
    html = (BUNDLED_CORPUS / "library" / "csv.html").read_text(encoding="utf-8")
    text, enclosing = anchor_context(html, "html", "csv.DictReader")
    assert text.startswith("class csv.DictReader(f, fieldnames=None")
    assert "maps the\ninformation in each row to a dict" in text and "Returned rows are now of type dict" in text
    assert "csv.DictWriter" not in text  # the next object is not part of this one's block
    assert enclosing == "module-contents"
    sections = {s.source.rsplit("#", 1)[1] for s in html_sections("csv.html", URL, html)}
    assert "csv.DictReader" not in sections and enclosing in sections


def test_anchor_context_of_targets_headings_and_missing_anchors():
    old = (SITES / "old_sphinx.html").read_text(encoding="utf-8")
    assert anchor_context(old, "html", "csv.DictReader")[0].startswith("class csv.DictReader(f, fieldnames=None)")
    # A bare target before a heading has no text of its own: its section is the context.
    assert anchor_context(old, "html", "csv-csv-file-reading-and-writing") == (None, "module-csv")
    assert anchor_context(old, "html", "no-such-anchor") == (None, None)
    material = (SITES / "mkdocs_material.html").read_text(encoding="utf-8")
    assert anchor_context(material, "html", "__codelineno-0-1") == (None, "with-pip")  # an empty code-line anchor
    assert anchor_context("# A\n", "markdown", "a") == (None, None)
