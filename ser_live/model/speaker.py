"""Speaker adaptation: the current speaker's reference feature statistics, shrunk toward the training population's.

Much of what makes a voice sound "sad" or "angry" to a model is the speaker (pitch, loudness,
timbre), not the emotion. A model trained on features referenced to each speaker's own voice removes
that, but needs the current speaker's statistics, learnt live. Until enough speech has been learnt
they are blended with the population's: after ``t`` seconds of learnt speech the speaker's own
statistics get the weight ``t / (t + half_s)`` (one half at ``half_s`` seconds).

Which speech windows teach the voice is the normaliser's :attr:`SpeakerNormalizer.learn` mode
(:data:`LEARN_MODES`): every one (a neutral reading during ``--calibrate``), only those the plain model
judges neutral (``--adapt``; a held mood is not learnt as the voice), or none (frozen). Silence never
moves them.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SpeakerPrior", "RunningStats", "SpeakerNormalizer", "profile_path", "PROFILE_VERSION", "ADAPTIVE_INPUTS",
           "ADAPTIVE_REFERENCES", "LEARN_MODES", "adaptive_input", "effect_line", "measured_effect"]

#: What an adaptive estimator can be fed: the speaker-normalised features alone, or the raw features
#: followed by the normalised ones (the raw half keeps what is absolute, e.g. a loud voice, the
#: normalised half what is relative to this speaker).
ADAPTIVE_INPUTS = ("normalised", "raw+normalised")
#: What an adaptive estimator's speaker statistics describe: the speaker's neutral voice, or all their speech.
ADAPTIVE_REFERENCES = ("neutral", "all")
#: Which speech windows a :class:`SpeakerNormalizer` learns from (see the module docstring).
LEARN_MODES = ("every", "judged-neutral", "frozen")


def adaptive_input(raw: np.ndarray, normalised: np.ndarray, inputs: str) -> np.ndarray:
    """The adaptive estimator's input rows from raw and speaker-normalised feature rows (both 2-D)."""
    if inputs == "normalised":
        return np.asarray(normalised, dtype=np.float64)
    if inputs == "raw+normalised":
        return np.hstack([np.asarray(raw, dtype=np.float64), np.asarray(normalised, dtype=np.float64)])
    raise ValueError(f"unknown adaptive inputs {inputs!r}; expected one of {ADAPTIVE_INPUTS}")

#: 2: statistics of the neutral voice. Version 1 profiles hold the statistics of all speech (which learnt a
#: held mood as the voice) and are refused.
PROFILE_VERSION = 2
#: Largest profile file read (a real one is a few tens of kB): a bigger file is refused unread.
MAX_PROFILE_BYTES = 1 << 20
#: No feature of any extractor comes near this magnitude; a mean beyond it is damage, not a voice.
MAX_FEATURE_MAGNITUDE = 1e6
#: Windows a profile may count (about 16 years of speech at a 0.5 s hop).
MAX_PROFILE_WINDOWS = 1e9
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclasses.dataclass(frozen=True)
class SpeakerPrior:
    """The training population's feature statistics, stored in an adaptive model.

    Parameters
    ----------
    mean : np.ndarray, shape (n_features,)
        Average of the training speakers' feature means.
    std : np.ndarray, shape (n_features,)
        Typical within-speaker standard deviation (root of the average per-speaker variance).
    half_s : float
        Seconds of speech after which the speaker's own statistics weigh as much as the prior.
    """

    mean: np.ndarray
    std: np.ndarray
    half_s: float = 20.0

    def __post_init__(self) -> None:
        mean = np.asarray(self.mean, dtype=np.float64)
        std = np.asarray(self.std, dtype=np.float64)
        if mean.ndim != 1 or mean.shape != std.shape:
            raise ValueError("prior mean and std must be 1-D and of equal length")
        if not np.all(std > 0):
            raise ValueError("prior std must be positive")
        if not self.half_s > 0:
            raise ValueError("half_s must be positive")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary for a model file."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "half_s": self.half_s}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SpeakerPrior:
        """Inverse of :meth:`to_dict`."""
        return cls(np.asarray(values["mean"]), np.asarray(values["std"]), float(values["half_s"]))


