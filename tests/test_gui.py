"""The desktop monitor window (offscreen Qt): views fed by the real pipeline, controls, session files, faults."""

from __future__ import annotations

import csv
import gc
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PyQt6.QtWidgets", reason="the window needs PyQt6 ('pip install ser-live[gui]')")
pytest.importorskip("pyqtgraph", reason="the window needs pyqtgraph ('pip install ser-live[gui]')")

from conftest import SAMPLE_RATE_HZ, tone, write_wav  # noqa: E402
from PyQt6 import QtCore, QtWidgets  # noqa: E402

from ser_live.audio.capture import InputDevice  # noqa: E402
from ser_live.errors import DeviceError  # noqa: E402
from ser_live.gui import palette  # noqa: E402
from ser_live.gui.modelinfo import describe_model  # noqa: E402
from ser_live.gui.plots import envelope, input_level  # noqa: E402
from ser_live.gui.recording import SessionLog, interrupted_sessions  # noqa: E402
from ser_live.gui.window import MainWindow  # noqa: E402
from ser_live.model.emotion_model import EMOTIONS, EmotionModel  # noqa: E402
from ser_live.results import StatusKind  # noqa: E402

FAKE_DEVICE = InputDevice(index=3, name="Fake USB mic", channels=1, default_sample_rate_hz=16000.0,
                          host_api="ALSA", is_default=True)


def speech_and_pauses(seed: int = 0) -> np.ndarray:
    """Voiced stretches of different pitch with silent pauses between them; ends on speech."""
    rng = np.random.default_rng(seed)
    parts = []
    for i, f0 in enumerate((120.0, 260.0, 180.0)):
        parts.append(tone(f0, 3.0, vibrato_hz=1.0 + 2 * i, seed=seed + i))
        if i < 2:
            parts.append(rng.normal(0, 1e-4, int(3.0 * SAMPLE_RATE_HZ)).astype(np.float32))
    return np.concatenate(parts)


def delete_windows() -> None:
    """Delete every window on the GUI thread, then collect garbage there.

    A window is part of reference cycles (slots, callbacks), so without this Python's cyclic GC would
    free it later from whatever thread triggers a collection, e.g. the next test's analysis thread,
    and Qt crashes when widgets are deleted off the GUI thread.
    """
    for widget in QtWidgets.QApplication.topLevelWidgets():
        if isinstance(widget, MainWindow):
            widget.close()
            widget.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete.value)
    gc.collect()


@pytest.fixture(autouse=True)
def _windows_deleted_on_the_gui_thread(qapp):
    yield
    delete_windows()


@pytest.fixture
def devices(monkeypatch):
    """The device list the picker sees (PortAudio is not probed in these tests)."""
    found = [FAKE_DEVICE]
    monkeypatch.setattr("ser_live.audio.capture.list_input_devices", lambda: list(found))
    return found


@pytest.fixture
def make_window(qtbot, tiny_model, tmp_path, devices):
    """Build a window on the tiny model with autosaves under tmp_path; closed after the test."""

    def make(**kwargs) -> MainWindow:
        from ser_live.app.session import SessionConfig, open_session

        kwargs.setdefault("realtime", False)
        kwargs.setdefault("sessions_dir", tmp_path / "sessions")
        model = kwargs.pop("model", tiny_model)
        config = SessionConfig(**{k: kwargs.pop(k) for k in ("record_path", "calibrate_s") if k in kwargs})
        window = MainWindow(open_session(config, model=model), **kwargs)
        qtbot.addWidget(window)
        window.show()
        with qtbot.waitActive(window):  # keyboard shortcuts go to the active window
            window.activateWindow()
        return window

    return make


@pytest.fixture
def speech_file(tmp_path) -> tuple[Path, float]:
    y = speech_and_pauses()
    return write_wav(tmp_path / "speech.wav", y), y.shape[0] / SAMPLE_RATE_HZ


def visible_main_window() -> MainWindow:
    """The window run_gui opened (for tests that drive run_gui's own event loop)."""
    return [w for w in QtWidgets.QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()][-1]


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_window_builds_with_views_controls_and_model_info(make_window, tiny_model):
    window = make_window()
    assert window.headline.name.text() == "stopped" and window.start_button.text() == "Start"  # not started yet
    assert window.bars.classes == tiny_model.classes
    assert set(window.history.lines.curves) == set(tiny_model.classes)
    assert window.device_combo.currentData() == FAKE_DEVICE.index  # the default input is preselected
    assert window.start_button.isEnabled() and window.start_button.text() == "Start"
    assert window.window_spin.value() == tiny_model.window_s and window.hop_spin.value() == tiny_model.hop_s
    info = window.model_label.text()
    assert "neutral, happy, sad" in info and "not recorded in the model file" in info
    assert window.session.autosave_path is not None and window.session.autosave_path.is_file()


