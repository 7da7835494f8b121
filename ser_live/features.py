"""Feature extraction: one analysis window of audio in, one fixed-length feature vector out.

This is the only feature code in ser-live: training, batch classification and the live monitor all
call :func:`extract_features` with the :class:`FeatureConfig` stored in the model file, so what the
model sees live is exactly what it was trained on.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np

from . import dsp
from .errors import FeatureConfigError

__all__ = ["FEATURE_VERSION", "FeatureConfig", "extract_features", "feature_names"]

#: Bump whenever the meaning or order of the feature vector changes; a model trained with another
#: version is refused at load time instead of being fed vectors it does not understand.
FEATURE_VERSION = 3


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    """Parameters of the feature extractor; stored in every model file.

    Parameters
    ----------
    sample_rate_hz : int
        Rate the audio must have before extraction.
    frame_s, frame_hop_s : float
        Short-time analysis frame length and hop, in seconds.
    n_fft : int
        FFT size for the spectral frames.
    n_mels : int
        Mel bands.
    n_mfcc : int
        Cepstral coefficients kept.
    fmin_hz, fmax_hz : float
        Frequency range of the mel filterbank.
    pitch_frame_s : float
        Frame length for the autocorrelation pitch tracker (two periods of ``f0_min_hz``).
    f0_min_hz, f0_max_hz : float
        Pitch search range.
    voicing_threshold : float
        Minimum normalised autocorrelation for a frame to count as voiced.
    active_range_db : float
        Frames quieter than the loudest frame of the window by more than this are ignored by the
        statistics, so pauses inside a window do not dilute them.
    version : int
        Feature-code version the configuration belongs to (:data:`FEATURE_VERSION`).
    """

    sample_rate_hz: int = 16000
    frame_s: float = 0.025
    frame_hop_s: float = 0.010
    n_fft: int = 512
    n_mels: int = 40
    n_mfcc: int = 20
    fmin_hz: float = 50.0
    fmax_hz: float = 7600.0  # below Nyquist: resamplers differ in how they roll off the top band
    pitch_frame_s: float = 0.040
    f0_min_hz: float = 60.0
    f0_max_hz: float = 500.0
    voicing_threshold: float = 0.5
    active_range_db: float = 35.0
    version: int = FEATURE_VERSION

    def __post_init__(self) -> None:
        if self.version != FEATURE_VERSION:
            raise FeatureConfigError(
                f"feature configuration version {self.version} does not match this ser-live's "
                f"feature code (version {FEATURE_VERSION}); retrain the model with this version "
                "or install the ser-live version it was made with"
            )
        if self.sample_rate_hz <= 0 or self.frame_s <= 0 or self.frame_hop_s <= 0:
            raise FeatureConfigError("sample_rate_hz, frame_s and frame_hop_s must be positive")
        if self.frame_length > self.n_fft:
            raise FeatureConfigError(f"n_fft ({self.n_fft}) is shorter than a frame ({self.frame_length} samples)")
        if not 0 < self.f0_min_hz < self.f0_max_hz < self.sample_rate_hz / 2:
            raise FeatureConfigError("need 0 < f0_min_hz < f0_max_hz < sample_rate_hz / 2")
        if self.n_mfcc > self.n_mels:
            raise FeatureConfigError("n_mfcc cannot exceed n_mels")

    @property
    def frame_length(self) -> int:
        """Samples per spectral frame."""
        return int(round(self.frame_s * self.sample_rate_hz))

    @property
    def hop_length(self) -> int:
        """Samples between spectral frames."""
        return int(round(self.frame_hop_s * self.sample_rate_hz))

    @property
    def pitch_frame_length(self) -> int:
        """Samples per pitch frame."""
        return int(round(self.pitch_frame_s * self.sample_rate_hz))

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary for storing in a model file."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FeatureConfig:
        """Rebuild a configuration stored by :meth:`to_dict`, refusing unknown or mismatched ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise FeatureConfigError(
                f"the model's feature configuration has settings this ser-live does not know ({', '.join(unknown)}); "
                "it was made by another version of ser-live"
            )
        if "version" not in values:
            raise FeatureConfigError("the model's feature configuration has no version; it was not made by ser-live")
        return cls(**values)


@functools.lru_cache(maxsize=8)
def _mel_weights(config: FeatureConfig) -> Any:
    """The mel filterbank as a sparse (n_bins, n_mels) matrix.

    Sparse, not dense: a dense product goes through BLAS, whose worker threads made this tiny
    product 100x slower (8 ms instead of 0.08 ms) on a loaded two-core machine.
    """
    from scipy import sparse

    weights = dsp.mel_filterbank(
        sample_rate_hz=config.sample_rate_hz,
        n_fft=config.n_fft,
        n_mels=config.n_mels,
        fmin_hz=config.fmin_hz,
        fmax_hz=config.fmax_hz,
    )
    return sparse.csc_matrix(weights.T)


