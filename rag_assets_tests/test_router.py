"""The router library and CLI: labelled-file errors, fit/eval JSON, thresholds, the policy arithmetic."""

import json

import numpy as np
import pytest

from rag_assets.cli import main
from rag_assets.lib.route import classifier, report
from rag_assets.lib.route.labels import RouterDataError, load_labelled
from rag_assets_tests.router_fixtures import EASY_QUESTION, HARD_QUESTION, fit_tiny_router, write_labelled

EVAL_KEYS = ["n", "weighted_f1", "macro_f1", "strong_recall", "strong_precision", "strong_share"]


def test_malformed_training_file_gets_line_numbered_errors(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"question": "what is ray?", "target": 1}\n'
        '{"question": "broken", "target": \n'
        "\n"
        '{"question": "", "target": 0}\n'
        '{"question": "how many gpus?", "target": 2}\n'
        '["a list"]\n'
        '{"question": "fine", "target": 0}\n'
    )
    with pytest.raises(RouterDataError) as err:
        load_labelled(bad)
    assert list(err.value.problems) == [2, 4, 5, 6]

    rc = main(["router", "fit", "--train", str(bad), "--out", str(tmp_path / "model")])
    captured = capsys.readouterr()
    assert rc == 2 and "Traceback" not in captured.err
    message = captured.err.strip()
    assert "\n" not in message and message.startswith("rag-assets router:")
    for n, why in ((2, "not JSON"), (4, "'question'"), (5, "'target' must be 0"), (6, "not a JSON object")):
        assert f"line {n}: {why}" in message
    assert not (tmp_path / "model").exists()


def test_fit_then_eval_prints_the_json_figures(tmp_path, capsys):
    train = write_labelled(tmp_path / "train.jsonl")
    out = tmp_path / "model"
    assert main(["router", "fit", "--train", str(train), "--out", str(out)]) == 0
    assert "validation" in capsys.readouterr().out
    meta = json.loads((out / "router.json").read_text())
    assert set(meta["candidates"]) == set(classifier.KINDS) and meta["kind"] in classifier.KINDS
    assert (out / "threshold_curve.png").stat().st_size > 1000

    assert main(["router", "eval", "--model", str(out), "--test", str(train), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert list(figures) == EVAL_KEYS
    assert figures["n"] == 24 and isinstance(figures["n"], int)
    assert all(0.0 <= figures[k] <= 1.0 for k in EVAL_KEYS[1:])
    # The training questions themselves are easy to separate: the router gets most of them right.
    assert figures["strong_recall"] >= 0.75 and figures["weighted_f1"] >= 0.75


def test_saved_router_scores_the_unseen_hard_question_higher(tmp_path):
    model = classifier.load(fit_tiny_router(write_labelled(tmp_path / "t.jsonl"), tmp_path / "m"))
    assert model.kind == "bow_lr" and 0.0 < model.threshold < 1.0
    assert model.probability(HARD_QUESTION) >= model.threshold > model.probability(EASY_QUESTION)


def test_too_few_labels_of_a_class_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="at least 5 labelled questions of each target"):
        classifier.fit_router(["what is ray?"] * 10 + ["why error 3?"] * 2, [1] * 10 + [0] * 2, 0.2, "unused")


def test_threshold_for_a_share_of_strong_calls():
    p = np.linspace(0.05, 0.95, 10)
    t = classifier.threshold_for_share(p, 0.2)
    assert (p >= t).sum() == 2
    assert (p >= classifier.threshold_for_share(p, 0.0)).sum() == 0
    assert (p >= classifier.threshold_for_share(p, 1.0)).sum() == 10
    figures = classifier.classification_figures([0, 1, 1, 0], [0.9, 0.8, 0.1, 0.2], 0.5)
    assert figures["strong_recall"] == 0.5 and figures["strong_precision"] == 0.5 and figures["strong_share"] == 0.5


def test_policy_arithmetic_on_a_hand_computed_case():
    # Four questions: the router sends only the first (where strong is better) to the strong LLM.
    out = report.policy_table(open_scores=[2, 4, 3, 5, None], strong_scores=[4, 4, 5, 5, 3],
                              routed_strong=[True, False, False, False, True],
                              open_costs=[0.001] * 5, strong_costs=[0.01] * 5, n_boot=500)
    assert out["n"] == 4 and out["dropped"] == 1
    p = out["policies"]
    assert p["always_open"]["quality"] == pytest.approx(3.5) and p["always_strong"]["quality"] == pytest.approx(4.5)
    assert p["router"]["quality"] == pytest.approx(4.0) and p["router"]["strong_share"] == pytest.approx(0.25)
    assert out["apgr"] == pytest.approx(0.5)  # (4.0 - 3.5) / (4.5 - 3.5)
    assert p["random"]["quality"] == pytest.approx(3.75) and p["random"]["apgr"] == pytest.approx(0.25)
    assert p["router"]["cost_per_query"] == pytest.approx((0.01 + 3 * 0.001) / 4)
    assert p["random"]["cost_per_query"] == pytest.approx(0.75 * 0.001 + 0.25 * 0.01)
    assert p["always_strong"]["cost_per_query"] == pytest.approx(0.01)
    low, high = out["apgr_ci95"]
    assert low <= 0.5 <= high
    # An unknown price the policy pays stays unknown; no quality gap means no APGR.
    same = report.policy_table([3, 3], [3, 3], [False, True], [None, 0.1], [0.2, 0.2], n_boot=50)
    assert same["apgr"] is None and same["policies"]["router"]["cost_per_query"] is None
    assert same["policies"]["always_strong"]["cost_per_query"] == pytest.approx(0.2)
    assert "| router |" in report.markdown(out)
