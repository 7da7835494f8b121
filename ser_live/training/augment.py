"""Training-data augmentation: noise at a random SNR, gain, small pitch shift and tempo change.

Augmented copies are made per file with a seed derived from the file's content hash, so they are
reproducible and cacheable. They only ever join the training side of a fold (see
:mod:`ser_live.training.evaluate`); evaluation always uses the original recordings.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Any

import numpy as np

__all__ = ["Augmenter"]


@dataclasses.dataclass(frozen=True)
class Augmenter:
    """Random perturbations of a recording.

    Parameters
    ----------
    n_copies : int
        Augmented copies made of each training recording (0 disables augmentation).
    snr_db : (float, float)
        Range of the signal-to-noise ratio of the added noise (white or pink, chosen at random).
    gain_db : (float, float)
        Range of the gain applied.
    pitch_semitones : (float, float)
        Range of the pitch shift.
    tempo : (float, float)
        Range of the tempo factor (>1 is faster).
    seed : int
        Combined with each file's hash and the copy index.
    """

    n_copies: int = 1
    snr_db: tuple[float, float] = (10.0, 30.0)
    gain_db: tuple[float, float] = (-6.0, 6.0)
    pitch_semitones: tuple[float, float] = (-1.0, 1.0)
    tempo: tuple[float, float] = (0.9, 1.1)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (for cache keys and model metadata)."""
        return dataclasses.asdict(self)

    def rng(self, file_key: str, copy: int) -> np.random.Generator:
        """The generator for one copy of one file."""
        return np.random.default_rng([self.seed, copy, zlib.crc32(file_key.encode())])

    def __call__(self, y: np.ndarray, *, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
        """One augmented copy of ``y`` (mono float32)."""
        from ..jit_cache import import_librosa

        librosa = import_librosa()
        y = np.asarray(y, dtype=np.float32)
        tempo = rng.uniform(*self.tempo)
        steps = rng.uniform(*self.pitch_semitones)
        gain = 10.0 ** (rng.uniform(*self.gain_db) / 20.0)
        snr_db = rng.uniform(*self.snr_db)
        pink = rng.random() < 0.5
        y = librosa.effects.time_stretch(y, rate=tempo)
        y = librosa.effects.pitch_shift(y, sr=sample_rate_hz, n_steps=steps, res_type="soxr_hq")
        y = y * gain
        # SNR relative to the loud part of the speech, not to the whole file with its pauses.
        power = np.square(y, dtype=np.float64)
        signal_power = float(np.mean(power[power >= np.percentile(power, 50)])) if power.size else 0.0
        noise = _noise(y.shape[0], pink=pink, rng=rng)
        noise *= np.sqrt(signal_power / 10.0 ** (snr_db / 10.0))
        return np.clip(y + noise, -1.0, 1.0).astype(np.float32)


def _noise(n_samples: int, *, pink: bool, rng: np.random.Generator) -> np.ndarray:
    """Unit-power white or pink (1/f power) noise."""
    white = rng.standard_normal(n_samples)
    if not pink or n_samples < 2:
        return white
    spectrum = np.fft.rfft(white)
    freqs = np.arange(spectrum.shape[0], dtype=np.float64)
    freqs[0] = 1.0
    noise = np.fft.irfft(spectrum / np.sqrt(freqs), n=n_samples)
    return noise / (np.std(noise) + 1e-12)
