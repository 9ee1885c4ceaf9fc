"""Reading a docs source: HTML / Markdown / JSONL, URLs, skipped files and the no-documents error."""

import json

import pytest

from rag_assets.lib.ingest.docs import NoDocumentsError, content_hash, load_documents, page_url
from rag_assets_tests.conftest import BUNDLED_CORPUS

BASE = "https://docs.python.org/3/"


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def test_url_is_base_url_plus_relative_path():
    assert page_url(BASE, "library/csv.html") == "https://docs.python.org/3/library/csv.html"
    assert page_url("https://docs.python.org/3", "library/csv.html") == "https://docs.python.org/3/library/csv.html"
    assert page_url("", "library/csv.html") == "library/csv.html"


def test_real_sphinx_page_is_one_document_with_url_title_hash_and_size(tmp_path):
    page = write(tmp_path / "library" / "csv.html", (BUNDLED_CORPUS / "library" / "csv.html").read_bytes())
    result = load_documents(tmp_path, BASE)
    assert result.skipped == []
    [doc] = result.documents
    assert doc.doc_id == "library/csv.html"
    assert doc.url == "https://docs.python.org/3/library/csv.html"
    assert doc.format == "html"
    assert doc.title.startswith("csv — CSV File Reading and Writing")
    assert doc.size == page.stat().st_size
    assert doc.content_hash == content_hash(page.read_text(encoding="utf-8"))


def test_markdown_and_html_side_by_side_build_artefacts_ignored(tmp_path):
    write(tmp_path / "guide" / "intro.md", "# Getting started\n\nInstall it.\n")
    write(tmp_path / "index.html", "<html><head><title>Home</title></head><body><p>hi</p></body></html>")
    write(tmp_path / "_static" / "page.html", "<p>theme asset, not a page</p>")
    write(tmp_path / ".git" / "notes.md", "# not docs")
    write(tmp_path / "style.css", "body { color: red }")
    result = load_documents(tmp_path, BASE)
    by_id = {d.doc_id: d for d in result.documents}
    assert set(by_id) == {"guide/intro.md", "index.html"}
    assert by_id["guide/intro.md"].format == "markdown"
    assert by_id["guide/intro.md"].title == "Getting started"
    assert by_id["guide/intro.md"].url == BASE + "guide/intro.md"
    assert by_id["index.html"].title == "Home"
    assert result.ignored == 1  # style.css
    assert result.skipped == []


def test_paths_with_spaces_give_valid_urls(tmp_path):
    write(tmp_path / "my guide" / "a b.md", "# T\n\ntext\n")
    [doc] = load_documents(tmp_path, BASE).documents
    assert doc.doc_id == "my guide/a b.md"
    assert doc.url == BASE + "my%20guide/a%20b.md"


def test_utf16_and_bom_files_are_read_as_text(tmp_path):
    write(tmp_path / "wide.md", "# Wide\n\ncafé".encode("utf-16"))
    write(tmp_path / "bom.md", "\ufeff# Bom\n\ntext".encode("utf-8"))
    docs = {d.doc_id: d for d in load_documents(tmp_path, BASE).documents}
    assert docs["wide.md"].content == "# Wide\n\ncafé" and docs["wide.md"].title == "Wide"
    assert docs["bom.md"].content == "# Bom\n\ntext"


