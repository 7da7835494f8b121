"""Feature extraction: one analysis window of audio in, one fixed-length feature vector out.

This is the only feature code in ser-live: training, batch classification and the live monitor all
call :func:`extract_features` with the :class:`FeatureConfig` stored in the model file, so what the
model sees live is exactly what it was trained on.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..dsp import primitives as dsp
from ..errors import FeatureConfigError

__all__ = ["FEATURE_VERSION", "FeatureConfig", "extract_features", "extract_features_batch", "feature_names"]

#: Bump whenever the meaning or order of the feature vector changes; a model trained with another
#: version is refused at load time instead of being fed vectors it does not understand.
FEATURE_VERSION = 4


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


# -- Frame analysis: everything that belongs to one short-time frame -------------------------------------
# Each frame's values depend on that frame's samples only (its DC offset is removed per frame), so a
# frame shared by overlapping windows is analysed once and every window reads the same numbers.


def _frame_values(frames: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Everything computed from each spectral frame alone (frames already free of their DC offset)."""
    power = dsp.power_spectrum(frames, n_fft=config.n_fft)
    log_mel = dsp.power_to_db(np.asarray(power @ _mel_weights(config)))
    freqs_khz = _fft_freqs_khz(config)
    total = power.sum(axis=1) + 1e-12
    # einsum, not @: matrix-vector products go to BLAS, whose threads spin on a busy machine.
    centroid = np.einsum("ij,j->i", power, freqs_khz) / total
    bandwidth = np.sqrt(np.maximum(np.einsum("ij,j->i", power, np.square(freqs_khz)) / total - centroid**2, 0.0))
    cumulative = np.cumsum(power, axis=1)
    signs = np.signbit(frames)
    return {
        "power": power,
        "log_mel": log_mel,
        "mfcc": dsp.dct_ortho(log_mel, n_coefficients=config.n_mfcc),
        "energy_db": dsp.frame_rms_db(frames),
        "centroid": centroid,
        "bandwidth": bandwidth,
        "rolloff": freqs_khz[np.argmax(cumulative >= 0.85 * cumulative[:, -1:], axis=1)],
        # Geometric over arithmetic mean, in dB.
        "flatness_db": dsp.power_to_db(np.exp(np.mean(np.log(power + 1e-12), axis=1)), amin=0.0)
        - dsp.power_to_db(np.mean(power, axis=1) + 1e-12, amin=0.0),
        "zcr": np.mean(signs[:, 1:] != signs[:, :-1], axis=1),
    }


