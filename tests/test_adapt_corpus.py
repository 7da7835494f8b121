"""Corpus test: rerun the live speaker-adaptation evaluation, compare with models/metrics.json's ``adaptation``.

scripts/evaluate_adaptation.py --model-dir models/ writes that section (``make train`` runs it after
scripts/train.py); this is the issue's "the evaluation runs in CI and its figures are in metrics.json".
"""

from __future__ import annotations

import json

import pytest
from conftest import REPO, SHARED_DATA, requires_corpora

METRICS = {"default": REPO / "models" / "metrics.json", "light": REPO / "models" / "light" / "metrics.json"}

# The limit allows a cold feature cache (see tests/test_training_corpus.py).
pytestmark = [pytest.mark.slow, pytest.mark.corpus, requires_corpora(), pytest.mark.timeout(2700)]


@pytest.mark.parametrize("name", ["default", "light"])
def test_adaptation_evaluation_reproduces_metrics_json(name: str) -> None:
    metrics = METRICS[name]
    assert metrics.is_file() and "adaptation" in json.loads(metrics.read_text()), (
        f"{metrics} has no adaptation report (scripts/evaluate_adaptation.py --model {name} --model-dir "
        f"{metrics.parent} writes it)")
    from ser_live.training.adaptation import SHIPPED_ADAPTATION, AdaptationConfig, evaluate_live_adaptation
    from ser_live.training.pipeline import SHIPPED_CONFIGS

    training_config = SHIPPED_CONFIGS[name]
    shipped = json.loads(metrics.read_text())
    expected = shipped["adaptation"]
    expected_config = json.loads(json.dumps(training_config.to_dict()))  # tuples become lists, as in the file
    assert shipped["config"] == expected_config, f"{metrics} was made with another configuration"
    config = AdaptationConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in expected["config"].items()})
    assert expected["config"] == json.loads(json.dumps(SHIPPED_ADAPTATION.to_dict())), "other adaptation settings"
    # The shipped variant's fixed half_s is the one the recorded nested selection picked.
    assert expected["selection_agrees_with_shipped"] and expected["half_s"] == SHIPPED_ADAPTATION.half_s, (
        f"the nested selection picked {expected['half_s']} s, the shipped variant uses {SHIPPED_ADAPTATION.half_s} s")
    # Same feature cache as the training corpus test (warm after it, or after scripts/train.py). The half_s
    # choices recorded per fold are reused: selecting them again on inner splits would triple the cost,
    # and everything downstream of the choice (fits, streams, scores) is rerun and compared.
    report = evaluate_live_adaptation([SHARED_DATA], training_config, config, n_jobs=2, progress=False,
                                      half_s_per_fold=expected["half_s_per_fold"])
    assert max(set(report["half_s_per_fold"]), key=report["half_s_per_fold"].count) == expected["half_s"]
    for got, want in zip(report["checkpoints"], expected["checkpoints"], strict=True):
        assert got["heard_s"] == want["heard_s"]
        for kind in ("adapted", "unadapted"):
            assert got["overall"][kind]["uar"] == pytest.approx(want["overall"][kind]["uar"], abs=0.02), (
                got["heard_s"], kind)
    # At 0 s nothing is learnt: the blended output is the unadapted model's (within the 0.02).
    first = report["checkpoints"][0]
    assert first["heard_s"] == 0.0
    assert first["overall"]["adapted"]["uar"] >= first["overall"]["unadapted"]["uar"] - 0.02
