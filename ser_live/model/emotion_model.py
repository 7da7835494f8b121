"""The emotion model: a trained classifier bundled with everything needed to feed it correctly.

A model file (:mod:`ser_live.model.file_format`) is data: the forward pass's arrays (:mod:`ser_live.model.forward`), the
speaker-adaptive variant's, and a manifest holding the classes, the feature extractor's record, the window and hop,
and provenance (corpora, evaluation figures, library versions). Loading it runs no code, so any model file loads
without a trust list; one that is damaged, foreign or made for other feature code is one clear error. The
scikit-learn estimator a model is made from is a training artefact: it is compiled to arrays when the model is made
and is not stored.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..dsp.gate import GATE_VERSION, SpeechGate
from ..errors import FeatureConfigError, ModelError
from ..features.extractor import FeatureExtractor, HandcraftedFeatures, extractor_from_record
from ..features.handcrafted import FeatureConfig
from ..results import EMOTIONS
from .file_format import MODEL_SUFFIX, file_sha256, read_bundle, write_bundle
from .forward import ForwardPass, compile_checked
from .speaker import ADAPTIVE_INPUTS, ADAPTIVE_REFERENCES, SpeakerNormalizer, SpeakerPrior, adaptive_input

__all__ = [
    "EMOTIONS",
    "display_order",
    "apply_temperature",
    "model_in_folder",
    "usable_class_name",
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "DEFAULT_MODEL_NAME",
    "SHIPPED_MODELS",
    "shipped_model_path",
    "EmotionModel",
    "ModelAdaptation",
    "default_model_path",
    "file_sha256",
    "build_provenance",
]


MODEL_FORMAT = "ser-live-model"
#: Version written; :meth:`EmotionModel.load` also reads the ones in ``_READABLE_FORMAT_VERSIONS``.
MODEL_FORMAT_VERSION = 3
#: Formats 1 and 2 were pickles (joblib files), which can run code when loaded: they are no longer read.
_PICKLED_FORMAT_VERSIONS = (1, 2)
DEFAULT_MODEL_NAME = f"ser-live-default{MODEL_SUFFIX}"
#: The shipped models by name (``--model NAME``), as paths relative to a models directory: the default hears
#: through a pretrained speech encoder; ``light`` is the handcrafted-feature model, for slow machines and big batches.
SHIPPED_MODELS: dict[str, str] = {"default": DEFAULT_MODEL_NAME, "light": f"light/ser-live-light{MODEL_SUFFIX}"}


def _model_dirs() -> list[Path]:
    """Where the shipped model may live: the source tree, then the installed data directory."""
    source_tree = Path(__file__).resolve().parents[2]  # ser_live/model/ -> the repository
    dirs = [source_tree / "models", Path(sys.prefix) / "share" / "ser-live" / "models"]
    user_base = os.environ.get("PYTHONUSERBASE")
    if user_base:
        dirs.append(Path(user_base) / "share" / "ser-live" / "models")
    return dirs


def shipped_model_path(name: str = "default") -> Path:
    """Path of a shipped model (a key of :data:`SHIPPED_MODELS`).

    Raises
    ------
    ModelError
        If the name is unknown or the file is in none of the places an install puts it.
    """
    if name not in SHIPPED_MODELS:
        raise ModelError(f"there is no shipped model called {name!r}; the shipped models are "
                         f"{', '.join(SHIPPED_MODELS)}")
    for directory in _model_dirs():
        candidate = directory / SHIPPED_MODELS[name]
        if candidate.is_file():
            return candidate
    searched = ", ".join(str(d) for d in _model_dirs())
    raise ModelError(
        f"the shipped model {SHIPPED_MODELS[name]} is missing (looked in {searched}); "
        "reinstall ser-live with 'pip install .' from the source tree, or pass --model PATH"
    )


def model_in_folder(path: Path) -> Path:
    """``path`` itself, or for a folder (what ``ser-live-train --out`` writes) the one model file in it.

    Raises
    ------
    ModelError
        If the folder holds no ``.npz`` file or more than one.
    """
    if not path.is_dir():
        return path
    found = sorted(path.glob("*.npz"))
    if len(found) != 1:
        what = "no model file (.npz)" if not found else f"{len(found)} model files ({', '.join(p.name for p in found)})"
        raise ModelError(f"model folder {path} holds {what}; give the model file to --model")
    return found[0]


def default_model_path() -> Path:
    """Path of the shipped default model (see :func:`shipped_model_path`)."""
    return shipped_model_path("default")


class _Classifier:
    """A classifier as a model uses it: its compiled forward pass, and the estimator it came from.

    A model made in training wraps its fitted estimator, compiled when it has a supported shape (predictions then
    use the arrays, as they will once saved); for a model read from a file, the estimator is the forward pass.
    """

    def __init__(self, estimator: Any, *, inference: dict[str, Any] | None = None,
                 forward: ForwardPass | None = None, where: str = "model") -> None:
        self._estimator = estimator
        self._inference = inference
        self.forward = forward
        self._where = where

    @classmethod
    def from_estimator(cls, estimator: Any) -> _Classifier:
        """Wrap a fitted estimator, compiling it when it has a supported shape and matches its compilation
        (a :class:`~ser_live.model.forward.ForwardPass`, another model's estimator, is already compiled)."""
        if isinstance(estimator, ForwardPass) and estimator.source is not None:
            return cls(estimator, inference=estimator.source, forward=estimator)
        inference, forward, _ = compile_checked(estimator)
        return cls(estimator, inference=inference, forward=forward)

    @classmethod
    def from_inference(cls, inference: Any, where: str) -> _Classifier:
        """The classifier a model file stores as its ``inference`` entry.

        Raises
        ------
        ValueError
            A missing or damaged entry (the message says what is wrong, for the caller's error).
        """
        try:
            forward = ForwardPass.from_dict(inference)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            detail = f"no {exc} entry" if isinstance(exc, KeyError) else str(exc)
            raise ValueError(f"its compiled network is damaged ({detail})") from exc
        return cls(forward, inference=inference, forward=forward, where=where)

    @property
    def estimator(self) -> Any:
        """The fitted estimator the model was made from; for a model read from a file, its forward pass."""
        return self._estimator

    @property
    def classes(self) -> list[str]:
        """Class labels, in the order of :meth:`predict_proba`'s columns."""
        if self.forward is not None:
            return list(self.forward.classes)
        return [str(c) for c in getattr(self._estimator, "classes_", [])]

    @property
    def n_features(self) -> int | None:
        """Number of features expected, when known."""
        if self.forward is not None:
            return self.forward.n_features
        return getattr(self._estimator, "n_features_in_", None)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        if self.forward is not None:
            return self.forward.predict_proba(x)
        return self.estimator.predict_proba(x)

    def to_inference(self) -> dict[str, Any]:
        """The ``inference`` entry of a model file (the forward pass's arrays).

        Raises
        ------
        ModelError
            An estimator with no compiled form (a model file holds arrays, not code), or one whose compilation
            does not reproduce its probabilities (a scikit-learn that computes differently): a file that would
            predict otherwise than its estimator is not written.
        """
        if isinstance(self._estimator, ForwardPass) and self._inference is not None:
            return self._inference  # read from a file, or made from such a model's estimator
        inference, _, problem = compile_checked(self._estimator)
        if problem is not None:
            raise ModelError(f"the model is not saved: {problem}")
        if inference is None:
            raise ModelError("the model is not saved: a model file holds a network's arrays, and only ser-live's "
                             "estimators (a scaler and MLPs, see ser_live.training.estimator) compile to them")
        return inference


class _EstimatorField:
    """The ``estimator`` dataclass field, stored as a :class:`_Classifier` in ``_classifier``.

    Assigning an estimator compiles it; reading gives the estimator object (for a model read from a file, its
    :class:`~ser_live.model.forward.ForwardPass`).
    """

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            raise AttributeError("estimator")  # no class-level default: the field stays required
        return obj._classifier.estimator

    def __set__(self, obj: Any, value: Any) -> None:
        obj._classifier = value if isinstance(value, _Classifier) else _Classifier.from_estimator(value)


@dataclasses.dataclass
class ModelAdaptation:
    """The speaker-adaptive variant carried by a model (optional ``adaptation`` entry of a model file).

    Parameters
    ----------
    estimator : object
        Fitted estimator trained on features standardised per speaker; fed
        :meth:`ser_live.model.speaker.SpeakerNormalizer.transform` output. Compiled like
        :attr:`EmotionModel.estimator`.
    prior : SpeakerPrior
        The training population's statistics and the half-way point of the shrinkage.
    blend : bool
        Mix its probabilities with the unadapted model's, with the normaliser's weight
        ``learnt_s / (learnt_s + half_s)`` (so with nothing learnt the output is the unadapted model's).
    inputs : str
        What the estimator is fed (one of :data:`ser_live.model.speaker.ADAPTIVE_INPUTS`).
    reference : str
        What the speaker's statistics describe: ``"neutral"`` (their neutral voice: learnt from a neutral
        reading, and while adapting only from windows the plain model judges neutral) or ``"all"`` (all
        their speech, every speech window learnt; models made before the adaptation protocols).
    neutral_threshold : float
        With ``reference="neutral"``: the plain model's neutral probability from which a window counts
        as neutral speech.
    """

    estimator: Any = _EstimatorField()
    prior: SpeakerPrior
    blend: bool = True
    inputs: str = "raw+normalised"
    reference: str = "all"
    neutral_threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.inputs not in ADAPTIVE_INPUTS:
            raise ValueError(f"unknown adaptive inputs {self.inputs!r}")
        if self.reference not in ADAPTIVE_REFERENCES:
            raise ValueError(f"unknown adaptive reference {self.reference!r}")
        if not 0.0 < self.neutral_threshold <= 1.0:
            raise ValueError("neutral_threshold must be in (0, 1]")

    def learns_from(self, plain_proba: np.ndarray, classes: Sequence[str]) -> bool:
        """Whether a speech window with the plain model's probabilities ``plain_proba`` teaches the voice."""
        if self.reference == "all":
            return True
        return "neutral" in classes and float(plain_proba[list(classes).index("neutral")]) >= self.neutral_threshold

    def to_dict(self) -> dict[str, Any]:
        """The ``adaptation`` entry of a model file (see :meth:`EmotionModel.to_bundle`)."""
        return {"inference": self._classifier.to_inference(), "prior": self.prior.to_dict(), "blend": self.blend,
                "inputs": self.inputs, "reference": self.reference, "neutral_threshold": self.neutral_threshold}


@dataclasses.dataclass
class EmotionModel:
    """A trained emotion classifier and the settings it must be fed with.

    Parameters
    ----------
    estimator : object
        Fitted scikit-learn estimator with ``predict_proba`` and ``classes_`` (for ser-live's own
        models a ``Pipeline(StandardScaler, MLPClassifier)``). The shapes
        :func:`ser_live.training.estimator.make_estimator` makes are compiled to numpy when the
        model is made (checked against the estimator's own probabilities), and predictions use
        that; other estimators predict themselves. Changing the estimator in place afterwards is
        not seen by the compiled predictions: make a new model.
    extractor : FeatureExtractor
        The feature extractor the estimator was trained with (:mod:`ser_live.features.extractor`); a
        :class:`~ser_live.features.handcrafted.FeatureConfig` stands for the handcrafted features with it.
    window_s, hop_s : float
        Analysis window length and hop the model was trained and evaluated with.
    metadata : dict
        Provenance: corpora and counts, evaluation figures, creation date, library versions.
    adaptation : ModelAdaptation, optional
        The speaker-adaptive variant (see :mod:`ser_live.model.speaker`); models without one never adapt.
    gate_params : dict
        Keyword arguments of :class:`ser_live.dsp.gate.SpeechGate` other than the rate that the training windows were
        gated with (empty: the gate's defaults); the live gate is built with them (:meth:`make_gate`).
    temperature : float
        The estimator's probabilities are tempered by it (:func:`apply_temperature`): fitted in training so that
        the confidence shown is as high as the accuracy behind it; 1 leaves them as they are.
    """

    estimator: Any = _EstimatorField()
    extractor: FeatureExtractor
    window_s: float = 2.0
    hop_s: float = 0.5
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    path: Path | None = None
    adaptation: ModelAdaptation | None = None
    gate_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.extractor, FeatureConfig):
            self.extractor = HandcraftedFeatures(self.extractor)
        if not isinstance(self.extractor, FeatureExtractor):
            raise ModelError(f"not a feature extractor: {self.extractor!r}")
        classes = self._classifier.classes
        self._check_settings(classes)
        self.classes: tuple[str, ...] = display_order(classes)
        self._order = np.array([classes.index(c) for c in self.classes])
        self._adapted_order: np.ndarray | None = None
        if self.adaptation is not None:
            adapted_classes = self.adaptation._classifier.classes
            if sorted(adapted_classes) != sorted(classes):
                raise ModelError("the model's adaptive variant predicts other classes than the model")
            self._adapted_order = np.array([adapted_classes.index(c) for c in self.classes])

    def _check_settings(self, classes: list[str]) -> None:
        """The classes, window, hop and gate settings a model can have (ModelError otherwise)."""
        if not classes:
            raise ModelError("the model's estimator is not fitted (it has no classes)")
        unusable = [c for c in classes if not usable_class_name(c)]
        if unusable or len(set(classes)) != len(classes) or len(classes) < 2:
            raise ModelError("the model's classes must be two or more different names of printable characters "
                             f"without commas (got {', '.join(map(repr, classes))})")
        _check_temperature(self.temperature)
        if not 0 < self.hop_s <= self.window_s:
            raise ModelError(
                f"the model's hop ({self.hop_s} s) must be positive and at most its window ({self.window_s} s)"
            )
        try:
            self.make_gate()
        except (TypeError, ValueError) as exc:
            raise ModelError(f"the model's speech gate settings do not fit this ser-live's gate ({exc})") from exc

    @property
    def sample_rate_hz(self) -> int:
        """Sample rate the model's features expect."""
        return self.extractor.sample_rate_hz

    def make_gate(self) -> SpeechGate:
        """A fresh speech gate with the settings the model's training windows were gated with."""
        return SpeechGate(sample_rate_hz=self.sample_rate_hz, **self.gate_params)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities for feature vectors.

        Parameters
        ----------
        features : np.ndarray, shape (n_features,) or (n_windows, n_features)

        Returns
        -------
        probs : np.ndarray, shape (n_classes,) or (n_windows, n_classes)
            Columns in the order of :attr:`classes`; rows sum to 1.
        """
        x = np.asarray(features, dtype=np.float64)
        single = x.ndim == 1
        probs = apply_temperature(self._classifier.predict_proba(np.atleast_2d(x))[:, self._order], self.temperature)
        return probs[0] if single else probs

    def untempered(self, proba: np.ndarray) -> np.ndarray:
        """Probabilities of this model as its estimator gave them, before :attr:`temperature` (the adaptive variant's
        neutral threshold is set on those, so tempering the confidence shown never changes what teaches a voice)."""
        proba = np.asarray(proba, dtype=np.float64)
        raw = apply_temperature(np.atleast_2d(proba), 1.0 / self.temperature)
        return raw[0] if proba.ndim == 1 else raw

    def predict_proba_adapted(self, features: np.ndarray, normalizer: SpeakerNormalizer, *,
                              plain: np.ndarray | None = None) -> np.ndarray:
        """Class probabilities of the adaptive variant for the current speaker (as :meth:`predict_proba`).

        The features are standardised with the normaliser's current blend of speaker and population
        statistics; with ``adaptation.blend`` the result is mixed with the unadapted model's, with
        weight ``normalizer.weight`` on the adapted side. The normaliser is not updated here.
        ``plain``, the unadapted probabilities of the same features when the caller has them, saves
        computing them again.
        """
        if self.adaptation is None or self._adapted_order is None:
            raise ModelError("this model has no speaker-adaptive variant")
        x = np.atleast_2d(np.asarray(features, dtype=np.float64))
        inputs = adaptive_input(x, normalizer.transform(x), self.adaptation.inputs)
        probs = apply_temperature(self.adaptation._classifier.predict_proba(inputs)[:, self._adapted_order],
                                  self.temperature)
        if self.adaptation.blend:
            weight = normalizer.weight
            plain = self.predict_proba(x) if plain is None else np.atleast_2d(plain)
            probs = weight * probs + (1.0 - weight) * plain
        return probs[0] if np.ndim(features) == 1 else probs

    def to_bundle(self) -> dict[str, Any]:
        """The dictionary stored in a model file (format 3: :mod:`ser_live.model.file_format`).

        Raises
        ------
        ModelError
            An estimator with no compiled form, or of a compiled shape whose compilation does not
            reproduce its ``predict_proba`` within ``COMPILED_TOLERANCE``: such a file would predict
            otherwise than its estimator, so it is not made.
        """
        extra = {"adaptation": self.adaptation.to_dict()} if self.adaptation is not None else {}
        return {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "inference": self._classifier.to_inference(),
            "classes": list(self.classes),
            "extractor": self.extractor.to_record(),
            "sample_rate_hz": self.sample_rate_hz,
            "window_s": self.window_s,
            "hop_s": self.hop_s,
            "gate": {"version": GATE_VERSION, "params": dict(self.gate_params)},
            "temperature": self.temperature,
            "metadata": self.metadata,
            **extra,
        }

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the model file (atomically) and return its SHA-256.

        Raises
        ------
        ModelError
            As :meth:`to_bundle`.
        """
        return write_bundle(path, self.to_bundle())

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> EmotionModel:
        """Load a model file.

        Parameters
        ----------
        path : path-like, optional
            Model file, or the name of a shipped model (:data:`SHIPPED_MODELS`: ``"light"``); the shipped
            default when omitted. Loading reads arrays and JSON only, so any file may be given.

        Raises
        ------
        ModelError
            Missing, damaged, not a ser-live model, or made for other feature code.
        """
        if path is None:
            path = default_model_path()
        elif isinstance(path, str) and path in SHIPPED_MODELS and not Path(path).exists():
            path = shipped_model_path(path)
        path = model_in_folder(Path(path))
        return cls.from_bundle(read_bundle(path), path=path)

    @classmethod
    def from_bundle(cls, bundle: Any, *, path: Path | None = None) -> EmotionModel:
        """Rebuild a model from the dictionary :meth:`to_bundle` made, validating it."""
        where = f"model file {path}" if path else "model bundle"
        _check_format(bundle, where)
        extractor = _extractor_from_bundle(bundle, where)
        try:
            estimator = _Classifier.from_inference(bundle.get("inference"), where)
        except ValueError as exc:
            raise ModelError(f"{where}: {exc}; download or train it again") from exc
        window_s, hop_s, metadata = _settings_from_bundle(bundle, where)
        adaptation = _adaptation_from_bundle(bundle.get("adaptation"), where)
        gate_params = _gate_params_from_bundle(bundle.get("gate"), where)
        try:
            model = cls(estimator, extractor, window_s=window_s, hop_s=hop_s, metadata=metadata, path=path,
                        temperature=bundle.get("temperature", 1.0),
                        adaptation=adaptation, gate_params=gate_params)
        except TypeError as exc:  # e.g. an estimator whose classes_ is not a list of labels
            raise ModelError(f"{where} holds a malformed classifier ({exc})") from exc
        if list(bundle.get("classes", [])) != list(model.classes):
            raise ModelError(f"{where} lists classes that do not match its estimator")
        extractor.prepare()  # a missing or different encoder is refused now, not at the first speech window
        model._probe(where)
        return model

    def _probe(self, where: str) -> None:
        """Refuse at load time a model that cannot predict, rather than fail on the first window of a session."""
        n_features = self.extractor.dim
        n_expected = self._classifier.n_features
        if n_expected is not None and n_expected != n_features:
            raise FeatureConfigError(
                f"{where} expects {n_expected} features but its feature configuration gives "
                f"{n_features}; it was made by incompatible feature code"
            )
        _check_probe(lambda: self.predict_proba(np.zeros(n_features)), len(self.classes), where,
                     "cannot predict with the installed libraries", "retrain it or install the library versions it "
                     "was made with")
        if self.adaptation is None:
            return
        if self.adaptation.prior.mean.shape != (n_features,):
            raise ModelError(f"{where}: its adaptive variant's statistics do not match its features")
        normalizer = SpeakerNormalizer(self.adaptation.prior, hop_s=self.hop_s)
        _check_probe(lambda: self.predict_proba_adapted(np.zeros(n_features), normalizer), len(self.classes),
                     f"{where}: its adaptive variant", "cannot predict", "")


