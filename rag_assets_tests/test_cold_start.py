"""Cold start (issue 12): offline synthetic questions, the filter, the split, the tag classifier and rerank."""

import json

import dagster as dg
import numpy as np
import pytest

from rag_assets.lib.questions import filters, synthetic
from rag_assets.lib.retrieve import tags
from rag_assets.lib.retrieve.rerank import move_area_ahead
from rag_assets.lib.retrieve.retriever import Hit, HybridParams, RerankParams, Retriever

BASE = "https://docs.python.org/3.11/"
SECTIONS = [
    {"source": BASE + "library/json.html#json.dumps", "title": "json.dumps",
     "text": "json.dumps\njson.dumps(obj, *, skipkeys=False, indent=None)\nSerialize obj to a JSON formatted str "
             "using this conversion table."},
    {"source": BASE + "library/csv.html#module-csv", "title": "csv — CSV File Reading and Writing",
     "text": "csv — CSV File Reading and Writing\nThis module implements classes to read and write tabular data "
             "in CSV format."},
    {"source": BASE + "tutorial/errors.html#handling-exceptions", "title": "8.3. Handling Exceptions",
     "text": "8.3. Handling Exceptions\nIt is possible to write programs that handle selected exceptions."},
]


def test_offline_questions_are_deterministic_and_use_title_signature_and_first_sentence():
    first = [synthetic.offline_questions(s) for s in SECTIONS]
    assert first == [synthetic.offline_questions(s) for s in SECTIONS]
    dumps, csv_q, errors = first
    assert any("json.dumps" in q for q in dumps)  # from the signature
    assert "Which module provides classes to read and write tabular data?" in csv_q  # first sentence, cut short
    assert any("— " not in q and "module" in q for q in csv_q[:1])  # the module title, not copied whole
    assert errors == ["How do I go about handling Exceptions?"]  # the title, numbering stripped
    assert all(q.endswith("?") for qs in first for q in qs)


def _rows(questions_sources):
    return [{"question": q, "source": s, "page": s.split("#")[0], "drop_reason": None} for q, s in questions_sources]


