"""Training across corpora: the hierarchical weights the estimator can train with (ser_live.training.estimator) and
the corpus directions (ser_live.training.domain)."""

from __future__ import annotations

import numpy as np
import pytest

from ser_live.training.domain import corpus_directions, remove_directions
from ser_live.training.estimator import ModelParams, fit_estimator, hierarchical_weights, window_weights


def _windows() -> dict[str, np.ndarray]:
    """A big corpus (6 speakers, many recordings, long ones) and a small one (2 speakers), two classes; the small
    corpus has no 'sad'."""
    rows = []
    rng = np.random.default_rng(0)
    for corpus, n_speakers, n_recordings in (("big", 6, 10), ("small", 2, 3)):
        for s in range(n_speakers):
            for label in ("happy", "sad") if corpus == "big" else ("happy",):
                for r in range(n_recordings):
                    rows += [(label, f"{corpus}:{s}:{label}:{r}", f"{corpus}:{s}", corpus)] * int(rng.integers(1, 6))
    labels, groups, speakers, corpora = map(np.array, zip(*rows))
    return {"labels": labels, "groups": groups, "speakers": speakers, "corpora": corpora}


def _total(weights: np.ndarray, mask: np.ndarray) -> float:
    return float(weights[mask].sum())


@pytest.mark.parametrize("weighting", ["corpus", "sqrt-speakers"])
def test_hierarchical_weights_share_out_class_corpus_speaker_recording(weighting: str) -> None:
    w = _windows()
    weights = hierarchical_weights(w["labels"], w["groups"], w["speakers"], w["corpora"], weighting=weighting)
    assert weights.mean() == pytest.approx(1.0)
    happy, sad = w["labels"] == "happy", w["labels"] == "sad"
    assert _total(weights, happy) == pytest.approx(_total(weights, sad))  # classes count equally
    big, small = _total(weights, happy & (w["corpora"] == "big")), _total(weights, happy & (w["corpora"] == "small"))
    expected = 1.0 if weighting == "corpus" else np.sqrt(6 / 2)
    assert big / small == pytest.approx(expected)  # corpora as the weighting says, whatever their size
    speaker_totals = [_total(weights, happy & (w["speakers"] == f"big:{s}")) for s in range(6)]
    assert np.allclose(speaker_totals, speaker_totals[0])  # every speaker of a corpus equally
    recording_totals = [_total(weights, w["groups"] == f"big:0:happy:{r}") for r in range(10)]
    assert np.allclose(recording_totals, recording_totals[0])  # every recording, long or short, equally
    one = w["groups"] == "big:0:happy:0"
    assert np.allclose(weights[one], weights[one][0])  # a recording's windows share its weight


def test_hierarchical_weights_refuse_an_unknown_weighting() -> None:
    w = _windows()
    with pytest.raises(ValueError, match="weighting must be one of"):
        hierarchical_weights(w["labels"], w["groups"], w["speakers"], w["corpora"], weighting="recording")


def test_the_estimator_trains_with_the_weighting_its_parameters_name(monkeypatch) -> None:
    """ModelParams(weighting=...) reaches the networks' sample weights; the record of a recording-weighted
    estimator keeps its old form; a weighting over corpora without each window's speaker and corpus is refused."""
    from sklearn.neural_network import MLPClassifier

    w = _windows()
    X = np.random.default_rng(2).normal(size=(w["labels"].size, 3))
    seen = []
    fit = MLPClassifier.fit
    monkeypatch.setattr(MLPClassifier, "fit", lambda self, X, y, sample_weight=None: (seen.append(sample_weight),
                                                                                       fit(self, X, y))[1])
    params = ModelParams(hidden_layer_sizes=(4,), n_seeds=1, max_iter=5, weighting="corpus")
    fit_estimator(X, w["labels"], w["groups"], params, strata=(w["speakers"], w["corpora"]))
    np.testing.assert_allclose(seen[-1], hierarchical_weights(w["labels"], w["groups"], w["speakers"], w["corpora"]))
    fit_estimator(X, w["labels"], w["groups"], ModelParams(hidden_layer_sizes=(4,), n_seeds=1, max_iter=5))
    np.testing.assert_allclose(seen[-1], window_weights(w["labels"], w["groups"]))
    assert not np.allclose(seen[-1], seen[-2])
    assert "weighting" not in ModelParams().to_dict() and params.to_dict()["weighting"] == "corpus"
    with pytest.raises(ValueError, match="needs each window's speaker and corpus"):
        fit_estimator(X, w["labels"], w["groups"], params)
    with pytest.raises(ValueError, match="weighting must be one of"):
        ModelParams(weighting="speaker")


def test_corpus_directions_remove_a_corpus_offset_and_keep_the_emotions() -> None:
    rng = np.random.default_rng(1)
    n, dims = 600, 8
    labels = rng.choice(["happy", "sad"], size=n)
    corpora = rng.choice(["a", "b", "c"], size=n)
    Z = rng.normal(size=(n, dims))
    Z[:, 0] += np.where(labels == "happy", 2.0, -2.0)  # emotion along feature 0
    Z[:, 1] += np.select([corpora == "a", corpora == "b"], [4.0, -4.0], 0.0)  # corpus along feature 1
    removed = remove_directions(Z, corpus_directions(Z, corpora, labels, 1))

    def spread(X: np.ndarray, groups: np.ndarray) -> float:
        means = np.array([X[groups == g].mean(axis=0) for g in np.unique(groups)])
        return float(np.linalg.norm(means - means.mean(axis=0), axis=1).mean())

    assert spread(removed, corpora) < 0.1 * spread(Z, corpora)
    assert spread(removed, labels) > 0.8 * spread(Z, labels)
