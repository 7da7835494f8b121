"""Test conditions the corpora lack, made from their clean recordings: rooms, noises, short replies (seeded).

The training corpora are studio recordings of whole sentences; people use the monitor in rooms, beside fans
and other talkers, and answer in a word. These pure functions turn a clean test recording into one of those
conditions, reproducibly: every random choice comes from a generator seeded by the recording's content
hash, so a condition's features cache like the clean ones (:func:`ser_live.training.extract.extract_condition`).

- :class:`RoomNoise`: the recording played in a simulated room (image-source method, ``pyroomacoustics``)
  and mixed with one noise at a signal-to-noise ratio over its active speech level. Noises: pink, brown, fan
  hum (mains harmonics over low-passed broadband noise), babble of other talkers (recordings of other
  speakers of the same test fold, never of the training side) and music-like tones.
- :class:`ShortReply`: the loudest 0.6-1.0 s of the recording, a single word or a short reply.
"""

from __future__ import annotations

import dataclasses
import functools
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["CONDITIONS_VERSION", "NOISE_KINDS", "RoomNoise", "ShortReply", "active_speech_power", "mix_at_snr",
           "noise_of_kind", "room_impulse_responses", "reverberate", "loudest_segment", "file_rng"]

#: Bump when a change here changes the audio a condition makes (its cached features are then made afresh).
CONDITIONS_VERSION = 2
#: The noises :class:`RoomNoise` draws from, one per recording.
NOISE_KINDS = ("pink", "brown", "fan", "babble", "music")


def file_rng(file_key: str, seed: int, *salt: int) -> np.random.Generator:
    """The generator of one recording's random choices (its content hash, the condition's seed, any salt)."""
    return np.random.default_rng([seed, *salt, zlib.crc32(file_key.encode())])


def active_speech_power(y: np.ndarray, sample_rate_hz: int, *, frame_s: float = 0.02, range_db: float = 35.0) -> float:
    """Mean power of the frames within ``range_db`` of the loudest (an approximation of ITU-T P.56's active level).

    The pauses of a recording do not lower it, so an SNR over it means the same for a terse and a slow talker.
    """
    n = max(1, int(frame_s * sample_rate_hz))
    frames = np.asarray(y, dtype=np.float64)[: y.size // n * n].reshape(-1, n) if y.size >= n else y[None, :]
    power = np.mean(np.square(frames, dtype=np.float64), axis=1)
    if power.size == 0 or power.max() <= 0:
        return 0.0
    return float(np.mean(power[power >= power.max() * 10.0 ** (-range_db / 10.0)]))


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, *, snr_db: float, sample_rate_hz: int) -> np.ndarray:
    """``speech`` plus ``noise`` (tiled or cut to its length) scaled to ``snr_db`` below its active level."""
    noise = np.resize(np.asarray(noise, dtype=np.float64), speech.shape[0])
    noise_power = float(np.mean(np.square(noise))) or 1.0
    target = active_speech_power(speech, sample_rate_hz) / 10.0 ** (snr_db / 10.0)
    mixed = speech + noise * np.sqrt(target / noise_power)
    peak = float(np.max(np.abs(mixed))) if mixed.size else 0.0
    return (mixed / peak * 0.99 if peak > 0.99 else mixed).astype(np.float32)  # scaled, never clipped


