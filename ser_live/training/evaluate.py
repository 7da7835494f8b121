"""Speaker-independent evaluation: grouped folds, out-of-fold predictions, UAR/accuracy/recall/confusion reports.

No speaker is ever in both the training and the test side of a fold (asserted), augmented copies
only ever join the training side, and every figure is computed from out-of-fold predictions:
per window, and per utterance with the probabilities averaged over the utterance's windows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..model.emotion_model import apply_temperature, display_order
from .estimator import ModelParams, fit_estimator, loss_curves, training_weights
from .extract import FeatureSet

__all__ = ["SPEAKER_INDEPENDENT", "RANDOM_SPLIT", "speaker_folds", "random_folds", "check_speaker_independent",
           "training_rows", "CVResult", "cross_validate", "mean_result", "cross_validate_classic",
           "classification_report", "full_report", "CORPUS_GROUPS", "report_groups",
           "classes_of", "aligned_proba", "LEAVE_ONE_CORPUS_OUT", "leave_one_corpus_out", "calibration_report",
           "fit_temperature", "calibration", "utterance_mean"]

SPEAKER_INDEPENDENT = "speaker-independent (no test speaker in training)"

#: Corpora also reported pooled whenever other corpora are present beside them: every figure of this project
#: before ASED joined was measured on RAVDESS + EMOVO, so that part stays comparable as corpora are added.
CORPUS_GROUPS: dict[str, tuple[str, ...]] = {"ravdess+emovo": ("ravdess", "emovo")}


def report_groups(corpora: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Name -> corpora of every figure reported beside "overall": each corpus, then the :data:`CORPUS_GROUPS`
    whose corpora are all present while others are too (in alphabetical order)."""
    present = sorted(set(corpora))
    groups = {name: (name,) for name in present}
    for name, members in CORPUS_GROUPS.items():
        if set(members) <= set(present) and len(present) > len(members):
            groups[name] = members
    return groups
#: The only label a random-split figure may carry.
RANDOM_SPLIT = "random split (speaker seen in training)"


