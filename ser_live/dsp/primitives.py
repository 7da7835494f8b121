"""Signal-processing building blocks (framing, spectra, mel filters, pitch) shared by the gate and the features.

Every function here is pure: arrays in, arrays out, no state. They are written with numpy and
``scipy.fft`` rather than called from librosa because importing librosa JIT-compiles numba kernels
(about 20 s on a fresh install, 2 s on every later start) and two processes doing that at once have
corrupted numba's cache. The test-suite checks the mel filterbank and the MFCCs against librosa's.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.fft

__all__ = [
    "frame_signal",
    "power_spectrum",
    "hz_to_mel",
    "mel_to_hz",
    "mel_filterbank",
    "power_to_db",
    "dct_ortho",
    "rms_db",
    "frame_rms_db",
    "autocorrelation_pitch",
    "FramePitch",
    "delta",
    "percentiles",
    "masked_moments",
    "masked_percentiles",
    "compacted_diffs",
    "masked_slope",
    "mask_runs",
]

#: Floor (in dB) used wherever a log of a power could reach minus infinity.
DB_FLOOR = -120.0
_DB_PER_NEPER_POWER = 10.0 / np.log(10.0)  # 10 * log10(x) == this * ln(x)


def frame_signal(y: np.ndarray, *, frame_length: int, hop_length: int) -> np.ndarray:
    """Cut a 1-D signal into overlapping frames.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        The signal. A signal shorter than ``frame_length`` is zero-padded to one frame.
    frame_length : int
        Samples per frame.
    hop_length : int
        Samples between the starts of consecutive frames.

    Returns
    -------
    frames : np.ndarray, shape (n_frames, frame_length)
        A read-only strided view when no padding was needed.
    """
    if y.ndim != 1:
        raise ValueError(f"expected a 1-D signal, got shape {y.shape}")
    if frame_length <= 0 or hop_length <= 0:
        raise ValueError("frame_length and hop_length must be positive")
    if y.shape[0] < frame_length:
        y = np.pad(y, (0, frame_length - y.shape[0]))
    n_frames = 1 + (y.shape[0] - frame_length) // hop_length
    return np.lib.stride_tricks.sliding_window_view(y, frame_length)[::hop_length][:n_frames]


def power_spectrum(frames: np.ndarray, *, n_fft: int, window: np.ndarray | None = None) -> np.ndarray:
    """Power spectrum of each frame.

    Parameters
    ----------
    frames : np.ndarray, shape (n_frames, frame_length)
    n_fft : int
        FFT size; frames are zero-padded to it. Must be ``>= frame_length``.
    window : np.ndarray, shape (frame_length,), optional
        Analysis window; a periodic Hann window when omitted.

    Returns
    -------
    power : np.ndarray, shape (n_frames, n_fft // 2 + 1)
    """
    frame_length = frames.shape[1]
    if n_fft < frame_length:
        raise ValueError(f"n_fft ({n_fft}) must be >= frame_length ({frame_length})")
    if window is None:
        window = hann_window(frame_length)
    spectrum = scipy.fft.rfft(frames * window, n=n_fft, axis=1)
    return spectrum.real**2 + spectrum.imag**2


def hann_window(length: int) -> np.ndarray:
    """Periodic Hann window of ``length`` samples (the STFT convention)."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)).astype(np.float32)


# Slaney mel scale: linear (200/3 Hz per mel) below 1 kHz, logarithmic above; as librosa and the Auditory Toolbox.
_HZ_PER_MEL = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _HZ_PER_MEL
_LOG_STEP = np.log(6.4) / 27.0


def hz_to_mel(frequency_hz: np.ndarray | float) -> np.ndarray:
    """Convert Hz to mels on the Slaney scale (linear below 1 kHz, logarithmic above)."""
    f = np.asarray(frequency_hz, dtype=np.float64)
    logarithmic = _MIN_LOG_MEL + np.log(np.maximum(f, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOG_STEP
    return np.where(f >= _MIN_LOG_HZ, logarithmic, f / _HZ_PER_MEL)


def mel_to_hz(mels: np.ndarray | float) -> np.ndarray:
    """Convert Slaney-scale mels back to Hz (inverse of :func:`hz_to_mel`)."""
    m = np.asarray(mels, dtype=np.float64)
    logarithmic = _MIN_LOG_HZ * np.exp(_LOG_STEP * (m - _MIN_LOG_MEL))
    return np.where(m >= _MIN_LOG_MEL, logarithmic, _HZ_PER_MEL * m)


def mel_filterbank(
    *, sample_rate_hz: int, n_fft: int, n_mels: int, fmin_hz: float = 0.0, fmax_hz: float | None = None
) -> np.ndarray:
    """Triangular, area-normalised (Slaney) mel filterbank, equal to ``librosa.filters.mel``.

    Parameters
    ----------
    sample_rate_hz : int
    n_fft : int
    n_mels : int
        Number of mel bands.
    fmin_hz, fmax_hz : float
        Lowest and highest band edges; ``fmax_hz`` defaults to the Nyquist frequency.

    Returns
    -------
    weights : np.ndarray, shape (n_mels, n_fft // 2 + 1), float32
    """
    if fmax_hz is None:
        fmax_hz = sample_rate_hz / 2.0
    fft_freqs = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate_hz)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin_hz), hz_to_mel(fmax_hz), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


def power_to_db(power: np.ndarray, *, ref: float = 1.0, amin: float = 1e-10) -> np.ndarray:
    """``10 * log10(power / ref)`` with powers below ``amin`` clipped (no ``top_db`` clipping)."""
    # Natural log times a constant: numpy vectorises log, not log10 (3x faster on float32 here).
    return _DB_PER_NEPER_POWER * np.log(np.maximum(power, amin) / ref)


def dct_ortho(x: np.ndarray, *, n_coefficients: int) -> np.ndarray:
    """First ``n_coefficients`` of the orthonormal DCT-II along the last axis (how MFCCs are made)."""
    return scipy.fft.dct(x, type=2, norm="ortho", axis=-1)[..., :n_coefficients]


def rms_db(y: np.ndarray) -> float:
    """Root-mean-square level of a signal in dBFS (full-scale sine = -3 dBFS), floored at ``DB_FLOOR``."""
    if y.size == 0:
        return DB_FLOOR
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    return max(DB_FLOOR, 20.0 * np.log10(rms)) if rms > 0 else DB_FLOOR


def frame_rms_db(frames: np.ndarray) -> np.ndarray:
    """RMS level of each frame in dBFS, floored at ``DB_FLOOR``."""
    power = np.mean(np.square(frames, dtype=np.float64), axis=1)
    return np.maximum(DB_FLOOR, 10.0 * np.log10(np.maximum(power, 1e-12)))


def autocorrelation_pitch(
    frames: np.ndarray, *, sample_rate_hz: int, f0_min_hz: float, f0_max_hz: float
) -> tuple[np.ndarray, np.ndarray]:
    """Fundamental frequency and periodicity of each frame from its normalised autocorrelation.

    The autocorrelation is computed through the FFT and divided by the number of overlapping
    samples at each lag (unbiased), then by the frame's energy, so a perfectly periodic frame
    scores 1 and noise scores near 0. The peak of the shortest lag reaching 90 % of the best
    is taken, which avoids the usual octave-too-low errors.

    Parameters
    ----------
    frames : np.ndarray, shape (n_frames, frame_length)
        Frames long enough to hold two periods of ``f0_min_hz``.
    sample_rate_hz : int
    f0_min_hz, f0_max_hz : float
        Search range for the fundamental.

    Returns
    -------
    f0_hz : np.ndarray, shape (n_frames,)
        Estimated fundamental (meaningful only where ``periodicity`` is high).
    periodicity : np.ndarray, shape (n_frames,)
        Peak normalised autocorrelation in the search range, in [0, 1].
    """
    n_frames, frame_length = frames.shape
    lag_min = max(1, int(np.floor(sample_rate_hz / f0_max_hz)))
    lag_max = min(frame_length - 2, int(np.ceil(sample_rate_hz / f0_min_hz)))
    if lag_max <= lag_min:
        raise ValueError("frames are too short for the requested f0 range")
    # float32 and a 5-smooth FFT size (not the next power of two) make this four times faster. Only
    # lags up to lag_max + 1 are used: an FFT of frame_length + lag_max + 1 points keeps them free of
    # circular wrap-around (a quarter fewer points than the full linear autocorrelation needs).
    centred = (frames - frames.mean(axis=1, keepdims=True)).astype(np.float32, copy=False)
    n_fft = scipy.fft.next_fast_len(frame_length + lag_max + 1, real=True)
    spectrum = scipy.fft.rfft(centred, n=n_fft, axis=1)
    acf = scipy.fft.irfft(spectrum.real**2 + spectrum.imag**2, n=n_fft, axis=1)[:, : lag_max + 2]
    overlap = frame_length - np.arange(lag_max + 2)
    acf = acf / overlap * frame_length
    energy = acf[:, :1]
    normalised = np.where(energy > 1e-10, acf / np.maximum(energy, 1e-10), 0.0)
    search = normalised[:, lag_min : lag_max + 1]
    best = search.max(axis=1)
    # First lag whose value is within 90 % of the best: avoids picking a multiple of the period.
    candidates = search >= (0.9 * best)[:, None]
    lag = np.argmax(candidates, axis=1) + lag_min
    rows = np.arange(n_frames)
    # That first lag sits on the rising flank of its peak (it would read sharp): climb to the top,
    # the first lag from there on whose successor is not higher (or the end of the search range).
    lags = np.arange(lag_min, lag_max)
    top = (normalised[:, lag_min + 1 : lag_max + 1] <= normalised[:, lag_min:lag_max]) & (lags >= lag[:, None])
    lag = np.where(top.any(axis=1), lags[np.argmax(top, axis=1)], lag_max)
    # Parabolic interpolation around the chosen lag for sub-sample precision.
    left = normalised[rows, lag - 1]
    centre = normalised[rows, lag]
    right = normalised[rows, lag + 1]
    denom = left - 2.0 * centre + right
    shift = np.where(np.abs(denom) > 1e-12, 0.5 * (left - right) / np.where(denom == 0, 1, denom), 0.0)
    shift = np.clip(shift, -0.5, 0.5)
    f0_hz = sample_rate_hz / (lag + shift)
    periodicity = np.clip(centre, 0.0, 1.0)
    return f0_hz.astype(np.float32), periodicity.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class FramePitch:
    """What :func:`autocorrelation_pitch` found on some frames of one window, for reuse.

    Frame ``j`` covers samples ``[j * hop_length, j * hop_length + frame_length)`` of the window;
    only frames where ``tracked`` is True hold results. The speech gate hands these to the feature
    extractor, which would otherwise track the same frames again.

    Attributes
    ----------
    frame_length, hop_length : int
    f0_min_hz, f0_max_hz : float
        The search range the frames were tracked with.
    f0_hz, periodicity : np.ndarray, shape (n_frames,)
    tracked : np.ndarray of bool, shape (n_frames,)
    """

    frame_length: int
    hop_length: int
    f0_min_hz: float
    f0_max_hz: float
    f0_hz: np.ndarray
    periodicity: np.ndarray
    tracked: np.ndarray


def delta(features: np.ndarray, *, width: int = 2, axis: int = 0) -> np.ndarray:
    """Regression deltas along the time axis, edges padded by repetition.

    Parameters
    ----------
    features : np.ndarray
        Frames along ``axis`` (e.g. shape (n_frames, n_features)).
    width : int
        Half-width N of the regression ``sum_n n (c[t+n] - c[t-n]) / (2 sum_n n^2)``.
    axis : int
        The time axis.
    """
    features = np.moveaxis(features, axis, 0)
    if features.shape[0] == 0:
        return np.moveaxis(features.copy(), 0, axis)
    padded = np.pad(features, [(width, width)] + [(0, 0)] * (features.ndim - 1), mode="edge")
    n_frames = features.shape[0]
    out = np.zeros_like(features, dtype=np.float64)
    for n in range(1, width + 1):
        out += n * (padded[width + n : width + n + n_frames] - padded[width - n : width - n + n_frames])
    out /= 2.0 * sum(n * n for n in range(1, width + 1))
    return np.moveaxis(out.astype(features.dtype), 0, axis)

# -- Statistics over selected frames, for many rows at once ------------------------------------------------
# Rows are analysis windows, axis 1 their frames; a boolean mask (rows, frames) selects the frames a
# statistic describes (e.g. the active or voiced ones). Vectorised over rows so the windows of a
# whole recording cost one call.


def percentiles(values: np.ndarray, q: tuple[float, ...]) -> np.ndarray:
    """Percentiles of a 1-D array with linear interpolation, as ``np.percentile`` (which costs 10x more per call).

    Parameters
    ----------
    values : np.ndarray, shape (n,), n >= 1
    q : tuple of float
        Percentiles in [0, 100].
    """
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    return np.interp(np.asarray(q, dtype=np.float64) / 100.0 * (ordered.size - 1), np.arange(ordered.size), ordered)


def masked_moments(x: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over the masked frames: x (w, n, d), mask (w, n) -> (w, d) each; 0 if none."""
    m = mask[:, :, None]
    count = np.maximum(mask.sum(axis=1), 1)[:, None]
    mean = np.where(m, x, 0.0).sum(axis=1) / count
    var = np.square(np.where(m, x - mean[:, None, :], 0.0)).sum(axis=1) / count
    return mean, np.sqrt(var)


def masked_percentiles(x: np.ndarray, mask: np.ndarray, q: tuple[float, ...]) -> np.ndarray:
    """Percentiles (linear interpolation, as ``np.percentile``) over the masked frames.

    x (w, n, d), mask (w, n) -> (len(q), w, d); 0 where a window has no masked frame.
    """
    ordered = np.sort(np.where(mask[:, :, None], x, np.inf), axis=1)
    last = np.maximum(mask.sum(axis=1) - 1, 0)  # (w,)
    pos = np.asarray(q, dtype=np.float64)[:, None] / 100.0 * last  # (q, w)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, last)
    frac = (pos - lo)[:, :, None]
    rows = np.arange(x.shape[0])
    a, b = ordered[rows, lo], ordered[rows, hi]  # (q, w, d)
    empty = (mask.sum(axis=1) == 0)[None, :, None]
    a, b = np.where(empty, 0.0, a), np.where(empty, 0.0, b)
    return a + (b - a) * frac


def compacted_diffs(x: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Differences between consecutive masked frames (pauses skipped): x (w, n) -> diffs (w, n - 1), valid mask."""
    order = np.argsort(~mask, axis=1, kind="stable")  # masked frames first, in time order
    packed = np.take_along_axis(x, order, axis=1)
    valid = np.arange(x.shape[1] - 1)[None, :] < (mask.sum(axis=1) - 1)[:, None]
    return np.diff(packed, axis=1), valid


def masked_slope(values: np.ndarray, times_s: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Least-squares slope (per second) of values (w, n) over the masked frames; 0 with fewer than two."""
    count = np.maximum(mask.sum(axis=1), 1)
    t = np.where(mask, times_s[None, :], 0.0)
    t = np.where(mask, t - (t.sum(axis=1) / count)[:, None], 0.0)
    denom = np.square(t).sum(axis=1)
    num = (t * np.where(mask, values, 0.0)).sum(axis=1)
    return np.where(denom > 0, num / np.where(denom > 0, denom, 1.0), 0.0)


def mask_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Number of runs of True in each row of mask (w, n) and their mean length in frames."""
    starts = mask.copy()
    starts[:, 1:] &= ~mask[:, :-1]
    n_runs = starts.sum(axis=1)
    return n_runs, np.where(n_runs > 0, mask.sum(axis=1) / np.maximum(n_runs, 1), 0.0)
