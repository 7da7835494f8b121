"""Dereverberation of one analysis window: single-channel weighted prediction error (WPE) through nara-wpe.

A room's late reverberation smears each syllable into the next; WPE predicts that tail from the
frames a few tens of milliseconds earlier and subtracts it (Nakatani et al. 2010; the nara-wpe package,
Drude et al. 2018, MIT, is the reference implementation). It needs no trained weights and works on one
window alone, so training and the live monitor apply it identically, window by window, behind the
feature-extractor seam (:class:`ser_live.features.extractor.EncoderFeatures`' ``dereverb``). The short-time
Fourier transforms are ours (numpy, a periodic Hann window at 75 % overlap) so the live path does not
import scipy.signal.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..errors import ModelError

__all__ = ["Dereverb", "DereverbMissingError", "stft", "istft"]

#: The package that carries the WPE implementation (in ser-live's ``train`` extra).
PACKAGE = "nara-wpe"


class DereverbMissingError(ModelError):
    """The model dereverberates its windows, and the package that does it is not installed."""


def stft(y: np.ndarray, *, fft_size: int, hop: int) -> np.ndarray:
    """Short-time spectra of ``y``, shape ``(n_frames, fft_size // 2 + 1)``.

    ``y`` is padded by ``fft_size - hop`` zeros at both ends, so that every sample lies under the full
    overlap of windows and :func:`istft` gives it back exactly.
    """
    pad = fft_size - hop
    padded = np.pad(np.asarray(y, dtype=np.float64), (pad, pad + (-y.shape[0]) % hop))
    frames = np.lib.stride_tricks.sliding_window_view(padded, fft_size)[::hop]
    return np.fft.rfft(frames * _hann(fft_size), axis=1)


def istft(spectra: np.ndarray, *, fft_size: int, hop: int, n_samples: int) -> np.ndarray:
    """The ``n_samples`` long signal whose :func:`stft` is ``spectra`` (weighted overlap-add)."""
    window = _hann(fft_size)
    frames = np.fft.irfft(spectra, n=fft_size, axis=1) * window
    n_padded = (spectra.shape[0] - 1) * hop + fft_size
    out = np.zeros(n_padded)
    norm = np.zeros(n_padded)
    for i, frame in enumerate(frames):
        out[i * hop: i * hop + fft_size] += frame
        norm[i * hop: i * hop + fft_size] += window ** 2
    pad = fft_size - hop
    return out[pad: pad + n_samples] / np.maximum(norm[pad: pad + n_samples], 1e-12)


def _hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


@dataclasses.dataclass(frozen=True)
class Dereverb:
    """Single-channel WPE over one window.

    Parameters
    ----------
    taps : int
        Length of the prediction filter in frames (10 frames of 8 ms: the reverberation 32-112 ms after
        the sound is predicted and removed).
    delay : int
        Frames skipped before the filter starts, so the direct sound and early reflections stay.
    iterations : int
        Alternations between estimating the clean power and the filter.
    fft_size, hop : int
        STFT frame and hop in samples (32 ms and 8 ms at 16 kHz, nara-wpe's own settings).
    """

    taps: int = 10
    delay: int = 3
    iterations: int = 3
    fft_size: int = 512
    hop: int = 128

    def __post_init__(self) -> None:
        if min(self.taps, self.delay + 1, self.iterations, self.hop) < 1 or self.fft_size < 2 * self.hop:
            raise ValueError(f"dereverberation needs taps, iterations and hop >= 1, delay >= 0 and fft_size >= 2 hop, "
                             f"got {self}")

    def to_dict(self) -> dict[str, Any]:
        """The settings and the package version that applies them, as a model file records them."""
        from importlib.metadata import PackageNotFoundError, version

        try:
            package = f"{PACKAGE} {version(PACKAGE)}"
        except PackageNotFoundError:
            package = f"{PACKAGE} (not installed)"
        return {"method": "wpe", "package": package, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, record: Any) -> Dereverb:
        """The settings a model file recorded (:meth:`to_dict`)."""
        if not isinstance(record, dict) or record.get("method") != "wpe":
            raise ValueError(f"unknown dereverberation {record!r}")
        return cls(**{field.name: int(record[field.name]) for field in dataclasses.fields(cls)})

    def prepare(self) -> None:
        """Check the WPE package is installed (:class:`DereverbMissingError` naming it otherwise)."""
        _wpe()

    def __call__(self, window: np.ndarray) -> np.ndarray:
        """``window`` (mono, float) with its late reverberation removed, as float32 of the same length."""
        window = np.asarray(window, dtype=np.float64)
        spectra = stft(window, fft_size=self.fft_size, hop=self.hop)
        # nara-wpe wants (frequency, channel, frame).
        dry = _wpe()(spectra.T[:, None, :], taps=self.taps, delay=self.delay, iterations=self.iterations,
                     statistics_mode="full")[:, 0, :].T
        return istft(dry, fft_size=self.fft_size, hop=self.hop, n_samples=window.shape[0]).astype(np.float32)


def _wpe() -> Any:
    try:
        from nara_wpe.wpe import wpe
    except ImportError as exc:
        raise DereverbMissingError(f"this model removes room reverberation with {PACKAGE}, which is not installed: "
                                   f"pip install {PACKAGE}") from exc
    return wpe
