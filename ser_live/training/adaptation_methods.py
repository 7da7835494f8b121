"""Ways of adapting to a speaker, compared on the same streams: each fitted on training speakers, then run causally.

Every method standardises a window's features with a *reference* for the current speaker, blended with
the training population's as speech is heard (weight ``heard_s / (heard_s + half_s)``, at most
``weight_cap``), feeds the raw and the referenced features to an estimator trained the same way on
the training speakers, and mixes its probabilities with the unadapted model's by the same weight. They
differ in what the reference is and which windows it learns from (:class:`AdaptationMethod`):

- ``reference="all"``: the mean and spread of all of the speaker's speech; ``"neutral"``: of their
  neutral speech only (Busso et al.'s idea behind iterative feature normalisation: the neutral voice is
  the speaker's baseline, and emotion is the distance from it);
- ``learn="every"``: every speech window updates it (the monitor before this evaluation);
  ``"judged-neutral"``: only windows the unadapted model calls neutral with probability at least
  ``neutral_threshold``; ``"enrolment"``: a short neutral reading before monitoring, then frozen
  (``--calibrate``);
- ``normalise="standardise"``: every feature by the reference's mean and standard deviation;
  ``"speaker-directions"``: only the reference mean's offset along the ``n_directions`` directions in
  which training speakers differ most relative to how emotions differ (a nuisance-attribute projection
  learnt from the training speakers), so a held mood, which moves the mean along emotion directions,
  moves the reference little.

Windows are scored *before* they update the statistics, as in the monitor
(:class:`ser_live.engine.monitor.WindowAnalyzer`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..model.speaker import adaptive_input
from .estimator import ModelParams, fit_estimator

__all__ = ["NEUTRAL", "AdaptationMethod", "FittedMethod", "METHODS", "fit_method", "reference_statistics",
           "speaker_directions", "causal_statistics", "stream_inputs", "blend_streams"]

NEUTRAL = "neutral"


@dataclasses.dataclass(frozen=True)
class AdaptationMethod:
    """One way of adapting (see the module docstring); ``name`` is how tables call it."""

    name: str
    reference: str = "all"
    learn: str = "every"
    normalise: str = "standardise"
    half_s: float = 2.5
    weight_cap: float = 1.0
    neutral_threshold: float = 0.5
    enrol_s: float = 20.0
    n_directions: int = 8

    def __post_init__(self) -> None:
        if self.reference not in ("all", NEUTRAL) or self.learn not in ("every", "judged-neutral", "enrolment") \
                or self.normalise not in ("standardise", "speaker-directions"):
            raise ValueError(f"method {self.name!r}: unknown reference, learn or normalise setting")
        if not (self.half_s > 0 and 0 < self.weight_cap <= 1 and self.enrol_s > 0 and self.n_directions > 0):
            raise ValueError(f"method {self.name!r}: half_s, enrol_s and n_directions must be positive, "
                             "weight_cap in (0, 1]")

    @property
    def estimator_key(self) -> tuple[str, str]:
        """Methods with the same key share one fitted estimator per fold."""
        return self.reference, self.normalise

    def weight(self, heard_s: np.ndarray) -> np.ndarray:
        """Weight of the speaker's reference after ``heard_s`` seconds of learnt speech."""
        heard_s = np.asarray(heard_s, dtype=np.float64)
        return np.minimum(heard_s / (heard_s + self.half_s), self.weight_cap)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: The methods compared, with settings fixed before the evaluation (never tuned on its folds): today's
#: running statistics, a slow and bounded version of them, and three that separate voice from mood.
METHODS = (
    AdaptationMethod("running statistics (until now)"),
    AdaptationMethod("running, slow and bounded", half_s=60.0, weight_cap=0.5),
    AdaptationMethod("judged-neutral statistics", reference=NEUTRAL, learn="judged-neutral", half_s=5.0),
    AdaptationMethod("speaker directions", normalise="speaker-directions", half_s=10.0),
    AdaptationMethod("neutral enrolment (--calibrate)", reference=NEUTRAL, learn="enrolment", half_s=5.0),
)


