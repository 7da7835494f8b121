"""The shipped estimator: StandardScaler + a seed-averaged MLP, and the sample weights it is trained with."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

__all__ = ["WEIGHTINGS", "ModelParams", "make_estimator", "training_weights", "hierarchical_weights", "window_weights",
           "fit_estimator", "loss_curves"]


#: How a corpus's share within a class grows with its number of speakers: ``"recording"`` is the shipped
#: weighting (every recording of a class counts equally, so the largest corpus outvotes the others);
#: ``"corpus"`` gives each corpus that has the class an equal share, ``"sqrt-speakers"`` a share growing with the
#: square root of its speakers (a corpus of 65 voices says more about people than one of 2, but not 30 times more).
WEIGHTINGS = ("recording", "corpus", "sqrt-speakers")


@dataclasses.dataclass(frozen=True)
class ModelParams:
    """Hyper-parameters of the shipped model.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int
    alpha : float
        L2 penalty.
    n_seeds : int
        MLPs trained from different initialisations whose probabilities are averaged (soft
        voting); averaging steadies the noisy decisions of a single small network.
    max_iter : int
        Epoch limit; early stopping on a held-out 10 % usually ends training well before it.
    early_stopping : bool
        Stop when the accuracy on a random 10 % of the training windows stops improving; without
        it, training runs ``max_iter`` epochs (or until the loss stops falling).
    learning_rate_init : float
    batch_size : int
    class_balanced : bool
        Weight windows so every class, and every utterance within a class, counts equally.
    activation : str
        Hidden-layer activation.
    max_features : float or None
        When set, each averaged network sees a random fraction of the features (random subspaces,
        ``BaggingClassifier``) instead of all of them with another seed: more diverse members.
    clip_z : float or None
        Clip standardised features to +-``clip_z``: a window with an extreme value (a click, a
        pitch-tracker octave jump) then cannot push the network far outside what it was trained on.
    layer_blocks : int or None
        When set, the standardised features (``layer_blocks`` equal blocks, e.g. an encoder's blocks) are
        replaced by their weighted sum with learnt weights (:class:`~ser_live.training.layer_weights.
        LayerWeightedSum`), standardised again, before the networks. A study candidate: such an estimator
        predicts through scikit-learn and needs ser-live's training code to unpickle.
    weighting : str
        With ``class_balanced``, how a class's weight is shared out (:data:`WEIGHTINGS`): ``"recording"`` equally
        over its recordings, ``"corpus"`` / ``"sqrt-speakers"`` over corpora, then speakers, then recordings
        (:func:`hierarchical_weights`).
    """

    hidden_layer_sizes: tuple[int, ...] = (256,)
    alpha: float = 1e-2
    n_seeds: int = 3
    max_iter: int = 200
    learning_rate_init: float = 1e-3
    batch_size: int = 256
    class_balanced: bool = True
    clip_z: float | None = None
    activation: str = "relu"
    max_features: float | None = None
    early_stopping: bool = True
    layer_blocks: int | None = None
    weighting: str = "recording"

    def __post_init__(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, not {self.weighting!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary for metadata and metrics files."""
        record = dataclasses.asdict(self)
        # Records made before these options keep their form (and fingerprints).
        if self.layer_blocks is None:
            del record["layer_blocks"]
        if self.weighting == "recording":
            del record["weighting"]
        return record


def make_estimator(params: ModelParams = ModelParams(), *, random_state: int = 0) -> Any:
    """Unfitted ``Pipeline(StandardScaler, MLPClassifier)``, or with a soft-voting ensemble of MLPs.

    Only scikit-learn classes are used (unless ``params.layer_blocks`` is set), so a saved model unpickles
    without importing training code.
    """
    from sklearn.ensemble import VotingClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    def mlp(seed: int) -> MLPClassifier:
        return MLPClassifier(hidden_layer_sizes=params.hidden_layer_sizes, alpha=params.alpha,
                             learning_rate_init=params.learning_rate_init, batch_size=params.batch_size,
                             max_iter=params.max_iter, early_stopping=params.early_stopping, n_iter_no_change=10,
                             activation=params.activation, random_state=seed)

    if params.max_features is not None:
        from sklearn.ensemble import BaggingClassifier

        head: Any = BaggingClassifier(mlp(random_state), n_estimators=params.n_seeds, max_samples=1.0,
                                      bootstrap=False, max_features=params.max_features, random_state=random_state)
    elif params.n_seeds == 1:
        head = mlp(random_state)
    else:
        head = VotingClassifier([(f"seed{i}", mlp(random_state + i)) for i in range(params.n_seeds)], voting="soft")
    steps: list[tuple[str, Any]] = [("scaler", StandardScaler())]
    if params.clip_z is not None:
        # np.clip keeps the pickle free of ser-live code (FunctionTransformer stores a reference to it).
        steps.append(("clip", FunctionTransformer(np.clip, kw_args={"a_min": -params.clip_z, "a_max": params.clip_z})))
    if params.layer_blocks is not None:
        from .layer_weights import LayerWeightedSum

        steps += [("layers", LayerWeightedSum(params.layer_blocks)), ("rescale", StandardScaler())]
    return Pipeline([*steps, ("mlp", head)])


def training_weights(labels: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per-window weights: each group (an utterance copy) sums to its class's share, classes weigh equally.

    Parameters
    ----------
    labels : np.ndarray, shape (n_windows,)
    groups : np.ndarray, shape (n_windows,)
        Windows with the same value come from the same recording (or augmented copy of it), so a
        long recording does not outweigh a short one.

    Returns
    -------
    weights : np.ndarray, shape (n_windows,), mean 1
    """
    _, group_id, group_size = np.unique(groups, return_inverse=True, return_counts=True)
    per_window = 1.0 / group_size[group_id]
    classes, class_id = np.unique(labels, return_inverse=True)
    class_total = np.bincount(class_id, weights=per_window, minlength=classes.size)
    weights = per_window / class_total[class_id]
    return weights * (weights.size / weights.sum())



def _distinct_per(key: np.ndarray, member: np.ndarray) -> np.ndarray:
    """For each row, how many distinct ``member`` values share its ``key``."""
    pairs = np.unique(np.stack([key, member], axis=1), axis=0)
    keys, counts = np.unique(pairs[:, 0], return_counts=True)
    return counts[np.searchsorted(keys, key)]


def hierarchical_weights(labels: np.ndarray, groups: np.ndarray, speakers: np.ndarray, corpora: np.ndarray, *,
                         weighting: str = "corpus") -> np.ndarray:
    """Per-window weights: every class counts equally; within a class, each corpus that has it counts as
    ``weighting`` says, each speaker within that corpus equally and each recording of that speaker equally (its
    windows share the recording's weight).

    Parameters
    ----------
    labels, groups, speakers, corpora : np.ndarray, shape (n_windows,)
        Each window's class, recording (or augmented copy), speaker and corpus.
    weighting : {"corpus", "sqrt-speakers"}
        A corpus's share of a class: equal, or in proportion to the square root of its speakers of that class.

    Returns
    -------
    weights : np.ndarray, shape (n_windows,), mean 1
    """
    if weighting not in WEIGHTINGS[1:]:
        raise ValueError(f"weighting must be one of {WEIGHTINGS[1:]}, not {weighting!r}")
    labels, groups = np.asarray(labels).astype(str), np.asarray(groups).astype(str)
    speakers, corpora = np.asarray(speakers).astype(str), np.asarray(corpora).astype(str)
    _, group_id, group_size = np.unique(groups, return_inverse=True, return_counts=True)
    class_corpus = np.char.add(np.char.add(labels, "\0"), corpora)
    class_speaker = np.char.add(np.char.add(class_corpus, "\0"), speakers)
    speakers_here = _distinct_per(class_corpus, speakers).astype(np.float64)
    weights = 1.0 / (group_size[group_id] * _distinct_per(class_speaker, groups) * speakers_here)
    corpus_share = np.ones_like(weights) if weighting == "corpus" else np.sqrt(speakers_here)
    weights = weights * corpus_share
    classes, class_id = np.unique(labels, return_inverse=True)
    class_total = np.bincount(class_id, weights=weights, minlength=classes.size)
    weights = weights / class_total[class_id]
    return weights * (weights.size / weights.sum())


def window_weights(labels: np.ndarray, groups: np.ndarray, weighting: str = "recording",
                   strata: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Per-window training weights as ``weighting`` says (:data:`WEIGHTINGS`).

    ``strata`` is each window's (speaker, corpus), needed by every weighting but ``"recording"``.

    Raises
    ------
    ValueError
        If the weighting needs ``strata`` and none are given.
    """
    if weighting == "recording":
        return training_weights(labels, groups)
    if strata is None:
        raise ValueError(f"the {weighting!r} weighting needs each window's speaker and corpus")
    return hierarchical_weights(labels, groups, *strata, weighting=weighting)


def fit_estimator(X: np.ndarray, labels: np.ndarray, groups: np.ndarray, params: ModelParams | None = None,
                  *, strata: tuple[np.ndarray, np.ndarray] | None = None, random_state: int = 0,
                  n_jobs: int | None = None) -> Any:
    """Make and fit the estimator on windows (see :func:`training_weights` for ``groups``, :func:`window_weights`
    for ``strata``, each window's speaker and corpus).

    ``n_jobs`` fits the averaged networks in parallel; it is reset afterwards so the saved model
    never starts worker processes when it predicts.
    """
    params = params if params is not None else ModelParams()
    from ..process import blas_threads

    estimator = make_estimator(params, random_state=random_state)
    fit_params = {}
    if params.class_balanced:
        weights = window_weights(labels, groups, params.weighting, strata)
        fit_params = {"mlp__sample_weight": weights} | ({"layers__sample_weight": weights}
                                                        if params.layer_blocks is not None else {})
    # One BLAS thread: the matrices are small, and on a shared 2-core machine OpenBLAS's spinning
    # worker threads made each epoch 3x slower. float32 halves the arithmetic again.
    parallel = n_jobs not in (None, 1) and params.n_seeds > 1
    if parallel:
        estimator.set_params(mlp__n_jobs=n_jobs)
    with blas_threads(1):
        estimator.fit(np.asarray(X, dtype=np.float32), labels, **fit_params)
    if parallel:
        estimator.set_params(mlp__n_jobs=None)
    _drop_training_state(estimator)
    return estimator


def _mlps(estimator: Any) -> list[Any]:
    head = estimator[-1]
    return list(getattr(head, "estimators_", [head]))


def _drop_training_state(estimator: Any) -> None:
    """Remove what only further training needs (Adam's moment estimates, the early-stopping copy of the
    best weights): three quarters of a saved network, and predictions do not use it."""
    for mlp in _mlps(estimator):
        for name in ("_optimizer", "_best_coefs", "_best_intercepts"):
            if hasattr(mlp, name):
                delattr(mlp, name)


def loss_curves(estimator: Any) -> list[dict[str, list[float]]]:
    """Training loss and validation accuracy per epoch of each MLP in a fitted estimator."""
    return [{"loss": [float(v) for v in m.loss_curve_],
             "validation_accuracy": [float(v) for v in (m.validation_scores_ or [])]} for m in _mlps(estimator)]