def test_file_run_updates_label_bars_and_history(make_window, speech_file, qtbot, tiny_model):
    path, duration_s = speech_file
    window = make_window()
    assert window.open_file(str(path))
    qtbot.waitUntil(lambda: window.runner.state == "finished", timeout=60_000)
    qtbot.waitUntil(lambda: not window._history_dirty, timeout=5_000)
    rows = window.session.rows()
    assert len(rows) == int(duration_s / tiny_model.hop_s)
    last = rows[-1]
    assert last.speech  # the file ends on speech
    # The file has ended: the headline says so, dimmed, instead of showing the last emotion as current.
    assert window.headline.name.text() == "finished" and window.headline.confidence.text() == ""
    assert palette.TEXT_DIM in window.headline.name.styleSheet()
    assert window.start_button.text() == "Start" and window.status.text().startswith("finished · file speech.wav")
    # While it ran, the latest speech window was shown in its colour with its confidence.
    window.runner.state = "running"
    window._refresh_controls()
    assert window.headline.name.text() == last.emotion
    assert window.headline.confidence.text() == f"{last.confidence:.0%}"
    assert palette.colour_of(last.emotion) in window.headline.name.styleSheet()
    window.runner.state = "finished"
    # One bar per class, at the latest probabilities.
    np.testing.assert_allclose(window.bars.probs, [last.probs[c] for c in tiny_model.classes])
    widths = window.bars.bars.opts["width"]
    np.testing.assert_allclose(widths, window.bars.probs)
    # History: one point per hop of the last 60 s; gaps (NaN) and grey bands exactly where no speech.
    speech = np.array([r.speech for r in rows])
    assert speech.any() and (~speech).any()
    now_s = rows[-1].t_s
    t = np.array([r.t_s for r in rows]) - now_s
    hop_s = tiny_model.hop_s
    for c, curve in window.history.lines.curves.items():
        x, y = curve.getData()
        drawn = ~np.isnan(y)
        # Every speech hop is drawn at its time and probability; every no-speech hop is a gap.
        points = set(zip(np.round(x[drawn], 6), np.round(y[drawn], 6)))
        assert {(round(ti, 6), round(r.probs[c], 6)) for ti, r in zip(t, rows) if r.speech} <= points
        assert np.count_nonzero(~drawn) == np.count_nonzero(~speech)
        # Nothing is drawn outside the hops that had speech.
        for xi in x[drawn]:
            assert np.any((t[speech] - hop_s - 1e-6 <= xi) & (xi <= t[speech] + 1e-6))
    _, band = window.history.lines.no_speech.getData()
    np.testing.assert_array_equal(band, np.where(speech, 0.0, 1.0))
    assert curve.getData()[0][-1] == pytest.approx(0.0, abs=1e-6)  # the newest hop is at "now"


def test_saved_session_csv_has_a_row_per_hop_with_probabilities_summing_to_one(
    make_window, speech_file, qtbot, tmp_path, tiny_model
):
    path, duration_s = speech_file
    window = make_window()
    window.open_file(str(path))
    qtbot.waitUntil(lambda: window.runner.state == "finished", timeout=60_000)
    out = tmp_path / "saved" / "session.csv"
    assert window.save_session(str(out)) == int(duration_s / tiny_model.hop_s)
    rows = read_rows(out)
    assert len(rows) == int(duration_s / tiny_model.hop_s)
    t = np.array([float(r["t_s"]) for r in rows])
    np.testing.assert_allclose(np.diff(t), tiny_model.hop_s, atol=1e-3)
    n_speech = 0
    for r in rows:
        probs = [r[f"p_{c}"] for c in tiny_model.classes]
        if r["speech"] == "1":
            n_speech += 1
            assert sum(float(p) for p in probs) == pytest.approx(1.0, abs=1e-3)
            assert r["emotion"] == max(tiny_model.classes, key=lambda c: float(r[f"p_{c}"]))
        else:
            assert r["emotion"] == "" and all(p == "" for p in probs)
    assert 0 < n_speech < len(rows)
    # The autosave file holds the same rows, written as they happened.
    assert read_rows(window.session.autosave_path) == rows


def test_space_pauses_and_resumes_a_file(make_window, qtbot, tmp_path, tiny_model):
    path = write_wav(tmp_path / "long.wav", tone(150.0, 30.0, vibrato_hz=2.0))
    window = make_window(realtime=True)
    window.open_file(str(path))
    qtbot.waitUntil(lambda: len(window.session) >= 2, timeout=20_000)
    assert window.start_button.text() == "Pause"
    # Keys go where a user's would: to the focus widget (no control keeps focus, so the window).
    focus = QtWidgets.QApplication.focusWidget()
    assert not isinstance(focus, (QtWidgets.QAbstractSpinBox, QtWidgets.QAbstractButton))
    qtbot.keyClick(focus or window, QtCore.Qt.Key.Key_Space)
    assert window.runner.state == "paused"
    assert window.start_button.text() == "Resume"
    qtbot.wait(300)  # let a block already being fed finish
    held = len(window.session)
    qtbot.wait(4 * int(1000 * tiny_model.hop_s))  # four hops of real time while paused
    assert len(window.session) == held
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Space)
    assert window.runner.state == "running" and window.start_button.text() == "Pause"
    qtbot.waitUntil(lambda: len(window.session) > held, timeout=20_000)
    # Time on the session clock continues without a jump over the pause.
    t = np.array([r.t_s for r in window.session.rows()])
    np.testing.assert_allclose(np.diff(t), tiny_model.hop_s, atol=1e-6)