class _Frames:
    """Frame-level analysis of one signal; pitch, tilt and contrast are computed on demand.

    Frame ``i`` covers samples ``[i * hop_length, i * hop_length + frame_length)`` (spectral frames)
    and ``[i * hop_length, i * hop_length + pitch_frame_length)`` (pitch frames).
    """

    def __init__(self, y: np.ndarray, config: FeatureConfig) -> None:
        self.config = config
        hop = config.hop_length
        self.n_frames = 1 + (y.shape[0] - config.pitch_frame_length) // hop  # frames with both kinds complete
        frames = dsp.frame_signal(y, frame_length=config.frame_length, hop_length=hop)[: self.n_frames]
        # A DC offset (cheap sound cards, some files) is not sound: removed frame by frame.
        frames = frames - frames.mean(axis=1, dtype=np.float64, keepdims=True).astype(np.float32)
        self.pitch_frames = dsp.frame_signal(y, frame_length=config.pitch_frame_length, hop_length=hop)
        nonzero = frames.any(axis=1)
        if nonzero.all():
            values = _frame_values(frames, config)
        else:
            # Digital silence (the padding before a recording starts) is analysed once, not frame by frame.
            some = _frame_values(np.concatenate([frames[nonzero], np.zeros((1, frames.shape[1]), np.float32)]), config)
            values = {}
            for name, computed in some.items():
                values[name] = np.empty((self.n_frames, *computed.shape[1:]), dtype=computed.dtype)
                values[name][nonzero] = computed[:-1]
                values[name][~nonzero] = computed[-1]
        self.power = values["power"]
        self.log_mel = values["log_mel"]
        self.mfcc = values["mfcc"]
        self.energy_db = values["energy_db"]
        self.shape = self.log_mel - self.log_mel.mean(axis=1, keepdims=True)
        # Flux of frame i against frame i - 1; a window's first frame has none (set when cutting windows).
        flux = np.concatenate([[0.0], np.sqrt(np.mean(np.square(np.diff(self.log_mel, axis=0)), axis=1))])
        self.spectral = np.column_stack([values["centroid"], values["bandwidth"], values["rolloff"],
                                         values["flatness_db"], flux, values["zcr"]])
        self.f0_hz = np.zeros(self.n_frames, dtype=np.float32)
        self.periodicity = np.zeros(self.n_frames, dtype=np.float32)
        self.tilt = np.zeros((self.n_frames, 3))
        self.contrast = np.zeros((self.n_frames, len(_CONTRAST_EDGES_HZ) - 1))
        self.tracked = np.zeros(self.n_frames, dtype=bool)  # pitch known
        self.described = np.zeros(self.n_frames, dtype=bool)  # tilt and contrast known

    def track_pitch(self, needed: np.ndarray) -> None:
        """Track the pitch of the frames in the boolean mask ``needed`` not tracked yet (the costliest step)."""
        needed = needed & ~self.tracked
        self.tracked |= needed
        if needed.any():
            c = self.config
            self.f0_hz[needed], self.periodicity[needed] = dsp.autocorrelation_pitch(
                self.pitch_frames[: self.n_frames][needed], sample_rate_hz=c.sample_rate_hz,
                f0_min_hz=c.f0_min_hz, f0_max_hz=c.f0_max_hz,
            )

    def adopt_pitch(self, first: int, pitch: dsp.FramePitch | None) -> None:
        """Take the frames another caller of the tracker already tracked in the window starting at frame ``first``.

        Used only when they are this extractor's frames: same length and range, a hop that is a
        whole number of this one's.
        """
        c = self.config
        if (pitch is None or pitch.frame_length != c.pitch_frame_length or pitch.hop_length % c.hop_length
                or (pitch.f0_min_hz, pitch.f0_max_hz) != (c.f0_min_hz, c.f0_max_hz)):
            return
        theirs = np.flatnonzero(pitch.tracked)
        ours = first + theirs * (pitch.hop_length // c.hop_length)
        new = ours < self.n_frames
        new[new] = ~self.tracked[ours[new]]
        ours, theirs = ours[new], theirs[new]
        self.f0_hz[ours], self.periodicity[ours] = pitch.f0_hz[theirs], pitch.periodicity[theirs]
        self.tracked[ours] = True

    def describe_voice(self, needed: np.ndarray) -> None:
        """Spectral tilt and band contrast of the (voiced) frames in the boolean mask ``needed`` not described yet."""
        needed = needed & ~self.described
        self.described |= needed
        if not needed.any():
            return
        config = self.config
        vp = self.power[needed]
        # Effort and arousal change how steeply the spectrum falls.
        low, high, below2k, above2k = _band_masks(config)
        alpha_ratio = dsp.power_to_db(vp[:, high].sum(axis=1)) - dsp.power_to_db(vp[:, low].sum(axis=1))
        hammarberg = dsp.power_to_db(vp[:, below2k].max(axis=1)) - dsp.power_to_db(vp[:, above2k].max(axis=1))
        band_idx = np.arange(config.n_mels, dtype=np.float64)
        band_idx -= band_idx.mean()
        mel_slope = np.einsum("ij,j->i", self.shape[needed], band_idx) / np.dot(band_idx, band_idx)
        self.tilt[needed] = np.stack([alpha_ratio, hammarberg, mel_slope], axis=1)
        # Peak-to-mean contrast per band: clear harmonics (tense, loud voice) versus breathy or noisy
        # excitation (whisper-like fear, sadness).
        edges = _contrast_bins(config)
        band_db = dsp.power_to_db(vp[:, edges[0]:edges[-1]] + 1e-10)
        starts = edges[:-1] - edges[0]
        peak = np.maximum.reduceat(band_db, starts, axis=1)
        mean = np.add.reduceat(band_db, starts, axis=1) / np.diff(edges)
        self.contrast[needed] = peak - mean


# -- Window statistics, for many windows at once ---------------------------------------------------------
# Windows are rows; a boolean mask says which of a window's frames a statistic describes. Written for
# a batch so overlapping windows of a recording cost one pass; a single live window is a batch of one.


def _moments(parts: Sequence[np.ndarray], mask: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`ser_live.dsp.primitives.masked_moments` of several (w, n, d_i) arrays sharing one mask, in one call."""
    mean, std = dsp.masked_moments(np.concatenate(parts, axis=2), mask)
    bounds = np.cumsum([0] + [part.shape[2] for part in parts])
    return [(mean[:, lo:hi], std[:, lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:])]


def _window_blocks(frames: _Frames, first: np.ndarray, n: int) -> list[tuple[str, list[str], np.ndarray]]:
    """The feature vectors of windows as named blocks: (block name, element names, values (w, k)).

    Window ``j`` is frames ``first[j] .. first[j] + n - 1`` of ``frames``.
    """
    config = frames.config
    idx = first[:, None] + np.arange(n)[None, :]
    times_s = np.arange(n) * config.frame_hop_s
    energy_db = frames.energy_db[idx]
    # Statistics describe the speech in the window, not the pauses around it.
    active = energy_db > energy_db.max(axis=1, keepdims=True) - config.active_range_db
    needed = np.zeros(frames.n_frames, dtype=bool)
    needed[idx[active]] = True
    frames.track_pitch(needed)
    periodicity = frames.periodicity[idx].astype(np.float64)
    voiced = active & (periodicity >= config.voicing_threshold)
    needed[:] = False
    needed[idx[voiced]] = True
    frames.describe_voice(needed)

    spectral = frames.spectral[idx]
    spectral[:, 0, 4] = 0.0  # flux: the window's first frame has no predecessor in the window
    # Loudness relative to the window's loud part: the microphone's gain must not matter.
    (p95,) = dsp.masked_percentiles(energy_db[:, :, None], active, (95,))
    rel_energy = (energy_db - p95)[:, :, None]
    mfcc = frames.mfcc[idx].astype(np.float64)
    # One pass per mask over everything it selects (statistics are per column either way).
    (mfcc_mean, mfcc_std), (_, dmfcc_std), (shape_mean, shape_std), (spectral_mean, spectral_std), (
        rel_mean, rel_std) = _moments([mfcc, dsp.delta(mfcc, axis=1), frames.shape[idx].astype(np.float64),
                                       spectral, rel_energy], active)
    spectral_p10, spectral_p90 = dsp.masked_percentiles(spectral, active, (10, 90))
    rel_p10, rel_p50, rel_p90 = dsp.masked_percentiles(rel_energy, active, (10, 50, 90))

    f0_hz = frames.f0_hz[idx].astype(np.float64)
    semitones = np.where(voiced, 12.0 * np.log2(np.where(voiced, f0_hz, 100.0) / 100.0), 0.0)
    per = np.clip(periodicity, 1e-3, 1 - 1e-3)
    (st_mean, st_std), (tilt_mean, tilt_std), (hnr_db, _), (contrast_mean, contrast_std) = _moments(
        [semitones[:, :, None], frames.tilt[idx], (10.0 * np.log10(per / (1 - per)))[:, :, None],
         frames.contrast[idx]], voiced)
    st_p10, st_p50, st_p90 = dsp.masked_percentiles(semitones[:, :, None], voiced, (10, 50, 90))

    # Frame-to-frame changes over the selected frames, pauses skipped.
    energy_diffs, energy_valid = dsp.compacted_diffs(energy_db, active)
    _, energy_delta_std = dsp.masked_moments(energy_diffs[:, :, None], energy_valid)
    st_diffs, st_valid = dsp.compacted_diffs(semitones, voiced)
    shimmer_diffs, _ = dsp.compacted_diffs(energy_db, voiced)
    (_, st_delta_std), (jitter, _), (shimmer, _) = _moments(
        [st_diffs[:, :, None], np.abs(st_diffs)[:, :, None], np.abs(shimmer_diffs)[:, :, None]], st_valid)

    energy = np.column_stack([rel_mean, rel_std, rel_p10, rel_p50, dsp.masked_slope(energy_db, times_s, active),
                              energy_delta_std, rel_p90])
    pitch = np.column_stack([st_mean, st_std, st_p10, st_p50, st_p90, st_p90 - st_p10,
                             dsp.masked_slope(semitones, times_s, voiced), st_delta_std])

    n_active = active.sum(axis=1)
    voicing = np.column_stack([
        voiced.sum(axis=1) / np.maximum(1, n_active),
        np.where(active, periodicity, 0.0).sum(axis=1) / np.maximum(1, n_active),
        n_active / n,
    ])
    # Voice quality on voiced frames; tilt and contrast come from the moments above.
    quality = np.column_stack([jitter, shimmer, hnr_db])

    rhythm = _rhythm(voiced, active, n, config.frame_hop_s)
    modulation = _modulation(energy_db, active, n, config.frame_hop_s)

    names = _block_names(config.n_mfcc, config.n_mels)
    values = {
        "mfcc_mean": mfcc_mean[:, 1:], "mfcc_std": mfcc_std, "dmfcc_std": dmfcc_std, "mel_shape": shape_mean,
        "mel_shape_std": shape_std,
        "spectral": np.concatenate([spectral_mean, spectral_std, spectral_p10, spectral_p90], axis=1),
        "energy": energy, "pitch": pitch, "voicing": voicing, "tilt": np.concatenate([tilt_mean, tilt_std], axis=1),
        "quality": quality, "rhythm": rhythm, "contrast": np.concatenate([contrast_mean, contrast_std], axis=1),
        "modulation": modulation,
    }
    return [(block, list(names[block]), values[block]) for block in names]


def _rhythm(voiced: np.ndarray, active: np.ndarray, n: int, frame_hop_s: float) -> np.ndarray:
    """How speech and pauses alternate (speaking rate and hesitation differ with emotion): runs per second and
    their mean length, of voiced and of active frames."""
    window_s = max(n * frame_hop_s, 1e-3)
    n_voiced_runs, voiced_run = dsp.mask_runs(voiced)
    n_active_runs, active_run = dsp.mask_runs(active)
    return np.column_stack([n_voiced_runs / window_s, voiced_run * frame_hop_s,
                            n_active_runs / window_s, active_run * frame_hop_s])


def _modulation(energy_db: np.ndarray, active: np.ndarray, n: int, frame_hop_s: float) -> np.ndarray:
    """Modulation of the loudness contour: syllable rate and rhythm show up at 2-16 Hz (shares of 0.5-25 Hz)."""
    quietest_active = np.where(active, energy_db, np.inf).min(axis=1, keepdims=True)
    contour = np.where(active, energy_db, quietest_active)
    spectrum = np.abs(np.fft.rfft(contour - contour.mean(axis=1, keepdims=True), axis=1)) ** 2
    mod_hz = np.fft.rfftfreq(n, d=frame_hop_s)
    total_mod = spectrum[:, (mod_hz > 0.5) & (mod_hz < 25)].sum(axis=1) + 1e-9
    return np.column_stack([spectrum[:, (mod_hz >= lo) & (mod_hz < hi)].sum(axis=1) / total_mod
                            for lo, hi in ((0.5, 2.0), (2.0, 4.0), (4.0, 8.0), (8.0, 16.0))])


@functools.lru_cache(maxsize=8)
def _block_names(n_mfcc: int, n_mels: int) -> dict[str, tuple[str, ...]]:
    """Each block's element names, in the vector's order."""
    k = n_mfcc
    spectral_names = ["centroid_khz", "bandwidth_khz", "rolloff_khz", "flatness_db", "flux_db", "zcr"]
    n_contrast = len(_CONTRAST_EDGES_HZ) - 1
    names = {
        "mfcc_mean": _numbered("mfcc{}_mean", range(1, k)),
        "mfcc_std": _numbered("mfcc{}_std", range(k)),
        "dmfcc_std": _numbered("dmfcc{}_std", range(k)),
        "mel_shape": _numbered("mel{}_shape_mean", range(n_mels)),
        "mel_shape_std": _numbered("mel{}_shape_std", range(n_mels)),
        "spectral": [name for s in ("mean", "std", "p10", "p90") for name in _numbered("{}_" + s, spectral_names)],
        "energy": ["energy_rel_mean", "energy_rel_std", "energy_rel_p10", "energy_rel_p50", "energy_slope_db_per_s",
                   "energy_delta_std", "energy_rel_p90"],
        "pitch": ["f0_st_mean", "f0_st_std", "f0_st_p10", "f0_st_p50", "f0_st_p90", "f0_st_range",
                  "f0_slope_st_per_s", "f0_delta_std"],
        "voicing": ["voiced_fraction", "periodicity_mean", "active_fraction"],
        "tilt": ["alpha_ratio_db_mean", "hammarberg_db_mean", "mel_slope_db_per_band_mean",
                 "alpha_ratio_db_std", "hammarberg_db_std", "mel_slope_db_per_band_std"],
        "quality": ["jitter_st", "shimmer_db", "hnr_db"],
        "rhythm": ["voiced_runs_per_s", "voiced_run_s", "active_runs_per_s", "active_run_s"],
        "contrast": _numbered("contrast{}_db_mean", range(n_contrast)) + _numbered("contrast{}_db_std",
                                                                                   range(n_contrast)),
        "modulation": ["energy_mod_0.5_2hz", "energy_mod_2_4hz", "energy_mod_4_8hz", "energy_mod_8_16hz"],
    }
    return {block: tuple(element) for block, element in names.items()}


def _numbered(pattern: str, items: Iterable[Any]) -> list[str]:
    return [pattern.format(item) for item in items]


def _prepared(y: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Validated float32 mono samples, non-finite ones silenced, padded to at least one pitch frame."""
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        y = np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)
    if y.shape[0] < config.pitch_frame_length:
        y = np.pad(y, (0, config.pitch_frame_length - y.shape[0]))
    return y


def _vectors(frames: _Frames, first: np.ndarray, n: int) -> np.ndarray:
    matrix = np.concatenate([values for _, _, values in _window_blocks(frames, first, n)], axis=1)
    return np.nan_to_num(matrix.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def extract_features(y: np.ndarray, config: FeatureConfig = FeatureConfig(), *,
                     pitch: dsp.FramePitch | None = None) -> np.ndarray:
    """Feature vector of one analysis window.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono audio at ``config.sample_rate_hz``, float in [-1, 1]. Shorter than one pitch frame is
        zero-padded; non-finite samples are treated as silence.
    config : FeatureConfig
        The extractor's parameters (use the model's: its :attr:`EmotionModel.extractor`'s ``config``).
    pitch : dsp.FramePitch, optional
        Frames of this window whose pitch was already tracked (the speech gate's
        :attr:`~ser_live.dsp.gate.GateDecision.pitch`); they are not tracked again. The vector is
        the same with or without it.

    Returns
    -------
    features : np.ndarray, shape (n_features,), float32
        Deterministic: the same samples always give the same vector. Names in :func:`feature_names`.
    """
    frames = _Frames(_prepared(y, config), config)
    frames.adopt_pitch(0, pitch)
    return _vectors(frames, np.zeros(1, dtype=np.intp), frames.n_frames)[0]


def extract_features_batch(
    windows: Sequence[np.ndarray], *, ends: Sequence[int] | None = None, config: FeatureConfig = FeatureConfig(),
    pitch: Sequence[dsp.FramePitch | None] | None = None,
) -> np.ndarray:
    """Feature vectors of many windows, as ``[extract_features(w, config) for w in windows]``, faster.

    Windows cut from one stream overlap; when ``ends`` says where each window ends in that stream,
    consecutive windows of equal length whose overlap spans whole frames are analysed as one
    signal, so every shared frame is analysed once (a 2 s window every 0.5 s shares 3/4 of its
    frames with the previous one). Frames depend on their own samples only, so the vectors equal
    :func:`extract_features`'s up to floating-point rounding.

    Parameters
    ----------
    windows : sequence of np.ndarray, each shape (n_samples,)
        Mono audio at ``config.sample_rate_hz``.
    ends : sequence of int, optional
        Sample index (in the stream the windows were cut from) one past each window's last sample,
        as :func:`ser_live.audio.buffer.stream_utterance_windows` yields them. Without it, every window
        is analysed on its own.
    config : FeatureConfig
    pitch : sequence of dsp.FramePitch or None, optional
        Per window, frames whose pitch was already tracked (see :func:`extract_features`).

    Returns
    -------
    features : np.ndarray, shape (n_windows, n_features), float32
    """
    windows = [_prepared(w, config) for w in windows]
    if ends is not None and len(ends) != len(windows):
        raise ValueError(f"got {len(windows)} windows but {len(ends)} ends")
    if pitch is not None and len(pitch) != len(windows):
        raise ValueError(f"got {len(windows)} windows but {len(pitch)} pitch tracks")
    rows = [_run_vectors(windows, run, ends, pitch, config) for run in _shared_runs(windows, ends, config)]
    if not rows:
        return np.zeros((0, len(feature_names(config))), dtype=np.float32)
    return np.concatenate(rows, axis=0)


def _shared_runs(windows: list[np.ndarray], ends: Sequence[int] | None, config: FeatureConfig) -> list[list[int]]:
    """The windows grouped into runs of consecutive ones whose overlap spans whole frames (one each without
    ``ends``)."""
    runs: list[list[int]] = []
    for i, window in enumerate(windows):
        if runs and ends is not None and _continues(window, windows[runs[-1][-1]], int(ends[i] - ends[runs[-1][-1]]),
                                                    config.hop_length):
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def _continues(window: np.ndarray, previous: np.ndarray, step: int, hop_length: int) -> bool:
    """Whether ``window`` is ``previous`` moved on by ``step`` samples, a whole number of frames."""
    return (window.shape[0] == previous.shape[0] and 0 < step < window.shape[0] and step % hop_length == 0
            and np.array_equal(window[:-step], previous[step:]))


def _run_vectors(windows: list[np.ndarray], run: list[int], ends: Sequence[int] | None,
                 pitch: Sequence[dsp.FramePitch | None] | None, config: FeatureConfig) -> np.ndarray:
    """The feature vectors of one run of windows, its shared frames analysed once."""
    first_window = windows[run[0]]
    pieces = [first_window]
    offsets = [0]
    for previous, current in zip(run, run[1:]):
        step = int(ends[current] - ends[previous])  # type: ignore[index]
        pieces.append(windows[current][-step:])
        offsets.append(offsets[-1] + step)
    frames = _Frames(np.concatenate(pieces), config)
    firsts = np.asarray(offsets, dtype=np.intp) // config.hop_length
    if pitch is not None:
        for i, first in zip(run, firsts):
            frames.adopt_pitch(int(first), pitch[i])
    n = 1 + (first_window.shape[0] - config.pitch_frame_length) // config.hop_length
    return _vectors(frames, firsts, n)


@functools.lru_cache(maxsize=8)
def feature_names(config: FeatureConfig = FeatureConfig()) -> tuple[str, ...]:
    """Name of every element of the vector :func:`extract_features` returns, in order."""
    probe = 0.1 * np.sin(2 * np.pi * 150.0 * np.arange(config.sample_rate_hz // 2) / config.sample_rate_hz)
    frames = _Frames(_prepared(probe, config), config)
    return tuple(name for _, names, _ in _window_blocks(frames, np.zeros(1, dtype=np.intp), frames.n_frames)
                 for name in names)
