"""Training-data augmentation: a room, a noise at a random SNR, a level, a small pitch shift and tempo change, a codec.

Augmented copies are made per file with a seed derived from the file's content hash, so they are
reproducible and cacheable. They only ever join the training side of a fold (see
:mod:`ser_live.training.evaluate`); evaluation always uses the original recordings. The rooms are drawn from
another seed than the rooms the robustness measure plays its test recordings in
(:mod:`ser_live.training.robustness`), so no test room is ever heard in training, and the noises are the
generated ones only (the measure's babble is made of test speakers).
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Any

import numpy as np

from ..dsp.codec import through_codec
from .conditions import mix_at_snr, noise_of_kind, reverberate, room_impulse_responses

__all__ = ["Augmenter", "TRAINING_ROOM_SEED"]

#: Seed of the training rooms (the measure's rooms use :class:`~ser_live.training.conditions.RoomNoise`'s seed, 0).
TRAINING_ROOM_SEED = 1000


@dataclasses.dataclass(frozen=True)
class Augmenter:
    """Random perturbations of a recording.

    Parameters
    ----------
    n_copies : int
        Augmented copies made of each training recording (0 disables augmentation).
    snr_db : (float, float)
        Range of the signal-to-noise ratio of the added noise, over the active speech level.
    noises : tuple of str
        Kinds of noise drawn from (see :data:`ser_live.training.conditions.NOISE_KINDS`; not babble).
    room_share : float
        Share of the copies played in a simulated room first (0 for none).
    n_rooms : int
        Training rooms simulated.
    rt60_s : (float, float)
        Range of their reverberation time.
    gain_db : (float, float)
        Range of the gain applied.
    pitch_semitones : (float, float)
        Range of the pitch shift.
    tempo : (float, float)
        Range of the tempo factor (>1 is faster).
    seed : int
        Combined with each file's hash and the copy index.
    codec_share : float
        Share of the copies passed through a codec last (0 for none): so that a codec is a nuisance to the model,
        not a cue, when some corpora come as Opus and others not.
    codecs : tuple of str
        Codecs drawn from (:data:`ser_live.dsp.codec.CODECS`).
    opus_kbps : (float, float)
        Range of Opus's bit rate.

    A range whose ends are equal (a tempo of (1, 1), a pitch of (0, 0)) and an empty ``noises`` leave that step
    out.
    """

    n_copies: int = 1
    snr_db: tuple[float, float] = (3.0, 30.0)
    noises: tuple[str, ...] = ("pink", "brown", "fan", "music")
    room_share: float = 0.8
    n_rooms: int = 24
    rt60_s: tuple[float, float] = (0.2, 0.9)
    gain_db: tuple[float, float] = (-6.0, 6.0)
    pitch_semitones: tuple[float, float] = (-1.0, 1.0)
    tempo: tuple[float, float] = (0.9, 1.1)
    seed: int = 0
    codec_share: float = 0.0
    codecs: tuple[str, ...] = ("opus", "telephone")
    opus_kbps: tuple[float, float] = (8.0, 32.0)

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (for cache keys and model metadata); without the codec settings when no copy has a
        codec, so the keys of copies made before codecs existed stay as they were."""
        record = dataclasses.asdict(self)
        if not self.codec_share:
            for name in ("codec_share", "codecs", "opus_kbps"):
                del record[name]
        return record

    def rng(self, file_key: str, copy: int) -> np.random.Generator:
        """The generator for one copy of one file."""
        return np.random.default_rng([self.seed, copy, zlib.crc32(file_key.encode())])

    def __call__(self, y: np.ndarray, *, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
        """One augmented copy of ``y`` (mono float32)."""
        from .jit_cache import import_librosa

        librosa = import_librosa()
        y = np.asarray(y, dtype=np.float32)
        tempo = rng.uniform(*self.tempo)
        steps = rng.uniform(*self.pitch_semitones)
        gain = 10.0 ** (rng.uniform(*self.gain_db) / 20.0)
        if self.tempo[0] != self.tempo[1]:
            y = librosa.effects.time_stretch(y, rate=tempo)
        if self.pitch_semitones[0] != self.pitch_semitones[1]:
            y = librosa.effects.pitch_shift(y, sr=sample_rate_hz, n_steps=steps, res_type="soxr_hq")
        if rng.random() < self.room_share:
            rooms = room_impulse_responses(self.n_rooms, sample_rate_hz=sample_rate_hz, rt60_s=self.rt60_s,
                                           seed=TRAINING_ROOM_SEED + self.seed)
            y = reverberate(y, rooms[int(rng.integers(len(rooms)))])
        y = y * gain
        if self.noises:
            noise = noise_of_kind(str(rng.choice(self.noises)), y.shape[0], sample_rate_hz=sample_rate_hz, rng=rng)
            y = mix_at_snr(y, noise, snr_db=rng.uniform(*self.snr_db), sample_rate_hz=sample_rate_hz)
        y = np.clip(y, -1.0, 1.0).astype(np.float32)
        # Drawn only when codecs are on, so copies made without them keep their random choices.
        if self.codec_share and rng.random() < self.codec_share:
            y = through_codec(y, str(rng.choice(self.codecs)), sample_rate_hz=sample_rate_hz,
                              bitrate_kbps=rng.uniform(*self.opus_kbps))
        return y