def test_ctrl_s_saves_the_session_and_screenshot_is_a_png(make_window, speech_file, qtbot, tmp_path, monkeypatch):
    path, _ = speech_file
    window = make_window()
    window.open_file(str(path))
    qtbot.waitUntil(lambda: window.runner.state == "finished", timeout=60_000)
    target = tmp_path / "via-ctrl-s.csv"
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), "CSV (*.csv)"))
    qtbot.keyClick(window, QtCore.Qt.Key.Key_S, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert len(read_rows(target)) == len(window.session)
    shot = tmp_path / "shot.png"
    assert window.save_screenshot(str(shot))
    from PyQt6 import QtGui

    image = QtGui.QImage(str(shot))
    assert (image.width(), image.height()) == (window.width(), window.height())


def test_ctrl_q_closes_the_window_and_the_session_file(make_window, qtbot):
    window = make_window()
    autosave = window.session.autosave_path
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Q, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert not window.isVisible() and window._closed
    assert not autosave.exists()  # an empty session leaves no file behind
    assert not autosave.with_name(autosave.name + ".open").exists()


class FakeMicrophone:
    """Stands in for MicrophoneStream: delivers a voiced signal at real-time pace until 'unplugged'."""

    instances: list[FakeMicrophone] = []
    present = True

    def __init__(self, sink, *, device=None, sample_rate_hz=16000, **_):
        self.sink = sink
        self.device = InputDevice(FAKE_DEVICE.index, FAKE_DEVICE.name, 1, 16000.0, "ALSA", True)
        self.sample_rate_hz = sample_rate_hz
        self.signal = tone(170.0, 4.0, vibrato_hz=3.0)
        self._running = threading.Event()
        self._thread = None
        self.received_s = self.last_block_at = 0.0  # what MicrophoneStream's callback keeps, for loss counting
        self.failure = None
        FakeMicrophone.instances.append(self)

    def _feed(self):
        block = int(0.05 * self.sample_rate_hz)
        i = 0
        while self._running.is_set():
            start = (i * block) % (self.signal.size - block)
            self.sink(self.signal[start:start + block])
            self.received_s += block / self.sample_rate_hz
            self.last_block_at = time.monotonic()
            i += 1
            time.sleep(0.05)

    def start(self):
        if not FakeMicrophone.present:
            raise DeviceError("no input device found; plug in a microphone")
        self._running.set()
        self._thread = threading.Thread(target=self._feed, daemon=True)
        self._thread.start()

    def healthy(self):
        return self._running.is_set() and FakeMicrophone.present

    def restart(self):
        self.close()
        self.start()

    def close(self):
        self._running.clear()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @classmethod
    def unplug(cls):
        cls.present = False
        for mic in cls.instances:
            mic._running.clear()


@pytest.fixture
def fake_microphone(monkeypatch):
    FakeMicrophone.instances = []
    FakeMicrophone.present = True
    monkeypatch.setattr("ser_live.audio.capture.MicrophoneStream", FakeMicrophone)
    yield FakeMicrophone
    FakeMicrophone.unplug()


def test_device_lost_shows_a_message_keeps_the_session_and_recovers(make_window, qtbot, fake_microphone):
    window = make_window()
    assert window.start_microphone()
    assert window.runner.state == "running"
    qtbot.waitUntil(lambda: len(window.session) >= 4, timeout=20_000)
    fake_microphone.unplug()
    qtbot.waitUntil(lambda: "lost" in window.banner.text(), timeout=20_000)
    assert window.banner.level == "warning" and window.banner.isVisible()
    assert "session so far is kept" in window.banner.text()
    # The last result is not shown as if it were current: every part of the window says the device is lost.
    qtbot.waitUntil(lambda: window.headline.name.text() == "device lost", timeout=20_000)
    assert window.meter.state == "idle" and window.start_button.text() == "Pause"
    assert window.status.text().startswith("device lost · microphone 'Fake USB mic'")
    kept = window.session.rows()
    assert len(kept) >= 4
    # Nothing arrives while the device is gone, and what was heard is on disk already.
    assert len(read_rows(window.session.autosave_path)) == len(window.session)
    assert window.session.rows()[: len(kept)] == kept
    # The device comes back: the monitor reconnects by itself and the session continues.
    fake_microphone.present = True
    qtbot.waitUntil(lambda: "back" in window.status.text(), timeout=20_000)
    qtbot.waitUntil(lambda: len(window.session) > len(kept) + 2, timeout=20_000)
    assert window.session.rows()[: len(kept)] == kept
    qtbot.waitUntil(lambda: window.headline.name.text() != "device lost", timeout=5_000)
    assert window.banner.tag != StatusKind.DEVICE_LOST  # the warning left with the fault
    # The audio missed while the device was gone is counted, and said.
    qtbot.waitUntil(lambda: "s of audio lost" in window.session_label.text(), timeout=10_000)
    assert "lost" in window.status.text() and "s of audio" in window.status.text()
    assert window.session.rows()[-1].lost_s >= 1.0


def test_pause_releases_the_microphone_and_resume_reopens_it(make_window, qtbot, fake_microphone):
    window = make_window()
    window.start_microphone()
    qtbot.waitUntil(lambda: len(window.session) >= 2, timeout=20_000)
    window.toggle_running()
    assert window.runner.state == "paused"
    assert not fake_microphone.instances[-1].healthy()  # closed, not merely ignored
    window.toggle_running()
    assert window.runner.state == "running"
    n = len(window.session)
    qtbot.waitUntil(lambda: len(window.session) > n, timeout=20_000)


def test_no_microphone_shows_a_message_and_the_window_still_works(make_window, devices, speech_file, qtbot):
    devices.clear()
    window = make_window()
    assert "No microphone" in window.banner.text()
    assert not window.device_combo.isEnabled() and window.selected_device() is None
    assert not window.start_button.isEnabled()
    assert not window.start_microphone()
    # A file still runs through the same window.
    assert window.open_file(str(speech_file[0]))
    qtbot.waitUntil(lambda: window.runner.state == "finished", timeout=60_000)
    assert len(window.session) > 0


def test_busy_device_is_reported_not_raised(make_window, fake_microphone):
    fake_microphone.present = False
    window = make_window()
    assert not window.start_microphone()
    assert window.banner.level == "error" and "Cannot listen" in window.banner.text()
    assert window.runner.state == "idle"


def test_unreadable_file_is_reported(make_window, tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio")
    window = make_window()
    assert not window.open_file(str(bad))
    assert window.banner.level == "error" and "notes.wav" in window.banner.text()
    assert not window.open_file(str(tmp_path / "missing.wav"))
    assert "no such file" in window.banner.text()
    assert window.runner.state == "idle"


def test_missing_model_opens_the_window_with_the_message(qtbot, tmp_path, devices):
    window = MainWindow(None, model_error="model file /nowhere.joblib does not exist", sessions_dir=tmp_path)
    qtbot.addWidget(window)
    window.show()
    assert "does not exist" in window.banner.text() and window.banner.level == "error"
    assert window.headline.name.text() == "no model"
    assert not window.start_button.isEnabled() and not window.open_button.isEnabled()
    assert window.bars.classes == EMOTIONS
    window.toggle_running()  # harmless
    window.tick()


def test_settings_change_restarts_listening_with_the_new_hop(make_window, qtbot, fake_microphone):
    window = make_window()
    window.start_microphone()
    qtbot.waitUntil(lambda: len(window.session) >= 2, timeout=20_000)
    window.hop_spin.setValue(0.25)
    assert window.runner.state == "running" and window.runner.monitor.hop_s == 0.25
    n = len(window.session)
    qtbot.waitUntil(lambda: len(window.session) >= n + 3, timeout=20_000)
    t = np.array([r.t_s for r in window.session.rows()[n:]])
    np.testing.assert_allclose(np.diff(t), 0.25, atol=1e-6)
    assert t[0] > window.session.rows()[n - 1].t_s  # the session clock runs on


@pytest.fixture
def run_gui_once(tmp_path, monkeypatch, devices):
    """Run ``run_gui`` on command-line arguments and return what the window showed after ``after_ms``."""
    from ser_live.app.session import SessionConfig
    from ser_live.cli.main import build_parser
    from ser_live.gui import run_gui

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))

    def run(argv: list[str], *, after_ms: int = 1500) -> dict:
        seen = {}

        def inspect_and_close():
            window = visible_main_window()
            seen.update(window=window, state=window.runner.state if window.runner else None,
                        source=window.runner.source if window.runner else None, banner=window.banner.text(),
                        settings=window.runner.settings if window.runner else None,
                        note=window.settings_note.text())
            window.close()

        QtCore.QTimer.singleShot(after_ms, inspect_and_close)
        seen["status"] = run_gui(SessionConfig.from_args(build_parser().parse_args(argv)))
        return seen

    return run


