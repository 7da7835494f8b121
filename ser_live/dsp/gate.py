"""Speech gate: decides whether an analysis window holds speech, against an adaptive noise floor.

A window counts as speech when enough of it is both clearly above the background (the noise floor,
tracked from the quiet frames of recent windows) and voiced (periodic, at a speaking pitch), and its
voiced part rises and falls like syllables do. That rejects silence, steady room noise, unvoiced
bursts such as a cough or a door, and steady tones such as mains hum, a fan or a beep (periodic but
flat), in a quiet room and a noisy one alike. Windows that are not speech are reported but never
classified.
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np

from . import primitives as dsp

__all__ = ["GATE_VERSION", "GateDecision", "SpeechGate"]

#: Bump whenever the gate's decisions (or the pitch it hands on) change for the same settings; feature caches
#: key on it.
GATE_VERSION = 1


@dataclasses.dataclass(frozen=True)
class GateDecision:
    """The gate's verdict on one window.

    Attributes
    ----------
    speech : bool
    level_db : float
        RMS level of the whole window in dBFS.
    noise_floor_db : float
        The background level the window was judged against, in dBFS.
    voiced_s : float
        Seconds of the window that were loud and voiced.
    modulation_db : float
        Spread (90th minus 10th percentile) of the levels of those voiced frames: speech rises and
        falls by 10 dB or more between syllables, a hum or a fan stays within a dB or two.
    pitch_range_st : float
        Spread (90th minus 10th percentile) of their pitch in semitones: intonation moves a voice
        by several semitones, a hum or a beep does not move.
    pitch : dsp.FramePitch or None
        The pitch the gate tracked on the window's loud frames, handed to the feature extractor so
        that it reuses those frames instead of tracking them again (same tracker, same frames).
    """

    speech: bool
    level_db: float
    noise_floor_db: float
    voiced_s: float
    modulation_db: float = 0.0
    pitch_range_st: float = 0.0
    pitch: dsp.FramePitch | None = dataclasses.field(default=None, repr=False, compare=False)


class SpeechGate:
    """Stateful speech/no-speech decision for a stream of windows.

    Parameters
    ----------
    sample_rate_hz : int
        Rate of the windows.
    frame_s : float
        Analysis frame length (frames hop by half of it).
    snr_db : float
        How far above the noise floor a frame must be to count as loud.
    min_level_db : float
        Frames quieter than this (dBFS) never count, however quiet the room.
    min_voiced_s : float
        Loud, voiced audio a window needs to count as speech.
    voicing_threshold : float
        Normalised autocorrelation above which a frame is voiced.
    floor_rise_db_per_s : float
        How fast the noise floor may glide up when the background gets louder; it falls at once
        when the background gets quieter.
    floor_memory_s : float
        The floor never stays below the quietest background of this many recent seconds, so a
        room that got louder for good (a fan switched on) is caught up with after this long.
    f0_min_hz, f0_max_hz : float
        Pitch range accepted as a voice.
    min_modulation_db, min_pitch_range_st : float
        Voiced audio whose level varies less than ``min_modulation_db`` and whose pitch varies
        less than ``min_pitch_range_st`` (see :class:`GateDecision`) is a steady tone (hum, fan,
        beep), not speech. Either alone is not enough: in loud noise only the peaks of speech
        stand out, which flattens its level, and a synthetic voice may have a flat pitch.
    """

    def __init__(
        self,
        *,
        sample_rate_hz: int = 16000,
        frame_s: float = 0.04,
        snr_db: float = 10.0,
        min_level_db: float = -55.0,
        min_voiced_s: float = 0.15,
        voicing_threshold: float = 0.6,
        floor_rise_db_per_s: float = 1.0,
        floor_memory_s: float = 4.0,
        f0_min_hz: float = 60.0,
        f0_max_hz: float = 500.0,
        min_modulation_db: float = 2.0,
        min_pitch_range_st: float = 1.0,
    ) -> None:
        if sample_rate_hz <= 0 or frame_s <= 0:
            raise ValueError("sample_rate_hz and frame_s must be positive")
        self.sample_rate_hz = sample_rate_hz
        self.frame_s = frame_s
        self.snr_db = snr_db
        self.min_level_db = min_level_db
        self.min_voiced_s = min_voiced_s
        self.voicing_threshold = voicing_threshold
        self.floor_rise_db_per_s = floor_rise_db_per_s
        self.floor_memory_s = floor_memory_s
        self.f0_min_hz = f0_min_hz
        self.f0_max_hz = f0_max_hz
        self.min_modulation_db = min_modulation_db
        self.min_pitch_range_st = min_pitch_range_st
        self.noise_floor_db: float | None = None
        self._last_end_s: float | None = None
        self._clock_s = 0.0
        self._recent_quiet: collections.deque[tuple[float, float]] = collections.deque()
        self._previous: _FrameMemo | None = None

    def reset(self) -> None:
        """Forget the noise floor (e.g. when the input device changes)."""
        self.noise_floor_db = None
        self._last_end_s = None
        self._clock_s = 0.0
        self._recent_quiet.clear()
        self._previous = None

    def _overlap_frames(self, window: np.ndarray, hop_length: int, end_s: float | None) -> int | None:
        """By how many frames this window follows the previous one, if its start repeats that window's end.

        Consecutive windows overlap (a 2 s window every 0.5 s shares 3/4 of its frames with the
        previous one): the frames they share are not analysed again. The overlap is checked
        sample for sample, never assumed from the timestamps alone.
        """
        memo = self._previous
        if memo is None or end_s is None or memo.window.shape != window.shape:
            return None
        shift = int(round((end_s - memo.end_s) * self.sample_rate_hz))
        if 0 < shift < window.shape[0] and shift % hop_length == 0 and np.array_equal(
            window[: window.shape[0] - shift], memo.window[shift:]
        ):
            return shift // hop_length
        return None

    def __call__(self, window: np.ndarray, *, end_s: float | None = None) -> GateDecision:
        """Judge one window and update the noise floor.

        Parameters
        ----------
        window : np.ndarray, shape (n_samples,)
            Mono float samples at ``sample_rate_hz``.
        end_s : float, optional
            Stream time at the window's end; paces the floor's rise. Consecutive windows are
            assumed one window apart when omitted.
        """
        window = np.asarray(window, dtype=np.float32)
        # A DC offset is not sound. Remove it per frame, not per window: exact digital zeros (the
        # padding before the stream began, a muted input) must stay zeros, or the offset shifted
        # into them would pass for a very quiet room and drag the noise floor down.
        frame_length = int(round(self.frame_s * self.sample_rate_hz))
        hop_length = frame_length // 2
        raw = dsp.frame_signal(window, frame_length=frame_length, hop_length=hop_length)
        n = raw.shape[0]
        frame_db = np.empty(n)
        f0_hz = np.zeros(n, dtype=np.float32)
        periodicity = np.zeros(n, dtype=np.float32)
        tracked = np.zeros(n, dtype=bool)
        fresh = np.ones(n, dtype=bool)
        offset = self._overlap_frames(window, hop_length, end_s)
        if offset is not None:
            memo, kept = self._previous, n - offset
            frame_db[:kept] = memo.frame_db[offset:]
            f0_hz[:kept], periodicity[:kept] = memo.f0_hz[offset:], memo.periodicity[offset:]
            tracked[:kept] = memo.tracked[offset:]
            fresh[:kept] = False
        frame_db[fresh] = dsp.frame_rms_db(_without_dc(raw[fresh]))
        level_db = _window_level_db(window)
        floor_db = self._update_floor(frame_db, self._advance_clock(window, end_s))

        loud = (frame_db > floor_db + self.snr_db) & (frame_db > self.min_level_db)
        needed = loud & ~tracked
        if needed.any():
            # The tracker removes each frame's offset itself, exactly as the feature extractor calls it,
            # so the two agree on every frame they share (see GateDecision.pitch).
            f0_hz[needed], periodicity[needed] = dsp.autocorrelation_pitch(
                raw[needed], sample_rate_hz=self.sample_rate_hz, f0_min_hz=self.f0_min_hz, f0_max_hz=self.f0_max_hz,
            )
            tracked |= needed
        pitch = dsp.FramePitch(frame_length, hop_length, self.f0_min_hz, self.f0_max_hz, f0_hz,
                                         periodicity, tracked)
        if end_s is not None:
            self._previous = _FrameMemo(window.copy(), end_s, frame_db, f0_hz, periodicity, tracked)
        voiced_s, modulation_db, pitch_range_st = self._voicing(frame_db[loud], f0_hz[loud], periodicity[loud],
                                                                 hop_length)
        steady = modulation_db < self.min_modulation_db and pitch_range_st < self.min_pitch_range_st
        return GateDecision(
            speech=voiced_s >= self.min_voiced_s and not steady,
            level_db=float(level_db),
            noise_floor_db=float(floor_db),
            voiced_s=float(voiced_s),
            modulation_db=modulation_db,
            pitch_range_st=pitch_range_st,
            pitch=pitch,
        )


    def _advance_clock(self, window: np.ndarray, end_s: float | None) -> float:
        """Seconds of stream since the last window (its length when the ends are not known)."""
        elapsed_s = window.shape[0] / self.sample_rate_hz
        if end_s is not None and self._last_end_s is not None:
            elapsed_s = max(0.0, end_s - self._last_end_s)
        self._last_end_s = end_s
        self._clock_s += elapsed_s
        return elapsed_s

    def _update_floor(self, frame_db: np.ndarray, elapsed_s: float) -> float:
        """The noise floor after this window: the quiet tenth of its frames, followed at once downwards, upwards
        only as fast as the floor may rise and no higher than the quietest of the recent windows."""
        # Exact digital zeros (before the stream began, a muted input) count as the silence they are: until real
        # background has been heard for a while, anything voiced, modulated and above min_level_db may be speech.
        (quiet_db,) = dsp.percentiles(frame_db, (10,))
        recent = self._recent_quiet
        quiet_db = float(quiet_db)
        recent.append((self._clock_s, quiet_db))
        while recent[0][0] < self._clock_s - self.floor_memory_s:
            recent.popleft()
        if self.noise_floor_db is None or quiet_db < self.noise_floor_db:
            self.noise_floor_db = quiet_db
        else:
            glide_db = min(quiet_db, self.noise_floor_db + self.floor_rise_db_per_s * elapsed_s)
            # Speech has pauses, so the quiet part of every recent window was above the floor
            # only if the background itself got louder.
            self.noise_floor_db = max(glide_db, min(q for _, q in recent))
        return self.noise_floor_db

    def _voicing(self, loud_db: np.ndarray, loud_f0_hz: np.ndarray, loud_periodicity: np.ndarray,
                 hop_length: int) -> tuple[float, float, float]:
        """Seconds of voiced audio among the loud frames, and how much their level and pitch vary (dB, semitones)."""
        if not loud_db.size:
            return 0.0, 0.0, 0.0
        voiced = loud_periodicity >= self.voicing_threshold
        voiced_s = int(np.count_nonzero(voiced)) * hop_length / self.sample_rate_hz
        if not voiced.any():
            return voiced_s, 0.0, 0.0
        semitones = 12.0 * np.log2(loud_f0_hz[voiced].astype(np.float64))
        # Fold octave errors of the pitch tracker (common in noise) back next to the median.
        (median,) = dsp.percentiles(semitones, (50,))
        return voiced_s, _spread(loud_db[voiced]), _spread((semitones - median + 6.0) % 12.0)


def _window_level_db(window: np.ndarray) -> float:
    """The window's level, without the offset of the part after any padding (digital zeros stay zeros)."""
    if not window.any():
        return dsp.DB_FLOOR
    first = int(np.argmax(window != 0))
    centred = window[first:] - np.float32(window[first:].mean(dtype=np.float64))
    return dsp.rms_db(np.concatenate([window[:first], centred]))


@dataclasses.dataclass(frozen=True)
class _FrameMemo:
    """The last window the gate judged: its frames' levels and the pitch of the frames it tracked."""

    window: np.ndarray
    end_s: float
    frame_db: np.ndarray
    f0_hz: np.ndarray
    periodicity: np.ndarray
    tracked: np.ndarray


def _without_dc(frames: np.ndarray) -> np.ndarray:
    return frames - frames.mean(axis=1, dtype=np.float64, keepdims=True).astype(np.float32)


def _spread(values: np.ndarray) -> float:
    """90th minus 10th percentile."""
    p10, p90 = dsp.percentiles(values, (10, 90))
    return float(p90 - p10)