@dataclasses.dataclass
class FittedMethod:
    """An estimator fitted on referenced training features, with the population's statistics.

    Attributes
    ----------
    estimator : fitted scikit-learn estimator
    mean, std : np.ndarray
        Mean of the training speakers' reference means; root of their mean reference variance.
    projector : np.ndarray or None
        ``(n_features, n_features)`` projection onto the speaker directions (``"speaker-directions"``).
    """

    estimator: Any
    mean: np.ndarray
    std: np.ndarray
    projector: np.ndarray | None = None


def reference_statistics(X: np.ndarray, speakers: np.ndarray, labels: np.ndarray,
                         reference: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each speaker's reference mean and variance over their windows (all, or neutral ones only).

    A speaker without neutral windows falls back to all their windows.
    """
    out = {}
    for speaker in np.unique(speakers):
        own = speakers == speaker
        chosen = own & (labels == NEUTRAL) if reference == NEUTRAL else own
        rows = X[chosen if chosen.any() else own]
        out[str(speaker)] = (rows.mean(axis=0), rows.var(axis=0))
    return out


def speaker_directions(Z: np.ndarray, speakers: np.ndarray, labels: np.ndarray, n_directions: int, *,
                       ridge: float = 0.1) -> np.ndarray:
    """Projector onto the directions where speakers differ most relative to emotions.

    Generalised eigenvectors ``V`` of the between-speaker scatter ``Sb`` (of speaker means) against the
    emotion scatter ``Se`` (of each speaker's emotion means about their own mean), ridge-regularised;
    the projector ``V V^T Se`` removes a vector's component along them (in the ``Se`` metric).

    Parameters
    ----------
    Z : np.ndarray, shape (n_windows, n_features)
        Standardised features.
    speakers, labels : np.ndarray, shape (n_windows,)
    n_directions : int
    ridge : float
        Added to ``Se`` as this share of its mean eigenvalue.
    """
    from scipy.linalg import eigh

    speaker_means, emotion_offsets = [], []
    for speaker in np.unique(speakers):
        own = speakers == speaker
        mean = Z[own].mean(axis=0)
        speaker_means.append(mean)
        emotion_offsets += [Z[own & (labels == e)].mean(axis=0) - mean for e in np.unique(labels[own])]
    B = np.asarray(speaker_means) - np.mean(speaker_means, axis=0)
    E = np.asarray(emotion_offsets)
    between, emotion = B.T @ B / len(B), E.T @ E / len(E)
    emotion += ridge * np.trace(emotion) / emotion.shape[0] * np.eye(emotion.shape[0])
    _, vectors = eigh(between, emotion)  # ascending; vectors are Se-orthonormal
    V = vectors[:, -min(n_directions, len(B) - 1):]
    return V @ V.T @ emotion


def _referenced(method: AdaptationMethod, X: np.ndarray, ref_mean: np.ndarray, ref_var: np.ndarray,
                fitted: FittedMethod) -> np.ndarray:
    """The referenced features of rows ``X`` given each row's reference mean and variance."""
    if method.normalise == "standardise":
        return (X - ref_mean) / np.sqrt(np.maximum(ref_var, 1e-12))
    assert fitted.projector is not None
    offset = (ref_mean - fitted.mean) / fitted.std
    return (X - fitted.mean) / fitted.std - offset @ fitted.projector.T


def fit_method(method: AdaptationMethod, X: np.ndarray, speakers: np.ndarray, labels: np.ndarray,
               groups: np.ndarray, params: ModelParams, *, corpora: np.ndarray | None = None,
               random_state: int = 0, n_jobs: int | None = 1) -> FittedMethod:
    """Fit ``method``'s estimator on training windows (each speaker referenced by their own statistics).

    Parameters
    ----------
    method : AdaptationMethod
    X : np.ndarray, shape (n_windows, n_features)
    speakers, labels, groups : np.ndarray, shape (n_windows,)
        Speaker, emotion and utterance of each window.
    params : ModelParams
    corpora : np.ndarray, shape (n_windows,), optional
        Corpus of each window: needed when ``params.weighting`` shares classes out over corpora.
    """
    X = np.asarray(X, dtype=np.float64)
    stats = reference_statistics(X, speakers, labels, method.reference)
    mean = np.mean([m for m, _ in stats.values()], axis=0)
    std = np.sqrt(np.maximum(np.mean([v for _, v in stats.values()], axis=0), 1e-12))
    fitted = FittedMethod(None, mean, std)
    if method.normalise == "speaker-directions":
        fitted.projector = speaker_directions((X - mean) / std, speakers, labels, method.n_directions)
    ref_mean = np.empty_like(X)
    ref_var = np.empty_like(X)
    for speaker, (m, v) in stats.items():
        ref_mean[speakers == speaker], ref_var[speakers == speaker] = m, v
    inputs = adaptive_input(X, _referenced(method, X, ref_mean, ref_var, fitted), "raw+normalised")
    strata = (speakers, corpora) if corpora is not None else None
    fitted.estimator = fit_estimator(inputs, labels, groups, params, strata=strata, random_state=random_state,
                                     n_jobs=n_jobs)
    return fitted


def causal_statistics(X: np.ndarray, learn: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Running mean, variance and count of the learnt rows *before* each row.

    Parameters
    ----------
    X : np.ndarray, shape (n, n_features)
    learn : np.ndarray of bool, shape (n,)
        Which rows update the statistics (after they are scored).
    """
    weights = np.asarray(learn, dtype=np.float64)[:, None]
    sums = np.vstack([np.zeros((1, X.shape[1])), np.cumsum(X * weights, axis=0)])[:-1]
    squares = np.vstack([np.zeros((1, X.shape[1])), np.cumsum(X * X * weights, axis=0)])[:-1]
    count = np.concatenate([[0.0], np.cumsum(weights[:, 0])])[:-1]
    safe = np.maximum(count, 1.0)[:, None]
    mean = sums / safe
    return mean, np.maximum(squares / safe - mean * mean, 0.0), count


def _learnt(method: AdaptationMethod, X: np.ndarray, base: np.ndarray, neutral_column: int,
            enrolment: np.ndarray | None, hop_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference mean, variance and seconds learnt before each window of a stream."""
    if method.learn == "enrolment":  # frozen after the reading; no reading, nothing learnt
        n = X.shape[0]
        if enrolment is None or not len(enrolment):
            return np.zeros_like(X), np.zeros_like(X), np.zeros(n)
        return (np.tile(enrolment.mean(axis=0), (n, 1)), np.tile(enrolment.var(axis=0), (n, 1)),
                np.full(n, len(enrolment) * hop_s))
    learn = (np.ones(X.shape[0], bool) if method.learn == "every" else
             base[:, neutral_column] >= method.neutral_threshold)
    mean, var, count = causal_statistics(X, learn)
    return mean, var, count * hop_s


def stream_inputs(method: AdaptationMethod, fitted: FittedMethod, X: np.ndarray, base: np.ndarray,
                  neutral_column: int, *, hop_s: float,
                  enrolment: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The estimator's input rows for one stream, and the adaptation weight at each window.

    Parameters
    ----------
    X : np.ndarray, shape (n, n_features)
        The stream's window features, in the order heard.
    base : np.ndarray, shape (n, n_classes)
        The unadapted model's probabilities of those windows.
    neutral_column : int
        Column of ``base`` that is neutral.
    enrolment : np.ndarray, optional
        Feature rows of the neutral enrolment (``learn="enrolment"``).
    """
    mean, var, heard_s = _learnt(method, X, base, neutral_column, enrolment, hop_s)
    weight = method.weight(heard_s)
    # Blend the speaker's statistics with the population's, as SpeakerNormalizer does.
    ref_mean = weight[:, None] * mean + (1 - weight[:, None]) * fitted.mean
    ref_var = weight[:, None] * var + (1 - weight[:, None]) * np.square(fitted.std)
    return adaptive_input(X, _referenced(method, X, ref_mean, ref_var, fitted), "raw+normalised"), weight


def blend_streams(adapted: np.ndarray, base: np.ndarray, weights: Sequence[float] | np.ndarray) -> np.ndarray:
    """``w * adapted + (1 - w) * base`` row by row."""
    w = np.asarray(weights, dtype=np.float64)[:, None]
    return w * adapted + (1 - w) * base
