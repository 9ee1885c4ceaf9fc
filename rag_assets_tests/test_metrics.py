"""Retrieval metric math on hand-computed cases, and the bootstrap CI's properties."""

import pytest

from rag_assets.lib.evaluate import metrics
from rag_assets.lib.evaluate.pipeline import score_retrieval

P = "https://docs.python.org/3.11/library/"


def test_retrieval_score_is_the_seeds_rule():
    golds = [P + "csv.html#examples", "", P + "json.html#basic-usage", P + "re.html"]
    retrieved = [
        [P + "os.html#x", P + "csv.html#module-contents"],  # same page, other anchor: a hit
        [P + "os.html#x"],  # empty gold: a hit whatever was retrieved
        [P + "csv.html#basic-usage"],  # same anchor, other page: a miss
        [],  # nothing retrieved: a miss
    ]
    assert [metrics.retrieval_hit(g, r) for g, r in zip(golds, retrieved)] == [True, True, False, False]
    assert metrics.retrieval_score(golds, retrieved) == 0.5


def test_relevance_page_and_section_levels():
    ranked = [P + "csv.html#a", P + "csv.html#b", P + "json.html#a"]
    assert metrics.relevance(P + "csv.html#b", ranked, "page") == [1, 1, 0]
    assert metrics.relevance(P + "csv.html#b", ranked, "section") == [0, 1, 0]
    # A gold without an anchor names no section: it is judged by page at both levels.
    assert metrics.relevance(P + "json.html", ranked, "section") == [0, 0, 1]
    with pytest.raises(ValueError):
        metrics.relevance(P, ranked, "chunk")


def test_hit_recall_mrr_ndcg_by_hand():
    rels = [0, 1, 0, 1]
    assert [metrics.hit_at_k(rels, k) for k in (1, 2, 4)] == [0.0, 1.0, 1.0]
    assert metrics.reciprocal_rank(rels) == 0.5
    assert metrics.reciprocal_rank([0, 0, 1]) == pytest.approx(1 / 3)
    assert metrics.reciprocal_rank([0, 0]) == 0.0
    # 4 relevant chunks in the index: 1 of them in the top 2, 2 in the top 4.
    assert metrics.recall_at_k(rels, 2, 4) == 0.25
    assert metrics.recall_at_k(rels, 4, 4) == 0.5
    assert metrics.recall_at_k(rels, 4, 0) == 0.0
    # DCG = 1/log2(3) + 1/log2(5); ideal with 2 relevant = 1 + 1/log2(3).
    assert metrics.ndcg_at_k(rels, 4, 2) == pytest.approx(0.650921, abs=1e-6)
    assert metrics.ndcg_at_k([1, 1], 2, 2) == 1.0
    assert metrics.ndcg_at_k([1, 0], 2, 5) == pytest.approx(1 / (1 + 1 / 1.584962500721156))
    assert metrics.ndcg_at_k(rels, 1, 2) == 0.0


def test_question_metrics_page_and_section():
    ranked = [P + "csv.html#b", P + "csv.html#a", P + "json.html#a"]
    m = metrics.question_metrics(P + "csv.html#a", ranked, ks=(1, 3), n_relevant={"page": 3, "section": 1})
    assert m["hit@1"] == 1.0 and m["mrr"] == 1.0
    assert m["recall@3"] == pytest.approx(2 / 3)
    assert m["section_hit@1"] == 0.0 and m["section_hit@3"] == 1.0
    assert m["section_mrr"] == 0.5
    assert m["section_recall@3"] == 1.0
    assert m["section_ndcg@3"] == pytest.approx(0.630930, abs=1e-6)  # 1/log2(3) over an ideal of 1


def test_score_retrieval_shapes_and_empty_gold():
    questions = [
        {"question": "a", "source": P + "csv.html#x"},
        {"question": "b", "source": ""},
        {"question": "c", "source": P + "re.html#y"},
    ]
    responses = [
        {"question": "a", "retrieved_sources": [P + "csv.html#x"], "ranked_sources": [P + "csv.html#x", P + "os.html"],
         "relevant_chunks": {"page": 1, "section": 1}},
        {"question": "b", "retrieved_sources": [P + "os.html"]},
        {"question": "c", "retrieved_sources": [P + "os.html"], "ranked_sources": [P + "os.html", P + "re.html#z"],
         "relevant_chunks": {"page": 2, "section": 1}},
    ]
    out = score_retrieval(questions, responses, ks=(1, 2))
    assert out["retrieval_score"]["value"] == pytest.approx(2 / 3)
    assert out["retrieval_score"]["n"] == 3
    # The empty-gold question counts in retrieval_score only.
    assert out["metrics"]["hit@1"] == {"value": 0.5, "ci95": metrics.wilson_ci(1, 2), "n": 2}  # binary: Wilson
    assert out["retrieval_score"]["ci95"] == metrics.wilson_ci(2, 3)
    assert out["metrics"]["mrr"]["ci95"] == metrics.bootstrap_ci([1.0, 0.5])  # not binary: bootstrap
    assert out["metrics"]["hit@2"]["value"] == 1.0
    assert out["metrics"]["mrr"]["value"] == pytest.approx((1 + 0.5) / 2)
    assert out["metrics"]["section_hit@2"]["value"] == 0.5
    assert [r["hit"] for r in out["per_question"]] == [1.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="order"):
        score_retrieval(questions, list(reversed(responses)))