@functools.lru_cache(maxsize=8)
def _fft_freqs_khz(config: FeatureConfig) -> np.ndarray:
    return (np.fft.rfftfreq(config.n_fft, d=1.0 / config.sample_rate_hz) / 1000.0).astype(np.float32)


def _contour_stats(values: np.ndarray) -> np.ndarray:
    """mean, std, 10th and 90th percentile of each column."""
    if values.shape[0] == 0:
        return np.zeros(4 * values.shape[1], dtype=np.float64)
    p10, p90 = np.percentile(values, [10, 90], axis=0)
    return np.concatenate([values.mean(axis=0), values.std(axis=0), p10, p90])


def _slope_per_s(values: np.ndarray, times_s: np.ndarray) -> float:
    if values.shape[0] < 2:
        return 0.0
    t = times_s - times_s.mean()
    denom = float(np.dot(t, t))
    return float(np.dot(t, values - values.mean()) / denom) if denom > 0 else 0.0


def _runs(mask: np.ndarray) -> tuple[int, float]:
    """Number of runs of True in a boolean sequence and their mean length (in frames)."""
    if not mask.any():
        return 0, 0.0
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    return int(starts.size), float(np.mean(stops - starts))


#: Edges (Hz) of the bands whose peak-to-mean contrast is measured.
_CONTRAST_EDGES_HZ = (100.0, 400.0, 800.0, 1600.0, 3200.0, 6400.0)


@functools.lru_cache(maxsize=8)
def _contrast_bins(config: FeatureConfig) -> np.ndarray:
    """FFT-bin index where each contrast band starts (for ``np.ufunc.reduceat``), plus the end."""
    f = np.fft.rfftfreq(config.n_fft, d=1.0 / config.sample_rate_hz)
    return np.searchsorted(f, np.asarray(_CONTRAST_EDGES_HZ))