def test_run_gui_opens_the_window_on_a_file(qtbot, run_gui_once, tiny_model_path, speech_file):
    """``ser-live --input FILE`` path, in-process: run_gui builds the window and starts the file."""
    seen = run_gui_once(["--input", str(speech_file[0]), "--model", str(tiny_model_path)])
    assert seen["status"] == 0
    assert seen["source"] == ("file", str(speech_file[0]))
    assert seen["state"] in ("running", "finished")
    assert seen["window"]._closed


def test_run_gui_with_bad_settings_or_model_still_opens(qtbot, run_gui_once, tiny_model_path, tiny_model, tmp_path,
                                                        fake_microphone):
    seen = run_gui_once(["--model", str(tiny_model_path), "--hop", "3"], after_ms=300)
    assert seen["status"] == 0 and "--hop (3 s) must not be longer than the model's window (2 s)" in seen["note"]
    assert seen["state"] == "running"
    assert (seen["settings"].window_s, seen["settings"].hop_s) == (tiny_model.window_s, tiny_model.hop_s)
    import joblib

    joblib.dump({"format": "ser-live-model"}, tmp_path / "old.joblib")
    seen = run_gui_once(["--model", str(tmp_path / "old.joblib")], after_ms=300)  # a pickle: never loaded
    assert seen["status"] == 0 and "is a pickle" in seen["banner"] and seen["state"] is None
    seen = run_gui_once(["--model", str(tmp_path / "absent.npz")], after_ms=300)
    assert seen["status"] == 0 and "does not exist" in seen["banner"]


