"""Speech gate: decides whether an analysis window holds speech, against an adaptive noise floor.

A window counts as speech when enough of it is both clearly above the background (the noise floor,
tracked from the quiet frames of recent windows) and voiced (periodic, at a speaking pitch). That
rejects silence, steady room noise and unvoiced bursts such as a cough or a door, in a quiet room
and a noisy one alike. Windows that are not speech are reported but never classified.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import dsp

__all__ = ["GateDecision", "SpeechGate"]


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
    """

    speech: bool
    level_db: float
    noise_floor_db: float
    voiced_s: float


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
        How fast the noise floor may rise when the background gets louder; it falls at once when
        the background gets quieter.
    f0_min_hz, f0_max_hz : float
        Pitch range accepted as a voice.
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
        f0_min_hz: float = 60.0,
        f0_max_hz: float = 500.0,
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
        self.f0_min_hz = f0_min_hz
        self.f0_max_hz = f0_max_hz
        self.noise_floor_db: float | None = None
        self._last_end_s: float | None = None

    def reset(self) -> None:
        """Forget the noise floor (e.g. when the input device changes)."""
        self.noise_floor_db = None
        self._last_end_s = None

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
        if window.size:
            window = window - np.float32(window.mean(dtype=np.float64))  # a DC offset is not sound
        frame_length = int(round(self.frame_s * self.sample_rate_hz))
        hop_length = frame_length // 2
        frames = dsp.frame_signal(window, frame_length=frame_length, hop_length=hop_length)
        frame_db = dsp.frame_rms_db(frames)
        level_db = dsp.rms_db(window)

        # Exact digital zeros (padding before the stream began, muted input) say nothing about the room.
        live = frame_db > dsp.DB_FLOOR + 1.0
        elapsed_s = window.shape[0] / self.sample_rate_hz
        if end_s is not None and self._last_end_s is not None:
            elapsed_s = max(0.0, end_s - self._last_end_s)
        self._last_end_s = end_s
        if live.any():
            quiet_db = float(np.percentile(frame_db[live], 10))
            if self.noise_floor_db is None or quiet_db < self.noise_floor_db:
                self.noise_floor_db = quiet_db
            else:
                self.noise_floor_db = min(quiet_db, self.noise_floor_db + self.floor_rise_db_per_s * elapsed_s)
        floor_db = self.noise_floor_db if self.noise_floor_db is not None else dsp.DB_FLOOR

        loud = live & (frame_db > floor_db + self.snr_db) & (frame_db > self.min_level_db)
        voiced_s = 0.0
        if loud.any():
            _, periodicity = dsp.autocorrelation_pitch(
                frames[loud], sample_rate_hz=self.sample_rate_hz, f0_min_hz=self.f0_min_hz, f0_max_hz=self.f0_max_hz
            )
            n_voiced = int(np.count_nonzero(periodicity >= self.voicing_threshold))
            voiced_s = n_voiced * hop_length / self.sample_rate_hz
        return GateDecision(
            speech=voiced_s >= self.min_voiced_s,
            level_db=float(level_db),
            noise_floor_db=float(floor_db),
            voiced_s=float(voiced_s),
        )
