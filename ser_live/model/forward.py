"""Numpy forward pass of ser-live's scikit-learn classifiers: predicting never imports scikit-learn.

Importing scikit-learn takes about 0.7 s, most of a start-up. The estimators ser-live makes
(:mod:`ser_live.training.estimator`) are a few matrix products, so a model file also stores their
arrays (its ``inference`` entry, see :mod:`ser_live.model.emotion_model`) and predictions run them here with
numpy. :func:`compile_checked` extracts those arrays from a fitted estimator and refuses any whose
result differs from the estimator's own ``predict_proba``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["COMPILED_TOLERANCE", "ForwardPass", "compile_checked", "inference_arrays"]

#: Largest difference from scikit-learn's ``predict_proba`` a compiled forward pass may show.
COMPILED_TOLERANCE = 1e-9


def _relu(a: np.ndarray) -> None:
    np.maximum(a, 0.0, out=a)


def _tanh(a: np.ndarray) -> None:
    np.tanh(a, out=a)


def _logistic(a: np.ndarray) -> None:
    from scipy.special import expit  # the function scikit-learn uses; the features load scipy anyway

    expit(a, out=a)


def _identity(a: np.ndarray) -> None:
    pass


#: In-place hidden-layer activations, named as in ``MLPClassifier(activation=...)``.
_HIDDEN_ACTIVATIONS = {"relu": _relu, "tanh": _tanh, "logistic": _logistic, "identity": _identity}
_COMBINATIONS = ("single", "vote", "bagging")


class _SingleThreadedBlas:
    """Runs batched products with one BLAS thread.

    A batch of 20 windows through a (208, 256) layer is big enough for OpenBLAS to split it over
    threads; on a loaded two-core machine the product then took 32 ms at the 95th percentile
    instead of 0.08 ms. threadpoolctl (5 ms to import and inspect the process) is only loaded by
    the first batch: single windows, the live monitor's case, stay on plain products.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._controller: Any = None

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        # The lock keeps concurrent batches from restoring each other's thread counts out of order.
        with self._lock:
            if self._controller is None:
                try:
                    from threadpoolctl import ThreadpoolController
                except ImportError:  # optional: without it, batches just use BLAS's default
                    self._controller = False
                else:
                    self._controller = ThreadpoolController()
            if self._controller is False:
                yield
            else:
                with self._controller.limit(limits=1, user_api="blas"):
                    yield


_single_threaded_blas = _SingleThreadedBlas()


def _float_array(value: Any, what: str, ndim: int) -> np.ndarray:
    """A float64 copy (the compiled pass never shares memory with the estimator), checked."""
    array = np.asarray(value)
    if array.dtype.kind not in "fiu" or array.ndim != ndim:
        raise ValueError(f"{what} is not a {ndim}-D array of numbers")
    array = np.array(array, dtype=np.float64, copy=True)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} holds non-finite values")
    return array


def _index_array(value: Any, what: str, upper: int, *, unique: bool) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "iu" or array.ndim != 1 or array.size == 0:
        raise ValueError(f"{what} is not a list of indices")
    if array.min() < 0 or array.max() >= upper:
        raise ValueError(f"{what} holds indices outside 0..{upper - 1}")
    if unique and np.unique(array).size != array.size:
        raise ValueError(f"{what} repeats an index")
    return array.astype(np.intp)


