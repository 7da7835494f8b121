"""The monitor window: lays out the views and controls, drives the runner, and shows every fault as a message.

A :class:`QtCore.QTimer` (at most 30 fps) drains the runner's queue, updates the state and redraws
the views from it; the analysis itself never touches a widget.
"""

from __future__ import annotations

import collections
import enum
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PyQt6 import QtCore, QtGui, QtWidgets

from ..app.session import HOP_S, SMOOTHING, WINDOW_S, MonitorSettings, Session
from ..app.sources import AUDIO_EXTENSIONS
from ..errors import DeviceError, SerLiveError
from ..results import EMOTIONS, Prediction, StatusEvent, StatusKind
from . import palette
from .modelinfo import describe_model
from .plots import WAVEFORM_S, EmotionHeadline, LevelMeter, ProbabilityBars, WaveformPlot, input_level
from .recording import SessionLog, interrupted_sessions
from .runner import MonitorRunner, RunState
from .timeline import HISTORY_S, HistoryPlot, Timeline

__all__ = ["MainWindow", "apply_theme", "FRAME_INTERVAL_MS", "IDLE_INTERVAL_MS", "HIDDEN_INTERVAL_MS", "icon_path"]

#: Redraw period while audio moves and someone may be speaking: 20 frames a second, a budget a person sees as
#: smooth scrolling (faster only costs CPU), not as fast as possible.
FRAME_INTERVAL_MS = 50
#: The timer's period when nothing moves (paused, finished, stopped, no model) or nobody has spoken for
#: SILENT_AFTER_S: news is still taken and shown within a quarter of a second, the views barely redraw.
IDLE_INTERVAL_MS = 250
#: Minimised or hidden: nothing is drawn; news is still taken (the session's record goes on).
HIDDEN_INTERVAL_MS = 500
#: No speech window for this long counts as silence: the waveform drops to the idle pace.
SILENT_AFTER_S = 5.0
#: During such a silence the rows that keep coming are shown at most this often: they change no emotion, only the
#: row count and the history's time axis (a speech row is shown at once).
QUIET_NEWS_EVERY_S = 2.0
#: Height of the waveform strip: enough for its -1/0/1 labels and the time axis, no more.
WAVEFORM_HEIGHT_PX = 120


class DisplayState(str, enum.Enum):
    """The one state the headline, the Start button, the banner and the status bar all show (its value is the
    status bar's word for it)."""

    NO_MODEL = "no model"
    STOPPED = "stopped"
    LISTENING = "listening"
    SPEECH = "speech"
    CALIBRATING = "calibrating"
    PAUSED = "paused"
    FINISHED = "finished"
    DEVICE_LOST = "device lost"
    NO_AUDIO = "no audio"  # running, but nothing arrives (the engine said StatusKind.STALLED)

    def __str__(self) -> str:
        return self.value

    __format__ = str.__format__


#: What the headline shows in each state of the window that is not a result: (title, note).
STATE_HEADLINES: dict[DisplayState, tuple[str, str]] = {
    DisplayState.NO_MODEL: ("no model", "see the message above"),
    DisplayState.STOPPED: ("stopped", "press Start (or Space) to listen"),
    DisplayState.LISTENING: ("listening…", "no speech in the last window"),
    DisplayState.CALIBRATING: ("calibrating…", "read the passage above in your everyday voice"),
    DisplayState.PAUSED: ("paused", "press Resume (or Space) to continue"),
    DisplayState.FINISHED: ("finished", "the file has ended; press Start to play it again"),
    DisplayState.DEVICE_LOST: ("device lost", "waiting for the microphone to come back"),
    DisplayState.NO_AUDIO: ("no audio", "no audio is arriving from the input"),
}
#: Seconds of speech the window's "Calibrate…" asks for (what the evaluation's neutral enrolment read).
CALIBRATION_S = 20.0
#: How long a passing notice (device back, calibration done) stays before the banner leaves.
BRIEF_MESSAGE_MS = 5000
#: The 60 s history is redrawn at this fraction of the frame rate (it moves slowly).
HISTORY_EVERY_N_FRAMES = 6
RESOURCES = Path(__file__).resolve().parent / "resources"


def icon_path() -> Path:
    """The application icon (SVG)."""
    return RESOURCES / "ser-live.svg"


def apply_theme(app: QtWidgets.QApplication) -> None:
    """Dark Fusion theme in the palette's colours (bright emotion colours read best on dark)."""
    app.setStyle("Fusion")
    pal = QtGui.QPalette()
    role = QtGui.QPalette.ColorRole
    for r, colour in (
        (role.Window, palette.BACKGROUND), (role.WindowText, palette.TEXT), (role.Base, palette.PANEL),
        (role.AlternateBase, palette.BACKGROUND), (role.Text, palette.TEXT), (role.Button, palette.PANEL),
        (role.ButtonText, palette.TEXT), (role.ToolTipBase, palette.PANEL), (role.ToolTipText, palette.TEXT),
        (role.Highlight, "#0072B2"), (role.HighlightedText, "#FFFFFF"), (role.PlaceholderText, palette.TEXT_DIM),
    ):
        pal.setColor(r, QtGui.QColor(colour))
    pal.setColor(QtGui.QPalette.ColorGroup.Disabled, role.ButtonText, QtGui.QColor("#5F6368"))
    pal.setColor(QtGui.QPalette.ColorGroup.Disabled, role.Text, QtGui.QColor("#5F6368"))
    app.setPalette(pal)