def test_session_survives_a_crash_and_is_reported_next_time(tmp_path, tiny_model_path):
    """A process that dies mid-session leaves its rows on disk and a marker the next window reports."""
    sessions = tmp_path / "sessions"
    code = textwrap.dedent(f"""
        import os
        from ser_live.gui.recording import SessionLog
        from ser_live.engine.monitor import Prediction
        log = SessionLog(("neutral", "angry"), directory={str(sessions)!r})
        for k in range(5):
            log(Prediction(0.5 * (k + 1), True, "angry", 0.7, {{"neutral": 0.3, "angry": 0.7}}, -20.0))
        os._exit(3)  # a crash: nothing is closed or flushed by Python
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 3, result.stderr
    found = interrupted_sessions(sessions)
    assert len(found) == 1
    rows = read_rows(found[0])
    assert [r["t_s"] for r in rows] == ["0.500", "1.000", "1.500", "2.000", "2.500"]
    assert all(r["emotion"] == "angry" and r["p_angry"] == "0.7000" for r in rows)
    # A live session of this process is not "interrupted".
    live = SessionLog(("neutral",), directory=sessions)
    assert interrupted_sessions(sessions) == found
    live.close()


def test_record_path_gets_every_row_and_an_unwritable_one_is_reported(make_window, speech_file, qtbot, tmp_path):
    record = tmp_path / "record.csv"
    window = make_window(record_path=str(record))
    window.open_file(str(speech_file[0]))
    qtbot.waitUntil(lambda: window.runner.state == "finished", timeout=60_000)
    rows = read_rows(record)
    assert rows == read_rows(window.session.autosave_path) and len(rows) == len(window.session)



def test_an_unwritable_record_path_is_reported_and_the_window_opens(qtbot, run_gui_once, tiny_model_path, tmp_path,
                                                                    fake_microphone):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    seen = run_gui_once(["--model", str(tiny_model_path), "--record", str(blocked / "record.csv")],
                        after_ms=300)
    assert seen["status"] == 0 and "cannot create session file" in seen["banner"] and seen["state"] == "running"


def test_window_reports_a_recovered_session_once(make_window, tmp_path):
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    crashed = sessions / "session-crashed.csv"
    crashed.write_text("t_s,speech\n0.500,0\n")
    (sessions / "session-crashed.csv.open").write_text("999999999")  # no such process
    window = make_window()
    assert "Recovered 1 session" in window.banner.text() and str(crashed) in window.banner.text()
    assert crashed.is_file()
    window.close()
    assert "Recovered" not in make_window().banner.text()


def test_model_info_reads_corpora_and_speaker_independent_uar(tiny_model):
    """The metadata layout scripts/train.py writes: our figures beside a baseline's and a ratio."""
    section = {"overall": {"uar": 0.463, "accuracy": 0.5, "n": 2028},
               "ravdess": {"uar": 0.52, "accuracy": 0.5, "n": 1440}}
    model = EmotionModel(
        tiny_model.estimator, tiny_model.extractor, metadata={
            "corpora": ["emovo", "ravdess"],
            "license": "CC BY-NC-SA 4.0 (inherited from RAVDESS); see MODEL_CARD.md",
            "evaluation": {
                "protocol": "speaker-independent (no test speaker in training)",
                "classic_recipe": {"utterance": {"overall": {"uar": 0.61, "accuracy": 0.6, "n": 2028}}},
                "ours": {"utterance": section, "window": {"overall": {"uar": 0.41, "accuracy": 0.4, "n": 9000}}},
                "uar_ratio_vs_classic": 0.759,
            },
        },
    )
    info = describe_model(model)
    assert info.corpora == ("emovo", "ravdess")
    assert info.uar == pytest.approx(0.463) and info.uar_where == "evaluation/ours/utterance/overall/uar"
    assert info.protocol == "speaker-independent (no test speaker in training)"
    text = "\n".join(info.lines())
    assert "46.3%" in text and "no test speaker in training" in text and "emovo, ravdess" in text
    assert "License: CC BY-NC-SA 4.0" in text
    assert info.new_corpus_uar is None and "never heard" not in text
    # With the leave-one-corpus-out figure the panel shows it first, and says what the other one is.
    model.metadata["evaluation"]["leave_one_corpus_out"] = {"protocol": "leave-one-corpus-out",
                                                            "mean_utterance_uar": 0.343}
    honest = describe_model(model)
    assert honest.new_corpus_uar == pytest.approx(0.343) and honest.uar == pytest.approx(0.463)
    lines = honest.summary_lines()
    chance = f"{1 / len(model.classes):.1%}"
    assert lines[3] == f"On a corpus it never heard: UAR 34.3% (chance {chance})"
    assert lines[4] == "Speaker-independent UAR 46.3% on new speakers of those corpora"
    listed = describe_model(EmotionModel(tiny_model.estimator, tiny_model.extractor,
                                         metadata={"training": {"corpora": [{"name": "CREMA-D"}, "TESS"]},
                                                   "speaker_independent_uar": 0.39}))
    assert listed.corpora == ("CREMA-D", "TESS") and listed.uar == pytest.approx(0.39)
    bare = describe_model(EmotionModel(tiny_model.estimator, tiny_model.extractor, metadata={"uar": "n/a"}))
    assert bare.corpora == () and bare.uar is None and bare.protocol == "" and bare.license == ""
    assert "not recorded" in "\n".join(bare.lines())


def test_palette_has_one_distinct_colour_per_emotion():
    assert tuple(palette.EMOTION_COLOURS) == EMOTIONS
    colours = list(palette.EMOTION_COLOURS.values()) + [palette.NO_SPEECH_COLOUR]
    assert len(set(colours)) == len(colours)
    assert palette.colour_of(None) == palette.colour_of("unknown") == palette.NO_SPEECH_COLOUR


def test_level_meter_warns_on_clipping_and_quiet_input():
    loud = tone(200.0, 1.0, level=1.0)
    assert input_level(loud, SAMPLE_RATE_HZ)[2] == "clipping"
    ok = tone(200.0, 1.0, level=0.3)
    rms_db, peak_db, state = input_level(ok, SAMPLE_RATE_HZ)
    assert state == "ok" and peak_db == pytest.approx(20 * np.log10(np.max(np.abs(ok))), abs=0.01)
    assert rms_db < peak_db
    assert input_level(tone(200.0, 1.0, level=0.003), SAMPLE_RATE_HZ)[2] == "quiet"
    assert input_level(np.zeros(0), SAMPLE_RATE_HZ)[2] == "quiet"


def test_envelope_keeps_the_extremes_of_each_column():
    x = np.zeros(1000, dtype=np.float32)
    x[123], x[877] = 0.9, -0.7
    env = envelope(x, 10)
    assert env.shape == (20,)
    assert env.max() == pytest.approx(0.9) and env.min() == pytest.approx(-0.7)
    assert env[2 * 1 + 1] == pytest.approx(0.9) and env[2 * 8] == pytest.approx(-0.7)


def test_analysis_failure_while_listening_is_shown_and_start_is_possible_again(make_window, qtbot, fake_microphone):
    window = make_window()
    window.start_microphone()
    qtbot.waitUntil(lambda: len(window.session) >= 2, timeout=20_000)
    kept = len(window.session)

    def broken(window_samples, *, t_s):
        raise ZeroDivisionError("simulated analysis bug")

    window.runner.monitor.analyzer = broken
    qtbot.waitUntil(lambda: window.banner.level == "error", timeout=20_000)
    assert "simulated analysis bug" in window.banner.text()
    assert window.runner.state == "idle" and window.start_button.text() == "Start"
    assert len(window.session) >= kept
    assert window.start_microphone() and window.runner.state == "running"


def test_run_gui_shows_unexpected_errors_instead_of_aborting(qtbot, run_gui_once, tiny_model_path, fake_microphone,
                                                             capfd):
    def fail():
        raise RuntimeError("a bug in a slot")

    QtCore.QTimer.singleShot(300, fail)
    seen = run_gui_once(["--model", str(tiny_model_path)])
    assert seen["status"] == 0
    assert "a bug in a slot" in seen["banner"]
    assert seen["state"] == "running"  # the default microphone was started and kept running
    assert "unexpected error: RuntimeError: a bug in a slot" in capfd.readouterr().err


def test_unreachable_display_falls_back_to_the_console_in_one_line(tiny_model_path, speech_file, tmp_path):
    """Qt would abort the process on a dead $DISPLAY; ser-live says so in one line and runs the console monitor."""
    from conftest import run_cli

    number = next(n for n in range(900, 1000) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    done = run_cli("--input", str(speech_file[0]), "--model", str(tiny_model_path),
                   env={"DISPLAY": f":{number}", "QT_QPA_PLATFORM": "", "WAYLAND_DISPLAY": "",
                        "XDG_DATA_HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert f"cannot open the window (no X server answers on DISPLAY=:{number})" in done.stderr
    assert "Traceback" not in done.stderr and "qt.qpa" not in done.stderr
    assert "summary: heard" in done.stdout


def test_a_lone_speech_window_is_drawn_as_a_segment_in_the_history(qtbot):
    from ser_live.engine.monitor import Prediction
    from ser_live.gui.timeline import HistoryPlot, Timeline

    plot = HistoryPlot(("neutral", "angry"))
    qtbot.addWidget(plot)
    silent = [Prediction(t, False, None, 0.0, None, -60.0) for t in (0.5, 1.0)]
    heard = Prediction(1.5, True, "angry", 0.8, {"neutral": 0.2, "angry": 0.8}, -20.0)
    plot.show_timeline(Timeline.from_predictions([*silent, heard], plot.classes, hop_s=0.5), now_s=1.5)
    x, y = plot.lines.curves["angry"].getData()
    drawn = ~np.isnan(y)
    np.testing.assert_allclose(x[drawn], [-0.5, 0.0])  # from the end of the silence to now
    np.testing.assert_allclose(y[drawn], [0.8, 0.8])
    edges, band = plot.lines.no_speech.getData()
    np.testing.assert_allclose(edges, [-1.5, -1.0, -0.5, 0.0])
    np.testing.assert_array_equal(band, [1.0, 1.0, 0.0])


def test_adaptation_controls_follow_the_runner(make_window):
    """With an adaptive model the window shows how much voice was learnt, turns learning off and forgets it."""
    from ser_live.model.emotion_model import EmotionModel
    from ser_live.model.speaker import SpeakerNormalizer

    try:
        model = EmotionModel.load()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"needs the shipped model ({exc})")
    if model.adaptation is None:
        pytest.skip("the shipped model has no speaker-adaptive variant")
    window = make_window(model=model)
    session = window.app_session
    session.speaker = SpeakerNormalizer(model.adaptation.prior, hop_s=model.hop_s)
    for _ in range(40):  # 40 speech windows x 0.5 s
        session.speaker.update(model.adaptation.prior.mean)
    window._refresh_controls()
    assert window.adapt_check.isEnabled() and window.adapt_check.isChecked()
    assert "neutral voice learnt from 20 s of speech" in window.adapt_label.text()
    assert "learning from windows heard as neutral" in window.adapt_label.text()
    window.forget_button.click()
    assert session.speaker.learnt_s == 0.0
    assert "learnt from 0 s" in window.adapt_label.text()
    window.adapt_check.click()
    assert session.adapting is False and window.adapt_label.text() == "speaker adaptation off (the plain model)"
    assert not window.forget_button.isEnabled()


def test_the_window_starts_without_adaptation_and_calibrates_on_request(make_window):
    """Adaptation is off by default; "Calibrate…" asks for a neutral reading: every speech window of it is
    learnt while predictions wait."""
    from ser_live.model.emotion_model import EmotionModel

    try:
        model = EmotionModel.load()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"needs the shipped model ({exc})")
    window = make_window(model=model)
    session = window.app_session
    assert not session.adapting and not window.adapt_check.isChecked()
    assert window.calibrate_button.isEnabled() == (model.adaptation is not None)
    if model.adaptation is None:
        return
    window.calibrate_button.click()
    assert session.adapting and session.speaker.learn == "every" and not session.calibration.done
    assert window.adapt_check.isChecked() and "calibrating" in window.adapt_label.text()


def test_a_model_without_adaptation_disables_the_controls(make_window):
    window = make_window()  # the tiny test model has no adaptive variant
    assert not window.adapt_check.isEnabled() and not window.forget_button.isEnabled()
    assert not window.calibrate_button.isEnabled()
    assert window.adapt_label.text() == "this model cannot adapt to a speaker"


# -- the window tells the truth: one state in every part ---------------------------------------------------------
def _shown(window) -> dict[str, str]:
    return {"headline": window.headline.name.text(), "button": window.start_button.text(),
            "banner": window.banner.text() if window.banner.isVisible() else "", "status": window.status.text()}


def _agrees(window, state: str, headline: str, button: str, banner: str = "") -> None:
    shown = _shown(window)
    assert window.display_state() == state, shown
    assert shown["headline"] == headline and shown["button"] == button, shown
    assert shown["status"].startswith(f"{state} · "), shown
    assert (banner in shown["banner"]) if banner else not shown["banner"], shown


def test_every_state_is_told_the_same_by_headline_button_banner_and_status(make_window, qtbot, fake_microphone,
                                                                           speech_file):
    window = make_window()
    _agrees(window, "stopped", "stopped", "Start")
    window.start_microphone()
    qtbot.waitUntil(lambda: window.display_state() == "speech", timeout=20_000)  # the fake mic always speaks
    _agrees(window, "speech", window.latest.emotion, "Pause")
    assert window.status.text() == "speech · microphone 'Fake USB mic'"
    window.toggle_running()
    _agrees(window, "paused", "paused", "Resume")
    window.toggle_running()
    qtbot.waitUntil(lambda: window.display_state() == "speech", timeout=20_000)
    fake_microphone.unplug()
    qtbot.waitUntil(lambda: window.display_state() == "device lost", timeout=20_000)
    _agrees(window, "device lost", "device lost", "Pause", banner="continues by itself when the device comes back")
    window.toggle_running()  # pausing releases the microphone: the lost-device warning no longer holds
    _agrees(window, "paused", "paused", "Resume")
    # A file: its name is the source from the start, and its end is told as such, dimmed.
    window.open_file(str(speech_file[0]))
    assert window.source_label.text() == "source: file speech.wav"
    qtbot.waitUntil(lambda: window.runner.state == "finished", timeout=60_000)
    qtbot.waitUntil(lambda: window.display_state() == "finished", timeout=5_000)
    _agrees(window, "finished", "finished", "Start")
    assert window.headline.caption.text() == "the file has ended; press Start to play it again"
    assert window.status.text().startswith("finished · file speech.wav")


def test_a_passing_notice_leaves_the_banner(make_window, qtbot):
    from ser_live.results import StatusEvent

    window = make_window()
    window.show_status(StatusEvent(StatusKind.DEVICE_BACK, "input device back: Fake USB mic"))
    assert window.banner.isVisible() and "back" in window.status.text()
    qtbot.waitUntil(lambda: not window.banner.isVisible(), timeout=10_000)
    qtbot.waitUntil(lambda: "back" not in window.status.text(), timeout=10_000)


def test_a_window_started_on_a_file_names_the_file_as_its_source(qtbot, tiny_model, tmp_path, devices, speech_file):
    from ser_live.app.session import SessionConfig, open_session

    window = MainWindow(open_session(SessionConfig(input_path=str(speech_file[0])), model=tiny_model),
                        input_path=str(speech_file[0]), sessions_dir=tmp_path)
    qtbot.addWidget(window)
    assert window.source_label.text() == "source: file speech.wav"
    assert window.status.text() == "stopped · file speech.wav"


# -- it fits and reads at a glance -------------------------------------------------------------------------------
def _clipped_labels(window) -> list[str]:
    clipped = []
    for label in window.findChildren(QtWidgets.QLabel):
        if not label.isVisible() or not label.text():
            continue
        if label.wordWrap():
            needed = label.heightForWidth(label.width())
            if needed > label.height() + 1:
                clipped.append(f"{label.text()[:40]!r}: needs {needed} px of height, has {label.height()}")
        elif label.sizeHint().width() > label.width() + 1 and label.sizePolicy().horizontalPolicy() != \
                QtWidgets.QSizePolicy.Policy.Ignored:
            clipped.append(f"{label.text()[:40]!r}: needs {label.sizeHint().width()} px of width, has {label.width()}")
    return clipped


def test_the_window_fits_1280_by_800_with_nothing_clipped(make_window, qtbot, speech_file):
    window = make_window()
    window.resize(1280, 800)
    window.open_file(str(speech_file[0]))
    qtbot.waitUntil(lambda: window.runner.state == "finished", timeout=60_000)
    qtbot.wait(100)
    assert (window.width(), window.height()) == (1280, 800)
    scroll = window.controls_scroll
    assert not scroll.verticalScrollBar().isVisible(), "the control panel needs a scrollbar at 1280 x 800"
    assert scroll.widget().sizeHint().height() <= scroll.viewport().height()
    assert not _clipped_labels(window), _clipped_labels(window)
    # The plots have room for their labels: the waveform's three, the bars' 0 and 100 %.
    assert window.waveform.height() >= 110
    assert window.history.height() >= 2 * window.waveform.height()
    for spin in (window.window_spin, window.hop_spin, window.smooth_spin):
        assert spin.width() <= 110  # a number and a unit, not the panel's width
    bottom = [text for _, text in window.bars.getAxis("bottom")._tickLevels[0]]
    assert bottom == ["0%", "50%", "100%"]


def test_the_level_meter_numbers_its_scale_and_explains_its_mark():
    from ser_live.gui.plots import LevelMeter

    meter = LevelMeter()
    meter.resize(900, 70)
    meter.set_level(-20.0, -6.0, "ok")
    image = meter.grab().toImage()
    assert image.width() == 900 and meter.TICKS_DB == (-60, -50, -40, -30, -20, -10, 0)
    assert meter.minimumHeight() >= 62  # bar, numbered ticks and the text line


def test_history_span_grows_with_the_session_up_to_60_s(qtbot):
    from ser_live.gui.timeline import HISTORY_S, MIN_HISTORY_S, HistoryPlot

    plot = HistoryPlot(EMOTIONS)
    qtbot.addWidget(plot)
    for span, expected in ((3.0, MIN_HISTORY_S), (25.0, 25.0), (31.2, 35.0), (600.0, HISTORY_S)):
        plot.set_span(span)
        assert plot.getViewBox().viewRange()[0] == pytest.approx([-expected, 0.0])


def test_history_names_the_leading_lines_at_their_end(qtbot):
    from ser_live.gui.timeline import HistoryPlot, Timeline
    from ser_live.results import Prediction

    plot = HistoryPlot(EMOTIONS)
    qtbot.addWidget(plot)
    probs = {e: 0.0 for e in EMOTIONS} | {"angry": 0.55, "happy": 0.3, "surprised": 0.15}
    rows = [Prediction(t, True, "angry", 0.55, probs, -20.0) for t in (0.5, 1.0, 1.5)]
    plot.show_timeline(Timeline.from_predictions(rows, EMOTIONS, hop_s=0.5), 1.5)
    shown = {c for c, label in plot.labels.items() if label.isVisible()}
    assert shown == {"angry", "happy", "surprised"}
    ys = sorted(plot.labels[c].pos().y() for c in shown)
    assert all(b - a >= 0.08 for a, b in zip(ys, ys[1:]))  # apart, not on top of each other


def test_ctrl_q_quits_wherever_the_focus_is(make_window, qtbot):
    window = make_window()
    window.hop_spin.setFocus()  # a box being edited
    qtbot.waitUntil(window.hop_spin.hasFocus, timeout=2_000)
    qtbot.keyClick(window.hop_spin, QtCore.Qt.Key.Key_Q, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert window._closed and not window.isVisible()


# -- colours that stay apart for colour-blind viewers --------------------------------------------------------------
# Machado, Oliveira & Fernandes (2009), severity 1.0, applied to linear RGB.
CVD = {
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]],
}


def _lab(hex_colour: str, simulate=None) -> np.ndarray:
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    if simulate is not None:
        lin = np.clip(np.array(simulate) @ lin, 0, 1)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ lin
    f = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(f > 0.008856, np.cbrt(f), 7.787 * f + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_emotion_colours_stay_apart_in_every_common_colour_vision():
    import itertools

    colours = palette.EMOTION_COLOURS
    for vision, matrix in [("normal", None), *CVD.items()]:
        lab = {e: _lab(c, matrix) for e, c in colours.items()}
        worst = min((np.linalg.norm(lab[a] - lab[b]), a, b) for a, b in itertools.combinations(lab, 2))
        assert worst[0] >= 18.0, f"{vision}: {worst[1]} and {worst[2]} are only {worst[0]:.1f} ΔE apart"
    # The three that were confused before are now far apart in every vision.
    for matrix in [None, *CVD.values()]:
        lab = {e: _lab(colours[e], matrix) for e in ("angry", "happy", "surprised")}
        assert min(np.linalg.norm(lab[a] - lab[b]) for a, b in itertools.combinations(lab, 2)) >= 30.0


def test_a_stalled_microphone_is_one_engine_signal_that_the_window_shows(make_window, qtbot, fake_microphone):
    """No audio from a device that looks open: the engine says STALLED (then reopens it), the window's state says
    "no audio" until the device delivers again; it has no stall timer of its own."""
    from ser_live.results import StatusEvent

    window = make_window()
    assert window.start_microphone()
    qtbot.waitUntil(lambda: len(window.session) >= 2, timeout=20_000)
    events, shown = [], window.show_status

    def watched(event):
        events.append(event)
        shown(event)

    window.show_status = watched  # what reaches the window from the engine, through the runner's queue
    mic = fake_microphone.instances[-1]
    mic.failure, mic.stalled = "no audio from 'Fake USB mic' for 2.1 s", True
    fake_microphone.unplug()  # it stops delivering and stays away for the reopening
    qtbot.waitUntil(lambda: StatusKind.DEVICE_LOST in [e.kind for e in events], timeout=20_000)
    kinds = [e.kind for e in events]
    assert kinds.index(StatusKind.STALLED) < kinds.index(StatusKind.DEVICE_LOST)
    assert events[kinds.index(StatusKind.STALLED)].message == "no audio from 'Fake USB mic' for 2.1 s"
    # The window, told only that, says so; the device's loss then takes over, and its return clears both.
    window.show_status(StatusEvent(StatusKind.STALLED, "no audio from 'Fake USB mic' for 2.1 s"))
    window._device_lost = False  # noqa: SLF001 - the state of a stall alone
    assert window.display_state() == "no audio"
    window.show_status(StatusEvent(StatusKind.DEVICE_BACK, "input device back: Fake USB mic"))
    assert window.display_state() != "no audio"


def test_while_nobody_speaks_rows_are_shown_every_few_seconds_and_speech_at_once(make_window, monkeypatch) -> None:
    """Silence keeps producing rows (no speech): they change no emotion, so they are drawn at most every
    QUIET_NEWS_EVERY_S; a speech row is drawn on the next frame; out of sight, none is drawn."""
    import time

    from ser_live.gui import window as window_mod
    from ser_live.gui.runner import RunState

    window = make_window()
    drawn = []
    monkeypatch.setattr(window, "_draw_frame", lambda monitor, news: drawn.append(news))
    with monkeypatch.context() as runner:  # undone before the window closes (and stops its runner)
        runner.setattr(window.runner, "state", RunState.RUNNING)  # listening (no audio needed for this part)
        runner.setattr(window.runner, "drain", lambda: [])
        runner.setattr(window.runner, "monitor", object())
        silence_began = time.monotonic() - window_mod.SILENT_AFTER_S - 1.0
        window._speech_seen_at = silence_began  # noqa: SLF001 - nobody has spoken for a while
        window._history_dirty, window._news_shown_at = True, time.monotonic()  # noqa: SLF001 - a row just shown
        window.tick()
        assert window.frame_interval_ms() == window_mod.IDLE_INTERVAL_MS and drawn == [False]
        window._news_shown_at = time.monotonic() - window_mod.QUIET_NEWS_EVERY_S  # noqa: SLF001 - long enough ago
        window.tick()
        assert drawn == [False, True]
        window._news_shown_at = time.monotonic()  # noqa: SLF001
        window._speech_seen_at = time.monotonic()  # noqa: SLF001 - a speech row came
        window.tick()
        assert drawn[-1] is True and window.frame_interval_ms() == window_mod.FRAME_INTERVAL_MS
        assert not window._news_due(window_mod.HIDDEN_INTERVAL_MS)  # noqa: SLF001 - nothing drawn out of sight


def test_the_window_redraws_within_a_budget_and_not_at_all_when_minimised(make_window, qtbot, speech_file,
                                                                           monkeypatch):
    """A frame budget while someone may speak, a slow pace when nothing moves or nobody speaks, no drawing at all
    while minimised, and the waveform drawn at no more points than the plot has pixel columns."""
    from ser_live.gui import window as window_mod

    window = make_window()
    assert window.frame_interval_ms() == window_mod.IDLE_INTERVAL_MS  # stopped: nothing moves
    drawn = []
    show_audio = window.waveform.show_audio
    monkeypatch.setattr(window.waveform, "show_audio", lambda *a: (drawn.append(a), show_audio(*a)))
    window.open_file(str(speech_file[0]))
    qtbot.waitUntil(lambda: len(drawn) >= 2, timeout=20_000)
    assert window.frame_interval_ms() == window_mod.FRAME_INTERVAL_MS
    qtbot.waitUntil(lambda: window.timer.interval() == window_mod.FRAME_INTERVAL_MS, timeout=5_000)
    assert drawn[-1][0].size > 0 and window.waveform.curve.getData()[1].size <= 2 * max(50, window.waveform.width())
    # Nobody has spoken for a while: the idle pace.
    monkeypatch.setattr(window, "_speech_seen_at", 0.0)
    monkeypatch.setattr(window_mod, "SILENT_AFTER_S", 0.0)
    window._take_events = lambda: None  # noqa: SLF001 - no new speech arrives in this part
    qtbot.waitUntil(lambda: window.timer.interval() == window_mod.IDLE_INTERVAL_MS, timeout=5_000)
    # Minimised: not one more waveform frame, however long.
    window.showMinimized()
    qtbot.waitUntil(lambda: window.frame_interval_ms() == window_mod.HIDDEN_INTERVAL_MS, timeout=5_000)
    before = len(drawn)
    for _ in range(5):
        window.tick()
    assert len(drawn) == before
    window.showNormal()
    assert window.frame_interval_ms() != window_mod.HIDDEN_INTERVAL_MS
    # Unmapped by the window system with no window manager to say "minimised" (xdotool windowunmap under Xvfb, as
    # scripts/bench.py measures it): not exposed, so not drawn either.
    monkeypatch.setattr(window.windowHandle(), "isExposed", lambda: False)
    assert not window.isMinimized() and window.out_of_sight()
    assert window.frame_interval_ms() == window_mod.HIDDEN_INTERVAL_MS
