"""Result and event types every stage hands on: predictions, clip results, session totals and status events.

This module imports nothing of the model stack (no numpy, no model code), so output writers, the window
and the training scripts can use the types without loading a model.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections import Counter
from typing import Any

__all__ = ["EMOTIONS", "Prediction", "ClipResult", "SessionSummary", "StatusKind", "StatusEvent"]

#: The product's label set, in display order. Corpora map their labels onto these.
EMOTIONS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")


@dataclasses.dataclass(frozen=True)
class Prediction:
    """What the monitor heard in one analysis window.

    Attributes
    ----------
    t_s : float
        Seconds of audio since the start of the stream, at the window's end.
    speech : bool
        Whether the speech gate found speech; without it nothing was classified.
    emotion : str or None
        Most probable emotion (None without speech).
    confidence : float
        Its probability (0 without speech).
    probs : dict or None
        Probability of every class, in the model's display order, summing to 1 (None without speech).
    level_db : float
        RMS level of the window in dBFS.
    lost_s : float
        Audio lost so far in the session, in seconds (a device gone, a stalled input, analysis fallen
        behind); the windows around a loss are not continuous with the audio before it.
    """

    t_s: float
    speech: bool
    emotion: str | None
    confidence: float
    probs: dict[str, float] | None
    level_db: float
    lost_s: float = 0.0

    def to_json_dict(self) -> dict[str, Any]:
        """The ``--print --json`` object for this window (every key always present; see the README's schema)."""
        return {
            "t": round(self.t_s, 3),
            "speech": self.speech,
            "emotion": self.emotion,
            "confidence": round(self.confidence, 4),
            "probs": {k: round(v, 4) for k, v in self.probs.items()} if self.probs is not None else None,
            "level_db": round(self.level_db, 1) if math.isfinite(self.level_db) else None,
            "lost_s": round(self.lost_s, 2),
        }


@dataclasses.dataclass(frozen=True)
class ClipResult:
    """Classification of a whole recording: probabilities averaged over its speech windows."""

    emotion: str | None
    confidence: float
    probs: dict[str, float] | None
    duration_s: float
    n_windows: int
    n_speech_windows: int


@dataclasses.dataclass
class SessionSummary:
    """Totals of a monitoring session, for the closing summary line."""

    heard_s: float = 0.0
    n_windows: int = 0
    n_speech: int = 0
    emotion_counts: Counter = dataclasses.field(default_factory=Counter)
    #: Audio lost in all, in seconds: the input stalled or was gone, or analysis fell behind.
    lost_s: float = 0.0
    skipped_windows: int = 0
    #: Seconds the input device was gone (lost until back, or until the end); part of ``lost_s``.
    outage_s: float = 0.0

    def shares(self) -> dict[str, float]:
        """Share of the speech windows won by each emotion."""
        total = sum(self.emotion_counts.values())
        return {e: n / total for e, n in self.emotion_counts.most_common()} if total else {}


class StatusKind(enum.Enum):
    """What a :class:`StatusEvent` reports; front-ends switch on this, never on the message's words."""

    #: Something the user should know that changes nothing (a profile loaded, a setting adjusted).
    NOTICE = "notice"
    #: Something went wrong but the session goes on (a profile could not be saved, ...).
    WARNING = "warning"
    #: The input device stopped delivering audio; the monitor keeps trying to reopen it.
    DEVICE_LOST = "device-lost"
    #: Still no input device (repeated at a slowing interval while it stays gone).
    DEVICE_STILL_LOST = "device-still-lost"
    #: The input device delivers audio again.
    DEVICE_BACK = "device-back"
    #: No audio has arrived for a while although the device looks open.
    STALLED = "stalled"
    #: Audio was lost before it could be analysed (the message says how much).
    DROPPED = "dropped"
    #: Speaker calibration in progress: predictions are held back until it is done.
    CALIBRATING = "calibrating"
    #: Speaker calibration done: predictions follow.
    CALIBRATED = "calibrated"
    #: Calibration could not finish (the input ended first).
    CALIBRATION_INCOMPLETE = "calibration-incomplete"
    #: The analysis ended with an error; the message says why.
    ANALYSIS_STOPPED = "analysis-stopped"
    #: The input file was played to its end.
    FINISHED = "finished"


@dataclasses.dataclass(frozen=True)
class StatusEvent:
    """A change of state one stage reports to the front-ends.

    Attributes
    ----------
    kind : StatusKind
    message : str
        One line for a person, as the console prints it.
    """

    kind: StatusKind
    message: str

    def __str__(self) -> str:
        return self.message