def _check_temperature(temperature: Any) -> None:
    """A temperature is a number from 0.01 to 100 (ModelError otherwise)."""
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and 0.01 <= temperature <= 100):
        raise ModelError(f"the model's temperature ({temperature!r}) must be a number from 0.01 to 100")


def apply_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities tempered: ``softmax(log(proba) / temperature)`` row by row (1 changes nothing; above 1 they
    grow less sure, below 1 surer).

    Parameters
    ----------
    proba : np.ndarray, shape (n, n_classes)
    temperature : float
    """
    if temperature == 1.0:
        return proba
    logits = np.log(np.maximum(proba, 1e-12)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    tempered = np.exp(logits)
    return tempered / tempered.sum(axis=1, keepdims=True)


def display_order(classes: Sequence[str]) -> tuple[str, ...]:
    """The order a model's classes are shown and reported in: the seven emotions in the product's fixed order,
    then any other classes (a model a user trained on their own classes) in the model's own order."""
    known = tuple(e for e in EMOTIONS if e in classes)
    return known + tuple(c for c in classes if c not in EMOTIONS)


def usable_class_name(label: Any) -> bool:
    """A class name that every output can carry: a CSV column ``p_<name>``, a JSON key, a word on screen."""
    return isinstance(label, str) and label.strip() == label and label != "" and label.isprintable() and \
        "," not in label and '"' not in label


