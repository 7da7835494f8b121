"""Codecs a recording may have passed through on its way here: Opus at a low bit rate, and a narrow-band phone line."""

from __future__ import annotations

import io

import numpy as np

__all__ = ["CODECS", "opus_round_trip", "telephone_line", "through_codec"]

#: The codecs :func:`through_codec` knows.
CODECS = ("opus", "telephone")

#: libsndfile maps Opus's compression level linearly onto the bit rate per channel between these (bit/s).
_OPUS_MIN_BPS, _OPUS_MAX_BPS = 6_000, 256_000


def opus_round_trip(y: np.ndarray, *, sample_rate_hz: int, bitrate_kbps: float = 24.0) -> np.ndarray:
    """``y`` (mono) encoded as Ogg Opus at about ``bitrate_kbps`` and decoded again (libsndfile, via soundfile).

    Returns
    -------
    np.ndarray, float32, the same length as ``y``
        Opus's look-ahead delay stays in (a few milliseconds), as it does in any Opus file.
    """
    import soundfile as sf

    y = np.asarray(y, dtype=np.float32)
    level = 1.0 - (1000.0 * bitrate_kbps - _OPUS_MIN_BPS) / (_OPUS_MAX_BPS - _OPUS_MIN_BPS)
    buffer = io.BytesIO()
    sf.write(buffer, y, sample_rate_hz, format="OGG", subtype="OPUS", compression_level=float(np.clip(level, 0, 1)))
    buffer.seek(0)
    decoded, _ = sf.read(buffer, dtype="float32")
    return _same_length(decoded, y.shape[0])


def telephone_line(y: np.ndarray, *, sample_rate_hz: int, mu: int = 255) -> np.ndarray:
    """``y`` (mono) as a narrow-band phone call carries it: 300-3400 Hz, 8 kHz, 8-bit mu-law (G.711), and back.

    Returns
    -------
    np.ndarray, float32, the same length as ``y``, at ``sample_rate_hz`` again
    """
    from scipy.signal import butter, resample_poly, sosfilt

    y = np.asarray(y, dtype=np.float64)
    band = sosfilt(butter(4, [300.0, 3400.0], btype="bandpass", fs=sample_rate_hz, output="sos"), y)
    narrow = np.clip(resample_poly(band, 8000, sample_rate_hz), -1.0, 1.0)
    companded = np.sign(narrow) * np.log1p(mu * np.abs(narrow)) / np.log1p(mu)
    quantised = np.round((companded + 1.0) / 2.0 * mu) / mu * 2.0 - 1.0  # 256 levels
    expanded = np.sign(quantised) * np.expm1(np.abs(quantised) * np.log1p(mu)) / mu
    return _same_length(resample_poly(expanded, sample_rate_hz, 8000).astype(np.float32), y.shape[0])


def through_codec(y: np.ndarray, codec: str, *, sample_rate_hz: int, bitrate_kbps: float = 24.0) -> np.ndarray:
    """``y`` through one of :data:`CODECS` (``bitrate_kbps`` is Opus's)."""
    if codec == "opus":
        return opus_round_trip(y, sample_rate_hz=sample_rate_hz, bitrate_kbps=bitrate_kbps)
    if codec == "telephone":
        return telephone_line(y, sample_rate_hz=sample_rate_hz)
    raise ValueError(f"codec must be one of {CODECS}, not {codec!r}")


def _same_length(y: np.ndarray, n_samples: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32).ravel()[:n_samples]
    return np.pad(y, (0, n_samples - y.shape[0])) if y.shape[0] < n_samples else y
