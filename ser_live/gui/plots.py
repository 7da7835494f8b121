"""The window's views: current emotion headline, probability bars, waveform and level meter (history: timeline.py).

Every view is passive: the window's timer hands it the latest state and it redraws. Colours come
from :mod:`ser_live.gui.palette` only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PyQt6 import QtCore, QtGui, QtWidgets

from ..results import Prediction
from . import palette

__all__ = [
    "WAVEFORM_S",
    "CLIP_LEVEL",
    "QUIET_PEAK_DBFS",
    "EmotionHeadline",
    "ProbabilityBars",
    "WaveformPlot",
    "LevelMeter",
    "input_level",
    "envelope",
    "font",
    "style_plot",
    "brush",
]

WAVEFORM_S = 5.0
#: A sample at or above this magnitude counts as clipped.
CLIP_LEVEL = 0.99
#: Below this peak over the last few seconds, even speech is too quiet to analyse well.
QUIET_PEAK_DBFS = -40.0
METER_FLOOR_DBFS = -60.0


def _db(value: float) -> float:
    return 20.0 * math.log10(value) if value > 1e-10 else -200.0


def input_level(samples: np.ndarray, sample_rate_hz: int, *, rms_s: float = 0.1) -> tuple[float, float, str]:
    """Level-meter reading of recent audio.

    Parameters
    ----------
    samples : np.ndarray
        The last few seconds of input.
    sample_rate_hz : int
    rms_s : float
        The RMS level is taken over this much of the end (what the meter shows now).

    Returns
    -------
    rms_db, peak_db : float
        RMS of the end and peak of all of ``samples``, in dBFS.
    state : str
        ``"clipping"`` if any sample reached :data:`CLIP_LEVEL`, ``"quiet"`` if the peak stayed
        below :data:`QUIET_PEAK_DBFS`, else ``"ok"``.
    """
    x = np.asarray(samples, dtype=np.float32)
    if x.size == 0:
        return -200.0, -200.0, "quiet"
    tail = x[-max(1, int(rms_s * sample_rate_hz)) :]
    rms_db = _db(float(np.sqrt(np.mean(np.square(tail, dtype=np.float64)))))
    peak = float(np.max(np.abs(x)))
    state = "clipping" if peak >= CLIP_LEVEL else ("quiet" if _db(peak) < QUIET_PEAK_DBFS else "ok")
    return rms_db, _db(peak), state


def envelope(samples: np.ndarray, n_columns: int) -> np.ndarray:
    """Min/max envelope of ``samples`` in ``n_columns`` columns, interleaved ``[min0, max0, min1, ...]``.

    Drawing 2 points per screen column instead of every sample keeps the scrolling waveform cheap.
    """
    x = np.asarray(samples, dtype=np.float32)
    n_columns = max(1, min(n_columns, x.size // 2 or 1))
    usable = (x.size // n_columns) * n_columns
    if usable == 0:
        return np.zeros(2 * n_columns, dtype=np.float32)
    cols = x[x.size - usable :].reshape(n_columns, -1)
    out = np.empty(2 * n_columns, dtype=np.float32)
    out[0::2] = cols.min(axis=1)
    out[1::2] = cols.max(axis=1)
    return out


def font(px: int, *, bold: bool = False) -> QtGui.QFont:
    """A font of ``px`` pixels (the views are sized in pixels, not points)."""
    made = QtGui.QFont()
    made.setPixelSize(px)
    made.setBold(bold)
    return made


def style_plot(plot: pg.PlotWidget | pg.PlotItem, *, tick_px: int = 14) -> None:
    """The window's look for a plot: its panel colour, dim axes, no mouse or menu (display only)."""
    plot.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)  # display only; keys go to the window's shortcuts
    if isinstance(plot, pg.PlotWidget):  # a PlotItem in a layout takes the layout's background
        plot.setBackground(palette.PANEL)
    plot.setMenuEnabled(False)
    plot.setMouseEnabled(x=False, y=False)
    plot.hideButtons()
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.setTextPen(palette.TEXT_DIM)
        axis.setPen(palette.TEXT_DIM)
        axis.setStyle(tickFont=font(tick_px))
        axis.label.setFont(font(tick_px))
        # Kept as a pixmap: a curve redrawn 20 times a second repaints the axes beside it, and drawing their tick
        # text anew each time was a third of the window's painting (py-spy, speech heard); pyqtgraph's update()
        # on a change of ticks renews the pixmap.
        axis.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)


