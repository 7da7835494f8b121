"""The emotion model: a fitted scikit-learn pipeline bundled with everything needed to feed it correctly.

A model file is a joblib dictionary holding the estimator, its class list, the
:class:`~ser_live.features.FeatureConfig` it was trained with, the analysis window and hop, and
provenance (corpora, evaluation figures, library versions). joblib files are pickles and can run
code when loaded, so only the shipped model (checked by SHA-256) loads without ``trust=True``.

Format 2 keeps the estimator in the file as pickle bytes next to an ``inference`` entry holding
its weights as plain numpy arrays (the pickle refers to those arrays rather than storing them
twice). :class:`EmotionModel` runs the arrays itself, so loading and predicting never import
scikit-learn (about 0.7 s of start-up); the estimator object is unpickled only when something asks
for :attr:`EmotionModel.estimator`. Format-1 files (the estimator object itself) still load.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import io
import math
import os
import pickle
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .adapt import ADAPTIVE_INPUTS, ADAPTIVE_REFERENCES, SpeakerNormalizer, SpeakerPrior, adaptive_input
from .errors import FeatureConfigError, ModelError, UntrustedModelError
from .extractor import FeatureExtractor, HandcraftedFeatures, extractor_from_record
from .features import FeatureConfig
from .inference import ForwardPass, compile_checked, inference_arrays
from .results import EMOTIONS

__all__ = [
    "EMOTIONS",
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "DEFAULT_MODEL_NAME",
    "SHIPPED_MODELS",
    "shipped_model_path",
    "TRUST_ENV_VAR",
    "trust_from_env",
    "EmotionModel",
    "ModelAdaptation",
    "default_model_path",
    "file_sha256",
    "build_provenance",
]


MODEL_FORMAT = "ser-live-model"
#: Version written; :meth:`EmotionModel.load` also reads the ones in ``_READABLE_FORMAT_VERSIONS``.
MODEL_FORMAT_VERSION = 2
_READABLE_FORMAT_VERSIONS = (1, 2)
DEFAULT_MODEL_NAME = "ser-live-default.joblib"
#: The shipped models by name (``--model NAME``), as paths relative to a models directory: the default hears
#: through a pretrained speech encoder; ``light`` is the handcrafted-feature model, for slow machines and big batches.
SHIPPED_MODELS: dict[str, str] = {"default": DEFAULT_MODEL_NAME, "light": "light/ser-live-light.joblib"}
#: Setting this environment variable to 1 has the effect of ``--trust-model``.
TRUST_ENV_VAR = "SER_LIVE_TRUST_MODEL"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _shipped_hashes() -> frozenset[str]:
    from . import shipped

    return frozenset(h.strip().lower() for h in shipped.SHIPPED_MODEL_SHA256)


def _model_dirs() -> list[Path]:
    """Where the shipped model may live: the source tree, then the installed data directory."""
    here = Path(__file__).resolve().parent
    dirs = [here.parent / "models", Path(sys.prefix) / "share" / "ser-live" / "models"]
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


def default_model_path() -> Path:
    """Path of the shipped default model (see :func:`shipped_model_path`)."""
    return shipped_model_path("default")


def trust_from_env() -> bool:
    """Whether ``$SER_LIVE_TRUST_MODEL`` says to trust model files (``1``/``true``/``yes``/``on``).

    Raises
    ------
    ModelError
        For a value that is neither yes nor no, rather than guessing on a security switch.
    """
    value = os.environ.get(TRUST_ENV_VAR, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ModelError(f"{TRUST_ENV_VAR}={value!r} is not understood; set it to 1 to trust model files, or unset it")


def _is_shipped_location(path: Path) -> bool:
    try:
        where = path.resolve()
        return any(where == (d / relative).resolve() for d in _model_dirs() for relative in SHIPPED_MODELS.values())
    except OSError:
        return False


def _read_model_bytes(path: Path) -> bytes:
    if path.is_dir():
        raise ModelError(f"model path {path} is a folder, not a model file; check the path given to --model")
    if path.exists() and not path.is_file():
        raise ModelError(f"model path {path} is not a regular file (a device or a pipe); give a model file to --model")
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist; check the path given to --model (or name a shipped "
                         f"model: {', '.join(SHIPPED_MODELS)})")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"model file {path} cannot be read ({exc.strerror or exc})") from exc
    if not data:
        raise ModelError(f"model file {path} is empty")
    return data


#: Most bytes a model file may decompress to: far above any real model, far below what would exhaust memory.
MAX_MODEL_BYTES = 1 << 30


def _decompressed(data: bytes, path: Path) -> bytes:
    """The pickle inside a zlib-compressed model file, checked whole before anything reads it.

    joblib's own reader loops without end (and without bound in memory) on a stream with bytes after
    its end, so the stream is decompressed here, where its end, its checksum and its size are checked.
    """
    import zlib

    if len(data) < 2 or data[0] != 0x78 or (data[0] << 8 | data[1]) % 31:
        return data  # not zlib: an uncompressed joblib file, read as it is
    stream = zlib.decompressobj()
    try:
        raw = stream.decompress(data, MAX_MODEL_BYTES)
    except zlib.error as exc:
        raise ModelError(f"model file {path} is damaged (its compressed data is corrupt: {exc}); "
                         "download or train it again") from exc
    if stream.unconsumed_tail:
        raise ModelError(f"model file {path} decompresses to more than {MAX_MODEL_BYTES >> 20} MB; "
                         "it is not a ser-live model")
    if not stream.eof:
        raise ModelError(f"model file {path} is truncated (its compressed data ends early); "
                         "download or train it again")
    if stream.unused_data:
        raise ModelError(f"model file {path} is damaged ({len(stream.unused_data)} unexpected bytes after its end); "
                         "download or train it again")
    return raw


def _unpickle(data: bytes, path: Path) -> Any:
    """Unpickle model bytes that were already checked (shipped hash or trusted)."""
    import io

    import joblib

    data = _decompressed(data, path)
    try:
        return joblib.load(io.BytesIO(data))
    except Exception as exc:  # a damaged pickle can raise nearly anything
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:160]  # one line, whatever the message
        raise ModelError(
            f"model file {path} is damaged or truncated and cannot be read ({reason}); download or train it again"
        ) from exc


class _SharingPickler(pickle.Pickler):
    """Pickles an estimator, writing references to the arrays the ``inference`` entry already holds."""

    def __init__(self, file: io.BytesIO, shared: dict[int, str]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._shared = shared

    def persistent_id(self, obj: Any) -> Any:
        if type(obj) is np.ndarray and id(obj) in self._shared:
            return ("ser-live-inference", self._shared[id(obj)])
        return None


class _SharingUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, shared: dict[str, np.ndarray]) -> None:
        super().__init__(file)
        self._shared = shared

    def persistent_load(self, pid: Any) -> Any:
        try:
            kind, name = pid
            if kind == "ser-live-inference":
                return self._shared[name]
        except (TypeError, ValueError, KeyError):
            pass
        raise pickle.UnpicklingError(f"unknown reference {pid!r}")


def _pickle_estimator(estimator: Any, inference: dict[str, Any] | None) -> bytes:
    """The estimator as pickle bytes; its arrays that ``inference`` holds are stored there only."""
    shared = {id(array): name for name, array in inference_arrays(inference)} if inference else {}
    buffer = io.BytesIO()
    _SharingPickler(buffer, shared).dump(estimator)
    return buffer.getvalue()


def _unpickle_estimator(data: bytes, inference: dict[str, Any] | None) -> Any:
    shared = dict(inference_arrays(inference)) if inference else {}
    return _SharingUnpickler(io.BytesIO(data), shared).load()


class _Classifier:
    """A fitted estimator as a model uses it: compiled when possible, the estimator object on demand.

    Predictions go through the compiled forward pass when the estimator has one, else through the
    estimator's ``predict_proba``. Read from a format-2 file, the estimator is kept as its pickle
    bytes and unpickled (importing scikit-learn) on the first access of :attr:`estimator`.
    """

    def __init__(self, estimator: Any = None, *, pickled: bytes | None = None,
                 inference: dict[str, Any] | None = None, forward: ForwardPass | None = None,
                 where: str = "model") -> None:
        self._estimator = estimator
        self._pickled = pickled
        self._inference = inference
        self.forward = forward
        self._where = where

    @classmethod
    def from_estimator(cls, estimator: Any) -> _Classifier:
        """Wrap a fitted estimator, compiling it when it has a supported shape and matches its compilation."""
        inference, forward, _ = compile_checked(estimator)
        return cls(estimator, inference=inference, forward=forward)

    @classmethod
    def from_entries(cls, pickled: Any, inference: Any, where: str) -> _Classifier:
        """The classifier a format-2 file stores as ``estimator`` (pickle bytes) and ``inference``.

        Raises
        ------
        TypeError, ValueError
            Damaged entries (the message says what is wrong, for the caller's error).
        ModelError
            Without an ``inference`` entry the estimator is unpickled now; if that fails.
        """
        if not isinstance(pickled, bytes):
            raise TypeError("it holds no pickled classifier")
        if inference is None:  # an estimator of another shape: it predicts itself
            classifier = cls(pickled=pickled, where=where)
            if not callable(getattr(classifier.estimator, "predict_proba", None)):
                raise TypeError("it holds no classifier with predict_proba")
            return classifier
        try:
            forward = ForwardPass.from_dict(inference)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            detail = f"no {exc} entry" if isinstance(exc, KeyError) else str(exc)
            raise ValueError(f"its compiled network is damaged ({detail})") from exc
        return cls(pickled=pickled, inference=inference, forward=forward, where=where)

    @property
    def estimator(self) -> Any:
        """The fitted estimator object (unpickled on first access)."""
        if self._estimator is None and self._pickled is not None:
            try:
                self._estimator = _unpickle_estimator(self._pickled, self._inference)
            except Exception as exc:  # a damaged pickle can raise nearly anything
                raise ModelError(f"{self._where}: its scikit-learn estimator cannot be unpickled "
                                 f"({type(exc).__name__}: {exc})") from exc
            self._pickled = None
        return self._estimator

    @property
    def classes(self) -> list[str]:
        """Class labels, in the order of :meth:`predict_proba`'s columns."""
        if self.forward is not None:
            return list(self.forward.classes)
        return [str(c) for c in getattr(self.estimator, "classes_", [])]

    @property
    def n_features(self) -> int | None:
        """Number of features expected, when known."""
        if self.forward is not None:
            return self.forward.n_features
        return getattr(self.estimator, "n_features_in_", None)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        if self.forward is not None:
            return self.forward.predict_proba(x)
        return self.estimator.predict_proba(x)

    def to_entries(self) -> tuple[bytes, dict[str, Any] | None]:
        """The ``estimator`` (pickle bytes) and ``inference`` entries of a model file.

        Raises
        ------
        ModelError
            The estimator has a compiled shape but its compilation does not reproduce its
            probabilities (a scikit-learn that computes differently): a file that would predict
            otherwise than its estimator is not written.
        """
        estimator = self.estimator
        inference, _, problem = compile_checked(estimator)
        if problem is not None:
            raise ModelError(f"the model is not saved: {problem}")
        return _pickle_estimator(estimator, inference), inference


class _EstimatorField:
    """The ``estimator`` dataclass field, stored as a :class:`_Classifier` in ``_classifier``.

    Assigning an estimator compiles it; reading gives the estimator object (unpickling it if the
    model was read from a file and it is needed for the first time).
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
        :meth:`ser_live.adapt.SpeakerNormalizer.transform` output. Compiled like
        :attr:`EmotionModel.estimator`.
    prior : SpeakerPrior
        The training population's statistics and the half-way point of the shrinkage.
    blend : bool
        Mix its probabilities with the unadapted model's, with the normaliser's weight
        ``heard_s / (heard_s + half_s)`` (so with nothing learnt the output is the unadapted model's).
    inputs : str
        What the estimator is fed (one of :data:`ser_live.adapt.ADAPTIVE_INPUTS`).
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
        pickled, inference = self._classifier.to_entries()
        return {"estimator": pickled, "inference": inference, "prior": self.prior.to_dict(), "blend": self.blend,
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
        The feature extractor the estimator was trained with (:mod:`ser_live.extractor`); a
        :class:`~ser_live.features.FeatureConfig` stands for the handcrafted features with it.
    window_s, hop_s : float
        Analysis window length and hop the model was trained and evaluated with.
    metadata : dict
        Provenance: corpora and counts, evaluation figures, creation date, library versions.
    adaptation : ModelAdaptation, optional
        The speaker-adaptive variant (see :mod:`ser_live.adapt`); models without one never adapt.
    """

    estimator: Any = _EstimatorField()
    extractor: FeatureExtractor
    window_s: float = 2.0
    hop_s: float = 0.5
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    path: Path | None = None
    adaptation: ModelAdaptation | None = None

    def __post_init__(self) -> None:
        if isinstance(self.extractor, FeatureConfig):
            self.extractor = HandcraftedFeatures(self.extractor)
        if not isinstance(self.extractor, FeatureExtractor):
            raise ModelError(f"not a feature extractor: {self.extractor!r}")
        classes = self._classifier.classes
        if not classes:
            raise ModelError("the model's estimator is not fitted (it has no classes)")
        unknown = [c for c in classes if c not in EMOTIONS]
        if unknown:
            raise ModelError(f"the model predicts labels ser-live does not know: {', '.join(unknown)}")
        if not 0 < self.hop_s <= self.window_s:
            raise ModelError(
                f"the model's hop ({self.hop_s} s) must be positive and at most its window ({self.window_s} s)"
            )
        # Probabilities are always reported in the product's fixed display order.
        self.classes: tuple[str, ...] = tuple(e for e in EMOTIONS if e in classes)
        self._order = np.array([classes.index(c) for c in self.classes])
        self._adapted_order: np.ndarray | None = None
        if self.adaptation is not None:
            adapted_classes = self.adaptation._classifier.classes
            if sorted(adapted_classes) != sorted(classes):
                raise ModelError("the model's adaptive variant predicts other classes than the model")
            self._adapted_order = np.array([adapted_classes.index(c) for c in self.classes])

    @property
    def sample_rate_hz(self) -> int:
        """Sample rate the model's features expect."""
        return self.extractor.sample_rate_hz

    @property
    def feature_config(self) -> FeatureConfig | None:
        """The handcrafted features' configuration (None for other extractors)."""
        return getattr(self.extractor, "config", None) if isinstance(self.extractor, HandcraftedFeatures) else None

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
        probs = self._classifier.predict_proba(np.atleast_2d(x))[:, self._order]
        return probs[0] if single else probs

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
        probs = self.adaptation._classifier.predict_proba(inputs)[:, self._adapted_order]
        if self.adaptation.blend:
            weight = normalizer.weight
            plain = self._classifier.predict_proba(x)[:, self._order] if plain is None else np.atleast_2d(plain)
            probs = weight * probs + (1.0 - weight) * plain
        return probs[0] if np.ndim(features) == 1 else probs

    def to_bundle(self) -> dict[str, Any]:
        """The dictionary stored in a model file (format 2).

        Raises
        ------
        ModelError
            An estimator of a compiled shape whose compilation does not reproduce its
            ``predict_proba`` within ``COMPILED_TOLERANCE``: such a file would predict otherwise
            than its estimator, so it is not made.
        """
        pickled, inference = self._classifier.to_entries()
        extra = {"adaptation": self.adaptation.to_dict()} if self.adaptation is not None else {}
        return {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "estimator": pickled,
            "inference": inference,
            "classes": list(self.classes),
            "extractor": self.extractor.to_record(),
            "sample_rate_hz": self.sample_rate_hz,
            "window_s": self.window_s,
            "hop_s": self.hop_s,
            "metadata": self.metadata,
            **extra,
        }

    def save(self, path: str | os.PathLike[str], *, compress: int = 3) -> str:
        """Write the model file and return its SHA-256.

        Compressed, although network weights hardly compress (3.1 MB instead of 3.4 MB) and
        decompressing costs about 16 ms of start-up: zlib's checksum is what makes a corrupted
        trusted file fail to load instead of loading with damaged weights.
        """
        import joblib

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        joblib.dump(self.to_bundle(), tmp, compress=compress)
        os.replace(tmp, path)
        return file_sha256(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, *, trust: bool = False) -> EmotionModel:
        """Load a model file.

        Parameters
        ----------
        path : path-like, optional
            Model file, or the name of a shipped model (:data:`SHIPPED_MODELS`: ``"light"``); the shipped
            default when omitted.
        trust : bool
            Allow loading a file that is not the shipped model. Model files are pickles and can run
            code when loaded: trust only files from people you trust. The environment variable
            ``SER_LIVE_TRUST_MODEL=1`` has the same effect.

        Raises
        ------
        ModelError
            Missing, damaged, not a ser-live model, or made for other feature code.
        UntrustedModelError
            Not the shipped model and not trusted.
        """
        if path is None:
            path = default_model_path()
        elif isinstance(path, str) and path in SHIPPED_MODELS and not Path(path).exists():
            path = shipped_model_path(path)
        path = Path(path)
        data = _read_model_bytes(path)
        # Hash and unpickle the same bytes, so the file cannot be swapped between check and load.
        digest = hashlib.sha256(data).hexdigest()
        shipped = _shipped_hashes()
        if digest not in shipped and not (trust or trust_from_env()):
            if _is_shipped_location(path) and not shipped:
                raise ModelError(
                    f"no SHA-256 is recorded for the shipped model {path} in this ser-live (a development "
                    "checkout?); record it with scripts/train.py --ship, or pass --trust-model if you made it"
                )
            if _is_shipped_location(path):
                raise ModelError(
                    f"the shipped model {path} has been modified (its SHA-256 is not the one recorded in ser-live); "
                    "reinstall ser-live"
                )
            raise UntrustedModelError(
                f"{path} is not the shipped model, and model files can run code when loaded; "
                f"pass --trust-model (or set {TRUST_ENV_VAR}=1) only if you trust where it came from"
            )
        return cls.from_bundle(_unpickle(data, path), path=path)

    @classmethod
    def from_bundle(cls, bundle: Any, *, path: Path | None = None) -> EmotionModel:
        """Rebuild a model from the dictionary :meth:`to_bundle` made, validating it."""
        where = f"model file {path}" if path else "model bundle"
        if not isinstance(bundle, dict) or bundle.get("format") != MODEL_FORMAT:
            raise ModelError(f"{where} is not a ser-live model")
        version = bundle.get("format_version")
        if version not in _READABLE_FORMAT_VERSIONS:
            raise ModelError(
                f"{where} has format version {version}, this ser-live reads versions "
                f"{' and '.join(map(str, _READABLE_FORMAT_VERSIONS))}; use the ser-live version that made it"
            )
        # Files before the extractor seam record the handcrafted features as feature_config/feature_version.
        record = bundle.get("extractor")
        if record is None and "feature_config" in bundle:
            record = {"kind": HandcraftedFeatures.kind, "version": bundle.get("feature_version"),
                      "config": bundle.get("feature_config")}
        try:
            extractor = extractor_from_record(record)
        except FeatureConfigError as exc:
            raise FeatureConfigError(f"{where}: {exc}") from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{where} has no usable feature configuration") from exc
        estimator = bundle.get("estimator")
        if version == 1:  # the estimator object itself: compiled now
            if not callable(getattr(estimator, "predict_proba", None)):
                raise ModelError(f"{where} holds no classifier with predict_proba")
        else:
            try:
                estimator = _Classifier.from_entries(estimator, bundle.get("inference"), where)
            except (TypeError, ValueError) as exc:
                raise ModelError(f"{where}: {exc}; download or train it again") from exc
        try:
            window_s = float(bundle.get("window_s", 2.0))
            hop_s = float(bundle.get("hop_s", 0.5))
            metadata = dict(bundle.get("metadata") or {})
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{where} has malformed settings ({exc})") from exc
        if not (math.isfinite(window_s) and math.isfinite(hop_s)):
            raise ModelError(f"{where} has a non-finite window or hop")
        adaptation = _adaptation_from_bundle(bundle.get("adaptation"), where, version)
        try:
            model = cls(estimator, extractor, window_s=window_s, hop_s=hop_s, metadata=metadata, path=path,
                        adaptation=adaptation)
        except TypeError as exc:  # e.g. an estimator whose classes_ is not a list of labels
            raise ModelError(f"{where} holds a malformed classifier ({exc})") from exc
        if list(bundle.get("classes", [])) != list(model.classes):
            raise ModelError(f"{where} lists classes that do not match its estimator")
        extractor.prepare()  # a missing or different encoder is refused now, not at the first speech window
        n_features = extractor.dim
        n_expected = model._classifier.n_features
        if n_expected is not None and n_expected != n_features:
            raise FeatureConfigError(
                f"{where} expects {n_expected} features but its feature configuration gives "
                f"{n_features}; it was made by incompatible feature code"
            )
        # Refuse at load time a model that cannot predict (e.g. pickled by an incompatible
        # scikit-learn), rather than failing on the first window of a session.
        try:
            probe = model.predict_proba(np.zeros(n_features))
        except Exception as exc:
            raise ModelError(
                f"{where} cannot predict with the installed libraries ({type(exc).__name__}: {exc}); "
                "retrain it or install the library versions it was made with"
            ) from exc
        if probe.shape != (len(model.classes),) or not np.all(np.isfinite(probe)):
            raise ModelError(f"{where} gives malformed probabilities")
        if model.adaptation is not None:
            if model.adaptation.prior.mean.shape != (n_features,):
                raise ModelError(f"{where}: its adaptive variant's statistics do not match its features")
            try:
                probe = model.predict_proba_adapted(np.zeros(n_features),
                                                    SpeakerNormalizer(model.adaptation.prior, hop_s=hop_s))
            except Exception as exc:
                raise ModelError(f"{where}: its adaptive variant cannot predict ({type(exc).__name__}: {exc})") from exc
            if probe.shape != (len(model.classes),) or not np.all(np.isfinite(probe)):
                raise ModelError(f"{where}: its adaptive variant gives malformed probabilities")
        return model


def _adaptation_from_bundle(entry: Any, where: str, version: int) -> ModelAdaptation | None:
    """Validate a model file's optional ``adaptation`` entry."""
    if entry is None:
        return None
    try:
        estimator = entry["estimator"]
        if version == 1:
            if not callable(getattr(estimator, "predict_proba", None)):
                raise TypeError("no classifier with predict_proba")
        else:
            estimator = _Classifier.from_entries(estimator, entry.get("inference"), f"{where}'s adaptive variant")
        return ModelAdaptation(estimator, SpeakerPrior.from_dict(entry["prior"]), bool(entry["blend"]),
                               str(entry["inputs"]), str(entry.get("reference", "all")),
                               float(entry.get("neutral_threshold", 0.5)))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{where} has a malformed speaker-adaptive variant ({exc})") from exc


def build_provenance() -> dict[str, str]:
    """Creation time and library versions, recorded in a new model's metadata."""
    import joblib
    import sklearn

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "joblib": joblib.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
