"""The score report's parts: score drops against the previous report, worst questions, markdown."""

from rag_assets.lib.evaluate import report as report_lib


def s(value, low, high, n=40):
    return {"value": value, "ci95": [low, high], "n": n}


def test_score_drops_beyond_the_ci_only():
    previous = {"retrieval_score": s(0.8, 0.7, 0.9), "quality_score": s(4.0, 3.8, 4.2),
                "quality_with_gold_context": None, "metrics": {"mrr": s(0.6, 0.5, 0.7)}}
    current = {"retrieval_score": s(0.75, 0.62, 0.86), "quality_score": s(3.5, 3.3, 3.7),
               "quality_with_gold_context": s(4.0, 3.9, 4.1), "metrics": {"mrr": s(0.9, 0.8, 1.0)}}
    drops = report_lib.score_drops(current, previous)
    assert [d["score"] for d in drops] == ["quality_score"]  # 0.5 > 0.2; retrieval fell 0.05 < 0.13
    assert drops[0]["drop"] == 0.5
    assert report_lib.score_drops(current, None) == []
    assert report_lib.score_drops(previous, previous) == []


def test_a_collapsed_ci_does_not_warn_on_one_question():
    previous = {"retrieval_score": s(1.0, 1.0, 1.0)}
    current = {"retrieval_score": s(0.975, 0.925, 1.0)}
    assert report_lib.score_drops(current, previous) == []
    assert report_lib.score_drops({"retrieval_score": s(0.8, 0.7, 0.9)}, previous)[0]["score"] == "retrieval_score"


def test_worst_questions_order():
    rows = [{"question": q, "source": "https://x/a.html", "failed": q == "c", "retrieved_sources": []}
            for q in "abcd"]
    retrieval = [{"hit": h, "mrr": h} for h in (1.0, 0.0, 1.0, 1.0)]
    quality = [{"score": sc, "status": st} for sc, st in ((5.0, "scored"), (None, "no_reference"),
                                                          (None, "missing"), (2.0, "scored"))]
    worst = report_lib.worst_questions(rows, retrieval, quality, n=4)
    assert [w["question"] for w in worst] == ["c", "d", "b", "a"]  # failed, lowest judged, miss, best


def test_markdown_names_scores_and_config():
    rep = {"generator": "g", "judge": "j", "index_version": 3, "retrieval_score": s(0.5, 0.4, 0.6),
           "quality_score": s(None, None, None, 0) | {"missing": 1, "no_reference": 2},
           "quality_with_gold_context": None, "metrics": {"hit@1": s(0.25, 0.1, 0.4)},
           "by_area": {"library": {"n": 2, "retrieval_score": s(0.5, 0.0, 1.0, 2),
                                   "quality_score": s(None, None, None, 0)}},
           "worst_questions": [], "config": {"chunk_size": 700}}
    md = report_lib.markdown(rep)
    assert "0.500 [0.400, 0.600] (n=40)" in md and "| hit@1 |" in md and "| chunk_size | 700 |" in md
    assert "missing 1, no reference 2" in md and "n/a" in md