def _subsets(entry: dict[str, Any], n_features: int, n_classes: int,
             where: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The features a network sees and the classes it predicts, when not all (bagging's subsets)."""
    features, columns = entry.get("features"), entry.get("columns")
    if features is not None:  # bagging with bootstrap_features may repeat a column
        features = _index_array(features, f"{where}'s feature subset", n_features, unique=False)
    if columns is not None:
        columns = _index_array(columns, f"{where}'s classes", n_classes, unique=True)
    return features, columns


def _layers(entry: dict[str, Any], width: int, where: str) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """A network entry's weights and biases, checked to chain from ``width`` inputs; and its output width."""
    weights = [_float_array(w, f"{where}'s layer {i} weights", 2) for i, w in enumerate(entry["coefs"])]
    biases = [_float_array(b, f"{where}'s layer {i} biases", 1) for i, b in enumerate(entry["intercepts"])]
    if not weights or len(weights) != len(biases):
        raise ValueError(f"{where} has {len(weights)} weight and {len(biases)} bias arrays")
    for i, (w, b) in enumerate(zip(weights, biases)):
        if w.shape[0] != width or b.shape != (w.shape[1],):
            raise ValueError(f"{where}'s layer {i} is {w.shape} with {b.shape} biases after {width} inputs")
        width = w.shape[1]
    return weights, biases, width


@dataclasses.dataclass
class _Network:
    """One ``MLPClassifier``, as float64 arrays."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    activation: str
    output: str
    features: np.ndarray | None  # the columns it sees (bagging's random subspaces), else all
    columns: np.ndarray | None  # the ensemble's classes it predicts, when not all of them

    @classmethod
    def from_dict(cls, entry: dict[str, Any], n_features: int, n_classes: int, where: str) -> _Network:
        activation, output = str(entry["activation"]), str(entry["output"])
        if activation not in _HIDDEN_ACTIVATIONS:
            raise ValueError(f"{where} has an unknown activation {activation!r}")
        features, columns = _subsets(entry, n_features, n_classes, where)
        weights, biases, width = _layers(entry, n_features if features is None else features.size, where)
        n_out = n_classes if columns is None else columns.size
        if (output == "softmax" and width == n_out >= 2) or (output == "logistic" and width == 1 and n_out == 2):
            return cls(weights, biases, activation, output, features, columns)
        raise ValueError(f"{where} has a {output!r} output of {width} units for {n_out} classes")

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """``MLPClassifier.predict_proba``, operation for operation."""
        a = x if self.features is None else x[:, self.features]
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            a = a @ w
            a += b
            if i < last:
                _HIDDEN_ACTIVATIONS[self.activation](a)
        if self.output == "logistic":
            _logistic(a)
            p = a.ravel()
            return np.vstack([1 - p, p]).T
        a = np.exp(a - a.max(axis=1)[:, np.newaxis])
        a /= a.sum(axis=1)[:, np.newaxis]
        return a


def _step(step: dict[str, Any], n_features: int, i: int) -> tuple[str, Any, Any]:
    """One transform step of an ``inference`` entry, checked: ``("standardise", mean, scale)`` or
    ``("clip", low, high)``."""
    if step["kind"] == "standardise":
        mean = _float_array(step["mean"], f"step {i}'s means", 1)
        scale = _float_array(step["scale"], f"step {i}'s scales", 1)
        if mean.shape != (n_features,) or scale.shape != (n_features,) or not np.all(scale != 0):
            raise ValueError(f"step {i} does not standardise {n_features} features")
        return "standardise", mean, scale
    if step["kind"] == "clip":
        low, high = float(step["low"]), float(step["high"])
        if not low <= high:
            raise ValueError(f"step {i} clips to an empty range")
        return "clip", low, high
    raise ValueError(f"step {i} is of unknown kind {step['kind']!r}")


def _networks(entries: list[Any], combine: str, n_features: int, n_classes: int) -> list[_Network]:
    """The networks of an ``inference`` entry, checked against how they are combined."""
    if combine not in _COMBINATIONS:
        raise ValueError(f"it combines networks by unknown {combine!r}")
    networks = [_Network.from_dict(net, n_features, n_classes, f"network {i}") for i, net in enumerate(entries)]
    if not networks or combine == "single" and len(networks) != 1:
        raise ValueError(f"it has {len(networks)} networks for {combine!r}")
    if combine != "bagging" and any(n.columns is not None for n in networks):
        raise ValueError("a network predicts only some of the classes")
    return networks


def _voting_weights(weights: Any, combine: str, n_networks: int) -> np.ndarray | None:
    if weights is None:
        return None
    weights = _float_array(weights, "the voting weights", 1)
    if combine != "vote" or weights.shape != (n_networks,) or weights.sum() == 0:
        raise ValueError("its voting weights do not match its networks")
    return weights


@dataclasses.dataclass
class ForwardPass:
    """A fitted ser-live estimator as numpy: transform steps, then one or more networks combined.

    Built from the ``inference`` entry of a model file (see :func:`_compile`), which it validates and keeps as
    :attr:`source`. It is what a model read from a file has for an estimator: ``predict_proba``, ``classes_`` and
    ``n_features_in_`` as a scikit-learn classifier has them.
    """

    classes: list[str]
    n_features: int
    steps: list[tuple[str, np.ndarray | float, np.ndarray | float]]
    combine: str
    networks: list[_Network]
    weights: np.ndarray | None
    source: dict[str, Any] | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def classes_(self) -> np.ndarray:
        """The class labels, as scikit-learn names them."""
        return np.array(self.classes)

    @property
    def n_features_in_(self) -> int:
        """The number of features, as scikit-learn names it."""
        return self.n_features

    @classmethod
    def from_dict(cls, entry: Any) -> ForwardPass:
        """Validate an ``inference`` entry (ValueError, TypeError or KeyError saying what is wrong)."""
        if not isinstance(entry, dict):
            raise TypeError("it is not a dictionary")
        classes = entry["classes"]
        if not isinstance(classes, list) or not classes or len(set(map(str, classes))) != len(classes):
            raise ValueError("its class list is empty or repeats a class")
        classes = [str(c) for c in classes]
        n_features = entry["n_features"]
        if not isinstance(n_features, int) or n_features < 1:
            raise ValueError(f"its feature count {n_features!r} is not a positive integer")
        steps = [_step(step, n_features, i) for i, step in enumerate(entry["steps"])]
        combine = entry["combine"]
        networks = _networks(entry["networks"], combine, n_features, len(classes))
        weights = _voting_weights(entry.get("weights"), combine, len(networks))
        return cls(classes, n_features, steps, combine, networks, weights, source=entry)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """scikit-learn's ``Pipeline.predict_proba`` for the compiled estimator.

        Parameters
        ----------
        x : np.ndarray, shape (n_windows, n_features), float64

        Raises
        ------
        ValueError
            Wrong number of features, or values that are not finite (as scikit-learn does).
        """
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"X has {x.shape[-1]} features, but the model expects {self.n_features}")
        x = x.copy()
        for kind, a, b in self.steps:
            if kind == "standardise":
                x -= a
                x /= b
            else:
                x = np.clip(x, a, b)
        if not np.all(np.isfinite(x)):
            raise ValueError("Input X contains NaN or infinity")
        if x.shape[0] == 1:
            return self._combine(x)
        with _single_threaded_blas():
            return self._combine(x)

    def _combine(self, x: np.ndarray) -> np.ndarray:
        if self.combine == "single":
            return self.networks[0].predict_proba(x)
        if self.combine == "vote":  # VotingClassifier(voting="soft")
            return np.average(np.asarray([n.predict_proba(x) for n in self.networks]), axis=0, weights=self.weights)
        proba = np.zeros((x.shape[0], len(self.classes)))  # BaggingClassifier, in its order of additions
        for network in self.networks:
            if network.columns is None:
                proba += network.predict_proba(x)
            else:
                proba[:, network.columns] += network.predict_proba(x)
        return proba / len(self.networks)

    def sample_inputs(self, n_windows: int, seed: int = 0) -> np.ndarray:
        """Random feature rows spread like the training data (when the first step standardises)."""
        z = np.random.default_rng(seed).normal(0.0, 2.0, (n_windows, self.n_features))
        if self.steps and self.steps[0][0] == "standardise":
            _, mean, scale = self.steps[0]
            return mean + z * scale
        return z


def _compile_network(mlp: Any, features: Any = None, columns: Any = None) -> dict[str, Any] | None:
    from sklearn.neural_network import MLPClassifier

    if type(mlp) is not MLPClassifier or mlp.activation not in _HIDDEN_ACTIVATIONS:
        return None
    if mlp.out_activation_ not in ("softmax", "logistic") or getattr(mlp, "n_outputs_", 1) != 1 and (
            mlp.out_activation_ == "logistic"):
        return None  # multi-label networks
    # The estimator's own arrays (the model file copies them when it is written).
    return {"activation": mlp.activation, "output": mlp.out_activation_, "coefs": list(mlp.coefs_),
            "intercepts": list(mlp.intercepts_), "features": features, "columns": columns}


def _compile_step(step: Any) -> dict[str, Any] | None:
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    if type(step) is StandardScaler:
        # with_mean=False still records mean_ (for the variance) but does not subtract it.
        n = step.n_features_in_
        return {"kind": "standardise", "mean": step.mean_ if step.with_mean else np.zeros(n),
                "scale": step.scale_ if step.with_std else np.ones(n)}
    if type(step) is FunctionTransformer and step.func is np.clip and not getattr(step, "_sklearn_output_config", None):
        return _compile_clip(dict(step.kw_args or {}))
    return None


def _compile_clip(kw: dict[str, Any]) -> dict[str, Any] | None:
    """``FunctionTransformer(np.clip, kw_args=kw)`` as a clip step (None for arguments other than the bounds)."""
    if not kw or set(kw) - {"a_min", "a_max"}:
        return None
    low, high = kw.get("a_min"), kw.get("a_max")
    return {"kind": "clip", "low": -np.inf if low is None else float(low),
            "high": np.inf if high is None else float(high)}


def _compile(estimator: Any) -> dict[str, Any] | None:
    """The ``inference`` entry for a fitted estimator, or None for estimators of other shapes.

    Compiled are ``[Pipeline(StandardScaler / FunctionTransformer(np.clip) steps...,)] head``
    with head an ``MLPClassifier``, a soft ``VotingClassifier`` of them, or a ``BaggingClassifier``
    of them: the estimators :func:`ser_live.training.estimator.make_estimator` makes.
    """
    if "sklearn" not in sys.modules:
        return None  # a scikit-learn estimator cannot exist without it
    from sklearn.pipeline import Pipeline

    head, transforms = estimator, []
    if type(estimator) is Pipeline:
        *transforms, head = [step for _, step in estimator.steps]
    steps = [_compile_step(t) for t in transforms if not _passthrough(t)]
    compiled_head = _compile_head(head)
    n_features = getattr(estimator, "n_features_in_", getattr(head, "n_features_in_", None))
    if None in (compiled_head, n_features) or any(s is None for s in steps):
        return None
    networks, weights, combine = compiled_head
    return {"classes": [str(c) for c in head.classes_], "n_features": int(n_features), "steps": steps,
            "combine": combine, "networks": networks, "weights": weights}


def _passthrough(step: Any) -> bool:
    return step is None or isinstance(step, str) and step == "passthrough"


def _compile_head(head: Any) -> tuple[list[dict[str, Any]], np.ndarray | None, str] | None:
    """The networks, voting weights and combination of a pipeline's classifier (None for other shapes)."""
    from sklearn.ensemble import BaggingClassifier, VotingClassifier

    if type(head) is VotingClassifier:
        compiled = _compile_voting(head)
    elif type(head) is BaggingClassifier:
        compiled = _compile_bagging(head)
    else:
        compiled = [_compile_network(head)], None, "single"
    if compiled is None or not compiled[0] or any(n is None for n in compiled[0]):
        return None
    return compiled


def _compile_voting(head: Any) -> tuple[list[Any], np.ndarray | None, str] | None:
    if head.voting != "soft" or not all(len(m.classes_) == len(head.classes_) for m in head.estimators_):
        return None
    weights = None if head.weights is None else np.asarray(
        [w for (_, est), w in zip(head.estimators, head.weights) if est != "drop"], dtype=np.float64)
    return [_compile_network(m) for m in head.estimators_], weights, "vote"


def _compile_bagging(head: Any) -> tuple[list[Any], None, str] | None:
    if len(head.estimators_) != head.n_estimators:
        return None
    networks = [_compile_network(m, features, None if len(m.classes_) == len(head.classes_) else m.classes_)
                for m, features in zip(head.estimators_, head.estimators_features_)]
    return networks, None, "bagging"


def compile_checked(estimator: Any) -> tuple[dict[str, Any] | None, ForwardPass | None, str | None]:
    """Compile an estimator and check the result against its own ``predict_proba``.

    Returns
    -------
    inference : dict or None
        The ``inference`` entry; None for estimators that are not compiled or fail the check.
    forward : ForwardPass or None
    problem : str or None
        Why an estimator of a compiled shape failed the check.
    """
    try:
        inference = _compile(estimator)
    except (AttributeError, TypeError, ValueError):  # e.g. unfitted, or pickled by another version
        return None, None, None
    if inference is None:
        return None, None, None
    try:
        forward = ForwardPass.from_dict(inference)
        x = forward.sample_inputs(6)
        x[0] = 0.0
        ours, theirs = forward.predict_proba(x), np.asarray(estimator.predict_proba(x), dtype=np.float64)
    except Exception as exc:  # e.g. an estimator scikit-learn cannot run any more
        return None, None, f"the compiled forward pass cannot be checked ({type(exc).__name__}: {exc})"
    difference = float(np.max(np.abs(ours - theirs))) if ours.shape == theirs.shape else math.inf
    if not difference < COMPILED_TOLERANCE:
        return None, None, (f"the compiled forward pass differs from scikit-learn's predict_proba by "
                            f"{difference:.3g} (allowed {COMPILED_TOLERANCE:g})")
    return inference, forward, None


def inference_arrays(inference: dict[str, Any]) -> Iterator[tuple[str, np.ndarray]]:
    """Every array of an ``inference`` entry, with a path naming it."""
    for i, step in enumerate(inference["steps"]):
        for key in ("mean", "scale"):
            if isinstance(step.get(key), np.ndarray):
                yield f"steps/{i}/{key}", step[key]
    for i, network in enumerate(inference["networks"]):
        for key in ("coefs", "intercepts"):
            for j, array in enumerate(network[key]):
                if isinstance(array, np.ndarray):
                    yield f"networks/{i}/{key}/{j}", array
        for key in ("features", "columns"):
            if isinstance(network.get(key), np.ndarray):
                yield f"networks/{i}/{key}", network[key]