class RunningStats:
    """Mean and variance of a stream of vectors, updated one vector at a time (Welford's method).

    Parameters
    ----------
    n_features : int
    """

    def __init__(self, n_features: int) -> None:
        self.count = 0
        self.mean = np.zeros(n_features, dtype=np.float64)
        self._m2 = np.zeros(n_features, dtype=np.float64)

    def update(self, x: np.ndarray) -> None:
        """Add one observation."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape != self.mean.shape:
            raise ValueError(f"expected {self.mean.shape[0]} features, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            return  # one broken window must not poison the speaker's statistics
        self.count += 1
        delta = x - self.mean
        self.mean += delta / self.count
        self._m2 += delta * (x - self.mean)

    @property
    def variance(self) -> np.ndarray:
        """Population variance of what was seen (zeros before two observations)."""
        return self._m2 / self.count if self.count > 1 else np.zeros_like(self.mean)

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "mean": self.mean.tolist(), "m2": self._m2.tolist()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunningStats:
        """Inverse of :meth:`to_dict`; every number is checked (a profile is a file anybody can edit).

        Raises
        ------
        ValueError
            For a count that is not a whole number of windows, a value that is not finite, a mean too
            large for any feature, or a negative or overflowing second moment.
        """
        count = _window_count(values["count"])
        mean = np.asarray(values["mean"], dtype=np.float64)
        m2 = np.asarray(values["m2"], dtype=np.float64)
        if mean.ndim != 1 or mean.shape != m2.shape:
            raise ValueError("mean and second moments of different shapes")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(m2))):
            raise ValueError("a mean or second moment is not a finite number")
        if np.any(np.abs(mean) > MAX_FEATURE_MAGNITUDE) or np.any(m2 < 0) \
                or np.any(m2 > MAX_FEATURE_MAGNITUDE**2 * max(count, 1)):
            raise ValueError("a mean or second moment is out of any feature's range")
        stats = cls(mean.shape[0])
        stats.count, stats.mean, stats._m2 = count, mean, m2
        return stats


def _window_count(raw: Any) -> int:
    """A profile's count of windows: a whole number from 0 to :data:`MAX_PROFILE_WINDOWS` (ValueError otherwise)."""
    number = isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw)
    if not number or not 0 <= raw <= MAX_PROFILE_WINDOWS or raw != int(raw):
        raise ValueError(f"count {raw!r} is not a number of windows")
    return int(raw)