def _check_probe(predict: Any, n_classes: int, where: str, failure: str, fix: str) -> None:
    """One prediction of zeros: it must work and give ``n_classes`` finite probabilities."""
    try:
        probe = predict()
    except Exception as exc:
        raise ModelError(f"{where} {failure} ({type(exc).__name__}: {exc})" + (f"; {fix}" if fix else "")) from exc
    if probe.shape != (n_classes,) or not np.all(np.isfinite(probe)):
        raise ModelError(f"{where} gives malformed probabilities")


def _check_format(bundle: Any, where: str) -> None:
    """A ser-live model dictionary of the format this ser-live reads."""
    if not isinstance(bundle, dict) or bundle.get("format") != MODEL_FORMAT:
        raise ModelError(f"{where} is not a ser-live model")
    version = bundle.get("format_version")
    if version in _PICKLED_FORMAT_VERSIONS:
        raise ModelError(f"{where} is a pickled model of an older ser-live (format {version}), which this one "
                         "no longer loads; convert it with scripts/convert_model.py or train it again")
    if version != MODEL_FORMAT_VERSION:
        raise ModelError(f"{where} has format version {version}, this ser-live reads version "
                         f"{MODEL_FORMAT_VERSION}; use the ser-live version that made it")


def _extractor_from_bundle(bundle: dict[str, Any], where: str) -> FeatureExtractor:
    try:
        return extractor_from_record(bundle.get("extractor"))
    except FeatureConfigError as exc:
        raise FeatureConfigError(f"{where}: {exc}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{where} has no usable feature configuration") from exc


