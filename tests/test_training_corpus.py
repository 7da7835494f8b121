"""Corpus test: rerun each shipped model's speaker-independent evaluation, compare with its metrics.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).parents[1].parent / "shared" / "data"
METRICS = {"default": REPO / "models" / "metrics.json", "light": REPO / "models" / "light" / "metrics.json"}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.corpus,
    # On a machine without the feature cache the encoder features of 4 261 recordings are extracted first
    # (about 15 minutes on 2 cores, then cached in the user cache directory); the default limit is 15.
    pytest.mark.timeout(2700),
    pytest.mark.skipif(not SHARED_DATA.is_dir(),
                       reason=f"needs the corpora in {SHARED_DATA} (present in CI, absent on users' machines)"),
]


_EVALUATIONS: dict = {}


def _evaluation(name: str):
    """The shipped configuration's speaker-independent evaluation, made once per test session (minutes each)."""
    from ser_live.training.pipeline import SHIPPED_CONFIGS, evaluate_configuration

    if name not in _EVALUATIONS:
        _EVALUATIONS[name] = evaluate_configuration([SHARED_DATA], SHIPPED_CONFIGS[name], classic=False,
                                                    progress=False)
    return _EVALUATIONS[name]


@pytest.mark.parametrize("name", ["default", "light"])
def test_speaker_independent_evaluation_reproduces_metrics_json(name: str) -> None:
    from ser_live.training.pipeline import SHIPPED_CONFIGS

    config = SHIPPED_CONFIGS[name]
    shipped = json.loads(METRICS[name].read_text())
    expected_config = json.loads(json.dumps(config.to_dict()))  # tuples become lists, as in the file
    assert shipped["config"] == expected_config, f"{METRICS[name]} was made with another configuration"
    # The feature cache (user cache dir, or $SER_LIVE_FEATURE_CACHE) makes this quick when warm; cold it
    # extracts every file on all cores. The classic recipe is not rerun: only our figure is checked.
    evaluation = _evaluation(name)
    ours = evaluation.report
    assert ours["protocol"] == shipped["ours"]["protocol"]
    # A later gate may accept a few windows more or less; the figures must still agree.
    assert abs(len(evaluation.features.utterances) - shipped["data"]["n_utterances"]) <= 20
    for level in ("utterance", "window"):
        expected = shipped["ours"][level]["overall"]["uar"]
        assert ours[level]["overall"]["uar"] == pytest.approx(expected, abs=0.02), level
    # The figure the window shows first: a corpus it has never heard (leave-one-corpus-out).
    from ser_live.training.evaluate import leave_one_corpus_out

    loco = leave_one_corpus_out(evaluation.features, config.params, augmented=config.augmenter is not None,
                                random_state=config.random_state, n_jobs=2)
    recorded = shipped["leave_one_corpus_out"]
    assert loco["mean_utterance_uar"] == pytest.approx(recorded["mean_utterance_uar"], abs=0.02)
    for corpus, figures in recorded["per_corpus"].items():
        assert loco["per_corpus"][corpus]["utterance_uar"] == pytest.approx(figures["utterance_uar"], abs=0.03), corpus


@pytest.mark.parametrize("name", ["light", "default"])
def test_rooms_noise_and_short_replies_reproduce_metrics_json(name: str) -> None:
    """The light model's whole measure; the default model's 10 dB room on EMOVO only (its encoder features of the
    changed audio of all 4 261 recordings take as long as the clean ones: EMOVO's 10 dB third keeps CI lean)."""
    import numpy as np

    from ser_live.model import file_sha256
    from ser_live.training.pipeline import SHIPPED_CONFIGS, robustness_of
    from ser_live.training.robustness import ROOM_NOISE

    config = SHIPPED_CONFIGS[name]
    recorded = json.loads(METRICS[name].read_text())["robustness"]
    evaluation = _evaluation(name)
    checks = {label: ["overall", "emovo", "ravdess"] for label in recorded["rows"]}
    measure = None
    if name == "default":
        utterances = evaluation.features.utterances
        measure = np.flatnonzero([u.corpus == "emovo" and ROOM_NOISE.snr_of(file_sha256(str(u.path))) == 10.0
                                  for u in utterances])
        checks = {"room, 10 dB SNR": ["emovo"]}
    report = robustness_of(evaluation, config, n_jobs=2, progress=False, measure=measure)
    assert json.loads(json.dumps(report["conditions"])) == recorded["conditions"], "conditions changed since"
    for label, groups in checks.items():
        for group in groups:
            got, expected = report["rows"][label][group], recorded["rows"][label][group]
            assert got["n"] == pytest.approx(expected["n"], abs=3), (label, group)
            # Per corpus a few hundred recordings: a handful decided otherwise on another CPU's BLAS moves UAR by
            # about 0.005 each; the whole set is held to the CV's tolerance.
            tolerance = 0.02 if group == "overall" else 0.03
            assert got["uar"] == pytest.approx(expected["uar"], abs=tolerance), (label, group)
            assert got["clean_uar"] == pytest.approx(expected["clean_uar"], abs=tolerance), (label, group)
