"""Training-side model handling: folds, augmentation isolation, weights, bundle round trip, version refusal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ser_live.errors import FeatureConfigError
from ser_live.features.handcrafted import FEATURE_VERSION, FeatureConfig, feature_names
from ser_live.model.emotion_model import EMOTIONS, EmotionModel
from ser_live.model.file_format import read_bundle, write_bundle
from ser_live.training import evaluate
from ser_live.training.corpora import Utterance
from ser_live.training.estimator import ModelParams, fit_estimator, loss_curves, training_weights
from ser_live.training.evaluate import (
    check_speaker_independent,
    classification_report,
    cross_validate,
    speaker_folds,
    training_rows,
)
from ser_live.training.extract import FeatureSet

N_FEATURES = len(feature_names(FeatureConfig()))


def _feature_set(n_speakers: int = 10, per_speaker: int = 14, windows: int = 3, copies: int = 1,
                 seed: int = 0) -> FeatureSet:
    """Separable synthetic data: class k shifts feature k; augmented windows carry a sentinel in the last column."""
    rng = np.random.default_rng(seed)
    utterances, X, index, copy = [], [], [], []
    for s in range(n_speakers):
        corpus = "ravdess" if s % 2 else "emovo"
        for u in range(per_speaker):
            label = EMOTIONS[u % len(EMOTIONS)]
            uid = len(utterances)
            utterances.append(Utterance(Path(f"/x/{s}/{u}.wav"), label, f"{corpus}:{s}", corpus))
            for c in range(copies + 1):
                rows = rng.normal(0, 1, (windows, N_FEATURES))
                rows[:, EMOTIONS.index(label)] += 5.0
                rows[:, -1] = 1000.0 if c else 0.0
                X.append(rows)
                index += [uid] * windows
                copy += [c] * windows
    return FeatureSet(utterances, np.concatenate(X).astype(np.float32), np.array(index), np.array(copy))


def test_speaker_folds_never_share_a_speaker() -> None:
    fs = _feature_set(n_speakers=12)
    folds = speaker_folds(fs.speakers, fs.labels, n_splits=5)
    assert len(folds) == 5
    covered = np.concatenate([test for _, test in folds])
    assert sorted(covered.tolist()) == list(range(len(fs.utterances)))
    for train, test in folds:
        assert not set(fs.speakers[train]) & set(fs.speakers[test])


def test_leakage_check_catches_a_shared_speaker() -> None:
    speakers = np.array(["a:1", "a:1", "a:2", "a:2"])
    with pytest.raises(AssertionError, match="a:1"):
        check_speaker_independent([(np.array([0, 2]), np.array([1, 3]))], speakers)


def test_too_few_speakers_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="at least 5 speakers"):
        speaker_folds(np.array(["a:1", "a:2"] * 5), np.array(["happy", "sad"] * 5), n_splits=5)


def test_training_rows_keep_augmented_copies_out_of_the_test_side() -> None:
    fs = _feature_set()
    folds = speaker_folds(fs.speakers, fs.labels, n_splits=5)
    for train_utt, test_utt in folds:
        train_rows, test_rows = training_rows(fs, train_utt, test_utt, augmented=True)
        assert np.all(fs.copy[test_rows] == 0)
        assert np.any(fs.copy[train_rows] > 0)
        assert set(fs.utterance_index[train_rows]) == set(train_utt.tolist())
        assert set(fs.utterance_index[test_rows]) == set(test_utt.tolist())
        plain_train, _ = training_rows(fs, train_utt, test_utt, augmented=False)
        assert np.all(fs.copy[plain_train] == 0)


def test_cross_validation_never_evaluates_augmented_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    fs = _feature_set()
    seen_train, seen_test = [], []

    class Spy:
        def __init__(self, X, labels):
            seen_train.append(X)
            self.classes_ = np.unique(labels)

        def predict_proba(self, X):
            seen_test.append(X)
            return np.full((X.shape[0], self.classes_.size), 1.0 / self.classes_.size)

    monkeypatch.setattr(evaluate, "fit_estimator", lambda X, labels, groups, params, **_: Spy(X, labels))
    monkeypatch.setattr(evaluate, "loss_curves", lambda estimator: [])
    folds = speaker_folds(fs.speakers, fs.labels, n_splits=5)
    result = cross_validate(fs, folds, ModelParams(n_seeds=1), augmented=True)
    assert all(np.all(X[:, -1] == 0.0) for X in seen_test)
    assert all(np.any(X[:, -1] == 1000.0) for X in seen_train)
    assert result.window_proba.shape[0] == np.count_nonzero(fs.copy == 0)


def test_cross_validation_learns_separable_data() -> None:
    fs = _feature_set(copies=0)
    folds = speaker_folds(fs.speakers, fs.labels, n_splits=5)
    result = cross_validate(fs, folds, ModelParams(hidden_layer_sizes=(16,), n_seeds=2, max_iter=300,
                                                                    learning_rate_init=0.02, batch_size=32),
                            augmented=False)
    report = evaluate.full_report(result, fs)
    assert report["utterance"]["overall"]["uar"] > 0.75  # chance is 1/7
    assert set(report["utterance"]) >= {"overall", "ravdess", "emovo", "fold_uar"}
    assert len(report["window"]["fold_uar"]) == 5


def test_cross_validation_of_another_estimator_uses_the_same_folds_weights_and_test_rows() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    fs = _feature_set()
    folds = speaker_folds(fs.speakers, fs.labels, n_splits=5)
    fitted_weights = []

    class Recording(LogisticRegression):
        def fit(self, X, y, sample_weight=None):
            fitted_weights.append(sample_weight)
            return super().fit(X, y, sample_weight=sample_weight)

    template = Pipeline([("scaler", StandardScaler()), ("model", Recording(max_iter=500))])
    result = cross_validate(fs, folds, augmented=False, estimator=template)
    assert not hasattr(template[-1], "coef_")  # clones were fitted, never the template
    assert len(fitted_weights) == 5 and all(w is not None and w.mean() == pytest.approx(1.0) for w in fitted_weights)
    assert result.window_proba.shape == (np.count_nonzero(fs.copy == 0), len(EMOTIONS))
    assert np.all(result.fold_of_utterance >= 0)
    assert evaluate.full_report(result, fs)["utterance"]["overall"]["uar"] > 0.75  # separable; chance is 1/7

    mlp = cross_validate(fs, folds, ModelParams(hidden_layer_sizes=(16,), n_seeds=1, max_iter=300,
                                                learning_rate_init=0.02, batch_size=32), augmented=False)
    both = evaluate.mean_result([result, mlp])
    np.testing.assert_allclose(both.window_proba, (result.window_proba + mlp.window_proba) / 2)
    np.testing.assert_allclose(both.utterance_proba, (result.utterance_proba + mlp.utterance_proba) / 2)
    other_folds = cross_validate(fs, speaker_folds(fs.speakers, fs.labels, n_splits=5, random_state=1),
                                 augmented=False, estimator=template)
    with pytest.raises(ValueError, match="same folds"):
        evaluate.mean_result([result, other_folds])


def test_classification_report_figures() -> None:
    y_true = np.array(["sad", "sad", "sad", "sad", "happy", "happy"])
    y_pred = np.array(["sad", "sad", "sad", "happy", "happy", "sad"])
    report = classification_report(y_true, y_pred, ["happy", "sad"])
    assert report["recall"] == {"happy": 0.5, "sad": 0.75}
    assert report["uar"] == pytest.approx(0.625)
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["confusion"]["matrix"] == [[1, 1], [1, 3]]


def test_training_weights_balance_classes_and_recordings() -> None:
    labels = np.array(["sad"] * 6 + ["happy"] * 2)
    groups = np.array([0, 0, 0, 0, 1, 1, 2, 3])  # a 4-window and a 2-window sad recording; two 1-window happy
    w = training_weights(labels, groups)
    assert w.mean() == pytest.approx(1.0)
    assert w[labels == "sad"].sum() == pytest.approx(w[labels == "happy"].sum())
    assert w[groups == 0].sum() == pytest.approx(w[groups == 1].sum())


def _fitted_model() -> EmotionModel:
    fs = _feature_set(copies=0, n_speakers=4)
    labels = fs.labels[fs.utterance_index]
    estimator = fit_estimator(fs.X, labels, fs.utterance_index, ModelParams(hidden_layer_sizes=(8,), n_seeds=2,
                                                                            max_iter=50))
    return EmotionModel(estimator, FeatureConfig(), window_s=2.0, hop_s=0.5, metadata={"corpora": ["test"]})


def test_bundle_round_trip(tmp_path: Path) -> None:
    model = _fitted_model()
    path = tmp_path / "m.npz"
    model.save(path)
    loaded = EmotionModel.load(path)
    x = np.random.default_rng(1).normal(0, 1, (5, N_FEATURES))
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x))
    assert loaded.classes == model.classes == EMOTIONS
    assert loaded.extractor == model.extractor
    assert (loaded.window_s, loaded.hop_s) == (2.0, 0.5)
    assert loaded.metadata["corpora"] == ["test"]
    assert path.stat().st_size < 5_000_000
    # Format 3: the arrays predictions use, and a manifest; the pipeline stays a training artefact (its loss curves
    # are in metrics.json, written by training from the estimator in hand).
    assert read_bundle(path)["format_version"] == 3
    assert loss_curves(model.estimator)


def test_bundle_of_another_feature_version_is_refused(tmp_path: Path) -> None:
    bundle = _fitted_model().to_bundle()
    bundle["extractor"]["version"] = FEATURE_VERSION + 1
    bundle["extractor"]["config"] = {**bundle["extractor"]["config"], "version": FEATURE_VERSION + 1}
    path = tmp_path / "old.npz"
    write_bundle(path, bundle)
    with pytest.raises(FeatureConfigError, match=f"features version {FEATURE_VERSION + 1}.*retrain"):
        EmotionModel.load(path)


def test_fitted_networks_carry_no_training_state() -> None:
    model = _fitted_model()
    for mlp in model.estimator[-1].estimators_:
        assert not hasattr(mlp, "_optimizer") and not hasattr(mlp, "_best_coefs")
        assert mlp.loss_curve_  # the history the loss chart is drawn from is kept
    x = np.random.default_rng(2).normal(0, 1, (3, N_FEATURES))
    assert np.allclose(model.predict_proba(x).sum(axis=1), 1.0)


@pytest.mark.parametrize(("name", "kind"), [("default", "whisper-encoder"), ("light", "handcrafted")])
def test_shipped_bundle_is_small_and_loads(name: str, kind: str) -> None:
    from ser_live.model.emotion_model import shipped_model_path

    path = shipped_model_path(name)
    assert path.stat().st_size < 5_000_000
    model = EmotionModel.load(path)
    assert model.classes == EMOTIONS
    assert model.extractor.kind == kind
    if kind == "handcrafted":
        assert model.extractor.config.version == FEATURE_VERSION
    assert {"corpora", "class_counts", "evaluation", "training_config", "created", "scikit-learn"} <= set(
        model.metadata)