def test_bootstrap_ci_properties():
    values = [1, 0] * 50
    low, high = metrics.bootstrap_ci(values)
    assert low < 0.5 < high
    assert 0.38 < low < 0.45 and 0.55 < high < 0.62  # ~ 0.5 +- 1.96 * 0.05
    assert metrics.bootstrap_ci(values) == [low, high]  # seeded: reproducible
    wide = metrics.bootstrap_ci([1, 0] * 5)
    assert wide[1] - wide[0] > high - low  # fewer questions, wider interval
    assert metrics.bootstrap_ci([3.0] * 7) == [3.0, 3.0]
    assert metrics.bootstrap_ci([4.0]) == [4.0, 4.0]
    assert metrics.bootstrap_ci([]) == [None, None]
    skewed = [5.0] * 9 + [1.0]
    lo, hi = metrics.bootstrap_ci(skewed)
    assert 1.0 <= lo <= sum(skewed) / 10 <= hi <= 5.0


def test_summarize_leaves_out_missing_values():
    s = metrics.summarize([4.0, None, 2.0])
    assert s["value"] == 3.0 and s["n"] == 2
    assert metrics.summarize([]) == {"value": None, "ci95": [None, None], "n": 0}


def test_wilson_interval_is_never_zero_width_at_0_or_1():
    assert metrics.wilson_ci(12, 12)[1] == 1.0 and 0.7 < metrics.wilson_ci(12, 12)[0] < 0.8
    assert metrics.wilson_ci(0, 12)[0] == 0.0 and 0.2 < metrics.wilson_ci(0, 12)[1] < 0.3
    low, high = metrics.wilson_ci(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-3) and high == pytest.approx(0.5962, abs=1e-3)
    assert metrics.wilson_ci(0, 0) == [None, None]
    for n in range(1, 60):  # the interval always holds the proportion, even after rounding
        for k in (0, n // 3, n):
            low, high = metrics.wilson_ci(k, n)
            assert low <= k / n <= high
    # summarize picks Wilson for 0/1 outcomes: all hits is not "certainly 1.0".
    s = metrics.summarize([1.0] * 12, binary=True)
    assert s["value"] == 1.0 and s["ci95"][0] < 0.8 and s["ci95"][1] == 1.0
    assert metrics.summarize([1.0] * 12)["ci95"] == [1.0, 1.0]  # what the bootstrap says
    with pytest.raises(ValueError, match="0/1"):
        metrics.summarize([0.5], binary=True)
    assert metrics.is_binary_metric("hit@5") and metrics.is_binary_metric("section_hit@1")
    assert not metrics.is_binary_metric("mrr") and not metrics.is_binary_metric("section_ndcg@5")


def test_paired_test_needs_pairs_and_a_consistent_difference():
    # Two questions both won by a: the exact sign-flip p-value is 0.5, so no verdict.
    two = metrics.paired_test([5.0, 5.0], [4.0, 4.0])
    assert two["n"] == 2 and two["diff"] == 1.0 and two["p_value"] == 0.5 and not two["a_better"]
    one = metrics.paired_test([5.0], [1.0])
    assert one["n"] == 1 and not one["a_better"] and not one["b_better"]
    six = metrics.paired_test([5.0] * 6, [4.0] * 6)
    assert six["p_value"] == pytest.approx(2 / 64) and six["a_better"] and not six["b_better"]
    flipped = metrics.paired_test([4.0] * 6, [5.0] * 6)
    assert flipped["b_better"] and not flipped["a_better"]
    mixed = metrics.paired_test([1, 0, 1, 0, 1, 0], [0, 1, 0, 1, 0, 1])
    assert mixed["p_value"] == 1.0 and not mixed["a_better"] and not mixed["b_better"]
    gaps = metrics.paired_test([4, None, 5, 3], [3, 2, float("nan"), 2])
    assert gaps["n"] == 2 and gaps["dropped"] == 2
    big = metrics.paired_test([4, 5, 3] * 10, [3, 4, 3] * 10)  # 30 pairs: sampled sign flips
    assert big["a_better"] and big["p_value"] < 0.01 and big["ci95"][0] > 0
    with pytest.raises(ValueError, match="one score per question"):
        metrics.paired_test([1.0], [1.0, 2.0])


def test_paired_test_sees_what_marginal_cis_miss():
    # b is 0.2 better on every question, but the questions vary a lot: marginal CIs overlap, the pairs do not.
    a = [1.0, 2.0, 3.0, 4.0, 5.0, 1.5, 2.5, 3.5, 4.5, 2.0]
    b = [x + 0.2 for x in a]
    ca, cb = metrics.bootstrap_ci(a), metrics.bootstrap_ci(b)
    assert ca[1] > cb[0]  # overlapping marginal intervals
    out = metrics.paired_test(b, a)
    assert out["a_better"] and out["diff"] == pytest.approx(0.2)