def _settings_from_bundle(bundle: dict[str, Any], where: str) -> tuple[float, float, dict[str, Any]]:
    """The window and hop (finite numbers) and the metadata a model dictionary records."""
    try:
        window_s = float(bundle.get("window_s", 2.0))
        hop_s = float(bundle.get("hop_s", 0.5))
        metadata = dict(bundle.get("metadata") or {})
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{where} has malformed settings ({exc})") from exc
    if not (math.isfinite(window_s) and math.isfinite(hop_s)):
        raise ModelError(f"{where} has a non-finite window or hop")
    return window_s, hop_s, metadata


def _gate_params_from_bundle(entry: Any, where: str) -> dict[str, Any]:
    """The speech gate settings a model file records (its ``gate`` entry), checked against this gate's version."""
    if not isinstance(entry, dict) or not isinstance(entry.get("params"), dict):
        raise ModelError(f"{where} does not record its speech gate settings; download or train it again")
    if entry.get("version") != GATE_VERSION:
        raise FeatureConfigError(f"{where} was trained on windows chosen by speech gate version "
                                 f"{entry.get('version')}, this ser-live's is version {GATE_VERSION}; "
                                 "retrain the model")
    return dict(entry["params"])


def _adaptation_from_bundle(entry: Any, where: str) -> ModelAdaptation | None:
    """Validate a model file's optional ``adaptation`` entry."""
    if entry is None:
        return None
    try:
        estimator = _Classifier.from_inference(entry.get("inference"), f"{where}'s adaptive variant")
        return ModelAdaptation(estimator, SpeakerPrior.from_dict(entry["prior"]), bool(entry["blend"]),
                               str(entry["inputs"]), str(entry.get("reference", "all")),
                               float(entry.get("neutral_threshold", 0.5)))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{where} has a malformed speaker-adaptive variant ({exc})") from exc


def build_provenance() -> dict[str, str]:
    """Creation time and library versions, recorded in a new model's metadata."""
    import sklearn

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
