"""Corpus test: rerun the speaker-adaptation evaluation (every method, every protocol), compare with metrics.json.

scripts/evaluate_adaptation.py --model-dir models/ writes that section (``make train`` runs it after
scripts/train.py). The product's default must follow the shipping rule the report applies: adaptation on
by default only for a method that passes it.
"""

from __future__ import annotations

import json

import pytest
from conftest import REPO, SHARED_DATA, requires_corpora

METRICS = {"default": REPO / "models" / "metrics.json", "light": REPO / "models" / "light" / "metrics.json"}

# The limit allows a cold feature cache (see tests/test_training_corpus.py).
pytestmark = [pytest.mark.slow, pytest.mark.corpus, requires_corpora(), pytest.mark.timeout(2700)]

#: Figures compared with the recorded ones: pooled over thousands of windows, they move by less than this
#: when BLAS sums in another order on another CPU (the fits are seeded; a window near a class boundary can flip).
TOLERANCE = 0.02
#: The rule's other input is an extreme over single emotions (the largest drop of one emotion's recall, over 7
#: emotions and two times, on EMOVO's few streams of each): the same evaluation on features that differ by less
#: than 1e-4 of their spread (ONNX Runtime's against numpy's) moved it from 0.022 to 0.047.
DROP_TOLERANCE = 0.05


def _headline(scores: dict) -> dict[str, float]:
    return {"shuffled": scores["shuffled"]["uar"], "skewed": scores["skewed"]["uar"],
            "sustained 30 s": scores["sustained"]["after_30_s"]["mean_recall"],
            "sustained 60 s": scores["sustained"]["after_60_s"]["mean_recall"],
            "switch": scores["switch"]["second_emotion_uar"]}


def _assert_headlines_match(report: dict, expected: dict) -> None:
    """Every method's headline figures as recorded, to :data:`TOLERANCE`."""
    for method, groups in report["methods"].items():
        got, want = _headline(groups["overall"]), _headline(expected["methods"][method]["overall"])
        for figure in want:
            assert got[figure] == pytest.approx(want[figure], abs=TOLERANCE), (method, figure)


def _settled(value: float, threshold: float, tolerance: float) -> bool:
    """Whether a figure recorded this far from a rule's threshold keeps its side of it when rerun: figures move by up
    to ``tolerance`` on another CPU's BLAS or the other encoder runtime, so a nearer one can tip either way."""
    return abs(value - threshold) > tolerance


def _verdict_settled(want: dict) -> bool:
    """Whether the recorded inputs settle a method's verdict: a side of a threshold that fails it, or both that pass."""
    from ser_live.training.adaptation_eval import SHUFFLED_GAIN, SUSTAINED_TOLERANCE

    harmless = _settled(want["largest_sustained_drop"], SUSTAINED_TOLERANCE, DROP_TOLERANCE)
    helpful = _settled(want["shuffled_gain"], SHUFFLED_GAIN, TOLERANCE)
    return ((harmless and not want["no_harm_on_sustained"]) or (helpful and not want["helps_shuffled"])
            or (harmless and helpful))


def _assert_verdicts_match(report: dict, expected: dict) -> None:
    """The shipping rule's inputs reproduce to their tolerances for every method rerun, and so does its verdict
    wherever the recorded inputs settle it; where every one does, so does the method the product would ship."""
    from ser_live.training.adaptation_eval import default_choice

    for method, got in report["verdicts"].items():
        want = expected["verdicts"][method]
        for figure, tolerance in (("shuffled_gain", TOLERANCE), ("largest_sustained_drop", DROP_TOLERANCE)):
            assert got[figure] == pytest.approx(want[figure], abs=tolerance), (method, figure)
        if _verdict_settled(want):
            assert got["passes"] == want["passes"], method
    if all(_verdict_settled(expected["verdicts"][method]) for method in report["verdicts"]):
        assert default_choice(report) == default_choice(expected)


def _assert_the_product_follows_the_rule(name: str, metrics: dict) -> None:
    """Never on by default with a method that fails it. It starts with the plain model for both models (the README
    says why): on five corpora the neutral enrolment passes or misses by a hair for the default model (a held mood
    0.027, then 0.031 lower, against the rule's 0.03), and it runs only when the user reads the passage
    (--calibrate); --adapt passes for the light one, but not on EMOVO alone."""
    from ser_live.app.session import SessionConfig
    from ser_live.training.adaptation import ENROLMENT_METHOD
    from ser_live.training.adaptation_eval import default_choice

    if name == "default":
        assert default_choice(metrics["adaptation"]) in (None, ENROLMENT_METHOD.name)
    assert SessionConfig().adapt is False and SessionConfig().calibrate_s is None


def _rerun(name: str, metrics: dict, plan) -> tuple[dict, dict]:
    """The adaptation evaluation rerun on EMOVO alone, and the recorded report it must reproduce: the whole one
    covers five corpora (the default model's needs the encoder features of every recording and of two augmented
    copies of each, hours on 2 cores without the cache), so the same evaluation on EMOVO is recorded beside it."""
    from ser_live.training.recipe import SHIPPED_CONFIGS, adaptation_reproduction

    report = adaptation_reproduction([SHARED_DATA], SHIPPED_CONFIGS[name], plan, n_jobs=2)
    return report, metrics["adaptation"]["reproduction"]


@pytest.mark.parametrize("name", ["default", "light"])
def test_adaptation_evaluation_reproduces_metrics_json(name: str) -> None:
    metrics = json.loads(METRICS[name].read_text())
    assert "adaptation" in metrics, (f"{METRICS[name]} has no adaptation report (scripts/evaluate_adaptation.py "
                                     f"--model {name} --model-dir {METRICS[name].parent} writes it)")
    import dataclasses

    from ser_live.training.adaptation import CONTINUOUS_METHOD, ENROLMENT_METHOD
    from ser_live.training.adaptation_eval import EvaluationPlan
    from ser_live.training.adaptation_methods import METHODS

    RUNNING = next(m for m in METHODS if m.name.startswith("running statistics"))  # noqa: N806 - a constant
    assert metrics["adaptation"]["plan"] == json.loads(json.dumps(EvaluationPlan().to_dict())), "made with another plan"
    # The shipped methods (--adapt, --calibrate: one estimator) and the one used until now; the other two cost a
    # third more fitting in CI and change nothing the product does. Streams and seeds do not depend on which
    # methods run, so these reproduce the recorded figures exactly but for BLAS's summing order.
    plan = dataclasses.replace(EvaluationPlan(), methods=(CONTINUOUS_METHOD, ENROLMENT_METHOD, RUNNING))
    report, expected = _rerun(name, metrics, plan)
    assert report["n_streams"] == expected["n_streams"]
    _assert_headlines_match(report, expected)
    # The rule's verdict reproduces too, where the recorded figures settle it. (On EMOVO alone the default model's
    # --calibrate passed it by a hair: +0.032 on mixed speech against the rule's +0.02, no held mood more than 0.022
    # lower against its 0.03; on ONNX Runtime's features it failed, its largest drop 0.047. The product follows the
    # whole evaluation's verdict.)
    _assert_verdicts_match(report, expected)
    _assert_the_product_follows_the_rule(name, metrics)
