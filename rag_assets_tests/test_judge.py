"""Judge output parsing, the LLM judge against the test server (retries, unparseable output) and the cache."""

import pytest

from rag_assets.lib.evaluate.pipeline import score_quality
from rag_assets.lib.evaluate.judge import UNPARSEABLE, JudgeCache, make_judge, parse_judgement
from rag_assets_tests.openai_server import openai_server  # noqa: F401 (fixture)

Q, A, R = "How do I read a CSV file?", "Use csv.reader on an open file object.", "Open the file and use csv.reader."


@pytest.mark.parametrize(
    "text, score, reasoning",
    [
        ("4\nThe answer is correct.", 4.0, "The answer is correct."),
        ("\n\n  5  \n\nComplete.", 5.0, "Complete."),
        ("Score: 3\nReasoning: misses the header row.", 3.0, "misses the header row."),
        ("**4**\nGood.", 4.0, "Good."),
        ("4/5\nGood.", 4.0, "Good."),
        ("Rating: 2.5 out of 5\nVague.", 2.5, "Vague."),
        ("**Score:** 1\nWrong module.", 1.0, "Wrong module."),
        ("4 - correct and succinct", 4.0, "correct and succinct"),
        ("The answer is about Python 3.11 features.\nScore: 2", 2.0, "The answer is about Python 3.11 features."),
    ],
)
def test_parse_messy_judgements(text, score, reasoning):
    assert parse_judgement(text) == (score, reasoning)


@pytest.mark.parametrize("text", ["", "  \n ", "The answer is decent.", "10/10\ngreat", "0\nbad", "Score: 7",
                                  "3.11 is the version", "4/10"])
def test_unparseable_judgements_have_no_score(text):
    assert parse_judgement(text)[0] is None


def test_llm_judge_scores_and_caches(openai_server, tmp_path):
    judge = make_judge(tmp_path / "judge.sqlite")
    first = judge.score(Q, A, R)
    assert first["judge"] == "test-judge" and first["cached"] is False
    assert 1 <= first["score"] <= 5 and "reference" in first["reasoning"]
    assert openai_server.count("judge") == 1
    # Same (question, answer, reference, judge): from the cache, also for a new judge object (a new run).
    again = make_judge(tmp_path / "judge.sqlite").score(Q, A, R)
    assert again["cached"] is True and again["score"] == first["score"]
    assert openai_server.count("judge") == 1
    # A different answer, reference or judge model is judged anew.
    judge.score(Q, A + " Then iterate over it.", R)
    judge.score(Q, A, R + " Each row is a list.")
    make_judge(tmp_path / "judge.sqlite", model="test-llm").score(Q, A, R)
    assert openai_server.count("judge") == 4


def test_unparseable_judgement_is_retried_then_missing(openai_server, tmp_path):
    openai_server.add_fault("judge", times=2, text="This answer seems fine to me.")
    judge = make_judge(tmp_path / "judge.sqlite")
    out = judge.score(Q, A, R)
    assert out["score"] is None and out["error"] == UNPARSEABLE
    assert openai_server.count("judge") == 2  # asked once more before giving up
    openai_server.add_fault("judge", times=1, text="I'd say\n")
    assert judge.score(Q, "other answer", R)["score"] is not None  # the retry parsed
    assert openai_server.count("judge") == 4


def test_judge_transport_failures_are_missing_and_not_cached(openai_server, tmp_path):
    openai_server.add_fault("judge", times=4, status=500)
    judge = make_judge(tmp_path / "judge.sqlite")
    out = judge.score(Q, A, R)
    assert out["score"] is None and "500" in out["error"]
    later = judge.score(Q, A, R)  # the server is healthy again: judged, not served a cached failure
    assert later["score"] is not None and later["cached"] is False


def test_score_quality_never_averages_missing_as_zero(openai_server, tmp_path):
    openai_server.add_fault("judge", match="bad judge", times=2, text="no idea")
    responses = [
        {"question": Q, "source": "s", "answer": A, "failed": False, "reference_answer": R},
        {"question": "bad judge?", "source": "s", "answer": A, "failed": False, "reference_answer": R},
        {"question": "failed?", "source": "s", "answer": None, "failed": True, "error": "HTTP 500",
         "reference_answer": R},
        {"question": "no ref?", "source": "s", "answer": A, "failed": False},
    ]
    out = score_quality(responses, make_judge(tmp_path / "judge.sqlite"))
    s = out["quality_score"]
    assert s["n"] == 1 and s["missing"] == 2 and s["no_reference"] == 1
    assert s["value"] == out["per_question"][0]["score"]
    assert [p["status"] for p in out["per_question"]] == ["scored", "missing", "missing", "no_reference"]
    assert "generation failed" in out["per_question"][2]["error"]
    # References passed in win over the rows' own.
    out = score_quality(responses[3:], make_judge(tmp_path / "judge.sqlite"), {"no ref?": R})
    assert out["quality_score"]["n"] == 1


def test_cache_survives_reopen(tmp_path):
    cache = JudgeCache(tmp_path / "c.sqlite")
    cache.put(Q, A, R, "m", {"score": 4.0, "reasoning": "ok"})
    assert JudgeCache(tmp_path / "c.sqlite").get(Q, A, R, "m") == {"score": 4.0, "reasoning": "ok", "error": None}
    assert cache.get(Q, A, R, "other") is None