class MessageBanner(QtWidgets.QLabel):
    """One-line (wrapping) message strip above the views: faults and notices, never a modal dialog."""

    STYLES = {
        "info": ("#0B3B5C", palette.TEXT),
        "warning": ("#5C3B00", "#FFE0A3"),
        "error": ("#5C1E00", "#FFD2BF"),
    }

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.level = ""
        self.tag: object = None
        font = self.font()
        font.setPixelSize(16)
        self.setFont(font)
        self._expiry = QtCore.QTimer(self)
        self._expiry.setSingleShot(True)
        self._expiry.timeout.connect(self.clear_message)
        self.hide()

    def show_message(self, text: str, level: str = "info", *, timeout_ms: int | None = None,
                     tag: object = None) -> None:
        """Show ``text`` with the colours of ``level`` (info, warning, error).

        With ``timeout_ms`` the message is news that passes (a device came back): the banner leaves
        after that long unless another message replaced it. ``tag`` says what the message is about
        (e.g. a :class:`~ser_live.results.StatusKind`), so that it can be taken down when that no longer holds.
        """
        background, foreground = self.STYLES[level]
        self.level = level
        self.tag = tag
        self.setStyleSheet(f"background: {background}; color: {foreground}; padding: 8px; border-radius: 4px;")
        self.setText(text)
        self.show()
        if timeout_ms is None:
            self._expiry.stop()
        else:
            self._expiry.start(timeout_ms)

    def clear_message(self) -> None:
        """Hide the banner."""
        self._expiry.stop()
        self.level = ""
        self.tag = None
        self.setText("")
        self.hide()


