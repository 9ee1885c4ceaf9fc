"""Gold context for eval questions whose anchor is not a section id (an API object's `<dt id>`): the element's
block, else its section, else the page; such questions then get a reference answer and a quality score."""

from rag_assets.lib.evaluate import pipeline
from rag_assets.lib.evaluate.eval_data import gold_texts, section_texts
from rag_assets.lib.evaluate.judge import JudgeCache
from rag_assets.lib.store import Layout
from rag_assets_tests.openai_server import openai_server  # noqa: F401 (fixture)

CSV = "https://docs.python.org/3.11/library/csv.html"
QUESTIONS = [
    {"question": "How do I read CSV rows as dicts?", "source": CSV + "#csv.DictReader"},  # API object
    {"question": "What does Dialect.delimiter hold?", "source": CSV + "#csv.Dialect.delimiter"},  # attribute
    {"question": "What is in the module contents?", "source": CSV + "#module-contents"},  # a section
    {"question": "What does the csv page cover?", "source": CSV},  # a page
    {"question": "What is under a stale anchor?", "source": CSV + "#no-longer-there"},  # anchor gone: the page
    {"question": "And on a page not indexed?", "source": "https://docs.python.org/3.11/library/os.html#os.walk"},
]


def test_gold_texts_for_every_kind_of_anchor(built_index):
    _, data_dir = built_index
    layout = Layout(data_dir)
    sections = section_texts(layout)
    gold = gold_texts(layout, QUESTIONS)
    api = gold[CSV + "#csv.DictReader"]
    assert api.startswith("class csv.DictReader(f, fieldnames=None")
    assert "maps the\ninformation in each row to a dict" in api and "csv.DictWriter(" not in api
    assert api != sections[CSV + "#module-contents"] and len(api) < len(sections[CSV + "#module-contents"])
    assert gold[CSV + "#csv.Dialect.delimiter"].startswith("Dialect.delimiter\nA one-character string")
    assert gold[CSV + "#module-contents"] == sections[CSV + "#module-contents"]
    page = gold[CSV]
    assert sections[CSV + "#module-contents"] in page and sections[CSV + "#examples"] in page
    assert gold[CSV + "#no-longer-there"] == page
    assert "https://docs.python.org/3.11/library/os.html#os.walk" not in gold


def test_api_anchor_questions_get_a_reference_and_a_quality_score(built_index, openai_server, tmp_path):
    _, data_dir = built_index
    layout = Layout(data_dir)
    questions = QUESTIONS[:2]
    refs = pipeline.write_reference_answers(questions, gold_texts(layout, questions), JudgeCache(tmp_path / "j.sqlite"))
    assert refs["skipped"] == [] and refs["written"] == 2
    by_q = {r["question"]: r for r in refs["rows"]}
    dict_reader = by_q["How do I read CSV rows as dicts?"]
    assert dict_reader["origin"] == "written by test-judge"
    # The judge LLM wrote it from the dt/dd block: the server's answer starts with that context.
    assert dict_reader["reference_answer"].startswith("From the docs: class csv.DictReader(f, fieldnames=None")
    responses = [{"question": q["question"], "source": q["source"], "answer": "Use csv.DictReader: it maps each row "
                  "to a dict keyed by the fieldnames.", "failed": False} for q in questions]
    quality = pipeline.score_quality(responses, pipeline.make_judge(tmp_path / "j.sqlite"),
                                     {r["question"]: r["reference_answer"] for r in refs["rows"]})
    assert quality["quality_score"]["n"] == 2 and quality["quality_score"]["no_reference"] == 0
    assert all(p["status"] == "scored" and 1 <= p["score"] <= 5 for p in quality["per_question"])
