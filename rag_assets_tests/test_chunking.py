"""Recursive character chunking: LangChain-equal splits, size bound, overlap, sections kept apart, ids."""

import pytest

from rag_assets.lib.ingest.chunking import RecursiveSplitter, chunk_id, chunk_sections
from rag_assets.lib.ingest.sections import Section, html_sections
from rag_assets_tests.conftest import BUNDLED_CORPUS


# Checked by hand and against langchain_text_splitters.RecursiveCharacterTextSplitter (separators
# "\n\n", "\n", " ", ""; length len; separator kept at the start of the next piece; chunks stripped).
@pytest.mark.parametrize(
    "text, size, overlap, expected",
    [
        ("one two three four five six seven", 10, 4, ["one two", "two three", "four five", "six seven"]),
        (
            "First paragraph here.\n\nSecond one is a bit longer.\nWith a second line.\n\nThird.",
            30,
            10,
            ["First paragraph here.", "Second one is a bit longer.", "With a second line.", "Third."],
        ),
        ("abcdefghijklmnopqrstuvwxyz", 10, 3, ["abcdefghij", "hijklmnopq", "opqrstuvwx", "vwxyz"]),
        (
            "short words then averyveryverylongwordthatexceeds end",
            12,
            4,
            ["short words", "then", "averyveryve", "ryverylongwo", "ngwordthatex", "atexceeds", "end"],
        ),
        ("a\n\n\n\nb   c", 3, 1, ["a", "b", "c"]),
        ("fits in one chunk", 700, 50, ["fits in one chunk"]),
        ("   \n\n  ", 10, 2, []),
    ],
)
def test_splits_match_langchain_recursive_splitter(text, size, overlap, expected):
    assert RecursiveSplitter(size, overlap).split(text) == expected


def csv_sections() -> list[Section]:
    html = (BUNDLED_CORPUS / "library" / "csv.html").read_text(encoding="utf-8")
    return html_sections("library/csv.html", "https://docs.python.org/3/library/csv.html", html)


@pytest.mark.parametrize("size, overlap", [(700, 50), (120, 30), (40, 0)])
def test_every_chunk_fits_the_chunk_size(size, overlap):
    chunks = chunk_sections(csv_sections(), size, overlap)
    assert len(chunks) > 5
    assert max(len(c.text) for c in chunks) <= size
    assert all(c.text == c.text.strip() and c.text for c in chunks)


def test_consecutive_chunks_of_a_long_paragraph_overlap():
    words = [f"w{i:03d}" for i in range(300)]  # distinct words: an overlap can only come from the splitter
    chunks = RecursiveSplitter(100, 30).split(" ".join(words))
    assert len(chunks) > 10
    for left, right in zip(chunks, chunks[1:]):
        shared = [n for n in range(1, len(right) + 1) if left.endswith(right[:n])]
        assert shared, (left, right)
        assert 20 <= max(shared) <= 30  # about chunk_overlap characters, never more


def test_chunks_never_cross_a_section_and_keep_its_source():
    sections = [
        Section("d", "https://x.org/p.html#a", "A", "alpha " * 30),
        Section("d", "https://x.org/p.html#b", "B", "beta " * 30),
        Section("d", "https://x.org/p.html#c", "C", "tiny"),
    ]
    chunks = chunk_sections(sections, 100, 20)
    by_source = {s.source: s for s in sections}
    assert {c.source for c in chunks} == set(by_source)
    for c in chunks:
        assert c.text in by_source[c.source].text
        assert c.title == by_source[c.source].title
    assert [c.text for c in chunks if c.source.endswith("#c")] == ["tiny"]


def test_real_page_chunks_come_from_their_own_section():
    sections = csv_sections()
    by_source = {s.source: " ".join(s.text.split()) for s in sections}
    for c in chunk_sections(sections, 300, 50):
        assert " ".join(c.text.split()) in by_source[c.source]


def test_chunk_ids_are_deterministic_and_depend_on_source_text_and_settings():
    base = chunk_id("u#a", "text", 700, 50)
    assert base == chunk_id("u#a", "text", 700, 50)
    assert len({base, chunk_id("u#b", "text", 700, 50), chunk_id("u#a", "text!", 700, 50),
                chunk_id("u#a", "text", 500, 50), chunk_id("u#a", "text", 700, 0)}) == 5
    first = [c.id for c in chunk_sections(csv_sections(), 700, 50)]
    again = [c.id for c in chunk_sections(csv_sections(), 700, 50)]
    assert first == again and len(set(first)) == len(first)
    assert not set(first) & {c.id for c in chunk_sections(csv_sections(), 600, 50)}


def test_repeated_text_in_one_section_is_kept_once():
    section = Section("d", "u#a", "A", "same words here\n\nsame words here\n\nother words")
    assert [c.text for c in chunk_sections([section], 20, 0)] == ["same words here", "other words"]


@pytest.mark.parametrize("size, overlap", [(0, 0), (-5, 0), (10, 10), (10, -1)])
def test_invalid_settings_are_refused(size, overlap):
    with pytest.raises(ValueError):
        RecursiveSplitter(size, overlap)