class MainWindow(QtWidgets.QMainWindow):
    """The ser-live monitor window.

    Parameters
    ----------
    session : Session or None
        The application session (:func:`ser_live.app.session.open_session`): model, settings, learnt voice,
        calibration and ``--record`` file. None when the model could not be loaded; the window then
        opens with ``model_error`` shown and nothing to start.
    model_error : str, optional
        Why there is no session.
    input_path : str, optional
        The audio file the session analyses (``--input``): shown as the source from the start.
    device : int or str, optional
        Input device to preselect, by the console's rules (:func:`ser_live.audio.capture.choose_input_device`);
        the default input otherwise.
    realtime : bool
        Play files at real-time pace (the GUI's default); False runs them as fast as possible.
    sessions_dir : path-like, optional
        Folder for autosave files (the user data folder when omitted).
    """

    def __init__(
        self,
        session: Session | None,
        *,
        model_error: str | None = None,
        input_path: str | None = None,
        device: int | str | None = None,
        realtime: bool = True,
        sessions_dir: str | Path | None = None,
    ) -> None:
        super().__init__()
        self._closed = False
        self.runner: MonitorRunner | None = None
        self.app_session = session
        self.model = model = session.model if session is not None else None
        self.realtime = realtime
        self.classes = model.classes if model is not None else EMOTIONS
        self.setWindowTitle("ser-live: speech emotion monitor")
        if icon_path().is_file():
            self.setWindowIcon(QtGui.QIcon(str(icon_path())))
        self.session = SessionLog(self.classes, directory=sessions_dir,
                                  recorder=session.recorder if session is not None else None)
        settings = session.settings if session is not None else None
        if session is not None:
            self.runner = MonitorRunner(session, self.session)
        self.file_path: str | None = input_path
        self.source_kind = "file" if input_path else "microphone"
        self.latest: Prediction | None = None
        self.recent: collections.deque[Prediction] = collections.deque()
        self._frame = 0
        self._reviews: list[QtWidgets.QWidget] = []  # open review windows (kept alive while shown)
        self._shown_monitor = None
        self._shown_written = -1
        self._audio_end_s = 0.0
        self._stalled = False  # the engine reported no audio (StatusKind.STALLED) and no audio came since
        self._device_lost = False
        self._shown_state = ""
        self._notice = ""  # the latest passing news for the status bar ("input device back: ...")
        self._notice_until = 0.0
        self._history_dirty = False
        self._news_shown_at = -math.inf  # when rows were last shown (see _news_due)
        self._speech_seen_at = time.monotonic()  # when the last speech window arrived (silence slows the redraw)
        self._build(settings, device)
        self.adapt_check.toggled.connect(self._adapt_toggled)
        self.forget_button.clicked.connect(self._forget_voice)
        self.calibrate_button.clicked.connect(self._calibrate)
        self._shortcuts()
        self._report_startup(model_error)
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(FRAME_INTERVAL_MS)
        self.timer.timeout.connect(self.tick)
        self.timer.start()
        self._refresh_controls()

    # -- layout --------------------------------------------------------------------------
    def _build(self, settings: MonitorSettings | None, device: int | str | None) -> None:
        self.banner = MessageBanner()
        self.headline = EmotionHeadline()
        self.bars = ProbabilityBars(self.classes)
        self.history = HistoryPlot(self.classes)
        self.waveform = WaveformPlot()
        self.meter = LevelMeter()

        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.headline, 3)
        top.addWidget(self.bars, 2)
        wave_box = QtWidgets.QVBoxLayout()
        wave_box.setSpacing(2)
        wave_box.addWidget(self._caption(f"input, last {WAVEFORM_S:g} s"))
        wave_box.addWidget(self.waveform)
        self.waveform.setFixedHeight(WAVEFORM_HEIGHT_PX)
        wave_box.addWidget(self.meter)
        main = QtWidgets.QVBoxLayout()
        main.addWidget(self.banner)
        main.addLayout(top, 4)
        # One label for title and legend: full width, so it wraps only on a small screen.
        self.history_title = history_title = self._caption(self._history_caption())
        history_title.setWordWrap(True)
        main.addWidget(history_title)
        main.addWidget(self.history, 6)
        main.addLayout(wave_box, 0)

        side = QtWidgets.QVBoxLayout()
        side.addWidget(self._source_box(device))
        side.addWidget(self._settings_box(settings))
        side.addWidget(self._model_box())
        side.addWidget(self._session_box())
        side.addStretch(1)
        panel = QtWidgets.QWidget()
        panel.setLayout(side)
        # The controls scroll on a small screen instead of pushing the window past it.
        self.controls_scroll = scroll = QtWidgets.QScrollArea()
        scroll.setWidget(panel)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        scroll.setFixedWidth(320 + scroll.verticalScrollBar().sizeHint().width())
        panel.setFixedWidth(320)

        central = QtWidgets.QWidget()
        layout = QtWidgets.QHBoxLayout(central)
        layout.addLayout(main, 1)
        layout.addWidget(scroll)
        self.setCentralWidget(central)
        self.status = QtWidgets.QLabel("")
        self.statusBar().addWidget(self.status, 1)
        self.resize(1280, 800)

    def _history_caption(self) -> str:
        what = "emotion" if set(self.classes) <= set(EMOTIONS) else "class"  # a model of one's own classes
        return (f"{what} probabilities, last {self.history.span_s:.0f} s&nbsp;&nbsp;&nbsp;&nbsp; "
                f"{self.history.legend_html()}")

    @staticmethod
    def _caption(text: str) -> QtWidgets.QLabel:
        label = QtWidgets.QLabel(text)
        label.setStyleSheet(f"color: {palette.TEXT_DIM}; font-size: 14px;")
        return label

    @staticmethod
    def _button(text: str, slot) -> QtWidgets.QPushButton:
        button = QtWidgets.QPushButton(text)
        # Buttons never take keyboard focus, so Space always means start/pause.
        button.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        button.setMinimumHeight(34)
        button.clicked.connect(slot)
        return button

    def _source_box(self, device: int | str | None) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox("Input")
        self.device_combo = QtWidgets.QComboBox()
        self.device_combo.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.device_combo.activated.connect(self._device_chosen)
        self.rescan_button = self._button("Rescan", self.rescan_devices)
        self.start_button = self._button("Start", self.toggle_running)
        self.start_button.setMinimumHeight(44)
        self.open_button = self._button("Open audio file…", lambda: self.open_file())
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.device_combo, 1)
        row.addWidget(self.rescan_button)
        self.source_label = QtWidgets.QLabel("")
        self.source_label.setWordWrap(True)
        self.source_label.setStyleSheet(f"color: {palette.TEXT_DIM}")
        layout = QtWidgets.QVBoxLayout(box)
        layout.addWidget(QtWidgets.QLabel("Microphone"))
        layout.addLayout(row)
        layout.addWidget(self.open_button)
        layout.addWidget(self.start_button)
        layout.addWidget(self.source_label)
        self._wanted_device = device
        self.rescan_devices()
        return box

    def _spin(self, lo: float, hi: float, step: float, value: float, suffix: str) -> QtWidgets.QDoubleSpinBox:
        spin = QtWidgets.QDoubleSpinBox()
        spin.setRange(lo, hi)
        spin.setSingleStep(step)
        spin.setDecimals(2)
        spin.setValue(value)
        spin.setSuffix(suffix)
        spin.setKeyboardTracking(False)
        spin.setMaximumWidth(110)  # a number and its unit, not the panel's whole width
        # Focus only when clicked, and given back after editing, so Space stays start/pause.
        spin.setFocusPolicy(QtCore.Qt.FocusPolicy.ClickFocus)
        spin.editingFinished.connect(spin.clearFocus)
        spin.valueChanged.connect(self._settings_changed)
        return spin

    def _settings_box(self, settings: MonitorSettings | None) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox("Analysis")
        s = settings or MonitorSettings(2.0, 0.5, 0.0)
        self.window_spin = self._spin(WINDOW_S.low, WINDOW_S.high, 0.25, s.window_s, " s")
        self.hop_spin = self._spin(HOP_S.low, WINDOW_S.high, 0.05, s.hop_s, " s")  # never above the window anyway
        # The largest value the spin box can show below the excluded 1 (two decimals): 0.99, as --smooth takes.
        self.smooth_spin = self._spin(SMOOTHING.low, SMOOTHING.high - 0.01, 0.05, s.smoothing, "")
        self.smooth_spin.setToolTip("weight of the past in an exponential average of the probabilities; 0 = off")
        self.settings_note = QtWidgets.QLabel("")
        self.settings_note.setWordWrap(True)
        self.settings_note.setStyleSheet(f"color: {palette.TEXT_DIM}")
        form = QtWidgets.QFormLayout(box)
        form.setVerticalSpacing(4)
        spins = QtWidgets.QGridLayout()
        for column, (name, spin) in enumerate((("Window", self.window_spin), ("Hop", self.hop_spin))):
            spins.addWidget(QtWidgets.QLabel(name), 0, 2 * column)
            spins.addWidget(spin, 0, 2 * column + 1)
        spins.addWidget(QtWidgets.QLabel("Smoothing"), 1, 0, 1, 2)
        spins.addWidget(self.smooth_spin, 1, 3)
        spins.setColumnMinimumWidth(2, 44)  # "Hop" stands clear of the window's box
        form.addRow(spins)
        form.addRow(self.settings_note)
        # Speaker adaptation: how much of this voice has been learnt, and a way to start over.
        self.adapt_check = QtWidgets.QCheckBox("Adapt to my voice")
        self.adapt_check.setToolTip("learn your neutral voice from the windows the model already hears as neutral; "
                                    "assumes you speak neutrally some of the time (off by default)")
        self.calibrate_button = QtWidgets.QPushButton("Calibrate…")
        self.calibrate_button.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.calibrate_button.setToolTip(f"read a passage in your everyday voice for {CALIBRATION_S:g} s of speech; "
                                         "that neutral voice is then the reference")
        self.adapt_check.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.forget_button = QtWidgets.QPushButton("Forget voice")
        self.forget_button.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.forget_button.setToolTip("start learning again, e.g. when another person speaks")
        self.adapt_label = QtWidgets.QLabel("")
        self.adapt_label.setWordWrap(True)
        self.adapt_label.setStyleSheet(f"color: {palette.TEXT_DIM}")
        form.addRow(self.adapt_check)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.calibrate_button)
        row.addWidget(self.forget_button)
        form.addRow(row)
        form.addRow(self.adapt_label)
        return box

    def _model_box(self) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox("Model")
        self.model_label = QtWidgets.QLabel()
        self.model_label.setWordWrap(True)
        self.model_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        if self.model is not None:
            self.model_info = describe_model(self.model)
            self.model_label.setText("\n".join(self.model_info.summary_lines()))
            self.model_label.setToolTip("\n".join(self.model_info.lines()))
        else:
            self.model_info = None
            self.model_label.setText("No model loaded.")
        QtWidgets.QVBoxLayout(box).addWidget(self.model_label)
        return box

    def _session_box(self) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox("Session")
        self.save_button = self._button("Save session…", lambda: self.save_session())
        self.shot_button = self._button("Save screenshot…", lambda: self.save_screenshot())
        self.review_button = self._button("Open session…", lambda: self.open_session())
        self.review_button.setToolTip("review a kept session whole: its timeline, summary and audio")
        self.keep_audio = QtWidgets.QCheckBox("Keep audio")
        self.keep_audio.setToolTip("also keep the audio heard, as a WAV beside the session file (16-bit, 16 kHz: "
                                   "115 MB per hour); never kept unless ticked. Choose before the first Start.")
        recorder = self.app_session.audio_recorder if self.app_session is not None else None
        self.keep_audio.setChecked(recorder is not None)
        self.keep_audio.setEnabled(recorder is None and self.app_session is not None)
        self.keep_audio.toggled.connect(self.set_keep_audio)
        self.session_label = QtWidgets.QLabel("")
        self.session_label.setWordWrap(True)
        self.session_label.setStyleSheet(f"color: {palette.TEXT_DIM}")
        self.shot_button.setText("Screenshot…")
        layout = QtWidgets.QVBoxLayout(box)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.shot_button)
        layout.addLayout(buttons)
        more = QtWidgets.QHBoxLayout()
        more.addWidget(self.keep_audio)
        more.addStretch(1)
        more.addWidget(self.review_button)
        layout.addLayout(more)
        layout.addWidget(self.session_label)
        keys = QtWidgets.QLabel("Space start/pause · Ctrl+S save · Ctrl+Q quit")
        keys.setStyleSheet(f"color: {palette.TEXT_DIM}; font-size: 12px;")
        layout.addWidget(keys)
        return box

    def _shortcuts(self) -> None:
        for keys, slot in (
            (QtGui.QKeySequence(QtCore.Qt.Key.Key_Space), self.toggle_running),
            (QtGui.QKeySequence("Ctrl+S"), lambda: self.save_session()),
            (QtGui.QKeySequence("Ctrl+Q"), self.close),
        ):
            shortcut = QtGui.QShortcut(keys, self)
            # Ctrl+Q and Ctrl+S work wherever the focus is (a plot, a box being edited); Space is the
            # window's only while no text field wants it.
            space = keys == QtGui.QKeySequence(QtCore.Qt.Key.Key_Space)
            shortcut.setContext(QtCore.Qt.ShortcutContext.WindowShortcut if space
                                else QtCore.Qt.ShortcutContext.ApplicationShortcut)
            shortcut.activated.connect(slot)

    def _report_startup(self, model_error: str | None) -> None:
        recovered = interrupted_sessions(self.session.autosave_path.parent) if self.session.autosave_path else []
        if model_error:
            self.banner.show_message(f"No model: {model_error}", "error")
            self.headline.show_prediction(None, state=STATE_HEADLINES[DisplayState.NO_MODEL][0],
                                          note=STATE_HEADLINES[DisplayState.NO_MODEL][1])
        elif self.session.autosave_error:
            self.banner.show_message(f"The session is kept in memory only: {self.session.autosave_error}", "warning")
        elif recovered:
            names = ", ".join(str(p) for p in recovered[-3:])
            self.banner.show_message(
                f"Recovered {len(recovered)} session(s) interrupted by a crash, saved up to their last hop: {names}",
                "info",
            )
        for path in recovered:  # reported once
            path.with_name(path.name + ".open").unlink(missing_ok=True)

    # -- devices and sources -------------------------------------------------------------
    def rescan_devices(self) -> None:
        """Fill the device picker from PyAudio, preselecting the wanted or the default input."""
        from ..app.sources import choose_input_device, list_input_devices

        self.device_combo.clear()
        try:
            devices = list_input_devices()
        except DeviceError as exc:
            devices = []
            self.banner.show_message(f"No microphone: {exc}", "warning")
        if not devices:
            self.device_combo.addItem("no microphone found", None)
            self.device_combo.setEnabled(False)
            if not self.banner.text():
                self.banner.show_message(
                    "No microphone found: plug one in and press Rescan, or open an audio file.", "warning"
                )
            return
        self.device_combo.setEnabled(True)
        for i, d in enumerate(devices):
            self.device_combo.addItem(f"{d.name}" + ("  (default)" if d.is_default else ""), d.index)
            tip = f"{d.name} [{d.host_api}], {d.channels} ch"
            self.device_combo.setItemData(i, tip, QtCore.Qt.ItemDataRole.ToolTipRole)
        try:  # the console's rules: exact name, index, unique fragment; the default without a wish
            chosen = choose_input_device(devices, self._wanted_device)
        except DeviceError as exc:
            # Nothing is preselected on a guess: the user picks, as the console would ask them to.
            self.device_combo.setCurrentIndex(-1)
            self.banner.show_message(f"--device: {exc}", "error")
            return
        self.device_combo.setCurrentIndex([d.index for d in devices].index(chosen.index))

    def selected_device(self) -> int | None:
        """PyAudio index of the device in the picker (None: no device)."""
        return self.device_combo.currentData()

    def _device_chosen(self, _index: int) -> None:
        self.source_kind = "microphone"
        self._wanted_device = self.selected_device()
        if self.runner is not None and self.runner.state in (RunState.RUNNING, RunState.PAUSED):
            self.start_microphone()
        self._refresh_controls()

    def start_microphone(self) -> bool:
        """Listen to the device in the picker; a failure is shown, never raised."""
        if self.runner is None:
            return False
        device = self.selected_device()
        if device is None:
            self.banner.show_message("No microphone to listen to: plug one in and press Rescan, or open an audio file.",
                                     "warning")
            return False
        self.source_kind = "microphone"
        return self._start(lambda: self.runner.start_microphone(device),
                           "Cannot listen: {}. Pick another device or open an audio file.")

    def _start(self, start, failure: str) -> bool:
        """Run ``start``; a SerLiveError becomes the banner message ``failure`` (formatted with it)."""
        self._device_lost = self._stalled = False
        self._speech_seen_at = time.monotonic()  # a new run gets the full frame rate until it proves silent
        self.latest = None  # the last result of another run is not what this one hears
        try:
            start()
        except SerLiveError as exc:
            self.banner.show_message(failure.format(exc), "error")
            self._refresh_controls()
            return False
        if self.banner.level in ("warning", "error"):  # the fault it reported is over
            self.banner.clear_message()
        self.keep_audio.setEnabled(False)  # the audio file follows the session from its first start
        self._refresh_controls()
        return True

    def open_file(self, path: str | None = None) -> bool:
        """Play an audio file through the monitor (asks for it when ``path`` is None); faults are shown."""
        if path is None:
            patterns = " ".join(f"*{ext}" for ext in sorted(AUDIO_EXTENSIONS))
            path, _ = QtWidgets.QFileDialog.getOpenFileName(
                self, "Open audio file", str(Path.home()), f"Audio ({patterns});;All files (*)"
            )
            if not path:
                return False
        self.file_path = str(path)
        self.source_kind = "file"
        if self.runner is None:
            self.banner.show_message("No model loaded, so the file cannot be analysed.", "error")
            return False
        return self._start(lambda: self.runner.start_file(self.file_path, realtime=self.realtime),
                           "Cannot play the file: {}")

    def toggle_running(self) -> None:
        """Space / the Start button: start, pause or resume the current source."""
        if self.runner is None:
            return
        state = self.runner.state
        if state == RunState.RUNNING:
            self.runner.pause()
            self._device_lost = self._stalled = False  # the microphone is released: nothing is lost while paused
        elif state == RunState.PAUSED:
            try:
                self.runner.resume()
            except DeviceError as exc:
                self.banner.show_message(f"Cannot resume: {exc}. Pick another device.", "error")
        elif self.source_kind == "file" and self.file_path:
            self.open_file(self.file_path)
        else:
            self.start_microphone()
        self._refresh_controls()

    def _settings_changed(self, _value: float) -> None:
        self.hop_spin.setMaximum(self.window_spin.value())
        if self.runner is None:
            return
        try:
            settings = MonitorSettings(self.window_spin.value(), self.hop_spin.value(), self.smooth_spin.value())
        except SerLiveError as exc:  # e.g. a hop longer than the window, while both are being edited
            self.settings_note.setText(str(exc))
            return
        file_running = self.runner.source is not None and self.runner.source[0] == "file" and \
            self.runner.state in (RunState.RUNNING, RunState.PAUSED)
        try:
            if file_running:
                self.runner.settings = settings  # a file keeps its settings to the end
                self.settings_note.setText("applies when the file is started again")
            else:
                self.runner.change_settings(settings)
                self.settings_note.setText("")
        except DeviceError as exc:
            self.banner.show_message(f"Cannot restart listening: {exc}", "error")
        self._refresh_controls()

    # -- session -------------------------------------------------------------------------
    def save_session(self, path: str | None = None) -> int | None:
        """Write the session's rows to a CSV (asks where when ``path`` is None); returns the row count."""
        if path is None:
            default = Path.home() / "ser-live-session.csv"
            path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save session", str(default), "CSV (*.csv)")
            if not path:
                return None
        try:
            n = self.session.save(path)
        except OSError as exc:
            self.banner.show_message(f"Cannot save the session to {path}: {exc.strerror or exc}", "error")
            return None
        self._note(f"saved {n} rows to {path}")
        self._refresh_controls()
        return n

    def set_keep_audio(self, keep: bool) -> None:
        """Keep (or not) the audio of this session beside its session file, from the first Start on."""
        from ..app.outputs import AudioRecorder, audio_path_beside

        session = self.app_session
        if session is None:
            return
        if not keep and session.audio_recorder is not None:
            session.audio_recorder.close()
            session.audio_recorder.path.unlink(missing_ok=True)  # nothing was heard yet: the box locks at Start
            session.audio_recorder = None
        elif keep and session.audio_recorder is None:
            csv_path = session.recorder.path if session.recorder is not None else self.session.autosave_path
            if csv_path is None:
                self.banner.show_message("Cannot keep the audio: the session is not being saved to a file.", "error")
                self.keep_audio.setChecked(False)
                return
            try:
                session.audio_recorder = AudioRecorder(audio_path_beside(csv_path), self.model.sample_rate_hz)
            except OSError as exc:
                self.banner.show_message(f"Cannot keep the audio: {exc}", "error")
                self.keep_audio.setChecked(False)
                return
            self._note(f"keeping the audio in {session.audio_recorder.path}")

    def open_session(self, path: str | None = None) -> QtWidgets.QWidget | None:
        """Open a kept session in a review window beside this one (asks which when ``path`` is None)."""
        from ..app.review import load_session
        from .review_window import ReviewWindow

        if path is None:
            path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open session", str(Path.home()), "CSV (*.csv)")
            if not path:
                return None
        try:
            review = ReviewWindow(load_session(path))
        except SerLiveError as exc:
            self.banner.show_message(str(exc), "error")
            return None
        self._reviews = [w for w in self._reviews if w.isVisible()] + [review]
        review.show()
        return review

    def save_screenshot(self, path: str | None = None) -> bool:
        """Save the window as a PNG (asks where when ``path`` is None)."""
        if path is None:
            default = Path.home() / "ser-live.png"
            path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save screenshot", str(default), "PNG image (*.png)")
            if not path:
                return False
        ok = self.grab().save(str(path), "PNG")
        if ok:
            self._note(f"screenshot saved to {path}")
            self._refresh_controls()
        else:
            self.banner.show_message(f"Cannot save the screenshot to {path}", "error")
        return ok

    # -- the frame timer -----------------------------------------------------------------
    def tick(self) -> None:
        """Take what the analysis reported since the last frame and redraw (the QTimer's slot)."""
        self._frame += 1
        if self.runner is None:
            return
        self._take_events()
        if self._notice and time.monotonic() > self._notice_until:
            self._notice = ""
            self._shown_state = ""  # redraw the status bar without it
        interval_ms = self.frame_interval_ms()
        news = self._history_dirty and self._news_due(interval_ms)
        if news or self.display_state() != self._shown_state:
            self._refresh_controls()
        if self.runner.monitor is not None and interval_ms != HIDDEN_INTERVAL_MS:
            self._draw_frame(self.runner.monitor, news)
        if self.timer.interval() != interval_ms:
            self.timer.setInterval(interval_ms)

    def frame_interval_ms(self) -> int:
        """The redraw budget now: the frame rate while audio moves and speech may come, slower when nothing moves
        or nobody has spoken for a while, and no drawing at all while the window is minimised or hidden."""
        if self.out_of_sight():
            return HIDDEN_INTERVAL_MS
        if self.runner is None or self.runner.state != RunState.RUNNING or self._silent() or self._device_lost:
            return IDLE_INTERVAL_MS
        return FRAME_INTERVAL_MS

    def _silent(self) -> bool:
        """Listening, and nobody has spoken for :data:`SILENT_AFTER_S`."""
        listening = self.runner is not None and self.runner.state == RunState.RUNNING
        return listening and time.monotonic() - self._speech_seen_at > SILENT_AFTER_S

    def _news_due(self, interval_ms: int) -> bool:
        """Whether the rows taken since the last redraw are shown now: at once, but not while out of sight (they
        are on the next frame in sight) and at most every :data:`QUIET_NEWS_EVERY_S` while nobody speaks."""
        if interval_ms == HIDDEN_INTERVAL_MS:
            return False
        return not self._silent() or time.monotonic() >= self._news_shown_at + QUIET_NEWS_EVERY_S

    def out_of_sight(self) -> bool:
        """Minimised, hidden, or unmapped by the window system (iconified, on another desktop): a frame drawn now
        would show nothing (Qt reports the window not exposed even where no window manager says "minimised")."""
        handle = self.windowHandle()
        return self.isMinimized() or not self.isVisible() or handle is None or not handle.isExposed()

    def _draw_frame(self, monitor, news: bool) -> None:
        """The audio views when new audio came, an idle meter when none can, the history with ``news`` or at its
        own pace."""
        snap = monitor.snapshot()
        advanced = self._draw_audio(monitor, snap)
        if self._stalled or self._device_lost or self.runner.state != RunState.RUNNING:
            self.meter.set_level(self.meter.rms_db, self.meter.peak_db, "idle")
        if news or (advanced and self._frame % HISTORY_EVERY_N_FRAMES == 0):
            self._draw_history(snap)

    def _take_events(self) -> None:
        """The predictions and status events the runner queued since the last frame."""
        for event in self.runner.drain():
            if isinstance(event.item, Prediction):
                self.latest = event.item
                self.recent.append(event.item)
                self._history_dirty = True
                if event.item.speech:
                    self._speech_seen_at = time.monotonic()
            else:
                self.show_status(event.item)

    def _draw_audio(self, monitor, snap) -> bool:
        """Waveform and level meter, only when new audio arrived; returns whether it did."""
        advanced = monitor is not self._shown_monitor or snap.written_samples != self._shown_written
        if advanced:  # copy and draw the waveform only when new audio arrived
            self._shown_monitor, self._shown_written = monitor, snap.written_samples
            samples, self._audio_end_s = monitor.recent_audio(WAVEFORM_S)
            self.waveform.show_audio(samples, snap.last_window_end_s - snap.window_s - self._audio_end_s,
                                     snap.last_window_end_s - self._audio_end_s)
            self.meter.set_level(*input_level(samples, snap.sample_rate_hz))
        return advanced

    def _draw_history(self, snap) -> None:
        """The probabilities of the session's recent rows, over a span that grows with the session."""
        now_s = self._audio_end_s + self.session.time_offset_s
        while self.recent and self.recent[0].t_s < now_s - HISTORY_S - 2 * snap.hop_s:
            self.recent.popleft()
        # The span grows with the session, so that its first seconds fill the plot.
        first_s = self.session.first_t_s()
        self.history.set_span(now_s - first_s + snap.window_s if first_s is not None else 0.0)
        caption = self._history_caption()
        if caption != self.history_title.text():  # a new layout only when the span's seconds change
            self.history_title.setText(caption)
        self.history.show_timeline(Timeline.from_predictions(self.recent, self.classes, hop_s=snap.hop_s), now_s)
        self._history_dirty = False
        self._news_shown_at = time.monotonic()

    def show_status(self, event: StatusEvent) -> None:
        """Take a status event of the session: the state, banner and status bar say what holds now."""
        self._STATUS_VIEWS.get(event.kind, MainWindow._show_news)(self, event)
        self._refresh_controls()

    def _show_stalled(self, event: StatusEvent) -> None:
        self._stalled = True  # without audio the last result is not "now": the state says so

    def _show_device_lost(self, event: StatusEvent) -> None:
        self._device_lost, self._notice = True, ""  # earlier news ("device back") no longer holds
        self.banner.show_message(
            f"{event.message}. The session so far is kept and continues by itself when the device "
            "comes back; or pick another device in the list, or press Pause.", "warning", tag=StatusKind.DEVICE_LOST)

    def _show_device_back(self, event: StatusEvent) -> None:
        self._device_lost = self._stalled = False
        self.banner.show_message(event.message, "info", timeout_ms=BRIEF_MESSAGE_MS, tag=StatusKind.DEVICE_BACK)
        self._note(event.message)

    def _show_problem(self, event: StatusEvent) -> None:
        self.banner.show_message(event.message, "error" if event.kind == StatusKind.ANALYSIS_STOPPED else "warning")

    def _show_finished(self, event: StatusEvent) -> None:
        pass  # the state says it: "finished · file NAME"

    def _show_calibrating(self, event: StatusEvent) -> None:
        self.banner.show_message(event.message, "info")

    def _show_dropped(self, event: StatusEvent) -> None:
        """Beside the news it follows (device back), not instead of it."""
        self._note(event.message)
        if self.banner.tag == StatusKind.DEVICE_BACK:
            self.banner.show_message(f"{self.banner.text()}; {event.message}", "warning",
                                     timeout_ms=BRIEF_MESSAGE_MS, tag=StatusKind.DROPPED)
        elif self.banner.tag != StatusKind.DEVICE_LOST:
            self.banner.show_message(event.message, "warning", timeout_ms=BRIEF_MESSAGE_MS, tag=StatusKind.DROPPED)

    def _show_news(self, event: StatusEvent) -> None:
        """Calibrated, a notice: news that passes."""
        self.banner.show_message(event.message, "info", timeout_ms=BRIEF_MESSAGE_MS)
        self._note(event.message)

    #: How each kind of status event is shown (anything else is passing news).
    _STATUS_VIEWS = {
        StatusKind.STALLED: _show_stalled,
        StatusKind.DEVICE_LOST: _show_device_lost,
        StatusKind.DEVICE_STILL_LOST: _show_device_lost,
        StatusKind.DEVICE_BACK: _show_device_back,
        StatusKind.ANALYSIS_STOPPED: _show_problem,
        StatusKind.WARNING: _show_problem,
        StatusKind.FINISHED: _show_finished,
        StatusKind.CALIBRATING: _show_calibrating,
        StatusKind.DROPPED: _show_dropped,
    }

    def _note(self, message: str) -> None:
        """Show passing news in the status bar, beside the state and any news still current, for a few seconds."""
        current = self._notice and time.monotonic() <= self._notice_until
        self._notice = f"{self._notice} · {message}" if current else message
        self._notice_until = time.monotonic() + BRIEF_MESSAGE_MS / 1000

    def display_state(self) -> DisplayState:
        """The one state the headline, the Start button, the banner and the status bar all show."""
        if self.runner is None:
            return DisplayState.NO_MODEL
        state = self.runner.state
        if state == RunState.PAUSED:
            return DisplayState.PAUSED
        if state == RunState.FINISHED:
            return DisplayState.FINISHED
        return self._running_state() if state == RunState.RUNNING else DisplayState.STOPPED

    def _running_state(self) -> DisplayState:
        """What a running analysis is doing, as :meth:`display_state` names it."""
        if self._device_lost:
            return DisplayState.DEVICE_LOST
        if self._stalled:
            return DisplayState.NO_AUDIO
        calibration = self.app_session.calibration if self.app_session is not None else None
        if calibration is not None and not calibration.done:
            return DisplayState.CALIBRATING
        return DisplayState.SPEECH if self.latest is not None and self.latest.speech else DisplayState.LISTENING

    def _source_text(self) -> str:
        if self.source_kind == "file" and self.file_path:
            return f"file {Path(self.file_path).name}"
        name = self.device_combo.currentText().removesuffix("  (default)")
        return f"microphone '{name}'" if self.selected_device() is not None else "no microphone"

    def _refresh_controls(self) -> None:
        shown = self.display_state()
        self._shown_state = shown
        self._show_state(shown)
        self._refresh_buttons()
        self._refresh_adaptation()
        source = self._source_text()
        self.source_label.setText(f"source: {source}")
        self.status.setText(f"{shown} · {source}" + (f" · {self._notice}" if self._notice else ""))
        autosave = self.session.autosave_path
        lost_s = self.latest.lost_s if self.latest is not None else 0.0
        lost = f"; {lost_s:.1f} s of audio lost" if lost_s >= 0.05 else ""
        self.session_label.setText(
            f"{len(self.session)} rows{lost}" + (f"\nautosaved to {autosave}" if autosave is not None else "")
        )

    def _show_state(self, shown: DisplayState) -> None:
        """The headline, the bars (dimmed when not current) and the banner, for the state shown."""
        if shown == DisplayState.SPEECH:
            self.headline.show_prediction(self.latest)
        else:
            title, note = STATE_HEADLINES[shown]
            self.headline.show_prediction(None, state=title, note=note)
        self.bars.show_prediction(self.latest if shown == DisplayState.SPEECH else None)
        if self.banner.tag == StatusKind.DEVICE_LOST and shown != DisplayState.DEVICE_LOST:
            self.banner.clear_message()  # paused, another device, or back: the warning no longer holds

    def _refresh_buttons(self) -> None:
        """Start/Pause/Resume and what may be changed, for the runner's state."""
        has_model = self.runner is not None
        state = self.runner.state if has_model else RunState.IDLE
        self.start_button.setText({RunState.RUNNING: "Pause", RunState.PAUSED: "Resume"}.get(state, "Start"))
        has_file = self.source_kind == "file" and bool(self.file_path)
        can_start = has_model and (self.selected_device() is not None or has_file)
        self.start_button.setEnabled(bool(can_start) or state in (RunState.RUNNING, RunState.PAUSED))
        self.open_button.setEnabled(has_model)
        for spin in (self.window_spin, self.hop_spin, self.smooth_spin):
            spin.setEnabled(has_model)

    def _refresh_adaptation(self) -> None:
        """The adaptation controls and how much of the speaker has been learnt (read on the GUI timer)."""
        session = self.app_session
        can_adapt = session is not None and session.can_adapt
        adapting = can_adapt and session.adapting
        self.adapt_check.setEnabled(can_adapt)
        self.adapt_check.blockSignals(True)
        self.adapt_check.setChecked(adapting)
        self.adapt_check.blockSignals(False)
        self.forget_button.setEnabled(adapting)
        self.calibrate_button.setEnabled(can_adapt)
        self.adapt_label.setText(session.adaptation_line() if session is not None else "")

    def _adapt_toggled(self, checked: bool) -> None:
        self._ask_runner(lambda runner: runner.set_adapt(checked))

    def _calibrate(self) -> None:
        self._ask_runner(lambda runner: runner.calibrate(CALIBRATION_S))

    def _ask_runner(self, action: Callable[[Any], None]) -> None:
        """Run a control's action on the runner; a refusal is the banner's one line."""
        if self.runner is None:
            return
        try:
            action(self.runner)
        except SerLiveError as exc:
            self.banner.show_message(str(exc), "error")
        self._refresh_controls()

    def _forget_voice(self) -> None:
        if self.runner is not None:
            self.runner.forget_speaker()
            self.banner.show_message("Forgot the learnt voice; learning the speaker again from now.", "info")
        self._refresh_controls()

    # -- shutdown ------------------------------------------------------------------------
    def showEvent(self, event: QtGui.QShowEvent) -> None:  # noqa: N802 - Qt's name
        """Shown again (restored, unhidden): draw now rather than at the hidden pace's next tick."""
        super().showEvent(event)
        if getattr(self, "timer", None) is not None:
            self._history_dirty = True
            self._news_shown_at = -math.inf
            self.timer.setInterval(FRAME_INTERVAL_MS)

    def shutdown(self) -> None:
        """Stop the analysis and close the session files (idempotent)."""
        if self._closed:
            return
        self._closed = True
        # Construction may have failed part-way: close what exists.
        timer, session = getattr(self, "timer", None), getattr(self, "session", None)
        if timer is not None:
            timer.stop()
        if self.runner is not None:
            self.runner.stop()
        if session is not None:
            session.close()

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 - Qt's name
        self.shutdown()
        super().closeEvent(event)
