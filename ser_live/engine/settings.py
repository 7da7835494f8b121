"""The analysis settings' limits, declared once: window, hop and smoothing, checked by one function, one error type.

Like scikit-learn's ``_parameter_constraints``: each setting names its interval here, and every place that takes
one (the command line, the window's controls, the app layer, the monitor) checks it with
:func:`check_analysis_settings` and shows the same limits, so no two places can disagree.
"""

from __future__ import annotations

import dataclasses
import math

from ..errors import ConfigError

__all__ = ["Interval", "WINDOW_S", "HOP_S", "SMOOTHING", "check_analysis_settings"]


@dataclasses.dataclass(frozen=True)
class Interval:
    """A real interval; ``high`` is excluded when ``high_open`` (``low`` is always included)."""

    low: float
    high: float = math.inf
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        if not math.isfinite(value) or value < self.low:
            return False
        return value < self.high if self.high_open else value <= self.high

    def describe(self, unit: str = "") -> str:
        """The limit in words: ``between 0.5 and 8 s``, ``at least 0.05 s``, ``in [0, 1)``."""
        if math.isinf(self.high):
            return f"at least {self.low:g}{unit}"
        if self.high_open:
            return f"in [{self.low:g}, {self.high:g}){unit}"
        return f"between {self.low:g} and {self.high:g}{unit}"


#: Analysis window: below half a second there is not one syllable to judge; the ring buffer and the feature
#: code are sized for at most 8 s.
WINDOW_S = Interval(0.5, 8.0)
#: Time between analyses: 20 a second is more than any display or person can follow; never more than the window.
HOP_S = Interval(0.05)
#: Exponential smoothing of probabilities across hops: 0 is off; 1 would never move again.
SMOOTHING = Interval(0.0, 1.0, high_open=True)


def check_analysis_settings(window_s: float | None = None, hop_s: float | None = None,
                            smoothing: float | None = None, *, window_from: str = "the window",
                            hop_from: str = "the hop", smoothing_from: str = "--smooth") -> None:
    """Check the settings given (None: not given) against their limits and each other.

    Parameters
    ----------
    window_s, hop_s : float, optional
        Seconds.
    smoothing : float, optional
    window_from, hop_from, smoothing_from : str
        Where each value came from, as the message should name it (``--window``, "the model's window", ...).

    Raises
    ------
    ConfigError
        One line naming the value, where it came from and its limit.
    """
    if window_s is not None and window_s not in WINDOW_S:
        raise ConfigError(f"{window_from} ({window_s:g} s) must be {WINDOW_S.describe(' s')}")
    if hop_s is not None and hop_s not in HOP_S:
        raise ConfigError(f"{hop_from} ({hop_s:g} s) must be {HOP_S.describe(' s')}")
    if window_s is not None and hop_s is not None and hop_s > window_s:
        raise ConfigError(f"{hop_from} ({hop_s:g} s) must not be longer than {window_from} ({window_s:g} s)")
    if smoothing is not None and smoothing not in SMOOTHING:
        raise ConfigError(f"{smoothing_from} must be {SMOOTHING.describe()}, got {smoothing:g}")
