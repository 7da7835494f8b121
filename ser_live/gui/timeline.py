"""The emotion timeline both windows draw: its data (live predictions or a kept session) and its curves.

The live window's history and the review window's whole-session view read one :class:`Timeline`, made
from the predictions the monitor has just reported (:meth:`Timeline.from_predictions`) or from a session
read back from disk (:meth:`Timeline.from_recording`), and draw it with one :class:`TimelineCurves`: the
same lines, the same grey bands where nobody spoke, the same handling of a lone speech window.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PyQt6 import QtWidgets

from ..app.review import SessionRecording
from ..results import Prediction
from . import palette
from .plots import brush, font, style_plot

__all__ = ["Timeline", "TimelineCurves", "HistoryPlot", "HISTORY_S", "MIN_HISTORY_S"]

#: The live history's longest span.
HISTORY_S = 60.0
#: The history's shortest span: a session's first seconds still read as a timeline.
MIN_HISTORY_S = 10.0


@dataclasses.dataclass(frozen=True)
class Timeline:
    """Emotion probabilities over session time, one row per analysis window.

    Attributes
    ----------
    classes : tuple of str
    t_s : np.ndarray, shape (n,)
        Session time at the end of each window.
    speech : np.ndarray of bool, shape (n,)
    probs : np.ndarray, shape (n, len(classes))
        NaN in windows without a prediction.
    hop_s : float
        Time between windows (each window's row stands for the hop that ends at ``t_s``).
    """

    classes: tuple[str, ...]
    t_s: np.ndarray
    speech: np.ndarray
    probs: np.ndarray
    hop_s: float

    @classmethod
    def from_predictions(cls, rows: Sequence[Prediction], classes: Sequence[str], *, hop_s: float) -> Timeline:
        """The live source: the predictions the window has received, oldest first."""
        classes = tuple(classes)
        probs = np.full((len(rows), len(classes)), np.nan)
        for i, row in enumerate(rows):
            if row.probs is not None:
                probs[i] = [row.probs.get(c, 0.0) for c in classes]
        return cls(classes, np.array([r.t_s for r in rows], dtype=float),
                   np.array([r.speech for r in rows], dtype=bool), probs, float(hop_s))

    @classmethod
    def from_recording(cls, recording: SessionRecording) -> Timeline:
        """The review source: a kept session, whole (its hop read from its rows)."""
        t_s = recording.t_s
        hop_s = float(np.median(np.diff(t_s))) if t_s.size > 1 else 0.5
        return cls(recording.classes, t_s, recording.speech, recording.probs, hop_s)

    def __len__(self) -> int:
        return int(self.t_s.size)

    def since(self, t_s: float) -> Timeline:
        """The rows of windows ending after ``t_s``."""
        keep = self.t_s > t_s
        return dataclasses.replace(self, t_s=self.t_s[keep], speech=self.speech[keep], probs=self.probs[keep])

    def newest_speech(self) -> tuple[float, dict[str, float]] | None:
        """Time and probabilities of the newest window with speech and a prediction, if any."""
        heard = np.flatnonzero(self.speech & ~np.isnan(self.probs).all(axis=1))
        if heard.size == 0:
            return None
        i = int(heard[-1])
        return float(self.t_s[i]), dict(zip(self.classes, map(float, self.probs[i])))


class TimelineCurves:
    """One line per emotion and a grey band over each window without speech, on a plot.

    Parameters
    ----------
    plot : pg.PlotItem
        Where to draw (the items are added to it once, then only their data change).
    classes : sequence of str
    width_px : int
        Line width.
    """

    def __init__(self, plot: pg.PlotItem, classes: Sequence[str], *, width_px: int = 3) -> None:
        self.no_speech = pg.PlotDataItem(stepMode="center", fillLevel=0, pen=pg.mkPen(None),
                                         fillBrush=brush(palette.NO_SPEECH_COLOUR, 90))
        plot.addItem(self.no_speech)
        classes = tuple(classes)
        self.curves = {c: plot.plot(pen=pg.mkPen(palette.colour_of(c, classes), width=width_px), connect="finite",
                                    name=c) for c in classes}

    def draw(self, timeline: Timeline, *, origin_s: float = 0.0) -> None:
        """Show ``timeline`` with its times less ``origin_s`` (the live view puts now at 0)."""
        if not len(timeline):
            for curve in self.curves.values():
                curve.setData([], [])
            self.no_speech.setData([], [])
            return
        t = timeline.t_s - origin_s
        speech = timeline.speech
        # Each stretch of speech also starts with a point at its first hop's beginning, so even a
        # single speech window (the newest, say) shows as a segment and not as an invisible point.
        starts = speech & np.r_[True, ~speech[:-1]]
        src = np.repeat(np.arange(t.size), np.where(starts, 2, 1))
        x = t[src]
        x[np.r_[True, src[1:] != src[:-1]] & starts[src]] -= timeline.hop_s
        columns = {c: i for i, c in enumerate(timeline.classes)}
        for c, curve in self.curves.items():
            y = timeline.probs[:, columns[c]] if c in columns else np.full(t.size, np.nan)
            curve.setData(x, y[src])
        # A band of full height over each window without speech, edges at the hops.
        self.no_speech.setData(np.concatenate([[t[0] - timeline.hop_s], t]), np.where(speech, 0.0, 1.0))


class HistoryPlot(pg.PlotWidget):
    """Probability of every emotion over the last 60 s; grey bands mark the stretches without speech.

    The time axis spans the session so far (at least :data:`MIN_HISTORY_S`, at most :data:`HISTORY_S`), so
    a short session fills the plot. The lines of the emotions that lead at the newest speech window are
    named at their right end, so no line has to be found by its colour alone.
    """

    #: Labels drawn at the right end: the emotions above this probability, at most this many.
    LABEL_MIN_PROB = 0.1
    LABEL_MAX = 3

    def __init__(self, classes: Sequence[str], parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.classes = tuple(classes)
        style_plot(self)
        self.span_s = MIN_HISTORY_S
        self.setXRange(-self.span_s, 0, padding=0)
        self.setYRange(-0.06, 1.06, padding=0)  # room for the 0 % and 100 % labels
        self.setLabel("bottom", "seconds ago")
        self.getAxis("left").setTicks([[(v, f"{v:.0%}") for v in (0, 0.5, 1.0)], [(v, "") for v in (0.25, 0.75)]])
        self.showGrid(x=True, y=True, alpha=0.12)
        self.lines = TimelineCurves(self.getPlotItem(), self.classes)
        self.labels = {}
        for c in self.classes:
            label = pg.TextItem(c, color=palette.colour_of(c, self.classes), anchor=(1, 0.5))
            label.setFont(font(14, bold=True))
            label.hide()
            self.addItem(label)
            self.labels[c] = label

    def set_span(self, span_s: float) -> None:
        """Show the last ``span_s`` seconds, rounded up to 5 s (clamped to :data:`MIN_HISTORY_S` .. :data:`HISTORY_S`).

        In steps, so the axes are laid out again every 5 s of a session, not at every redraw.
        """
        span_s = min(HISTORY_S, max(MIN_HISTORY_S, 5.0 * math.ceil(span_s / 5.0)))
        if span_s != self.span_s:
            self.span_s = span_s
            self.setXRange(-span_s, 0, padding=0)

    def _place_labels(self, x_end: float, last: dict[str, float] | None) -> None:
        """Name the leading lines at the newest speech window, nudged apart so that none overlap."""
        for label in self.labels.values():
            label.hide()
        if last is None:
            return
        leading = sorted((p, c) for c, p in last.items() if p >= self.LABEL_MIN_PROB)[-self.LABEL_MAX:]
        gap = 0.09  # of the probability axis: a label's height at the plot's usual size
        placed: list[float] = []
        for p, c in sorted(leading, reverse=True):
            y = min(p, 0.98)
            for other in placed:
                y = min(y, other - gap)
            placed.append(y)
            self.labels[c].setPos(x_end - 0.005 * self.span_s, max(y, 0.04))
            self.labels[c].setAnchor((1, 1.0 if y >= 0.5 else 0.0))
            self.labels[c].show()

    def legend_html(self) -> str:
        """A one-line legend (rich text) naming each line's colour and the no-speech band."""
        items = [f'<span style="color:{palette.colour_of(c, tuple(self.classes))}">&#9632;</span>&nbsp;{c}'
                 for c in self.classes]
        items.append(f'<span style="color:{palette.NO_SPEECH_COLOUR}">&#9608;</span>&nbsp;no speech')
        return "&nbsp;&nbsp; ".join(items)

    def show_timeline(self, timeline: Timeline, now_s: float) -> None:
        """Redraw from the rows of the last :data:`HISTORY_S` seconds before ``now_s`` (older rows are ignored)."""
        recent = timeline.since(now_s - HISTORY_S - timeline.hop_s)
        self.lines.draw(recent, origin_s=now_s)
        newest = recent.newest_speech()
        self._place_labels(newest[0] - now_s if newest else 0.0, newest[1] if newest else None)
