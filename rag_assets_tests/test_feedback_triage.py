"""The flywheel's pieces on hand-made cases: triage labels and signals, bad feedback, candidates and the eval
set (never a duplicate), tag corrections, docs-gap topics, the thresholds as settings."""

import json

import pytest

from rag_assets.lib.evaluate.eval_data import load_questions, normalize_question
from rag_assets.lib.feedback import gaps, tags, triage
from rag_assets.lib.feedback.candidates import CandidateError, CandidateStore, build_candidates, candidate_id
from rag_assets.lib.serve.query_log import MAX_COMMENT_CHARS, QueryLog, UnknownTrace
from rag_assets.lib.settings import DEFAULT_FEEDBACK_GAP_DISTANCE, Settings

BASE = "https://docs.python.org/3.11/"
CSV, JSON_, ERRORS = BASE + "library/csv.html", BASE + "library/json.html", BASE + "tutorial/errors.html"
T = triage.Thresholds(low_similarity=0.45, docs_similarity=0.3, low_judge_score=2.5)
INDEXED = {CSV, JSON_, ERRORS}


def case(**kw):
    base = {"trace_id": "t1", "asked_at": "2026-01-01T00:00:00+00:00", "question": "How do I read a CSV file?",
            "query": "How do I read a CSV file?", "mode": "hybrid", "answer": "Use csv.reader.", "status": "ok",
            "retrieved": [CSV + "#module-csv", JSON_ + "#module-json"], "served_scores": [0.03, 0.02],
            "has_feedback": True, "rating": -1, "comment": None, "correction_source": None, "correction_tag": None,
            "visited": [], "feedback_ids": [1], "feedback_at": "2026-01-01T00:01:00+00:00"}
    return base | kw


def test_each_label_follows_from_the_data():
    # retrieval: the corrected page is indexed but was not retrieved.
    row = triage.triage(case(correction_source=ERRORS + "#handling-exceptions"), 0.6, 4.0, T, INDEXED, BASE)
    assert row["label"] == "retrieval" and row["known_source_from"] == "correction"
    assert row["docs_area"] == "tutorial" and "not among the 2 retrieved" in row["reason"]
    # A visited page the answer did not cite is a retrieval miss too (the last visited page counts).
    visited = triage.triage(case(visited=[CSV + "#module-csv", ERRORS]), 0.6, 4.0, T, INDEXED, BASE)
    assert visited["label"] == "retrieval" and visited["known_source"] == ERRORS

    # generation: the right page was retrieved, but the answer was judged poor.
    row = triage.triage(case(correction_source=CSV + "#csv.reader"), 0.6, 1.8, T, INDEXED, BASE)
    assert row["label"] == "generation" and "rank 1" in row["reason"]
    assert "low_judge_score" in row["signals"]
    # Right page and an answer judged fine: nothing to blame.
    assert triage.label(case(correction_source=CSV), 0.6, 4.2, T, INDEXED)[0] == "unknown"

    # docs: nothing in the corpus is close, or the page the user points to is not indexed at all.
    row = triage.triage(case(question="How do I bake bread?", query="How do I bake bread?"), 0.1, None, T, INDEXED)
    assert row["label"] == "docs" and "low_similarity" in row["signals"]
    assert triage.label(case(correction_source=BASE + "library/asyncio.html"), 0.6, None, T, INDEXED)[0] == "docs"

    # unknown: a thumbs-down with close matches and no known page.
    row = triage.triage(case(), 0.6, 3.5, T, INDEXED)
    assert row["label"] == "unknown" and row["signals"] == ["thumbs_down", "no_source_visited"]


def test_signals_and_the_similarity_they_read():
    # Hybrid scores are RRF, not cosines: the index's best cosine stands in; semantic mode uses the served one.
    assert triage.top1_similarity(case(), 0.7) == 0.7
    assert triage.top1_similarity(case(mode="semantic", served_scores=[0.2]), 0.7) == 0.2
    happy = case(rating=1, visited=[CSV])
    assert triage.signals(happy, 0.7, 4.0, T) == []  # a thumbs-up with a visit, close match, good answer
    assert triage.signals(case(rating=None, has_feedback=False), 0.7, 4.0, T) == []  # no feedback, fine
    assert triage.signals(case(rating=None, has_feedback=False, status="timeout"), 0.7, None, T) == ["failed"]
    assert triage.signals(case(rating=1, visited=[CSV]), 0.2, 1.2, T) == ["low_similarity", "low_judge_score"]


