"""Search: reciprocal rank fusion by hand, and every mode over the built index with user-typed queries."""

import pytest

from rag_assets.lib.retrieve.retriever import MODES, HybridParams, Retriever, clean_query, rrf
from rag_assets.lib.store import Layout

CSV_PAGE = "https://docs.python.org/3.11/library/csv.html"
TRICKY = ["ray.init()?", '"unterminated', "a AND (b", "[1 TO", "foo:bar", "", "   \t\n", "*", "title:csv OR -", "\\"]


def test_rrf_scores_and_order_by_hand():
    fused = rrf([["a", "b", "c"], ["c", "a", "d"]], k=60)
    assert [d for d, _ in fused] == ["a", "c", "b", "d"]
    expected = {"a": 1 / 61 + 1 / 62, "c": 1 / 63 + 1 / 61, "b": 1 / 62, "d": 1 / 63}
    assert dict(fused) == pytest.approx(expected)


def test_rrf_weights_shift_the_order():
    fused = dict(rrf([["a", "b", "c"], ["c", "a", "d"]], weights=[1.0, 3.0], k=60))
    assert fused == pytest.approx({"a": 1 / 61 + 3 / 62, "c": 1 / 63 + 3 / 61, "b": 1 / 62, "d": 3 / 63})
    assert sorted(fused, key=fused.get, reverse=True) == ["c", "a", "d", "b"]
    only_first = rrf([["a", "b"], ["b", "z"]], weights=[1.0, 0.0])
    assert [d for d, _ in only_first] == ["a", "b", "z"]


def test_rrf_k_constant_sets_how_much_rank_matters():
    assert dict(rrf([["a", "b", "c"], ["c", "a", "d"]], k=0)) == pytest.approx(
        {"a": 1 + 1 / 2, "c": 1 / 3 + 1, "b": 1 / 2, "d": 1 / 3}
    )
    # With a small k, one first place beats two middling ranks; a large k rewards agreement.
    lists = [["x", "y"], ["z", "y"]]
    assert rrf(lists, k=0)[0][0] == "x"
    assert rrf(lists, k=60)[0][0] == "y"


def test_rrf_ties_break_by_best_rank_not_by_appearance():
    # k=0: B (first in the second list, weight 1) and A (second in the first list, weight 2) both score 1.0.
    # A is mentioned before B, yet B reached the better rank, so B comes first.
    fused = rrf([["Z", "A"], ["B"]], weights=[2.0, 1.0], k=0)
    assert fused == [("Z", 2.0), ("B", 1.0), ("A", 1.0)]
    # Equal best ranks: the earlier list, then the id; the order never depends on the input's later mentions.
    assert [d for d, _ in rrf([["y"], ["x"]])] == ["y", "x"]
    assert [d for d, _ in rrf([["b", "a"]], weights=[0.0])] == ["b", "a"]


def test_rrf_ties_keep_list_order_and_bad_arguments_fail():
    assert rrf([["x"], ["y"]]) == [("x", 1 / 61), ("y", 1 / 61)]
    assert rrf([]) == []
    with pytest.raises(ValueError, match="one weight per ranked list"):
        rrf([["a"], ["b"]], weights=[1.0])
    with pytest.raises(ValueError, match="k must be >= 0"):
        rrf([["a"]], k=-1)
    with pytest.raises(ValueError):
        HybridParams(rrf_k=-1)
    with pytest.raises(ValueError):
        HybridParams(lexical_weight=-0.5)


@pytest.fixture(scope="module")
def retriever(built_index):
    _, data_dir = built_index
    return Retriever.from_layout(Layout(data_dir))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("query", TRICKY)
def test_user_typed_queries_never_raise(retriever, mode, query):
    hits = retriever.search(query, mode, 5)
    assert len(hits) <= 5
    if not query.strip():
        assert hits == []


# Bytes that are not UTF-8 reach Python as lone surrogates (argv, surrogateescape'd stdin, JSON "\\udce9").
BAD_UNICODE = ["caf\udce9", "\udcff\udcfe csv", "csv \ud800 writer", "\udce9"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("query", BAD_UNICODE)
def test_queries_with_invalid_utf8_never_raise(retriever, mode, query):
    hits = retriever.search(query, mode, 3)
    assert len(hits) <= 3
    if "csv" in query and mode != "semantic":
        assert any(h.source.startswith(CSV_PAGE) for h in hits)


def test_clean_query_replaces_only_what_is_not_text():
    assert clean_query("café ok") == "café ok"
    assert clean_query("caf\udce9") == "caf\ufffd"
    assert "\ufffd" in clean_query("a\ud800b") and clean_query("a\ud800b").startswith("a")
    clean_query("x\udce9\ud800").encode("utf-8")  # mixed kinds still end as valid UTF-8


@pytest.mark.parametrize("mode", MODES)
def test_query_syntax_is_searched_as_words(retriever, mode):
    hits = retriever.search("csv.writer()?", mode, 5)
    assert hits and any(h.source.startswith(CSV_PAGE) for h in hits)


@pytest.mark.parametrize("mode", MODES)
def test_csv_question_finds_the_csv_page_best_first(retriever, mode):
    hits = retriever.search("How do I write a CSV file with a header row?", mode, 5)
    assert len(hits) == 5
    assert any(h.source.startswith(CSV_PAGE + "#") for h in hits[:3])
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert len({h.id for h in hits}) == 5
    for h in hits:
        assert set(h.as_dict()) == {"id", "source", "score", "text"}
        assert h.text and h.source.startswith("https://docs.python.org/3.11/")


def test_semantic_scores_are_cosine_similarities(retriever):
    hits = retriever.semantic("JSON decoding errors", 3)
    assert all(-1.0 <= h.score <= 1.0 for h in hits)
    assert hits[0].source.startswith("https://docs.python.org/3.11/library/json.html")


def test_hybrid_fuses_both_legs_with_its_parameters(built_index):
    _, data_dir = built_index
    query = "exception handling with try and except"
    fused = Retriever.from_layout(Layout(data_dir), hybrid=HybridParams(rrf_k=60, candidates=20))
    sem, lex = fused.semantic(query, 20), fused.lexical(query, 20)
    expected = rrf([[h.id for h in sem], [h.id for h in lex]], k=60)[:5]
    got = fused.hybrid(query, 5)
    assert [h.id for h in got] == [d for d, _ in expected]
    assert [h.score for h in got] == pytest.approx([score for _, score in expected])
    lexical_only = Retriever.from_layout(Layout(data_dir), hybrid=HybridParams(semantic_weight=0.0, candidates=20))
    assert [h.id for h in lexical_only.hybrid(query, 3)] == [h.id for h in lex[:3]]


def test_unknown_mode_and_missing_index_are_clear_errors(retriever, tmp_path):
    with pytest.raises(ValueError, match="unknown search mode 'fuzzy'"):
        retriever.search("csv", "fuzzy", 5)
    assert retriever.search("csv", "lexical", 0) == []
    with pytest.raises(FileNotFoundError, match="materialize"):
        Retriever.from_layout(Layout(tmp_path / "empty"))
