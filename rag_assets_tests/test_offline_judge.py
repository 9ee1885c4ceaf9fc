"""The offline judge: feature arithmetic, and agreement with real GPT-4 judgements on held-out experiments."""

import json
import random
from importlib import resources

import numpy as np
import pytest
from scipy.stats import spearmanr

from rag_assets.lib.evaluate import offline_judge as oj
from rag_assets_tests.conftest import SHARED_DATASETS

CALIBRATION = SHARED_DATASETS / "judge-calibration.jsonl"
needs_data = pytest.mark.skipif(not CALIBRATION.exists(), reason="shared datasets not available")

QUESTION = "How do I set the number of CPUs for a Ray task?"
REFERENCE = "Pass num_cpus to the @ray.remote decorator, e.g. @ray.remote(num_cpus=2), or per call with .options()."


def test_overlap_counts_repeats_and_handles_empty():
    # answer a a b, reference a b c: 2 common (a once, b once) -> precision 2/3, recall 2/3, F1 2/3
    f1, p, r = oj.overlap(["a", "a", "b"], ["a", "b", "c"])
    assert (p, r) == pytest.approx((2 / 3, 2 / 3)) and f1 == pytest.approx(2 / 3)
    assert oj.overlap([], ["a"]) == (0.0, 0.0, 0.0)
    assert oj.tokens("The Actor's num_cpus, and THE value") == ["actor", "s", "num_cpus", "value"]


def test_text_features_on_hand_made_rows():
    f = oj.text_features("Is the order preserved?", "No, rows may be reordered.", "Yes, the order is preserved.")
    assert f["yes_no_conflict"] == 1.0
    assert f["question_recall"] == pytest.approx(0.0)  # "order", "preserved" both missing from the answer
    f = oj.text_features(QUESTION, "I don't know: the provided context does not mention it.", REFERENCE)
    assert f["refusal"] == 1.0 and f["log_context_mentions"] == pytest.approx(np.log(2))
    assert f["identifier_recall"] == 0.0  # the reference names num_cpus and ray.remote; the answer neither
    f = oj.text_features(QUESTION, REFERENCE, REFERENCE)
    assert (f["token_f1"], f["novel_f1"], f["bigram_f1"], f["identifier_recall"]) == (1.0, 1.0, 1.0, 1.0)
    assert f["refusal"] == 0.0 and f["yes_no_conflict"] == 0.0 and f["code_answer"] == 1.0


def test_shipped_params_are_package_data_and_match_the_features():
    params = json.loads(resources.files("rag_assets.lib.evaluate").joinpath("offline_judge_params.json").read_text())
    assert params["features"] == oj.FEATURES and params["columns"] == oj.COLUMNS
    assert len(params["coef"]) == len(oj.COLUMNS) and params["model"] == oj.BUNDLED_MODEL
    # Overlap enters only through square roots with positive weights: more overlap never scores lower.
    for name in oj.ROOTED:
        assert params["coef"][oj.COLUMNS.index(f"sqrt({name})")] > 0


def test_predict_refuses_params_fitted_on_other_features():
    rng = np.random.default_rng(0)
    params = oj.fit(rng.random((50, len(oj.FEATURES))), rng.uniform(1, 5, 50))
    assert np.all((oj.predict(params, rng.random((5, len(oj.FEATURES)))) >= 1))
    with pytest.raises(ValueError, match="different features"):
        oj.predict({**params, "features": oj.FEATURES[:-1]}, np.zeros((1, len(oj.FEATURES))))
    with pytest.raises(ValueError, match="no coefficients"):
        oj.predict({"model": oj.BUNDLED_MODEL}, np.zeros((1, len(oj.FEATURES))))


@pytest.fixture(scope="module")
def judge():
    return oj.OfflineJudge()


@pytest.fixture(scope="module")
def calibration_split():
    """Deterministic experiment split: 3 held-out experiments (300 rows) and 12 fit experiments (500 rows).

    The held-out three are the calibration script's fold 3 (names[3::7]); its per-fold Spearman ranges
    0.59-0.71, fold 3 is mid-range. Subsampled with a fixed seed to keep the embedding cost near 20 s.
    """
    rows = [json.loads(line) for line in CALIBRATION.read_text().splitlines() if line.strip()]
    names = sorted({r["experiment"] for r in rows})
    held = set(names[3::7])
    fit_names = set([n for n in names if n not in held][:12])
    rng = random.Random(0)
    held_rows = rng.sample([r for r in rows if r["experiment"] in held], 300)
    fit_rows = rng.sample([r for r in rows if r["experiment"] in fit_names], 500)
    return held_rows, fit_rows


@pytest.fixture(scope="module")
def split_features(judge, calibration_split):
    held_rows, fit_rows = calibration_split
    x = judge.features(held_rows + fit_rows)
    y = np.array([r["score"] for r in held_rows + fit_rows])
    n = len(held_rows)
    return (x[:n], y[:n]), (x[n:], y[n:])


@needs_data
def test_shipped_params_rank_a_held_out_sample_like_gpt4(judge, split_features):
    # The shipped params were fitted on all 21 experiments, these rows included: this guards the shipped
    # file and the feature code against drift. Generalization is the next test (and the script's CV).
    (x, y), _ = split_features
    scores = oj.predict(judge.params, x)
    assert spearmanr(scores, y)[0] >= 0.55
    assert np.all((scores >= 1) & (scores <= 5))


@needs_data
def test_refit_on_other_experiments_ranks_held_out_ones(split_features):
    (x_held, y_held), (x_fit, y_fit) = split_features
    params = oj.fit(x_fit, y_fit)
    rho = spearmanr(oj.predict(params, x_held), y_held)[0]
    token_f1 = spearmanr(x_held[:, oj.FEATURES.index("token_f1")], y_held)[0]
    assert rho >= 0.5
    assert rho > token_f1 + 0.1  # the regression earns its keep over the plain overlap baseline


def test_copy_of_reference_beats_unrelated_answer_and_refusal(judge):
    copy, paraphrase, unrelated, refusal, empty = judge.score_many(
        [
            (QUESTION, REFERENCE, REFERENCE),
            {"question": QUESTION, "answer": "Use @ray.remote(num_cpus=4) on the function.", "reference": REFERENCE},
            (QUESTION, "The Eiffel Tower is in Paris and was completed in 1889.", REFERENCE),
            (QUESTION, "I'm sorry, the provided context does not mention how to set CPUs.", REFERENCE),
            (QUESTION, "", REFERENCE),
        ]
    )
    assert all(1.0 <= s <= 5.0 for s in (copy, paraphrase, unrelated, refusal, empty))
    assert copy > paraphrase > max(unrelated, refusal, empty)
    assert judge.score(QUESTION, REFERENCE, REFERENCE) == pytest.approx(copy, abs=1e-6)
    assert judge.score_many([]) == []
