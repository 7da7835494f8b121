"""A trained model's confidence made true where it has never been: its temperature, fitted on unheard corpora."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..model.emotion_model import EmotionModel, apply_temperature
from .evaluate import CVResult, calibration_report, fit_temperature, utterance_mean
from .extract import FeatureSet

__all__ = ["UNHEARD_PROTOCOL", "HELD_OUT_PROTOCOL", "raw_probabilities", "calibrate_on_unheard",
           "calibrate_on_held_out", "calibration_per_corpus", "calibration_summary"]

#: How the figures of :func:`calibrate_on_unheard` are described wherever they are shown.
UNHEARD_PROTOCOL = ("corpora the model never heard in training, each tempered by the temperature fitted on the "
                    "others (so none is calibrated on itself)")
#: How the figures of :func:`calibrate_on_held_out` are described.
HELD_OUT_PROTOCOL = ("each corpus scored by the same recipe trained on the other corpora (leave-one-corpus-out), "
                     "tempered by the temperature fitted on the others' scores (so none is calibrated on itself)")


def raw_probabilities(model: EmotionModel, X: np.ndarray) -> np.ndarray:
    """The model's probabilities for windows ``X`` before its temperature (columns in ``model.classes`` order)."""
    return model.untempered(model.predict_proba(np.atleast_2d(X)))


def _reports(window_proba: np.ndarray, owner: np.ndarray, labels: np.ndarray,
             classes: Sequence[str]) -> dict[str, Any]:
    """Calibration per window and per recording (its windows' probabilities averaged, as --classify does)."""
    return {"window": calibration_report(window_proba, labels[owner], classes),
            "utterance": calibration_report(utterance_mean(window_proba, owner, labels.size), labels, classes)}


def calibrate_on_unheard(model: EmotionModel, features: FeatureSet) -> dict[str, Any]:
    """The temperature that makes ``model``'s confidence true on corpora it never heard, and how true it then is.

    Parameters
    ----------
    model : EmotionModel
        A trained model (its own temperature is undone first).
    features : FeatureSet
        Windows of recordings of at least two corpora the model was not trained on, made with its extractor.

    Returns
    -------
    report : dict
        ``temperature`` (fitted on every window, at least 1, as :func:`~ser_live.training.evaluate.fit_temperature`),
        ``protocol``, and ``per_corpus``: for each corpus, ``temperature_from_others`` and ``before`` / ``after``
        (untempered, and tempered by the temperature fitted on the other corpora), each with ``window`` and
        ``utterance`` :func:`~ser_live.training.evaluate.calibration_report`.

    Raises
    ------
    ValueError
        With fewer than two corpora, or labels the model does not have.
    """
    classes = list(model.classes)
    labels, corpora = features.labels, features.corpora
    names = sorted(set(corpora.tolist()))
    if len(names) < 2:
        raise ValueError("calibrating on corpora never heard needs at least two of them, each tempered by the others")
    unknown = sorted(set(labels.tolist()) - set(classes))
    if unknown:
        raise ValueError(f"the recordings have classes the model does not: {', '.join(unknown)}")
    original = features.copy == 0
    proba = raw_probabilities(model, features.X[original])
    return _calibration(proba, features.utterance_index[original], features, classes, UNHEARD_PROTOCOL, "unheard")


def calibrate_on_held_out(held_out: CVResult, features: FeatureSet) -> dict[str, Any]:
    """The temperature for a model trained on every corpus of ``features``, fitted on its recipe's
    leave-one-corpus-out predictions (the nearest thing to corpora it never heard), and how true it then is.

    Parameters
    ----------
    held_out : CVResult
        :func:`~ser_live.training.evaluate.cross_validate` on folds that each hold out one corpus (untempered
        window probabilities).
    features : FeatureSet
        The features it was made from (at least two corpora).

    Returns
    -------
    report : dict
        As :func:`calibrate_on_unheard`'s, with :data:`HELD_OUT_PROTOCOL`.

    Raises
    ------
    ValueError
        With fewer than two corpora, or without window probabilities.
    """
    if held_out.window_proba is None or len(set(features.corpora.tolist())) < 2:
        raise ValueError("calibrating on held-out corpora needs window probabilities of at least two of them")
    return _calibration(held_out.window_proba, held_out.window_utterance, features, held_out.classes,
                        HELD_OUT_PROTOCOL, "held out")


def _calibration(proba: np.ndarray, owner: np.ndarray, features: FeatureSet, classes: Sequence[str], protocol: str,
                 corpora_were: str) -> dict[str, Any]:
    labels = features.labels
    return {"protocol": protocol, "corpora_were": corpora_were,
            "temperature": fit_temperature(proba, labels[owner], classes),
            "per_corpus": calibration_per_corpus(proba, owner, labels, features.corpora, classes)}


def calibration_per_corpus(proba: np.ndarray, owner: np.ndarray, labels: np.ndarray, corpora: np.ndarray,
                           classes: Sequence[str]) -> dict[str, Any]:
    """Each corpus's calibration before and after the temperature fitted on the other corpora's windows only.

    Parameters
    ----------
    proba : np.ndarray, shape (n_windows, n_classes)
        Untempered window probabilities, columns in ``classes`` order.
    owner : np.ndarray, shape (n_windows,)
        The utterance of each window.
    labels, corpora : np.ndarray, shape (n_utterances,)
        Each utterance's class and corpus.
    classes : sequence of str

    Returns
    -------
    dict
        Corpus -> ``temperature_from_others`` and ``before`` / ``after``, each with ``window`` and ``utterance``
        :func:`~ser_live.training.evaluate.calibration_report`.
    """
    window_corpus = corpora[owner]
    out = {}
    for corpus in sorted(set(corpora.tolist())):
        here, others = window_corpus == corpus, window_corpus != corpus
        temperature = fit_temperature(proba[others], labels[owner[others]], classes)
        members = np.flatnonzero(corpora == corpus)
        local = np.searchsorted(members, owner[here])
        out[corpus] = {
            "temperature_from_others": temperature,
            "before": _reports(proba[here], local, labels[members], classes),
            "after": _reports(apply_temperature(proba[here], temperature), local, labels[members], classes),
        }
    return out


def calibration_summary(report: dict[str, Any]) -> dict[str, Any]:
    """What a model file carries of :func:`calibrate_on_unheard`'s report (for the window's model panel): the
    temperature and, per corpus, the tempered window ECE and accuracy of the answers shown at 80 % or more."""
    return {"temperature": report["temperature"], "protocol": report["protocol"],
            "corpora_were": report.get("corpora_were", "unheard"),
            "per_corpus": {c: {"ece": v["after"]["window"]["ece"],
                               "confident_accuracy": v["after"]["window"]["confident_accuracy"],
                               "confident_share": v["after"]["window"]["confident_share"]}
                           for c, v in report["per_corpus"].items()}}