@functools.lru_cache(maxsize=8)
def _band_masks(config: FeatureConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """FFT-bin masks of the bands used for spectral tilt: 50 Hz-1 kHz, 1-5 kHz, 0-2 kHz, 2-5 kHz."""
    f = np.fft.rfftfreq(config.n_fft, d=1.0 / config.sample_rate_hz)
    return (f >= 50) & (f < 1000), (f >= 1000) & (f < 5000), f < 2000, (f >= 2000) & (f < 5000)


def _blocks(y: np.ndarray, config: FeatureConfig) -> list[tuple[str, list[str], np.ndarray]]:
    """The feature vector as named blocks, in order: (block name, element names, values)."""
    frames = dsp.frame_signal(y, frame_length=config.frame_length, hop_length=config.hop_length)
    power = dsp.power_spectrum(frames, n_fft=config.n_fft)
    log_mel = dsp.power_to_db(np.asarray(power @ _mel_weights(config)))
    mfcc = dsp.dct_ortho(log_mel, n_coefficients=config.n_mfcc)
    energy_db = dsp.frame_rms_db(frames)

    pitch_frames = dsp.frame_signal(y, frame_length=config.pitch_frame_length, hop_length=config.hop_length)
    n = min(frames.shape[0], pitch_frames.shape[0])
    power, log_mel, mfcc, energy_db = power[:n], log_mel[:n], mfcc[:n], energy_db[:n]
    times_s = np.arange(n) * config.frame_hop_s

    # Statistics describe the speech in the window, not the pauses around it.
    active = energy_db > energy_db.max() - config.active_range_db
    # Pitch only where it is used (active frames): the tracker is the costliest step, and frames
    # are independent, so the values are the same as tracking every frame.
    f0_hz = np.zeros(n, dtype=np.float32)
    periodicity = np.zeros(n, dtype=np.float32)
    f0_hz[active], periodicity[active] = dsp.autocorrelation_pitch(
        pitch_frames[:n][active], sample_rate_hz=config.sample_rate_hz, f0_min_hz=config.f0_min_hz,
        f0_max_hz=config.f0_max_hz,
    )
    voiced = active & (periodicity >= config.voicing_threshold)

    d_mfcc = dsp.delta(mfcc)
    freqs_khz = _fft_freqs_khz(config)
    total = power.sum(axis=1) + 1e-12
    # einsum, not @: matrix-vector products go to BLAS, whose threads spin on a busy machine.
    centroid = np.einsum("ij,j->i", power, freqs_khz) / total
    bandwidth = np.sqrt(np.maximum(np.einsum("ij,j->i", power, np.square(freqs_khz)) / total - centroid**2, 0.0))
    cumulative = np.cumsum(power, axis=1)
    rolloff = freqs_khz[np.argmax(cumulative >= 0.85 * cumulative[:, -1:], axis=1)]
    flatness_db = 10.0 * (np.mean(np.log10(power + 1e-12), axis=1) - np.log10(np.mean(power, axis=1) + 1e-12))
    flux = np.concatenate([[0.0], np.sqrt(np.mean(np.square(np.diff(log_mel, axis=0)), axis=1))])
    signs = np.signbit(frames[:n])
    zcr = np.mean(signs[:, 1:] != signs[:, :-1], axis=1)
    spectral = np.stack([centroid, bandwidth, rolloff, flatness_db, flux, zcr], axis=1)[active]

    # Loudness relative to the window's loud part: the microphone's gain must not matter.
    rel_energy = energy_db[active] - np.percentile(energy_db[active], 95)
    shape = (log_mel - log_mel.mean(axis=1, keepdims=True))[active]

    semitones = 12.0 * np.log2(f0_hz[voiced] / 100.0)
    if semitones.size:
        p10, p50, p90 = np.percentile(semitones, [10, 50, 90])
        d_semitones = np.diff(semitones) if semitones.size > 1 else np.zeros(1)
        pitch = np.array([
            semitones.mean(), semitones.std(), p10, p50, p90, p90 - p10,
            _slope_per_s(semitones, times_s[voiced]), np.std(d_semitones),
        ])
    else:
        pitch = np.zeros(8)
    voicing = np.array([
        voiced.sum() / max(1, active.sum()),
        float(periodicity[active].mean()),
        active.mean(),
    ])
    energy = np.array([
        rel_energy.mean(), rel_energy.std(), *np.percentile(rel_energy, [10, 50]),
        _slope_per_s(energy_db[active], times_s[active]),
        float(np.std(np.diff(energy_db[active]))) if active.sum() > 1 else 0.0,
    ])

    # Voice quality and tilt on voiced frames: effort and arousal change how steeply the spectrum falls.
    low, high, below2k, above2k = _band_masks(config)
    vp = power[voiced]
    if vp.shape[0]:
        alpha_ratio = dsp.power_to_db(vp[:, high].sum(axis=1)) - dsp.power_to_db(vp[:, low].sum(axis=1))
        hammarberg = dsp.power_to_db(vp[:, below2k].max(axis=1)) - dsp.power_to_db(vp[:, above2k].max(axis=1))
        band_idx = np.arange(config.n_mels, dtype=np.float64)
        band_idx -= band_idx.mean()
        centred = log_mel[voiced] - log_mel[voiced].mean(axis=1, keepdims=True)
        mel_slope = np.einsum("ij,j->i", centred, band_idx) / np.dot(band_idx, band_idx)
        tilt = np.stack([alpha_ratio, hammarberg, mel_slope], axis=1)
        tilt_stats = np.concatenate([tilt.mean(axis=0), tilt.std(axis=0)])
    else:
        tilt_stats = np.zeros(6)
    per = np.clip(periodicity[voiced], 1e-3, 1 - 1e-3)
    if semitones.size > 1:
        jitter = float(np.mean(np.abs(np.diff(semitones))))
        shimmer = float(np.mean(np.abs(np.diff(energy_db[voiced]))))
    else:
        jitter = shimmer = 0.0
    hnr_db = float(np.mean(10.0 * np.log10(per / (1 - per)))) if per.size else 0.0
    quality = np.array([jitter, shimmer, hnr_db])

    # Rhythm: how speech and pauses alternate (speaking rate and hesitation differ with emotion).
    window_s = max(n * config.frame_hop_s, 1e-3)
    n_voiced_runs, voiced_run = _runs(voiced)
    n_active_runs, active_run = _runs(active)
    rhythm = np.array([n_voiced_runs / window_s, voiced_run * config.frame_hop_s, n_active_runs / window_s,
                       active_run * config.frame_hop_s])
    rel_p90 = float(np.percentile(rel_energy, 90)) if rel_energy.size else 0.0

    # Peak-to-mean contrast per band on voiced frames: clear harmonics (tense, loud voice) versus
    # breathy or noisy excitation (whisper-like fear, sadness).
    edges = _contrast_bins(config)
    if vp.shape[0]:
        band_db = dsp.power_to_db(vp[:, edges[0]:edges[-1]] + 1e-10)
        starts = edges[:-1] - edges[0]
        peak = np.maximum.reduceat(band_db, starts, axis=1)
        mean = np.add.reduceat(band_db, starts, axis=1) / np.diff(edges)
        contrast = peak - mean
        contrast_stats = np.concatenate([contrast.mean(axis=0), contrast.std(axis=0)])
    else:
        contrast_stats = np.zeros(2 * (len(_CONTRAST_EDGES_HZ) - 1))

    # Modulation of the loudness contour: syllable rate and rhythm show up at 2-16 Hz.
    contour = np.where(active, energy_db, energy_db[active].min()) if active.any() else energy_db
    spectrum = np.abs(np.fft.rfft(contour - contour.mean())) ** 2
    mod_hz = np.fft.rfftfreq(contour.size, d=config.frame_hop_s)
    total_mod = spectrum[(mod_hz > 0.5) & (mod_hz < 25)].sum() + 1e-9
    modulation = np.array([spectrum[(mod_hz >= lo) & (mod_hz < hi)].sum() / total_mod
                           for lo, hi in ((0.5, 2.0), (2.0, 4.0), (4.0, 8.0), (8.0, 16.0))])

    k = config.n_mfcc
    spectral_names = ["centroid_khz", "bandwidth_khz", "rolloff_khz", "flatness_db", "flux_db", "zcr"]
    return [
        ("mfcc_mean", [f"mfcc{i}_mean" for i in range(1, k)], mfcc[active][:, 1:].mean(axis=0)),
        ("mfcc_std", [f"mfcc{i}_std" for i in range(k)], mfcc[active].std(axis=0)),
        ("dmfcc_std", [f"dmfcc{i}_std" for i in range(k)], d_mfcc[active].std(axis=0)),
        ("mel_shape", [f"mel{i}_shape_mean" for i in range(config.n_mels)], shape.mean(axis=0)),
        ("mel_shape_std", [f"mel{i}_shape_std" for i in range(config.n_mels)], shape.std(axis=0)),
        ("spectral", [f"{n}_{s}" for s in ("mean", "std", "p10", "p90") for n in spectral_names],
         _contour_stats(spectral)),
        ("energy", ["energy_rel_mean", "energy_rel_std", "energy_rel_p10", "energy_rel_p50", "energy_slope_db_per_s",
                    "energy_delta_std", "energy_rel_p90"], np.append(energy, rel_p90)),
        ("pitch", ["f0_st_mean", "f0_st_std", "f0_st_p10", "f0_st_p50", "f0_st_p90", "f0_st_range",
                   "f0_slope_st_per_s", "f0_delta_std"], pitch),
        ("voicing", ["voiced_fraction", "periodicity_mean", "active_fraction"], voicing),
        ("tilt", ["alpha_ratio_db_mean", "hammarberg_db_mean", "mel_slope_db_per_band_mean",
                  "alpha_ratio_db_std", "hammarberg_db_std", "mel_slope_db_per_band_std"], tilt_stats),
        ("quality", ["jitter_st", "shimmer_db", "hnr_db"], quality),
        ("rhythm", ["voiced_runs_per_s", "voiced_run_s", "active_runs_per_s", "active_run_s"], rhythm),
        ("contrast", [f"contrast{i}_db_{s}" for s in ("mean", "std") for i in range(len(_CONTRAST_EDGES_HZ) - 1)],
         contrast_stats),
        ("modulation", ["energy_mod_0.5_2hz", "energy_mod_2_4hz", "energy_mod_4_8hz", "energy_mod_8_16hz"],
         modulation),
    ]


def extract_features(y: np.ndarray, config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """Feature vector of one analysis window.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono audio at ``config.sample_rate_hz``, float in [-1, 1]. Shorter than one pitch frame is
        zero-padded; non-finite samples are treated as silence.
    config : FeatureConfig
        The extractor's parameters (use the model's, see :attr:`EmotionModel.feature_config`).

    Returns
    -------
    features : np.ndarray, shape (n_features,), float32
        Deterministic: the same samples always give the same vector. Names in :func:`feature_names`.
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        y = np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)
    # A DC offset (cheap sound cards, some files) is not sound; it would skew every level statistic.
    y = y - y.mean(dtype=np.float64).astype(np.float32) if y.size else y
    if y.shape[0] < config.pitch_frame_length:
        y = np.pad(y, (0, config.pitch_frame_length - y.shape[0]))
    vector = np.concatenate([values for _, _, values in _blocks(y, config)])
    return np.nan_to_num(vector.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)


@functools.lru_cache(maxsize=8)
def feature_names(config: FeatureConfig = FeatureConfig()) -> tuple[str, ...]:
    """Name of every element of the vector :func:`extract_features` returns, in order."""
    probe = 0.1 * np.sin(2 * np.pi * 150.0 * np.arange(config.sample_rate_hz // 2) / config.sample_rate_hz)
    return tuple(name for _, names, _ in _blocks(probe.astype(np.float32), config) for name in names)