def test_cases_merge_feedback_latest_rating_wins():
    queries = [{"trace_id": "a", "ts": "t0", "question": "q?", "standalone_query": None, "mode": "hybrid",
                "answer": "x", "status": "ok", "sources": [CSV], "scores": [0.1]}]
    feedback = [
        {"id": 1, "trace_id": "a", "ts": "t1", "rating": 1, "comment": "ok", "correction_source_url": None,
         "correction_tag": None, "visited_sources": [CSV]},
        {"id": 2, "trace_id": "a", "ts": "t2", "rating": -1, "comment": None, "correction_source_url": ERRORS,
         "correction_tag": "tutorial", "visited_sources": []},
    ]
    (c,) = triage.cases(queries, feedback)
    assert c["rating"] == -1 and c["comment"] == "ok" and c["correction_source"] == ERRORS
    assert c["visited"] == [CSV] and c["feedback_ids"] == [1, 2] and c["feedback_at"] == "t2"


def test_bad_feedback_gets_clear_errors_and_stores_nothing(tmp_path):
    log = QueryLog.for_data_dir(tmp_path)
    log.record({"trace_id": "t1", "question": "q", "status": "ok", "sources": [CSV], "scores": [0.5]})
    with pytest.raises(UnknownTrace):
        log.add_feedback("nope", -1)
    with pytest.raises(ValueError, match="rating must be"):
        log.add_feedback("t1", 5)
    with pytest.raises(ValueError, match="rating must be"):
        log.add_feedback("t1", True)
    with pytest.raises(ValueError, match=f"at most {MAX_COMMENT_CHARS}"):
        log.add_feedback("t1", -1, comment="x" * (MAX_COMMENT_CHARS + 1))
    with pytest.raises(ValueError, match="correction may only hold"):
        log.add_feedback("t1", -1, correction={"source_url": CSV, "extra": 1})
    with pytest.raises(ValueError, match="visited_sources"):
        log.add_feedback("t1", -1, visited_sources="not a list")
    assert log.feedback() == []
    log.add_feedback("t1", -1, correction={"tag": "library"})
    assert len(log.feedback()) == 1
    log.close()


def _row(trace, question, source, asked="2026-01-01T00:00:00+00:00"):
    return {"trace_id": trace, "asked_at": asked, "question": question, "label": "retrieval",
            "docs_area": "library", "known_source": source, "known_source_from": "correction",
            "feedback_ids": [1], "rating": -1, "comment": "wrong page", "signals": ["thumbs_down"],
            "feedback_at": asked}


def test_accept_appends_with_provenance_and_never_duplicates(tmp_path):
    eval_path = tmp_path / "eval.jsonl"
    eval_path.write_text(json.dumps({"question": "How do I read a CSV file?", "source": CSV}) + "\n")
    rows = [
        _row("t1", "how do I read a csv file", CSV),  # already in the eval set, normalized
        _row("t2", "What does json.dumps indent do?", JSON_),
        _row("t3", "what does JSON.dumps  indent do", JSON_, asked="2026-01-02T00:00:00+00:00"),  # repeat of t2
        _row("t4", "Where is the else clause of try explained?", ERRORS),
        {**_row("t5", "No known page?", None), "known_source_from": None},
    ]
    from rag_assets.lib.feedback.candidates import eval_questions_in

    cands = build_candidates(rows, set(eval_questions_in(eval_path)))
    assert [c["id"] for c in cands] == [candidate_id("t2"), candidate_id("t4")]
    store = CandidateStore(tmp_path / "data")
    with pytest.raises(CandidateError, match="materialize `eval_candidates` first"):
        store.accept(cands[0]["id"], eval_path)
    assert store.merge(cands) == {"added": 2, "pending": 2, "accepted": 0, "rejected": 0}
    assert store.merge(cands)["added"] == 0  # re-materializing adds nothing twice

    row = store.accept(candidate_id("t2"), eval_path)
    assert row["provenance"]["trace_id"] == "t2" and row["provenance"]["origin"] == "feedback"
    loaded = load_questions(eval_path)
    assert len(loaded) == 2 and loaded[1]["provenance"]["comment"] == "wrong page"
    before = eval_path.read_bytes()
    with pytest.raises(CandidateError, match="already accepted"):
        store.accept(candidate_id("t2"), eval_path)
    with pytest.raises(CandidateError, match="no eval candidate"):
        store.accept("cdeadbeef", eval_path)

    # The same question reaching the eval set another way is still never duplicated.
    eval_path.write_text(before.decode() + json.dumps({"question": "where is the ELSE clause of try explained",
                                                       "source": ERRORS}) + "\n")
    before = eval_path.read_bytes()
    with pytest.raises(CandidateError, match="already in .* \\(line 3\\)"):
        store.accept(candidate_id("t4"), eval_path)
    assert eval_path.read_bytes() == before
    assert store.reject(candidate_id("t4"), "duplicate")["state"] == "rejected"
    assert store.merge(cands)["rejected"] == 1  # a rejected candidate stays rejected
    with pytest.raises(CandidateError, match="already in the eval set"):
        store.reject(candidate_id("t2"))
    assert not list(eval_path.parent.glob(".eval.jsonl.*"))  # no temp file left behind