def test_filter_drops_near_duplicates_leakage_and_round_trip_failures_with_their_reason():
    a, b = SECTIONS[0]["source"], SECTIONS[1]["source"]
    rows = _rows([("What does json.dumps do?", a), ("What does json.dumps do exactly?", a),
                  ("How do I read and write tabular data in CSV format?", b), ("Tell me about cheese?", b)])
    vectors = np.array([[1, 0, 0], [0.99, 0.141, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    assert filters.near_duplicates(rows, vectors) == 1
    assert rows[1]["drop_reason"] == filters.NEAR_DUPLICATE
    # "tabular data in csv" is a 4-gram of the csv section's body and of no other section.
    assert filters.leakage(rows, {s["source"]: s["text"] for s in SECTIONS}) == 1
    assert rows[2]["drop_reason"] == filters.LEAKAGE
    ranker = lambda qs: [[a] if "json" in q else [] for q in qs]  # noqa: E731 (finds only the json questions)
    assert filters.round_trip(rows, [ranker]) == 1
    assert rows[3]["drop_reason"] == filters.ROUND_TRIP and rows[0]["drop_reason"] is None
    assert filters.counts(rows) == {filters.NEAR_DUPLICATE: 1, filters.LEAKAGE: 1, filters.ROUND_TRIP: 1}


def test_split_is_by_page_deterministic_and_keeps_a_validation_page():
    pages = [f"{BASE}library/p{i}.html" for i in range(10)]
    split = synthetic.split_pages(pages)
    assert split == synthetic.split_pages(list(reversed(pages)))
    assert list(split.values()).count("validation") == 2
    assert set(synthetic.split_pages(pages[:2]).values()) == {"train", "validation"}
    rows = [{"page": p, "drop_reason": None} for p in pages for _ in range(2)] + [{"page": pages[0], "drop_reason": "x"}]
    synthetic.assign_splits(rows)
    by_page = {}
    for r in rows[:-1]:
        by_page.setdefault(r["page"], set()).add(r["split"])
    assert all(len(s) == 1 for s in by_page.values()) and rows[-1]["split"] == "dropped"


def test_docs_area_and_folding():
    assert tags.docs_area(BASE + "library/json.html#x", BASE) == "library"
    assert tags.docs_area(BASE + "whatsnew/3.11.html", BASE) == "whatsnew"
    assert tags.docs_area(BASE + "glossary.html", BASE) == "glossary"
    assert tags.docs_area("https://docs.ray.io/en/master/rllib/a/b.html", "https://docs.ray.io/en/master/", 2) == "rllib/a"
    assert tags.fold_rare(["a", "a", "b"], 2) == ["a", "a", "other"]


def _write(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")


TRAIN = [("how do I read a csv file", "library"), ("parse json string into dict", "library"),
         ("write rows to a csv", "library"), ("json dumps indent option", "library"),
         ("what happens when an exception is raised", "tutorial"), ("try except finally clause", "tutorial"),
         ("how to handle errors in my program", "tutorial"), ("raise my own exception", "tutorial"),
         ("install python on windows", "using"), ("python command line options", "using"),
         ("environment variables python uses", "using"), ("run python on a mac", "using")]


def test_tags_cli_fit_and_eval_json(tmp_path, capsys):
    from rag_assets.cli import main

    _write(tmp_path / "train.jsonl", [{"question": q, "tag": t} for q, t in TRAIN])
    (tmp_path / "test.json").write_text(json.dumps(
        [{"question": "read csv files", "source": BASE + "library/csv.html#x"},
         {"question": "catch an exception", "source": BASE + "tutorial/errors.html"},
         {"question": "pythn comand line flags", "source": BASE + "using/cmdline.html"}]))
    assert main(["tags", "fit", "--train", str(tmp_path / "train.jsonl"), "--out", str(tmp_path / "m")]) == 0
    capsys.readouterr()
    assert main(["tags", "eval", "--model", str(tmp_path / "m"), "--test", str(tmp_path / "test.json"),
                 "--base-url", BASE, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"n", "accuracy", "weighted_f1", "macro_f1", "per_tag"} and out["n"] == 3
    assert set(out["per_tag"]) >= {"library", "tutorial", "using"}
    assert set(out["per_tag"]["library"]) == {"precision", "recall", "f1", "support"}
    assert 0.0 <= out["weighted_f1"] <= 1.0
    # A source row without --base-url is a one-line error, not a traceback.
    assert main(["tags", "eval", "--model", str(tmp_path / "m"), "--test", str(tmp_path / "test.json")]) == 2
    assert "--base-url" in capsys.readouterr().err


def test_move_area_ahead_keeps_order_within_groups_and_respects_the_threshold():
    hits = [Hit(str(i), f"{BASE}{area}/p.html#s", 1.0, "") for i, area in enumerate(["library", "tutorial", "library", "tutorial"])]
    area_of = lambda s: tags.docs_area(s, BASE)  # noqa: E731
    moved = move_area_ahead(hits, "tutorial", 0.95, 0.9, area_of)
    assert [h.id for h in moved] == ["1", "3", "0", "2"]
    assert move_area_ahead(hits, "tutorial", 0.5, 0.9, area_of) == hits


def test_assets_offline_then_rerank_moves_predicted_area_ahead(copy_built_index, monkeypatch):
    from rag_assets.defs.questions import assets as q_assets
    from rag_assets.defs.resources import RagSettings
    from rag_assets.lib.evaluate.eval_data import load_questions
    from rag_assets.lib.retrieve.training import tag_model_dir

    docs_dir, data_dir = copy_built_index
    for var in ("OPENAI_BASE_URL", "RAG_LLM_MODEL"):
        monkeypatch.delenv(var, raising=False)
    (data_dir / "feedback").mkdir()
    _write(data_dir / "feedback" / "tag_corrections.jsonl", [{"question": "how to catch errors", "tag": "tutorial"}])
    rag = RagSettings(docs_dir=str(docs_dir), data_dir=str(data_dir), docs_base_url=BASE)
    result = dg.materialize(
        [q_assets.synthetic_questions, q_assets.tag_classifier], resources={"rag": rag},
        run_config={"ops": {"tag_classifier": {"config": {"kinds": ["tfidf"], "min_count": 1}}}})
    assert result.success
    meta = result.asset_materializations_for_node("synthetic_questions")[0].metadata
    rows = synthetic.read_questions(data_dir)
    assert rows and set(rows[0]) == set(synthetic.COLUMNS)
    assert meta["dagster/row_count"].value == len(rows)
    for reason in filters.REASONS:
        assert meta[f"dropped_{reason}"].value == sum(r["drop_reason"] == reason for r in rows)
    assert {r["split"] for r in rows} <= set(synthetic.SPLITS) and synthetic.read_questions(data_dir, "train")
    assert all(r["generator"] == synthetic.OFFLINE_GENERATOR and r["area"] in ("library", "tutorial") for r in rows)
    val = synthetic.read_questions(data_dir, "validation")
    assert load_questions(synthetic.validation_jsonl_path(data_dir)) == [
        {"question": r["question"], "source": r["source"]} for r in val]
    tag_meta = result.asset_materializations_for_node("tag_classifier")[0].metadata
    assert tag_meta["feedback_rows"].value == 1
    model = tags.TagClassifier.load(tag_model_dir(data_dir))
    assert set(model.classes) == {"library", "tutorial"}

    question = "How do I handle exceptions raised in my program with try and except?"
    area, confidence = model.predict_one(question)
    retriever = Retriever.open(data_dir, hybrid=HybridParams(), rerank=RerankParams(
        "none", candidates=20, threshold=0.0, model_dir=str(tag_model_dir(data_dir))))
    first_stage = retriever.hybrid(question, 20)
    reranked = retriever.search(question, "rerank", 20)
    assert {h.id for h in reranked} == {h.id for h in first_stage}
    in_area = [model.area_of(h.source) == area for h in reranked]
    assert any(in_area) and not any(not a and b for a, b in zip(in_area, in_area[1:]))  # the area first
    strict = Retriever.open(data_dir, hybrid=HybridParams(), rerank=RerankParams(
        "none", candidates=20, threshold=1.01 if confidence < 1 else 2, model_dir=str(tag_model_dir(data_dir))))
    assert [h.id for h in strict.search(question, "rerank", 20)] == [h.id for h in first_stage]