class SpeakerNormalizer:
    """Standardise feature vectors with the current speaker's statistics, learnt online.

    Parameters
    ----------
    prior : SpeakerPrior
        Population statistics and the half-way point of the blend.
    hop_s : float
        New audio each speech window brings (the monitor's hop), used to count seconds of speech.
    learn : str
        Which speech windows the monitor lets it learn from (:data:`LEARN_MODES`); may change during a
        session (a calibration ends, adaptation is turned on).
    """

    def __init__(self, prior: SpeakerPrior, *, hop_s: float, learn: str = "judged-neutral") -> None:
        if not hop_s > 0:
            raise ValueError("hop_s must be positive")
        if learn not in LEARN_MODES:
            raise ValueError(f"unknown learn mode {learn!r}; expected one of {LEARN_MODES}")
        self.prior = prior
        self.hop_s = hop_s
        self.learn = learn
        self.stats = RunningStats(prior.mean.shape[0])

    @property
    def learnt_s(self) -> float:
        """Seconds of speech learnt from."""
        return self.stats.count * self.hop_s

    @property
    def weight(self) -> float:
        """Weight of the speaker's own statistics, ``learnt_s / (learnt_s + half_s)``, in [0, 1)."""
        return self.learnt_s / (self.learnt_s + self.prior.half_s)

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        """The blended mean and standard deviation used to normalise now."""
        w = self.weight
        mean = w * self.stats.mean + (1.0 - w) * self.prior.mean
        var = w * self.stats.variance + (1.0 - w) * np.square(self.prior.std)
        return mean, np.sqrt(np.maximum(var, 1e-12))

    def transform(self, features: np.ndarray) -> np.ndarray:
        """Standardise features (shape ``(n_features,)`` or ``(n, n_features)``) with the current blend."""
        mean, std = self.mean_std()
        return (np.asarray(features, dtype=np.float64) - mean) / std

    def update(self, features: np.ndarray) -> None:
        """Learn from the features of one speech window (never call it for silence)."""
        self.stats.update(features)

    def reset(self) -> None:
        """Forget the speaker (a new person sits down)."""
        self.stats = RunningStats(self.prior.mean.shape[0])

    # -- profiles -------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], *, profile_key: str) -> None:
        """Write the learnt statistics as a JSON profile (atomically), for the features ``profile_key`` names
        (:func:`ser_live.app.session.profile_key`: a profile learnt on other features must not be read back)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "profile_version": PROFILE_VERSION,
            "feature_version": profile_key,  # the file's key since profile version 2
            "n_features": int(self.prior.mean.shape[0]),
            "stats": self.stats.to_dict(),
        }
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(payload), encoding="utf-8")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)  # nothing left behind when the replace failed (a folder in the way)

    def load(self, path: str | os.PathLike[str], *, profile_key: str) -> bool:
        """Resume from a saved profile; a missing one is a fresh start.

        A damaged or incompatible profile is ignored with a :class:`UserWarning` (never fatal) and
        kept beside it as ``NAME.json.bad``, so that saving the new statistics does not destroy it.
        Returns whether statistics were loaded.
        """
        path = Path(path)
        if not path.exists():
            return False
        try:
            stats = _read_profile(path, profile_key, self.prior.mean.shape)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            kept = _set_aside(path)
            reason = " ".join(str(exc).split())[:120] or type(exc).__name__
            warnings.warn(f"ignoring speaker profile {path}: it is damaged or incompatible ({reason}){kept}",
                          stacklevel=2)
            return False
        self.stats = stats
        return True


def _read_profile(path: Path, profile_key: str, shape: tuple[int, ...]) -> RunningStats:
    """The statistics of a profile file, every field checked (raises on anything a saved profile cannot be)."""
    if path.is_dir():
        raise ValueError("it is a folder, not a file")
    if path.stat().st_size > MAX_PROFILE_BYTES:
        raise ValueError(f"larger than {MAX_PROFILE_BYTES >> 20} MB")
    payload = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(payload, dict):
        raise ValueError("not a JSON object")
    if payload.get("profile_version") == 1:
        raise ValueError("made by the earlier adaptation, which learnt all speech and so a held mood as the voice; "
                         "calibrate again")
    if payload.get("profile_version") != PROFILE_VERSION:
        raise ValueError(f"profile version {payload.get('profile_version')}")
    if payload.get("feature_version") != profile_key:
        raise ValueError(f"made for feature version {payload.get('feature_version')}")
    stats = RunningStats.from_dict(payload["stats"])
    if stats.mean.shape != shape:
        raise ValueError("made for another feature set")
    return stats


def _set_aside(path: Path) -> str:
    """Keep a refused profile as ``NAME.json.bad`` (so saving does not destroy it); says where, if it could."""
    if not path.is_file():
        return ""
    bad = path.with_name(path.name + ".bad")
    try:
        os.replace(path, bad)
    except OSError:
        return ""
    return f"; kept as {bad}"


def profile_path(name: str) -> Path:
    """Where the profile called ``name`` lives: the user's data directory (``--profile NAME``).

    Raises
    ------
    ValueError
        If the name is not a plain word (letters, digits, ``_ . -``).
    """
    if not _PROFILE_NAME.match(name):
        raise ValueError(f"profile name '{name}' must be letters, digits, '_', '.' or '-' (at most 64)")
    import platformdirs

    return Path(platformdirs.user_data_dir("ser-live")) / "profiles" / f"{name}.json"


def effect_line(verdict: dict[str, Any]) -> str:
    """A method's measured effect in words, from its shipping verdict in an adaptation report."""
    drop = verdict["largest_sustained_drop"]
    held = (f"a held mood read up to {drop:.2f} recall lower ({verdict['largest_drop_at']})" if drop > 0.005 else
            "held moods read as well as without it")
    gain = verdict["shuffled_gain"]
    return f"{held}; mixed emotions " + ("not scored" if gain is None else f"{gain:+.3f} UAR")


@functools.lru_cache(maxsize=8)
def measured_effect(model_path: str | os.PathLike[str] | None, mode: str) -> str | None:
    """What the adaptation evaluation measured for ``mode`` (``"adapt"`` or ``"calibrate"``) on held-out speakers.

    Read from the ``metrics.json`` that training writes beside the model file; None when there is none
    or it holds no adaptation evaluation of that mode. Read once per file and mode: the window asks on
    every refresh of its controls, and the file (with its loss curves) is large.
    """
    if model_path is None:
        return None
    try:
        metrics = json.loads((Path(model_path).parent / "metrics.json").read_text(encoding="utf-8"))
        method = metrics["adaptive_variant"][mode]
        return effect_line(metrics["adaptation"]["verdicts"][method])
    except (OSError, ValueError, KeyError, TypeError):
        return None
