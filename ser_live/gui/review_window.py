"""The review window: a kept session over its whole length, zoomable, with its audio played from any moment clicked.

It reads a :class:`~ser_live.app.review.SessionRecording` (the session CSV and its WAV) and draws the live window's
timeline from it, whole (one :class:`~ser_live.gui.timeline.Timeline`, drawn the one way both windows draw it):
the probability of every emotion with grey bands where nobody spoke, and the audio's envelope under it on the same
time axis. Scroll to zoom, drag to pan; click a moment to hear the audio from there (a cursor follows playback).
The timeline and summary export as PNG, SVG or PDF.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6 import QtCore, QtGui, QtWidgets

from ..app import review as session_review
from ..errors import SerLiveError
from . import palette
from .plots import envelope, font, style_plot
from .timeline import Timeline, TimelineCurves

__all__ = ["ReviewWindow", "EXPORT_SUFFIXES", "CURSOR_INTERVAL_MS"]

#: What the export buttons write, by file ending.
EXPORT_SUFFIXES = (".png", ".svg", ".pdf")
#: The playback cursor moves at this period while the audio plays.
CURSOR_INTERVAL_MS = 40
#: Columns of the audio envelope over the whole session (enough for a wide screen).
ENVELOPE_COLUMNS = 4000


class ReviewWindow(QtWidgets.QMainWindow):
    """A kept session, whole: timeline, audio, summary per emotion, playback from a clicked moment, export.

    Parameters
    ----------
    recording : SessionRecording
        From :func:`ser_live.app.review.load_session`; its problems are shown in a banner.
    player_factory : callable, optional
        Makes the audio player from ``(samples, sample_rate_hz)``; :class:`ser_live.audio.playback.AudioPlayer` by
        default (tests pass a fake one).
    """

    def __init__(self, recording: session_review.SessionRecording, *, player_factory=None) -> None:
        super().__init__()
        self.recording = recording
        self.setWindowTitle(f"ser-live — review {recording.path.name}")
        self._player_factory = player_factory
        self.player = None
        self.audio, self.audio_rate_hz = self._read_audio()
        central = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(central)
        layout.addWidget(self._header())
        self.banner = QtWidgets.QLabel("\n".join(recording.problems))
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet(f"background:{palette.WARN}; color:#000; padding:6px; font-size:14px;")
        self.banner.setVisible(bool(recording.problems))
        layout.addWidget(self.banner)
        layout.addLayout(self._controls())
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setBackground(palette.BACKGROUND)
        layout.addWidget(self.plots, stretch=1)
        self.timeline = self.plots.addPlot(row=0, col=0)
        self.waveform = self.plots.addPlot(row=1, col=0)
        self.plots.ci.layout.setRowStretchFactor(0, 3)
        self._draw_timeline()
        self._draw_waveform()
        self.setCentralWidget(central)
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(CURSOR_INTERVAL_MS)
        self.timer.timeout.connect(self._follow_playback)
        self.resize(1280, 760)

    # -- what is shown -------------------------------------------------------------------------------------------
    def _read_audio(self) -> tuple[np.ndarray | None, int]:
        path = self.recording.audio_path
        if path is None:
            return None, 0
        import soundfile as sf

        try:
            samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
        except (RuntimeError, OSError) as exc:
            self.recording = _with_problem(self.recording, f"{path}: cannot read the audio ({exc})")
            return None, 0
        return samples[:, 0], int(rate)

    def _header(self) -> QtWidgets.QWidget:
        rec = self.recording
        audio = f"audio {rec.audio_s:.1f} s" if self.audio is not None else "no audio kept"
        title = QtWidgets.QLabel(f"<b>{rec.path.name}</b> &nbsp; {rec.duration_s:.1f} s, {rec.t_s.size} windows, "
                                 f"speech in {int(rec.speech.sum())}; {audio}")
        title.setFont(font(18))
        self.summary = QtWidgets.QLabel(self.summary_html())
        self.summary.setFont(font(15))
        box = QtWidgets.QWidget()
        column = QtWidgets.QVBoxLayout(box)
        column.setContentsMargins(4, 4, 4, 0)
        column.addWidget(title)
        column.addWidget(self.summary)
        return box

    def summary_html(self) -> str:
        """Each emotion's share of the speech windows, most first, in its colour."""
        shares = self.recording.summary()
        if not shares:
            return "no speech in this session"
        classes = self.recording.classes
        return " &nbsp; ".join(f'<span style="color:{palette.colour_of(s.emotion, classes)}">&#9632;</span> '
                               f"{s.emotion} <b>{s.share:.0%}</b>" for s in shares) + " &nbsp; <i>of speech windows</i>"

    def _controls(self) -> QtWidgets.QHBoxLayout:
        row = QtWidgets.QHBoxLayout()
        self.play_button = QtWidgets.QPushButton("Play")
        self.play_button.setEnabled(self.audio is not None)
        self.play_button.setToolTip("play from the cursor (click the timeline to move it)" if self.audio is not None
                                    else "this session's audio was not kept (--record-audio keeps it)")
        self.play_button.clicked.connect(self.toggle_playback)
        row.addWidget(self.play_button)
        self.position_label = QtWidgets.QLabel("cursor 0.0 s")
        row.addWidget(self.position_label)
        row.addStretch(1)
        hint = QtWidgets.QLabel("scroll to zoom, drag to pan, click to play from there")
        hint.setStyleSheet(f"color:{palette.TEXT_DIM}")
        row.addWidget(hint)
        for suffix in EXPORT_SUFFIXES:
            button = QtWidgets.QPushButton(f"Export {suffix[1:].upper()}…")
            button.clicked.connect(lambda _=False, s=suffix: self._ask_export(s))
            row.addWidget(button)
        return row

    def _draw_timeline(self) -> None:
        rec, plot = self.recording, self.timeline
        style_plot(plot)
        plot.setMouseEnabled(x=True, y=False)
        plot.setLabel("left", "probability")
        plot.getAxis("left").setTicks([[(v, f"{v:.0%}") for v in (0, 0.5, 1.0)]])
        plot.setYRange(-0.04, 1.04, padding=0)
        plot.showGrid(x=True, y=True, alpha=0.12)
        self.lines = TimelineCurves(plot, rec.classes, width_px=2)
        self.lines.draw(Timeline.from_recording(rec))
        self.cursor = pg.InfiniteLine(0.0, pen=pg.mkPen("#FFFFFF", width=2))
        plot.addItem(self.cursor)
        plot.setXRange(0.0, max(rec.duration_s, 1.0), padding=0.01)
        plot.scene().sigMouseClicked.connect(self._clicked)

    def _draw_waveform(self) -> None:
        plot = self.waveform
        style_plot(plot, tick_px=12)
        plot.setMouseEnabled(x=True, y=False)
        plot.setXLink(self.timeline)
        plot.setLabel("bottom", "seconds")
        plot.setYRange(-1.0, 1.0, padding=0.05)
        plot.getAxis("left").setTicks([[(-1, "-1"), (0, "0"), (1, "1")]])
        self.audio_cursor = pg.InfiniteLine(0.0, pen=pg.mkPen("#FFFFFF", width=2))
        plot.addItem(self.audio_cursor)
        if self.audio is None:
            text = pg.TextItem("no audio kept with this session (record with --record-audio)", color=palette.TEXT_DIM)
            text.setPos(0.0, 0.3)
            plot.addItem(text)
            return
        env = envelope(self.audio, min(ENVELOPE_COLUMNS, max(1, self.audio.size // 2)))
        x = np.repeat(np.arange(env.size // 2), 2) * (self.audio.size / (env.size // 2)) / self.audio_rate_hz
        plot.plot(x, env, pen=pg.mkPen(palette.TEXT_DIM, width=1))

    # -- playback -------------------------------------------------------------------------------------------------
    def _clicked(self, event) -> None:
        if event.button() != QtCore.Qt.MouseButton.LeftButton:
            return
        point = self.timeline.vb.mapSceneToView(event.scenePos())
        self.seek(float(point.x()), play=self.audio is not None)

    def seek(self, t_s: float, *, play: bool = False) -> None:
        """Put the cursor at ``t_s`` (clipped to the session) and, with ``play``, play the audio from there."""
        end_s = max(self.recording.duration_s, self.recording.audio_s or 0.0)
        t_s = min(max(t_s, 0.0), end_s)
        self._show_cursor(t_s)
        if play:
            self._play_from(t_s)

    def _show_cursor(self, t_s: float) -> None:
        self.cursor.setValue(t_s)
        self.audio_cursor.setValue(t_s)
        self.position_label.setText(f"cursor {t_s:.1f} s")

    def _play_from(self, t_s: float) -> None:
        if self.audio is None:
            return
        try:
            if self.player is None:
                self.player = self._make_player()
            self.player.play(from_s=t_s)
        except SerLiveError as exc:
            self.banner.setText(str(exc))
            self.banner.show()
            return
        self.play_button.setText("Pause")
        self.timer.start()

    def _make_player(self):
        if self._player_factory is not None:
            return self._player_factory(self.audio, self.audio_rate_hz)
        return session_review.audio_player(self.audio, self.audio_rate_hz)

    def toggle_playback(self) -> None:
        """Play from the cursor, or pause where the audio is."""
        if self.player is not None and self.player.playing:
            self.player.stop()
            self.timer.stop()
            self.play_button.setText("Play")
            self._show_cursor(self.player.position_s)
        else:
            self._play_from(float(self.cursor.value()))

    def _follow_playback(self) -> None:
        if self.player is None:
            return
        self._show_cursor(self.player.position_s)
        if not self.player.playing:
            self.timer.stop()
            self.play_button.setText("Play")

    # -- export ---------------------------------------------------------------------------------------------------
    def _ask_export(self, suffix: str) -> None:
        name, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Export the review", str(self.recording.path.with_suffix(suffix)), f"*{suffix}")
        if name:
            try:
                self.export(name)
            except SerLiveError as exc:
                self.banner.setText(str(exc))
                self.banner.show()

    def export(self, path: str | Path) -> Path:
        """Write the timeline, audio and summary as PNG, SVG or PDF (by the file's ending); returns the path."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in EXPORT_SUFFIXES:
            raise SerLiveError(f"cannot export to {path}: give a file ending in .png, .svg or .pdf")
        QtWidgets.QApplication.processEvents()  # lay the views out before they are drawn elsewhere
        self._render(path, suffix)
        if not path.is_file():
            raise SerLiveError(f"cannot export to {path}: nothing was written (is the folder writable?)")
        return path

    def _render(self, path: Path, suffix: str) -> None:
        widget = self.centralWidget()
        if suffix == ".png":
            if not widget.grab().save(str(path), "PNG"):
                raise SerLiveError(f"cannot write {path}")
            return
        if suffix == ".svg":  # Qt's own SVG painter: the whole view as vectors (pyqtgraph's exporter fails on fills)
            from PyQt6.QtSvg import QSvgGenerator

            device = QSvgGenerator()
            device.setFileName(str(path))
            device.setSize(widget.size())
            device.setViewBox(QtCore.QRect(0, 0, widget.width(), widget.height()))
            device.setTitle(f"ser-live review of {self.recording.path.name}")
        else:
            device = QtGui.QPdfWriter(str(path))
            device.setPageSize(QtGui.QPageSize(QtCore.QSizeF(widget.width(), widget.height()),
                                               QtGui.QPageSize.Unit.Point))
            device.setResolution(72)
        painter = QtGui.QPainter(device)
        widget.render(painter)
        painter.end()

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 - Qt's name
        self.timer.stop()
        if self.player is not None:
            self.player.close()
        super().closeEvent(event)


def _with_problem(recording: session_review.SessionRecording, problem: str) -> session_review.SessionRecording:
    import dataclasses

    return dataclasses.replace(recording, audio_path=None, audio_s=None, problems=(*recording.problems, problem))