def _coloured(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Noise with power falling as ``1/f**exponent`` (1: pink, 2: brown), unit power."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spectrum.size, dtype=np.float64)
    f[0] = 1.0
    out = np.fft.irfft(spectrum / f ** (exponent / 2.0), n)
    return out / (np.std(out) or 1.0)


def _fan(n: int, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """A fan or appliance: mains hum (50 or 60 Hz and harmonics) over low-passed broadband noise."""
    t = np.arange(n) / sample_rate_hz
    mains = rng.choice([50.0, 60.0])
    hum = sum(np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3, 4))
    out = hum / (np.std(hum) or 1.0) * 0.5 + _coloured(n, rng, 1.5)
    return out / (np.std(out) or 1.0)


def _music(n: int, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """Music-like tones: a melody of harmonic notes (a pentatonic scale) with a chord under it."""
    t = np.arange(n) / sample_rate_hz
    scale = 220.0 * 2.0 ** (np.array([0, 2, 4, 7, 9, 12, 14, 16]) / 12.0)
    note_s = rng.uniform(0.2, 0.4)
    notes = rng.choice(scale, size=int(np.ceil(n / sample_rate_hz / note_s)) + 1)
    pitch = notes[(t / note_s).astype(int)]
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate_hz
    envelope = np.exp(-4.0 * (t % note_s))
    melody = sum(np.sin(k * phase) / k for k in (1, 2, 3)) * envelope
    chord = sum(np.sin(2 * np.pi * f * t) for f in rng.choice(scale[:4], size=3, replace=False) / 2.0)
    out = melody + 0.3 * chord
    return out / (np.std(out) or 1.0)


def _babble(n: int, sample_rate_hz: int, talkers: Sequence[np.ndarray]) -> np.ndarray:
    """Other talkers at once, each at the same active level, each tiled to the length."""
    if not talkers:
        raise ValueError("babble needs the recordings of other talkers")
    out = np.zeros(n)
    for y in talkers:
        level = active_speech_power(y, sample_rate_hz) or 1.0
        out += np.resize(np.asarray(y, dtype=np.float64), n) / np.sqrt(level)
    return out / (np.std(out) or 1.0)


def noise_of_kind(kind: str, n_samples: int, *, sample_rate_hz: int, rng: np.random.Generator,
                  talkers: Sequence[np.ndarray] = ()) -> np.ndarray:
    """``n_samples`` of one of :data:`NOISE_KINDS` at unit power (babble from ``talkers``)."""
    if kind == "pink":
        return _coloured(n_samples, rng, 1.0)
    if kind == "brown":
        return _coloured(n_samples, rng, 2.0)
    if kind == "fan":
        return _fan(n_samples, sample_rate_hz, rng)
    if kind == "music":
        return _music(n_samples, sample_rate_hz, rng)
    if kind == "babble":
        return _babble(n_samples, sample_rate_hz, talkers)
    raise ValueError(f"unknown noise {kind!r}; one of {', '.join(NOISE_KINDS)}")


@functools.lru_cache(maxsize=4)
def room_impulse_responses(n_rooms: int, *, sample_rate_hz: int, rt60_s: tuple[float, float],
                           seed: int) -> tuple[np.ndarray, ...]:
    """Impulse responses of ``n_rooms`` furnished rooms, from a talker to a laptop or desk microphone.

    Shoebox rooms of 3x3 to 7x6 m (an office, a kitchen, a living room), 2.5-3.2 m high, reverberation time
    drawn from ``rt60_s``; the talker 0.5-1.5 m from the microphone (a laptop's or a desk microphone in front
    of them), both 0.4 m or more from the walls (pyroomacoustics' image-source method). Computed once per
    process and arguments.
    """
    import pyroomacoustics as pra

    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n_rooms:
        dims = np.array([rng.uniform(3.0, 7.0), rng.uniform(3.0, 6.0), rng.uniform(2.5, 3.2)])
        rt60 = rng.uniform(*rt60_s)
        mic = np.r_[rng.uniform(0.4, dims[:2] - 0.4), rng.uniform(0.7, 1.1)]
        angle, distance = rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 1.5)
        talker = np.r_[mic[:2] + distance * np.array([np.cos(angle), np.sin(angle)]), rng.uniform(1.1, 1.6)]
        if np.any(talker[:2] < 0.4) or np.any(talker[:2] > dims[:2] - 0.4):
            continue
        try:
            absorption, max_order = pra.inverse_sabine(rt60, dims)
        except ValueError:  # that time is impossible in so small a room: draw another
            continue
        room = pra.ShoeBox(dims, fs=sample_rate_hz, materials=pra.Material(absorption), max_order=max_order)
        room.add_source(talker)
        room.add_microphone(mic)
        room.compute_rir()
        rir = np.asarray(room.rir[0][0], dtype=np.float64)
        out.append(rir / np.max(np.abs(rir)))
    return tuple(out)


def reverberate(y: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``y`` as heard through ``rir``, the length of ``y``, starting at the direct sound (no added delay)."""
    from scipy.signal import fftconvolve

    onset = int(np.argmax(np.abs(rir) > 0.1 * np.max(np.abs(rir))))
    wet = fftconvolve(np.asarray(y, dtype=np.float64), rir[onset:])[: y.shape[0]]
    dry_level, wet_level = np.sqrt(np.mean(np.square(y)) or 1.0), np.sqrt(np.mean(np.square(wet)) or 1.0)
    return wet * (dry_level / wet_level)  # the same level as the dry recording: the room changes colour, not gain


@dataclasses.dataclass(frozen=True)
class RoomNoise:
    """A recording in a simulated room with one noise, at one of ``snr_db`` (drawn per recording).

    Parameters
    ----------
    snr_db : tuple of float
        Signal-to-noise ratios over the active speech level; each recording gets one (so each level is
        measured on about an equal share of the recordings, and the clean figure of that same share beside it).
    n_rooms : int
        Rooms simulated; each recording is played in one of them.
    rt60_s : (float, float)
        Range of the rooms' reverberation time.
    noises : tuple of str
        Kinds of :data:`NOISE_KINDS` drawn from, one per recording.
    n_talkers : int
        Talkers in the babble.
    seed : int
    """

    snr_db: tuple[float, ...] = (20.0, 10.0, 5.0)
    n_rooms: int = 12
    rt60_s: tuple[float, float] = (0.3, 0.8)
    noises: tuple[str, ...] = NOISE_KINDS
    n_talkers: int = 5
    seed: int = 0

    name = "room+noise"

    def key(self) -> dict[str, Any]:
        """Everything that changes the audio made (for cache keys and reports)."""
        return {"name": self.name, "version": CONDITIONS_VERSION, **dataclasses.asdict(self)}

    def snr_of(self, file_key: str) -> float:
        """The SNR this recording is mixed at."""
        return float(self.snr_db[int(file_rng(file_key, self.seed, 1).integers(len(self.snr_db)))])

    def __call__(self, y: np.ndarray, *, sample_rate_hz: int, file_key: str,
                 talkers: Sequence[np.ndarray] = ()) -> np.ndarray:
        """The recording ``y`` (mono) in its room, with its noise; ``talkers`` make the babble."""
        rng = file_rng(file_key, self.seed, 0)
        rirs = room_impulse_responses(self.n_rooms, sample_rate_hz=sample_rate_hz, rt60_s=self.rt60_s,
                                      seed=self.seed)
        wet = reverberate(y, rirs[int(rng.integers(len(rirs)))])
        # A fold of one speaker has no other talkers: its recordings draw from the other noises.
        kind = str(rng.choice(self.noises if talkers else [k for k in self.noises if k != "babble"]))
        noise = noise_of_kind(kind, wet.shape[0], sample_rate_hz=sample_rate_hz, rng=rng, talkers=talkers)
        return mix_at_snr(wet, noise, snr_db=self.snr_of(file_key), sample_rate_hz=sample_rate_hz)


def loudest_segment(y: np.ndarray, n_samples: int, *, sample_rate_hz: int) -> np.ndarray:
    """The ``n_samples`` of ``y`` with the most energy (all of ``y`` if it is shorter)."""
    if y.shape[0] <= n_samples:
        return np.asarray(y, dtype=np.float32)
    hop = max(1, sample_rate_hz // 100)
    energy = np.concatenate([[0.0], np.cumsum(np.square(y, dtype=np.float64))])
    starts = np.arange(0, y.shape[0] - n_samples + 1, hop)
    best = int(starts[np.argmax(energy[starts + n_samples] - energy[starts])])
    return np.asarray(y[best: best + n_samples], dtype=np.float32)


@dataclasses.dataclass(frozen=True)
class ShortReply:
    """The loudest ``min_s``-``max_s`` seconds of a recording (length drawn per recording): a word, a short reply."""

    min_s: float = 0.6
    max_s: float = 1.0
    seed: int = 0

    name = "short"

    def key(self) -> dict[str, Any]:
        """Everything that changes the audio made (for cache keys and reports)."""
        return {"name": self.name, "version": CONDITIONS_VERSION, **dataclasses.asdict(self)}

    def __call__(self, y: np.ndarray, *, sample_rate_hz: int, file_key: str,
                 talkers: Sequence[np.ndarray] = ()) -> np.ndarray:
        length_s = file_rng(file_key, self.seed, 0).uniform(self.min_s, self.max_s)
        return loudest_segment(y, int(round(length_s * sample_rate_hz)), sample_rate_hz=sample_rate_hz)
