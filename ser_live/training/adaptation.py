"""Speaker adaptation in training: the adaptive variant a model carries, fitted as the evaluation chose it.

The variant is an estimator trained on each training speaker's windows referenced to that speaker's
*neutral* speech (the raw features followed by the features standardised with the mean and standard
deviation of the speaker's neutral windows), with the training population's statistics as the prior
(:class:`~ser_live.model.speaker.SpeakerPrior`). Live, the reference is learnt from a neutral reading
(``--calibrate``, :data:`ENROLMENT_METHOD`) and, with ``--adapt``, from the windows the plain model
judges neutral (:data:`CONTINUOUS_METHOD`); both were compared with other methods under the protocols of
:mod:`ser_live.training.adaptation_eval`, which is also where the evidence for this choice lives.
Adaptation is off by default because no method passed the shipping rule there (see the model card).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..model.speaker import SpeakerPrior
from .adaptation_methods import METHODS, NEUTRAL, AdaptationMethod, fit_method, reference_statistics
from .extract import FeatureSet

__all__ = ["CONTINUOUS_METHOD", "ENROLMENT_METHOD", "speaker_statistics", "normalise_per_speaker",
           "population_prior", "fit_shipped_adaptation", "variant_summary"]

#: What ``--adapt`` does live: learn the neutral reference from windows the plain model judges neutral.
CONTINUOUS_METHOD: AdaptationMethod = next(m for m in METHODS if m.learn == "judged-neutral")
#: What ``--calibrate`` does live: learn it from a neutral reading, then freeze it.
ENROLMENT_METHOD: AdaptationMethod = next(m for m in METHODS if m.learn == "enrolment")
assert CONTINUOUS_METHOD.estimator_key == ENROLMENT_METHOD.estimator_key  # one estimator serves both


def speaker_statistics(X: np.ndarray, speakers: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Mean and (population) variance of each speaker's rows.

    Parameters
    ----------
    X : np.ndarray, shape (n_windows, n_features)
    speakers : np.ndarray, shape (n_windows,)

    Returns
    -------
    stats : dict
        Speaker → ``(mean, variance)``.
    """
    X = np.asarray(X, dtype=np.float64)
    return reference_statistics(X, np.asarray(speakers), np.zeros(len(X), dtype=str), "all")


def normalise_per_speaker(X: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    """Standardise each speaker's rows with that speaker's own mean and standard deviation."""
    out = np.empty(np.shape(X), dtype=np.float64)
    for speaker, (mean, var) in speaker_statistics(X, speakers).items():
        rows = speakers == speaker
        out[rows] = (np.asarray(X[rows], dtype=np.float64) - mean) / np.sqrt(np.maximum(var, 1e-12))
    return out


def population_prior(X: np.ndarray, speakers: np.ndarray, *, half_s: float) -> SpeakerPrior:
    """Population statistics: mean of the speaker means, root of the mean per-speaker variance."""
    stats = list(speaker_statistics(X, speakers).values())
    mean = np.mean([m for m, _ in stats], axis=0)
    std = np.sqrt(np.maximum(np.mean([v for _, v in stats], axis=0), 1e-12))
    return SpeakerPrior(mean=mean, std=std, half_s=half_s)


def fit_shipped_adaptation(features: FeatureSet, training_config: Any, *, n_jobs: int | None = None) -> Any:
    """Fit the shipped adaptive variant on every speaker's original windows.

    Parameters
    ----------
    features : FeatureSet
    training_config : TrainingConfig
        The base model's configuration (estimator hyper-parameters, seed).
    n_jobs : int or None
        Networks fitted in parallel (``None`` = all cores).

    Returns
    -------
    adaptation : ModelAdaptation
        For :class:`~ser_live.model.emotion_model.EmotionModel`: the neutral-referenced estimator, its prior (with
        :data:`CONTINUOUS_METHOD`'s ``half_s``) and the neutral threshold of ``--adapt``.
    """
    from ..model.emotion_model import ModelAdaptation

    rows = np.flatnonzero(features.copy == 0)
    owner = features.utterance_index[rows]
    fitted = fit_method(CONTINUOUS_METHOD, features.X[rows], features.speakers[owner], features.labels[owner], owner,
                        training_config.params, corpora=features.corpora[owner],
                        random_state=training_config.random_state, n_jobs=n_jobs or -1)
    prior = SpeakerPrior(fitted.mean, fitted.std, half_s=CONTINUOUS_METHOD.half_s)
    return ModelAdaptation(fitted.estimator, prior, blend=True, inputs="raw+normalised", reference=NEUTRAL,
                           neutral_threshold=CONTINUOUS_METHOD.neutral_threshold)


def variant_summary() -> dict[str, Any]:
    """What ``metrics.json`` records of the adaptive variant a model carries (``adaptive_variant``)."""
    return {"reference": NEUTRAL, "inputs": "raw+normalised", "blend": True,
            "half_s": CONTINUOUS_METHOD.half_s, "neutral_threshold": CONTINUOUS_METHOD.neutral_threshold,
            "adapt": CONTINUOUS_METHOD.name, "calibrate": ENROLMENT_METHOD.name, "default": "off"}
