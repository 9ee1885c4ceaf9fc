"""The eval set loader: the bundled set is valid; bad rows are named by line."""

import pytest

from rag_assets.lib.evaluate.eval_data import DEFAULT_EVAL_PATH, EvalDataError, docs_area, load_questions, page_of


def test_bundled_eval_set():
    rows = load_questions(DEFAULT_EVAL_PATH)
    assert len(rows) == 40
    assert sum(1 for r in rows if "reference_answer" in r) == 11
    assert all(r["source"].startswith("https://docs.python.org/3.11/") for r in rows)


def test_every_bad_line_is_named(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"question": "a?", "source": "https://x/a.html#s", "reference_answer": "A."}\n'  # 1 ok
        "\n"  # 2 blank: allowed
        '{"question": "b?"\n'  # 3 not JSON
        '["a list"]\n'  # 4 not an object
        '{"question": "", "source": "https://x"}\n'  # 5 empty question
        '{"question": "c?", "source": 3}\n'  # 6 source not a string
        '{"question": "d?", "source": "", "reference_answer": 5}\n'  # 7 bad reference
        '{"question": "a?", "source": "https://x/b.html"}\n'  # 8 duplicate of line 1
        '{"question": "e?", "source": ""}\n'  # 9 ok: empty gold is the seed's "any page"
    )
    with pytest.raises(EvalDataError) as err:
        load_questions(path)
    assert list(err.value.problems) == [3, 4, 5, 6, 7, 8]
    assert "lines 3, 4, 5, 6, 7, 8" in str(err.value)
    assert "first at line 1" in err.value.problems[8]
    assert isinstance(err.value, ValueError)


def test_valid_rows_are_normalized(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": " a? ", "source": "https://x/a.html", "reference_answer": "  "}\n'
                    '{"question": "b?", "source": "", "reference_answer": null, "extra": 1}\n')
    assert load_questions(path) == [{"question": "a?", "source": "https://x/a.html"}, {"question": "b?", "source": ""}]


def test_empty_or_missing_file(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(EvalDataError, match="no questions"):
        load_questions(tmp_path / "empty.jsonl")
    with pytest.raises(FileNotFoundError, match="RAG_EVAL_PATH"):
        load_questions(tmp_path / "missing.jsonl")


def test_pages_and_areas():
    base = "https://docs.python.org/3.11/"
    assert page_of(base + "library/csv.html#examples") == base + "library/csv.html"
    assert docs_area(base + "library/csv.html#examples", base) == "library"
    assert docs_area(base + "license.html#psf", base) == "license"
    assert docs_area("https://docs.ray.io/en/master/serve/x.html", "https://docs.ray.io/en/master/") == "serve"
    assert docs_area("") == "(no source)"