def test_eval_loader_keeps_provenance_and_rejects_a_bad_one(tmp_path):
    from rag_assets.lib.evaluate.eval_data import EvalDataError, eval_set_version, from_feedback

    path = tmp_path / "e.jsonl"
    path.write_text(json.dumps({"question": "a?", "source": CSV, "provenance": {"origin": "feedback"}}) + "\n"
                    + json.dumps({"question": "b?", "source": CSV}) + "\n")
    rows = load_questions(path)
    assert from_feedback(rows) == 1 and "provenance" not in rows[1]
    version = eval_set_version(path)
    assert len(version) == 12 and version != eval_set_version(__file__)
    path.write_text(json.dumps({"question": "a?", "source": CSV, "provenance": "chat"}) + "\n")
    with pytest.raises(EvalDataError, match="'provenance' must be a JSON object"):
        load_questions(path)
    assert normalize_question("  How do I  READ a file?? ") == "how do i read a file"


def test_tag_corrections_latest_per_question():
    queries = [{"trace_id": "a", "question": "and how do I close it?", "standalone_query": "how do I close a csv file?"},
               {"trace_id": "b", "question": "json indent?", "standalone_query": None},
               {"trace_id": "c", "question": "How do I close a CSV file", "standalone_query": None}]
    fb = [{"id": 1, "trace_id": "a", "correction_tag": "library"},
          {"id": 2, "trace_id": "b", "correction_tag": None},
          {"id": 3, "trace_id": "c", "correction_tag": "tutorial"},
          {"id": 4, "trace_id": "zz", "correction_tag": "library"}]
    assert tags.tag_corrections(queries, fb) == [{"question": "How do I close a CSV file", "tag": "tutorial"}]


def test_docs_gaps_group_questions_by_topic():
    from rag_assets.lib.feedback.evidence import query_vectors
    from rag_assets.lib.ingest.embed import BUNDLED_MODEL

    questions = ["How do I bake sourdough bread?", "What temperature should I bake bread at?",
                 "How do I feed a sourdough starter?", "How do I configure a Kubernetes ingress?",
                 "How do I expose a Kubernetes service with an ingress?", "How do I use asyncio event loops?",
                 "How do I run coroutines concurrently with asyncio?"]
    rows = [{"question": q, "query": q, "asked_at": f"2026-01-0{i + 1}", "rating": -1 if i else 1,
             "docs_area": "(none)", "trace_id": f"t{i}"} for i, q in enumerate(questions)]
    topics = gaps.docs_gaps(rows, query_vectors(BUNDLED_MODEL, questions), DEFAULT_FEEDBACK_GAP_DISTANCE)
    assert [t["count"] for t in topics] == [3, 2, 2]
    bread, *others = topics
    assert bread["examples"] == questions[:3] and bread["thumbs_down"] == 2 and "sourdough" in bread["topic"]
    assert bread["first_asked"] == "2026-01-01" and bread["last_asked"] == "2026-01-03"
    by_term = {("kubernetes" in t["topic"], "asyncio" in t["topic"]): set(t["examples"]) for t in others}
    assert by_term == {(True, False): set(questions[3:5]), (False, True): set(questions[5:])}
    assert gaps.docs_gaps([], query_vectors(BUNDLED_MODEL, []), 0.5) == []
    assert gaps.docs_gaps(rows[:1], query_vectors(BUNDLED_MODEL, questions[:1]), 0.5)[0]["count"] == 1


def test_thresholds_are_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RAG_FEEDBACK_LOW_SIMILARITY", "0.5")
    monkeypatch.setenv("RAG_FEEDBACK_DOCS_SIMILARITY", "0.2")
    monkeypatch.setenv("RAG_FEEDBACK_LOW_JUDGE_SCORE", "3")
    monkeypatch.setenv("RAG_FEEDBACK_GAP_DISTANCE", "0.4")
    t = triage.Thresholds.from_settings(Settings.from_env())
    assert (t.low_similarity, t.docs_similarity, t.low_judge_score) == (0.5, 0.2, 3.0)
    assert Settings.from_env().feedback_gap_distance == 0.4
    monkeypatch.setenv("RAG_FEEDBACK_LOW_JUDGE_SCORE", "9")
    with pytest.raises(ValueError, match="feedback_low_judge_score"):
        Settings.from_env()
    monkeypatch.setenv("RAG_FEEDBACK_LOW_JUDGE_SCORE", "low")
    with pytest.raises(ValueError, match="feedback_low_judge_score: must be a number.*RAG_FEEDBACK_LOW_JUDGE_SCORE"):
        Settings.from_env()