def test_binary_undecodable_and_empty_files_are_skipped_with_reasons(tmp_path):
    write(tmp_path / "ok.md", "# Fine\n\nbody\n")
    write(tmp_path / "image.html", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    write(tmp_path / "noise.html", bytes(range(1, 256)) * 4)  # control bytes: no text encoding fits
    write(tmp_path / "empty.html", "")
    write(tmp_path / "blank.md", "  \n\t\n")
    result = load_documents(tmp_path, BASE)
    assert [d.doc_id for d in result.documents] == ["ok.md"]
    reasons = {s["path"]: s["reason"] for s in result.skipped}
    assert reasons == {
        "blank.md": "empty",
        "empty.html": "empty",
        "image.html": "binary content",
        "noise.html": "not UTF-8, and no other text encoding detected",
    }
    assert all(set(s) == {"path", "reason"} for s in result.skipped)


JA = "日本語のドキュメントです。このモジュールはファイルを読み書きします。"
RU = "Добро пожаловать в документацию. Этот модуль читает и пишет файлы CSV."


def html_page(body: str, head: str = "") -> str:
    return f"<!DOCTYPE html><html><head>{head}<title>T</title></head><body><section id='s'><p>{body}</p></section></body></html>"


def test_non_utf8_pages_are_decoded_by_declared_charset_else_detected(tmp_path):
    # Declared: a Latin-1 label means windows-1252 (browsers do the same), so the euro sign survives.
    write(tmp_path / "latin1.html", html_page("Caf\xe9 cr\xe8me \u20ac5", '<meta charset="ISO-8859-1">').encode("cp1252"))
    write(tmp_path / "sjis.html", html_page(JA, '<meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS">')
          .encode("shift_jis"))
    write(tmp_path / "xml.html", ('<?xml version="1.0" encoding="iso-8859-15"?>' + html_page("prix \u20ac")).encode("iso-8859-15"))
    # A page that declares UTF-8 but is not: detected instead of skipped.
    write(tmp_path / "liar.html", html_page("na\xefve caf\xe9 r\xe9sum\xe9 " * 5, '<meta charset="utf-8">').encode("latin-1"))
    # Nothing declared: detected.
    write(tmp_path / "koi8.html", html_page(RU).encode("koi8-r"))
    write(tmp_path / "cp1251.md", f"# Модуль\n\n{RU}\n".encode("cp1251"))
    write(tmp_path / "latin1.md", "caf\xe9 au lait".encode("latin-1"))
    result = load_documents(tmp_path, BASE)
    assert result.skipped == []
    docs = {d.doc_id: d.content for d in result.documents}
    assert "Café crème €5" in docs["latin1.html"]
    assert JA in docs["sjis.html"]
    assert "prix €" in docs["xml.html"]
    assert "naïve café résumé" in docs["liar.html"]
    assert RU in docs["koi8.html"]
    assert docs["cp1251.md"].startswith("# Модуль") and RU in docs["cp1251.md"]
    assert docs["latin1.md"] == "café au lait"
    assert {d.doc_id: d.title for d in result.documents}["cp1251.md"] == "Модуль"


def test_jsonl_rows_become_documents_and_bad_rows_are_listed_with_line_numbers(tmp_path):
    rows = [
        json.dumps({"url": "https://example.com/a", "title": "A", "text": "# A\n\nabout a"}),
        "{not json",
        json.dumps({"id": "pages/b", "text": "about b"}),
        "",
        json.dumps(["a", "list"]),
        json.dumps({"id": "c", "text": "   "}),
        json.dumps({"title": "no id", "text": "orphan"}),
        json.dumps({"id": "pages/b", "text": "again"}),
    ]
    write(tmp_path / "export.jsonl", "\n".join(rows) + "\n")
    result = load_documents(tmp_path / "export.jsonl", BASE)
    docs = {d.doc_id: d for d in result.documents}
    assert docs["https://example.com/a"].url == "https://example.com/a"  # absolute URLs kept
    assert docs["https://example.com/a"].title == "A"
    assert docs["pages/b"].url == BASE + "pages/b"
    assert docs["pages/b"].title == "pages/b"
    assert docs["pages/b"].content == "about b"
    assert len(docs) == 2
    skipped = {s["path"]: s["reason"] for s in result.skipped}
    assert set(skipped) == {"export.jsonl:2", "export.jsonl:5", "export.jsonl:6", "export.jsonl:7", "export.jsonl:8"}
    assert skipped["export.jsonl:2"].startswith("invalid JSON")
    assert skipped["export.jsonl:5"] == "row is not a JSON object"
    assert skipped["export.jsonl:6"] == "missing or empty 'text'"
    assert skipped["export.jsonl:7"] == "missing 'url' or 'id'"
    assert skipped["export.jsonl:8"] == "duplicate id 'pages/b'"


def test_jsonl_rows_split_only_at_newlines(tmp_path):
    row = {"id": "sep", "text": "before\u2028after\x1cend"}
    write(tmp_path / "export.jsonl", json.dumps(row, ensure_ascii=False) + "\r\n" + json.dumps({"id": "b", "text": "b"}))
    result = load_documents(tmp_path, BASE)
    assert result.skipped == []
    assert [d.content for d in result.documents] == ["before\u2028after\x1cend", "b"]


def test_source_without_usable_documents_raises_a_clear_error(tmp_path):
    write(tmp_path / "empty.md", "")
    write(tmp_path / "notes.txt", "plain text is not a docs format")
    with pytest.raises(NoDocumentsError, match=r"no usable document in .*empty\.md: empty"):
        load_documents(tmp_path, BASE)


def test_jsonl_with_only_bad_rows_raises(tmp_path):
    write(tmp_path / "export.jsonl", "{broken\n" + json.dumps({"id": "x"}) + "\n")
    with pytest.raises(NoDocumentsError, match=r"export\.jsonl:1: invalid JSON"):
        load_documents(tmp_path, BASE)


def test_missing_or_empty_source_folder_raises(tmp_path):
    with pytest.raises(NoDocumentsError, match="does not exist"):
        load_documents(tmp_path / "nowhere", BASE)
    (tmp_path / "empty").mkdir()
    with pytest.raises(NoDocumentsError, match="no usable document"):
        load_documents(tmp_path / "empty", BASE)