def brush(colour: str, alpha: int = 255) -> QtGui.QBrush:
    """A solid brush of ``colour`` with ``alpha`` (0-255)."""
    c = QtGui.QColor(colour)
    c.setAlpha(alpha)
    return QtGui.QBrush(c)


class EmotionHeadline(QtWidgets.QWidget):
    """The current emotion in large type and its colour, with its confidence; "listening…" without speech."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = QtWidgets.QLabel("listening…")
        self.name.setFont(font(96, bold=True))
        # The text must not resize the layout as it changes (the views would jump).
        self.name.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.name.setMinimumHeight(self.name.fontMetrics().height())
        self.confidence = QtWidgets.QLabel("")
        self.confidence.setFont(font(56, bold=True))
        self.caption = QtWidgets.QLabel("no speech")
        self.caption.setFont(font(22))
        self.caption.setStyleSheet(f"color: {palette.TEXT_DIM}")
        row = QtWidgets.QHBoxLayout()
        row.setSpacing(14)
        row.addWidget(self.confidence, 0, QtCore.Qt.AlignmentFlag.AlignBaseline)
        row.addWidget(self.caption, 0, QtCore.Qt.AlignmentFlag.AlignBaseline)
        row.addStretch(1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(20, 0, 8, 0)
        layout.setSpacing(0)
        layout.addStretch(1)
        layout.addWidget(self.name)
        layout.addLayout(row)
        layout.addStretch(1)
        self.show_prediction(None)

    def show_prediction(self, prediction: Prediction | None, *, note: str | None = None,
                        state: str = "listening…") -> None:
        """Show the latest prediction; without speech ``state`` (dimmed) and ``note`` instead of the caption."""
        if prediction is not None and prediction.speech and prediction.emotion:
            colour = palette.colour_of(prediction.emotion, tuple(prediction.probs or ()))
            self._show_name(prediction.emotion, 96)
            self.confidence.setText(f"{prediction.confidence:.0%}")
            self.caption.setText(note or "confidence")
        else:
            colour = palette.TEXT_DIM
            self._show_name(state, 72)  # a state, not a result: smaller
            self.confidence.setText("")
            self.caption.setText(note or "no speech")
        self.name.setStyleSheet(f"color: {colour}")
        self.confidence.setStyleSheet(f"color: {colour}")

    def _show_name(self, text: str, size_px: int) -> None:
        """The name at ``size_px`` pixels, or smaller where that would not fit (a class may be a long word)."""
        self._name = (text, size_px)
        self.name.setText(text)
        chosen = font(size_px, bold=True)
        available_px = self.name.contentsRect().width()
        needed_px = QtGui.QFontMetrics(chosen).horizontalAdvance(text)
        if available_px > 50 and needed_px > available_px:
            chosen = font(max(24, int(size_px * available_px / needed_px)), bold=True)
        self.name.setFont(chosen)

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._show_name(*self._name)


class ProbabilityBars(pg.PlotWidget):
    """One horizontal bar per emotion, in the model's fixed order, with its probability.

    Without speech the last heard probabilities stay, dimmed, so the view does not jump.
    """

    def __init__(self, classes: Sequence[str], parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.classes = tuple(classes)
        style_plot(self, tick_px=20)
        # Room beyond 0 and 1 for the end labels: pyqtgraph drops a label that would cross the axis' end.
        self.setXRange(-0.05, 1.12, padding=0)
        self.setYRange(-0.6, len(self.classes) - 0.4, padding=0)
        self.getPlotItem().invertY(True)
        self.getAxis("left").setTicks([[(i, c) for i, c in enumerate(self.classes)]])
        self.getAxis("left").setWidth(120)
        self.getAxis("bottom").setTicks([[(v, f"{v:.0%}") for v in (0, 0.5, 1.0)], [(v, "") for v in (0.25, 0.75)]])
        # Grid lines drawn as lines, not with showGrid: with pyqtgraph's grid on, the axis drops the
        # labels at its ends (0 % and 100 %), which may reach past the plot.
        self.getAxis("bottom").setStyle(hideOverlappingLabels=False)
        grid = QtGui.QColor(palette.TEXT_DIM)
        grid.setAlpha(40)
        for v in (0.25, 0.5, 0.75, 1.0):
            self.addItem(pg.InfiniteLine(pos=v, angle=90, pen=pg.mkPen(grid, width=1)))
        self.probs = np.zeros(len(self.classes))
        self.bars = pg.BarGraphItem(
            x0=np.zeros(len(self.classes)), y=np.arange(len(self.classes)), height=0.72,
            width=self.probs, brushes=self._brushes(255), pens=[pg.mkPen(None)] * len(self.classes),
        )
        self.addItem(self.bars)
        self.values = []
        for i in range(len(self.classes)):
            text = pg.TextItem("", color=palette.TEXT, anchor=(0, 0.5))
            text.setFont(font(18, bold=True))
            text.setPos(0.01, i)
            self.addItem(text)
            self.values.append(text)

    def _brushes(self, alpha: int) -> list[QtGui.QBrush]:
        return [brush(palette.colour_of(c, self.classes), alpha) for c in self.classes]

    def show_prediction(self, prediction: Prediction | None) -> None:
        """Bars for the latest prediction."""
        speech = prediction is not None and prediction.speech and prediction.probs is not None
        if speech:
            self.probs = np.array([prediction.probs.get(c, 0.0) for c in self.classes])
        self.bars.setOpts(width=self.probs, brushes=self._brushes(255 if speech else 70))
        for i, p in enumerate(self.probs):
            self._label(self.values[i], i, float(p), current=speech)

    @staticmethod
    def _label(text: pg.TextItem, row: int, p: float, *, current: bool) -> None:
        """A bar's percentage: inside a long bar's end, just after a short one; dimmed when not current."""
        text.setText(f"{p:.0%}" if (current or p > 0) else "")
        text.setColor(palette.TEXT if current else palette.TEXT_DIM)
        long_bar = p > 0.85
        text.setPos(p - 0.01 if long_bar else p + 0.015, row)
        text.setAnchor((1, 0.5) if long_bar else (0, 0.5))


class WaveformPlot(pg.PlotWidget):
    """The last seconds of input as a min/max envelope, with the latest analysis window shaded."""

    #: Vertical scales (fractions of full scale) the view steps between.
    SCALES = (0.05, 0.1, 0.2, 0.5, 1.0)

    def __init__(self, parent: QtWidgets.QWidget | None = None, *, columns: int = 800) -> None:
        super().__init__(parent)
        self.columns = columns
        style_plot(self, tick_px=12)
        self.setXRange(-WAVEFORM_S, 0, padding=0)
        self.getAxis("left").setWidth(40)
        self.scale = 0.0
        self._set_scale(1.0)
        self.region = pg.LinearRegionItem(
            values=(-2.0, 0.0), movable=False, brush=brush("#FFFFFF", 28),
            pen=pg.mkPen("#FFFFFF", width=1, style=QtCore.Qt.PenStyle.DashLine),
        )
        self.addItem(self.region)
        self.region_label = pg.TextItem("analysis window", color=palette.TEXT_DIM, anchor=(0, 0))
        self.region_label.setFont(font(12))
        self.addItem(self.region_label)
        self.curve = self.plot(pen=pg.mkPen("#C9D1D9", width=1))

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:  # noqa: N802 - Qt's name
        """Two envelope points per pixel column of the plot: more is invisible, fewer looks jagged."""
        super().resizeEvent(event)
        self.columns = max(50, self.width())

    def _set_scale(self, scale: float) -> None:
        if scale != self.scale:
            self.scale = scale
            self.setYRange(-scale, scale, padding=0.15)  # room for the end labels
            self.getAxis("left").setTicks([[(-scale, f"-{scale:g}"), (0, "0"), (scale, f"{scale:g}")]])

    def show_audio(self, samples: np.ndarray, window_start_s: float, window_end_s: float) -> None:
        """Draw ``samples`` ending now; the analysis window in seconds relative to now (negative).

        The vertical scale follows the loudest sample shown, in steps (0.05 to 1 of full scale), so
        quiet speech is still visible; the level meter shows the absolute level.
        """
        peak = float(np.max(np.abs(samples))) if samples.size else 0.0
        self._set_scale(next((s for s in self.SCALES if peak <= 0.95 * s), 1.0))
        env = envelope(samples, self.columns)
        duration_s = WAVEFORM_S
        x = np.repeat(np.linspace(-duration_s, 0, env.size // 2), 2)
        self.curve.setData(x, env)
        self.region.setRegion((max(window_start_s, -duration_s), min(window_end_s, 0.0)))
        self.region_label.setPos(max(window_start_s, -duration_s), self.scale)


class LevelMeter(QtWidgets.QWidget):
    """Input level from -60 to 0 dBFS with a peak mark; turns orange when too quiet, vermillion when clipping."""

    MESSAGES = {
        "ok": "input level OK",
        "quiet": "too quiet: speak up, move closer or raise the input gain",
        "clipping": "CLIPPING: lower the input gain or move back",
        "idle": "no input",
    }

    #: Where the scale is marked and numbered, in dBFS.
    TICKS_DB = (-60, -50, -40, -30, -20, -10, 0)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(62)
        self.rms_db = METER_FLOOR_DBFS
        self.peak_db = METER_FLOOR_DBFS
        self.state = "idle"

    def set_level(self, rms_db: float, peak_db: float, state: str) -> None:
        """Show a reading of :func:`input_level` (``state`` may also be ``"idle"``)."""
        changed = (round(rms_db), round(peak_db), state) != (round(self.rms_db), round(self.peak_db), self.state)
        self.rms_db, self.peak_db, self.state = rms_db, peak_db, state
        if changed:
            self.update()

    @property
    def message(self) -> str:
        """The text the meter shows for its state."""
        return self.MESSAGES[self.state]

    def _x(self, db: float, width: int) -> int:
        frac = (min(max(db, METER_FLOOR_DBFS), 0.0) - METER_FLOOR_DBFS) / -METER_FLOOR_DBFS
        return int(round(frac * width))

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:  # noqa: N802 - Qt's name
        painter = QtGui.QPainter(self)
        bar = self.rect().adjusted(0, 0, 0, -40)
        painter.fillRect(bar, QtGui.QColor(palette.PANEL))
        colour = {"clipping": palette.ALERT, "quiet": palette.WARN}.get(self.state, "#4CAF7A")
        if self.state != "idle":
            filled = QtCore.QRect(bar.left(), bar.top(), self._x(self.rms_db, bar.width()), bar.height())
            painter.fillRect(filled, QtGui.QColor(colour))
            peak_x = bar.left() + self._x(self.peak_db, bar.width())
            painter.fillRect(QtCore.QRect(peak_x - 2, bar.top(), 3, bar.height()), QtGui.QColor(palette.TEXT))
        painter.setPen(QtGui.QColor(palette.TEXT_DIM))
        painter.setFont(font(12))
        metrics = painter.fontMetrics()
        text_top = bar.bottom() + 4
        for db in self.TICKS_DB:
            x = bar.left() + self._x(db, bar.width() - 1)
            painter.drawLine(x, bar.bottom(), x, bar.bottom() + 4)
            label = f"{db} dB" if db == 0 else str(db)
            width = metrics.horizontalAdvance(label)
            left = min(max(x - width // 2, bar.left()), bar.right() - width)  # the end labels stay inside
            painter.drawText(QtCore.QPoint(left, text_top + metrics.ascent()), label)
        text_rect = self.rect().adjusted(0, bar.height() + 4 + metrics.height(), 0, 0)
        painter.setPen(QtGui.QColor(colour if self.state in ("clipping", "quiet") else palette.TEXT_DIM))
        painter.setFont(font(14, bold=self.state in ("clipping", "quiet")))
        if self.state == "idle":
            level = "–"
        elif self.rms_db < METER_FLOOR_DBFS:
            level = f"below {METER_FLOOR_DBFS:.0f} dBFS"
        else:
            level = f"{self.rms_db:.0f} dBFS"
        peak = "   ▏= loudest moment of the last 5 s" if self.state != "idle" else ""
        painter.drawText(text_rect, QtCore.Qt.AlignmentFlag.AlignLeft, f"level {level}   {self.message}{peak}")
        painter.end()