def speaker_folds(speakers: np.ndarray, labels: np.ndarray, *, n_splits: int = 5,
                  random_state: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Utterance indices of grouped, class-stratified folds: every speaker's utterances in exactly one test fold.

    Parameters
    ----------
    speakers, labels : np.ndarray, shape (n_utterances,)
        Corpus-prefixed speaker ids and labels.
    n_splits : int
    random_state : int

    Returns
    -------
    folds : list of (train_indices, test_indices)
    """
    from sklearn.model_selection import StratifiedGroupKFold

    speakers = np.asarray(speakers)
    n_speakers = np.unique(speakers).size
    if n_speakers < n_splits:
        raise ValueError(f"speaker-independent {n_splits}-fold evaluation needs at least {n_splits} speakers, "
                         f"the data has {n_speakers}")
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    folds = [(train, test) for train, test in splitter.split(np.zeros(len(labels)), labels, groups=speakers)]
    check_speaker_independent(folds, speakers)
    return folds


def check_speaker_independent(folds: Sequence[tuple[np.ndarray, np.ndarray]], speakers: np.ndarray) -> None:
    """Raise ``AssertionError`` if any speaker is on both sides of a fold or in two test folds."""
    seen: dict[str, int] = {}
    for k, (train, test) in enumerate(folds):
        test_speakers = set(speakers[test].tolist())
        overlap = test_speakers & set(speakers[train].tolist())
        if overlap:
            raise AssertionError(f"fold {k}: speakers in both training and test: {sorted(overlap)}")
        for speaker in test_speakers:
            if speaker in seen:
                raise AssertionError(f"speaker {speaker} is in test folds {seen[speaker]} and {k}")
            seen[speaker] = k


def random_folds(labels: np.ndarray, *, n_splits: int = 5,
                 random_state: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified random folds of utterances: speakers are shared. Report only under :data:`RANDOM_SPLIT`."""
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    return list(splitter.split(np.zeros(len(labels)), labels))


def training_rows(features: FeatureSet, train_utterances: np.ndarray, test_utterances: np.ndarray, *,
                  augmented: bool) -> tuple[np.ndarray, np.ndarray]:
    """Window rows for one fold: training = windows (and, if asked, augmented copies) of training utterances;
    test = original windows of test utterances only.

    Raises
    ------
    AssertionError
        If a test row is augmented or a row lands on both sides.
    """
    in_train = np.isin(features.utterance_index, train_utterances)
    in_test = np.isin(features.utterance_index, test_utterances)
    original = features.copy == 0
    train_rows = np.flatnonzero(in_train & (original | augmented))
    test_rows = np.flatnonzero(in_test & original)
    assert not np.any(features.copy[test_rows]), "augmented windows must never be evaluated"
    assert not np.intersect1d(train_rows, test_rows).size, "a window is on both sides of a fold"
    return train_rows, test_rows


@dataclasses.dataclass
class CVResult:
    """Out-of-fold predictions of one model configuration.

    Attributes
    ----------
    classes : tuple of str
        Column order of the probabilities.
    window_proba : np.ndarray, shape (n_original_windows, n_classes)
    window_utterance : np.ndarray, shape (n_original_windows,)
    utterance_proba : np.ndarray, shape (n_utterances, n_classes)
        Mean of the utterance's window probabilities.
    fold_of_utterance : np.ndarray, shape (n_utterances,)
    loss_curves : list
        Per fold, the loss curves of its MLPs.
    """

    classes: tuple[str, ...]
    window_proba: np.ndarray | None
    window_utterance: np.ndarray | None
    utterance_proba: np.ndarray
    fold_of_utterance: np.ndarray
    loss_curves: list[Any] = dataclasses.field(default_factory=list)


def classes_of(labels: np.ndarray) -> tuple[str, ...]:
    """The classes present in ``labels``, in display order (the product's emotions first, then others sorted)."""
    return display_order(sorted(set(np.asarray(labels).tolist())))


def aligned_proba(estimator: Any, X: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    """Probabilities in ``classes`` order (a class absent from a training fold gets 0)."""
    proba = estimator.predict_proba(np.asarray(X, dtype=np.float64))
    out = np.zeros((proba.shape[0], len(classes)))
    for j, c in enumerate(estimator.classes_):
        out[:, classes.index(str(c))] = proba[:, j]
    return out


def _fit_other(estimator: Any, X: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> Any:
    """Fit a clone of any scikit-learn classifier on windows, weighted as the shipped estimator is where it can be."""
    from sklearn.base import clone
    from sklearn.utils.validation import has_fit_parameter

    from ..process import blas_threads

    model = clone(estimator)
    final = model.steps[-1] if hasattr(model, "steps") else None
    fit_params = {}
    if has_fit_parameter(final[1] if final else model, "sample_weight"):
        key = f"{final[0]}__sample_weight" if final else "sample_weight"
        fit_params[key] = training_weights(labels, groups)
    with blas_threads(1):  # see fit_estimator
        return model.fit(np.asarray(X, dtype=np.float64), labels, **fit_params)


def _fit_and_predict(X_train: np.ndarray, y_train: np.ndarray, strata_train: tuple[np.ndarray, ...], X_test: np.ndarray,
                     params: ModelParams, random_state: int, classes: tuple[str, ...],
                     other: Any = None) -> tuple[np.ndarray, Any]:
    recordings, speakers, corpora = strata_train  # FeatureSet.window_strata of the training rows
    if other is not None:
        return aligned_proba(_fit_other(other, X_train, y_train, recordings), X_test, classes), []
    estimator = fit_estimator(X_train, y_train, recordings, params, strata=(speakers, corpora),
                              random_state=random_state)
    return aligned_proba(estimator, X_test, classes), loss_curves(estimator)


def cross_validate(features: FeatureSet, folds: Sequence[tuple[np.ndarray, np.ndarray]],
                   params: ModelParams | None = None, *, augmented: bool = True, random_state: int = 0,
                   n_jobs: int | None = 1, estimator: Any = None) -> CVResult:
    """Out-of-fold window and utterance probabilities of the window-level model.

    Parameters
    ----------
    features : FeatureSet
    folds : sequence of (train_utterances, test_utterances)
        From :func:`speaker_folds` (or :func:`random_folds`, reported as :data:`RANDOM_SPLIT`).
    params : ModelParams
    augmented : bool
        Add the augmented copies of the training utterances to each training side.
    random_state : int
    n_jobs : int or None
        Folds fitted in parallel (joblib; ``None`` = all cores). Results do not depend on it.
    estimator : scikit-learn classifier, optional
        Evaluate a clone of this instead of the shipped estimator made from ``params`` (for comparing
        model families on the same folds; sample weights as the shipped one's when it accepts them).
    """
    from joblib import Parallel, delayed

    params = params if params is not None else ModelParams()
    labels_utt = features.labels
    classes = classes_of(labels_utt)
    window_labels = labels_utt[features.utterance_index]
    strata = features.window_strata()
    fold_rows = [training_rows(features, train_utt, test_utt, augmented=augmented) for train_utt, test_utt in folds]
    outputs = Parallel(n_jobs=n_jobs or -1)(
        delayed(_fit_and_predict)(features.X[train_rows], window_labels[train_rows],
                                  tuple(column[train_rows] for column in strata), features.X[test_rows], params,
                                  random_state, classes, estimator)
        for train_rows, test_rows in fold_rows
    )
    window_proba = np.zeros((features.X.shape[0], len(classes)))
    fold_of = np.full(len(labels_utt), -1)
    curves = []
    for k, ((_, test_utt), (_, test_rows), (proba, fold_curves)) in enumerate(zip(folds, fold_rows, outputs)):
        window_proba[test_rows] = proba
        fold_of[test_utt] = k
        curves.append(fold_curves)
    if np.any(fold_of < 0):
        raise ValueError("the folds do not cover every utterance")
    original_rows = np.flatnonzero(features.copy == 0)
    window_proba = window_proba[original_rows]
    window_utterance = features.utterance_index[original_rows]
    utterance_proba = utterance_mean(window_proba, window_utterance, len(labels_utt))
    return CVResult(classes, window_proba, window_utterance, utterance_proba, fold_of, curves)


def utterance_mean(window_proba: np.ndarray, window_utterance: np.ndarray, n_utterances: int) -> np.ndarray:
    """Each utterance's mean of its windows' probabilities (zeros for an utterance without windows)."""
    out = np.zeros((n_utterances, window_proba.shape[1]))
    np.add.at(out, window_utterance, window_proba)
    return out / np.maximum(np.bincount(window_utterance, minlength=n_utterances), 1)[:, None]


#: How :func:`leave_one_corpus_out` is described wherever its figure is shown.
LEAVE_ONE_CORPUS_OUT = "leave-one-corpus-out: trained on the other corpora, tested on all of this one"


def corpus_folds(features: FeatureSet) -> list[tuple[np.ndarray, np.ndarray]]:
    """One fold per corpus (in name order): its utterances are the test side, every other corpus's the training."""
    corpora = features.corpora
    return [(np.flatnonzero(corpora != c), np.flatnonzero(corpora == c)) for c in sorted(set(corpora.tolist()))]


def leave_one_corpus_out(features: FeatureSet, params: ModelParams | None = None, *, augmented: bool = True,
                         random_state: int = 0, n_jobs: int | None = 1) -> dict[str, Any] | None:
    """How the model does on a corpus it has never heard: each corpus in turn held out whole.

    A corpus shares its sentences, room, microphone and way of acting across its speakers, which a
    speaker-independent split within the corpora rewards; this measure does not. None with one corpus.

    Returns
    -------
    report : dict or None
        ``per_corpus`` (corpus -> utterance and window UAR), ``mean_utterance_uar`` and ``mean_window_uar``
        (over corpora, each counting once) and ``protocol``.
    """
    names = sorted(set(features.corpora.tolist()))
    if len(names) < 2:
        return None
    folds = corpus_folds(features)
    result = cross_validate(features, folds, params, augmented=augmented, random_state=random_state, n_jobs=n_jobs)
    report = full_report(result, features)
    per_corpus = {c: {"utterance_uar": report["utterance"][c]["uar"], "window_uar": report["window"][c]["uar"],
                      "n_utterances": report["utterance"][c]["n"]} for c in names}
    return {"protocol": LEAVE_ONE_CORPUS_OUT, "per_corpus": per_corpus,
            "mean_utterance_uar": float(np.mean([v["utterance_uar"] for v in per_corpus.values()])),
            "mean_window_uar": float(np.mean([v["window_uar"] for v in per_corpus.values()]))}


def mean_result(results: Sequence[CVResult]) -> CVResult:
    """Out-of-fold predictions of the soft-voting ensemble of several models run on the same folds."""
    first = results[0]
    if any(r.classes != first.classes or not np.array_equal(r.fold_of_utterance, first.fold_of_utterance)
           or r.window_proba is None for r in results):
        raise ValueError("the results must come from the same folds and classes, with window probabilities")
    return CVResult(first.classes, np.mean([r.window_proba for r in results], axis=0), first.window_utterance,
                    np.mean([r.utterance_proba for r in results], axis=0), first.fold_of_utterance)


def _fit_and_predict_classic(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, random_state: int,
                             classes: tuple[str, ...]) -> np.ndarray:
    from ..process import blas_threads
    from .classic import make_classic_estimator

    with blas_threads(1):  # see fit_estimator
        estimator = make_classic_estimator(random_state).fit(X_train, y_train)
        return aligned_proba(estimator, X_test, classes)


def cross_validate_classic(features: FeatureSet, folds: Sequence[tuple[np.ndarray, np.ndarray]], *,
                           random_state: int = 0, n_jobs: int | None = 1) -> CVResult:
    """Out-of-fold utterance probabilities of the classic recipe, on the same folds."""
    from joblib import Parallel, delayed

    if features.classic is None:
        raise ValueError("the classic recipe's features were not extracted (extract_dataset(classic=True))")
    labels = features.labels
    classes = classes_of(labels)
    outputs = Parallel(n_jobs=n_jobs or -1)(
        delayed(_fit_and_predict_classic)(features.classic[train], labels[train], features.classic[test],
                                          random_state, classes)
        for train, test in folds
    )
    proba = np.zeros((len(labels), len(classes)))
    fold_of = np.full(len(labels), -1)
    for k, ((_, test), fold_proba) in enumerate(zip(folds, outputs)):
        proba[test] = fold_proba
        fold_of[test] = k
    return CVResult(classes, None, None, proba, fold_of)


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """UAR (balanced accuracy over the classes present), accuracy, per-class recall, confusion matrix.

    The confusion matrix has true classes as rows and predictions as columns, in ``classes`` order.
    """
    from sklearn.metrics import confusion_matrix

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    present = [c for c in classes if np.any(y_true == c)]
    recall = {c: float(np.mean(y_pred[y_true == c] == c)) for c in present}
    return {
        "n": int(y_true.size),
        "uar": float(np.mean(list(recall.values()))) if recall else float("nan"),
        "accuracy": float(np.mean(y_true == y_pred)) if y_true.size else float("nan"),
        "recall": recall,
        "confusion": {"labels": list(classes),
                      "matrix": confusion_matrix(y_true, y_pred, labels=list(classes)).tolist()},
    }


def full_report(result: CVResult, features: FeatureSet) -> dict[str, Any]:
    """Reports overall and per corpus, per utterance and (when available) per window."""
    classes = np.array(result.classes)
    labels = features.labels
    corpora = features.corpora
    out: dict[str, Any] = {}
    levels = [("utterance", labels, classes[result.utterance_proba.argmax(axis=1)], corpora)]
    if result.window_proba is not None and result.window_utterance is not None:
        levels.append(("window", labels[result.window_utterance], classes[result.window_proba.argmax(axis=1)],
                       corpora[result.window_utterance]))
    for level, y_true, y_pred, corpus in levels:
        section = {"overall": classification_report(y_true, y_pred, result.classes)}
        for name, members in report_groups(corpus.tolist()).items():
            mask = np.isin(corpus, members)
            section[name] = classification_report(y_true[mask], y_pred[mask], result.classes)
        fold_uar = []
        fold_ids = result.fold_of_utterance
        if level == "window":
            fold_ids = fold_ids[result.window_utterance]
        for k in np.unique(result.fold_of_utterance):
            mask = fold_ids == k
            fold_uar.append(classification_report(y_true[mask], y_pred[mask], result.classes)["uar"])
        section["fold_uar"] = fold_uar
        out[level] = section
    return out


def calibration_report(proba: np.ndarray, labels: np.ndarray, classes: Sequence[str], *, n_bins: int = 10,
                       confident: float = 0.8) -> dict[str, Any]:
    """Whether the confidence shown (the top probability) is as high as the accuracy behind it.

    Parameters
    ----------
    proba : np.ndarray, shape (n, n_classes)
        Out-of-fold probabilities, columns in ``classes`` order.
    labels : np.ndarray, shape (n,)
    classes : sequence of str
    n_bins : int
        Equal-width confidence bins of the expected calibration error.
    confident : float
        The confidence from which an answer counts as a confident one.

    Returns
    -------
    report : dict
        ``ece`` (the mean gap between confidence and accuracy over the bins, weighted by their share),
        ``mean_confidence``, ``accuracy``, ``confident_share`` (share of answers at ``confident`` or above) and
        ``confident_accuracy`` (their accuracy; None when there are none), ``confident``, ``n_bins``, ``n``.
    """
    proba = np.asarray(proba, dtype=np.float64)
    confidence = proba.max(axis=1)
    correct = np.asarray(classes)[proba.argmax(axis=1)] == np.asarray(labels)
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    ece = sum(abs(correct[bins == b].mean() - confidence[bins == b].mean()) * np.mean(bins == b)
              for b in np.unique(bins))
    high = confidence >= confident
    return {"ece": round(float(ece), 4), "mean_confidence": round(float(confidence.mean()), 4),
            "accuracy": round(float(correct.mean()), 4), "confident": confident,
            "confident_share": round(float(high.mean()), 4),
            "confident_accuracy": round(float(correct[high].mean()), 4) if high.any() else None,
            "n_bins": n_bins, "n": int(correct.size)}


def fit_temperature(proba: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> float:
    """The temperature (:func:`~ser_live.model.emotion_model.apply_temperature`) from 1 to 20 that minimises the
    negative log-likelihood of ``labels`` under ``proba``.

    Never below 1: tempering only ever makes a model less sure. Fitted on the training data's folds, a temperature
    below 1 would make an underconfident model surer there, and so overconfident on the voices, rooms and
    microphones it has not heard, where it is right less often.
    """
    from scipy.optimize import minimize_scalar

    rows = np.arange(len(labels))
    truth = np.array([list(classes).index(label) for label in labels])

    def nll(log_t: float) -> float:
        tempered = apply_temperature(np.asarray(proba, dtype=np.float64), float(np.exp(log_t)))
        return float(-np.mean(np.log(np.maximum(tempered[rows, truth], 1e-12))))

    if nll(1e-3) >= nll(0.0):  # already no surer than it is right
        return 1.0
    best = minimize_scalar(nll, bounds=(0.0, np.log(20.0)), method="bounded", options={"xatol": 1e-3})
    return max(1.0, round(float(np.exp(best.x)), 3))


def calibration(result: CVResult, features: FeatureSet) -> dict[str, Any]:
    """The temperature a model fitted on all the data should carry, and whether the confidence it then shows is
    true: on the out-of-fold window probabilities of ``result``, the calibration before and after tempering, each
    fold tempered by the temperature fitted on the other folds (so the figure after is not flattered by fitting
    on what it measures), per window and per utterance (the tempered windows averaged).

    Returns
    -------
    report : dict
        ``temperature``, ``window`` and ``utterance`` (each ``before`` and ``after``, as
        :func:`calibration_report`).
    """
    if result.window_proba is None or result.window_utterance is None:
        raise ValueError("calibration needs the window probabilities of the cross-validation")
    classes, owner = result.classes, result.window_utterance
    labels = features.labels[owner]
    fold = result.fold_of_utterance[owner]
    tempered = np.empty_like(result.window_proba)
    for k in np.unique(fold):
        temperature = fit_temperature(result.window_proba[fold != k], labels[fold != k], classes)
        tempered[fold == k] = apply_temperature(result.window_proba[fold == k], temperature)
    utterances = {name: calibration_report(utterance_mean(windows, owner, len(features.labels)), features.labels,
                                           classes)
                  for name, windows in (("before", result.window_proba), ("after", tempered))}
    return {"temperature": fit_temperature(result.window_proba, labels, classes),
            "window": {"before": calibration_report(result.window_proba, labels, classes),
                       "after": calibration_report(tempered, labels, classes)},
            "utterance": utterances}

