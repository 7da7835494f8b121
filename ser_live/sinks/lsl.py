"""The Lab Streaming Layer outlet: each prediction as one sample of an ``Emotion`` stream, stamped at its audio's time.

Optional (``pip install 'ser-live[lsl]'``: pylsl, whose wheel carries liblsl). The stream has one float channel per
class (its probability, 0 without speech), then ``speech`` (1 or 0) and ``level_db`` (dBFS); the labels are in the
stream's description, its nominal rate is one sample per hop, and each sample is stamped with the LSL clock time at
which the last sample of its analysis window was captured (not when the analysis finished), so that LabRecorder
lines it up with the other streams of a recording.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ..errors import ConfigError
from ..results import Prediction

__all__ = ["LslOutlet", "DEFAULT_STREAM_NAME", "STREAM_TYPE", "channel_labels", "lsl_sample"]

DEFAULT_STREAM_NAME = "ser-live"
STREAM_TYPE = "Emotion"
#: Printed when pylsl is missing.
INSTALL_HINT = "--lsl needs pylsl: pip install 'ser-live[lsl]'"


def channel_labels(classes: Sequence[str]) -> list[str]:
    """The stream's channels, in order: one probability per class, then ``speech`` and ``level_db``."""
    return [*classes, "speech", "level_db"]


def lsl_sample(prediction: Prediction, classes: Sequence[str]) -> list[float]:
    """One stream sample of a prediction (the values ``--print --json`` gives, unrounded)."""
    probs = prediction.probs or {}
    return [float(probs.get(c, 0.0)) for c in classes] + [float(prediction.speech), float(prediction.level_db)]


class LslOutlet:
    """An LSL outlet of a session's predictions.

    Parameters
    ----------
    name : str
        The stream's name (``--lsl NAME``; ``ser-live`` by default).
    classes : sequence of str
        The model's classes, in display order.
    hop_s : float
        Seconds between predictions (the nominal rate is ``1 / hop_s``).
    source_id : str, optional
        Lets a recorder find the stream again after a restart; ``ser-live:<name>`` by default.

    Raises
    ------
    ConfigError
        When pylsl is not installed (naming the extra to install).
    """

    def __init__(self, name: str, classes: Sequence[str], *, hop_s: float, source_id: str | None = None) -> None:
        try:
            import pylsl
        except ImportError as exc:
            raise ConfigError(INSTALL_HINT) from exc
        self.name = name
        self.classes = tuple(classes)
        labels = channel_labels(self.classes)
        info = pylsl.StreamInfo(name, STREAM_TYPE, len(labels), 1.0 / hop_s, pylsl.cf_float32,
                                source_id or f"ser-live:{name}")
        channels = info.desc().append_child("channels")
        for label in labels:
            channel = channels.append_child("channel")
            channel.append_child_value("label", label)
            channel.append_child_value("unit", "dBFS" if label == "level_db" else
                                       "boolean" if label == "speech" else "probability")
            channel.append_child_value("type", STREAM_TYPE)
        info.desc().append_child_value("manufacturer", "ser-live")
        self._outlet = pylsl.StreamOutlet(info)
        # liblsl's clock and time.monotonic() both count CLOCK_MONOTONIC here; measured once, in case they differ.
        self._lsl_minus_monotonic_s = pylsl.local_clock() - time.monotonic()

    def push(self, prediction: Prediction, captured_at_s: float) -> None:
        """Send one prediction, stamped with ``captured_at_s`` (``time.monotonic()`` when its audio was captured)."""
        self._outlet.push_sample(lsl_sample(prediction, self.classes), captured_at_s + self._lsl_minus_monotonic_s)

    def have_consumers(self) -> bool:
        """Whether an inlet (a recorder) is connected."""
        return bool(self._outlet.have_consumers())

    def close(self) -> None:
        """Withdraw the stream (idempotent)."""
        outlet: Any = self.__dict__.pop("_outlet", None)
        if outlet is not None:
            del outlet
