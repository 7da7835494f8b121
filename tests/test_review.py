"""Reviewing a kept session: reading it back, the review window (timeline, click to play, export), ``--review``."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import REPO, run_cli, voice_with_pauses, write_wav
from test_gui import _windows_deleted_on_the_gui_thread, devices, make_window  # noqa: F401 - the window's fixtures

from ser_live.app.review import format_review_summary, load_session
from ser_live.errors import SessionFileError

pytest_plugins = ["pulse"]
SR = 16000
#: A terminal without a display (the tests' own QT_QPA_PLATFORM=offscreen would open the window unseen).
NO_DISPLAY = {"DISPLAY": "", "WAYLAND_DISPLAY": "", "QT_QPA_PLATFORM": ""}


@pytest.fixture(scope="module")
def kept_session(tmp_path_factory):
    """A session recorded as a user would (--record --record-audio), with pauses: speech and no-speech windows."""
    folder = tmp_path_factory.mktemp("kept")
    source = write_wav(folder / "talk.wav", voice_with_pauses(12.0, seed=8))
    proc = run_cli("--print", "--input", str(source), "--model", "light", "--record", str(folder / "s.csv"),
                   "--record-audio")
    assert proc.returncode == 0, proc.stderr
    return folder / "s.csv"


def test_a_kept_session_reads_back_whole(kept_session):
    rec = load_session(kept_session)
    assert rec.t_s.size > 20 and rec.duration_s == pytest.approx(12.0, abs=1e-3)
    assert rec.audio_path == kept_session.with_suffix(".wav") and rec.audio_s == pytest.approx(12.0, abs=1e-3)
    assert rec.problems == () and rec.probs.shape == (rec.t_s.size, len(rec.classes))
    assert np.all(np.isnan(rec.probs[~rec.speech])) and np.allclose(rec.probs[rec.speech].sum(axis=1), 1, atol=1e-3)
    shares = rec.summary()
    assert sum(s.windows for s in shares) == int(rec.speech.sum()) and shares[0].share >= shares[-1].share
    assert "audio kept" in format_review_summary(rec)


def test_a_session_cut_short_shows_what_could_be_read(kept_session, tmp_path):
    text = kept_session.read_text()
    cut = tmp_path / "cut.csv"
    cut.write_text(text[: text.index("\n", len(text) // 2) + 30])  # the crash came in the middle of a row
    rec = load_session(cut)
    whole = load_session(kept_session)
    n = rec.t_s.size
    assert 0 < n < whole.t_s.size and np.array_equal(rec.t_s, whole.t_s[:n])
    assert len(rec.problems) == 1 and "is damaged (cut short?)" in rec.problems[0]
    proc = run_cli("--review", str(cut), env=NO_DISPLAY)  # the summary, and the problem in one line
    assert proc.returncode == 1 and f"{n} windows" in proc.stdout
    warnings = [line for line in proc.stderr.splitlines() if "warning:" in line]
    assert len(warnings) == 1 and "cut.csv: line" in warnings[0] and "Traceback" not in proc.stderr


def test_audio_shorter_than_its_session_is_said_once(kept_session, tmp_path):
    import soundfile as sf

    csv_path = tmp_path / "short.csv"
    csv_path.write_text(kept_session.read_text())
    audio, rate = sf.read(str(kept_session.with_suffix(".wav")), dtype="float32")
    sf.write(str(tmp_path / "short.wav"), audio[: 4 * rate], rate, subtype="PCM_16")
    rec = load_session(csv_path)
    assert rec.problems == (f"{tmp_path / 'short.wav'}: the audio (4.0 s) is shorter than the session (12.0 s); "
                            "playback ends at 4.0 s",)


@pytest.mark.parametrize(("content", "fragment"), [
    (None, "no such session file"),
    ("name,score\nalice,3\n", "is not a ser-live session file"),
])
def test_what_is_not_a_session_is_one_line(tmp_path, content, fragment):
    path = tmp_path / "other.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SessionFileError, match=fragment):
        load_session(path)
    proc = run_cli("--review", str(path), env=NO_DISPLAY)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and fragment in lines[0] and lines[0].startswith("ser-live: ")


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_export_writes_the_review_without_a_display(kept_session, tmp_path, suffix):
    out = tmp_path / f"review{suffix}"
    proc = run_cli("--review", str(kept_session), "--export", str(out), env={"DISPLAY": ""})
    assert proc.returncode == 0 and proc.stderr.strip() == f"ser-live: wrote {out}", proc.stderr
    data = out.read_bytes()
    assert len(data) > 5000
    if suffix == ".png":
        from PyQt6 import QtGui

        image = QtGui.QImage(str(out))
        assert image.width() >= 1000 and image.height() >= 600
        colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
        assert len(colours) > 20  # lines, bands, text: not a blank picture
    elif suffix == ".svg":
        assert b"<svg" in data and b"s.csv" in data
    else:
        assert data.startswith(b"%PDF")


def test_export_to_an_unknown_format_is_one_line(kept_session, tmp_path):
    proc = run_cli("--review", str(kept_session), "--export", str(tmp_path / "review.bmp"))
    assert proc.returncode == 1 and "give a file ending in .png, .svg or .pdf" in proc.stderr


def test_review_options_apply_to_review_only(kept_session, tmp_path):
    proc = run_cli("--print", "--export", str(tmp_path / "x.png"))
    assert proc.returncode == 2 and "--export only applies to --review" in proc.stderr


class FakePlayer:
    """Stands in for the sound card: plays by the test's clock."""

    def __init__(self, samples, rate_hz):
        self.samples, self.rate_hz = samples, rate_hz
        self.position_s, self.playing, self.started_from = 0.0, False, []

    def play(self, from_s=None):
        if from_s is not None:
            self.position_s = from_s
        self.started_from.append(self.position_s)
        self.playing = True

    def stop(self):
        self.playing = False

    def close(self):
        self.playing = False


def test_clicking_a_moment_plays_from_there_and_the_cursor_follows(qtbot, kept_session):
    from PyQt6 import QtCore

    from ser_live.gui.review_window import ReviewWindow

    window = ReviewWindow(load_session(kept_session), player_factory=FakePlayer)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    view = window.timeline.vb
    window.timeline.setXRange(0, 12, padding=0)
    QtCore.QCoreApplication.processEvents()
    scene_point = view.mapViewToScene(QtCore.QPointF(5.0, 0.5))
    widget_point = window.plots.mapFromScene(scene_point)
    qtbot.mouseClick(window.plots.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=widget_point)
    assert window.player is not None and window.player.started_from[-1] == pytest.approx(5.0, abs=0.1)
    assert window.play_button.text() == "Pause" and window.timer.isActive()
    window.player.position_s = 6.25  # the audio played on
    qtbot.waitUntil(lambda: window.cursor.value() == pytest.approx(6.25), timeout=2000)
    assert "6.2 s" in window.position_label.text() or "6.3 s" in window.position_label.text()
    window.toggle_playback()
    assert not window.player.playing and window.play_button.text() == "Play"
    window.player.playing = False
    window.toggle_playback()  # Play again: from where the cursor is
    assert window.player.started_from[-1] == pytest.approx(6.25)


def test_without_audio_the_review_says_so_and_does_not_play(qtbot, kept_session, tmp_path):
    from ser_live.gui.review_window import ReviewWindow

    csv_only = tmp_path / "no-audio.csv"
    csv_only.write_text(kept_session.read_text())
    window = ReviewWindow(load_session(csv_only), player_factory=FakePlayer)
    qtbot.addWidget(window)
    assert not window.play_button.isEnabled() and "--record-audio" in window.play_button.toolTip()
    window.seek(3.0, play=True)
    assert window.player is None and window.cursor.value() == pytest.approx(3.0)


def test_the_main_window_opens_a_session_for_review(make_window, kept_session):  # noqa: F811
    window = make_window()
    review = window.open_session(str(kept_session))
    assert review is not None and review.isVisible() and review.recording.path == kept_session
    assert window.open_session(str(kept_session.with_name("missing.csv"))) is None
    assert "no such session file" in window.banner.text()
    review.close()


@pytest.mark.pulse
def test_the_player_plays_through_the_sound_server(pulse_server, tmp_path):
    """A real output stream (the private PulseAudio server's sink): the position runs at the audio's pace."""
    code = textwrap.dedent("""
        import time, numpy as np
        from ser_live.audio.playback import AudioPlayer
        player = AudioPlayer(np.zeros(16000 * 3, np.float32) + 0.01, 16000)
        started = time.monotonic()
        player.play(from_s=1.0)
        time.sleep(0.5)
        playing = player.playing
        while player.playing and time.monotonic() < started + 15:
            time.sleep(0.05)
        print(playing, player.playing, player.position_s, time.monotonic() - started)
        player.close()
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=str(REPO), capture_output=True, text=True, timeout=60,
                          env=pulse_server.client_env())
    assert proc.returncode == 0, proc.stderr
    playing, still, end_s, took_s = proc.stdout.split()
    assert playing == "True" and still == "False" and float(end_s) == pytest.approx(3.0)
    assert 1.8 <= float(took_s) <= 8.0  # the 2 s from 1.0 s to the end, at the sound card's pace (plus its start)


def test_the_window_keeps_the_audio_when_ticked_and_locks_the_choice_at_start(make_window, qtbot, tmp_path):  # noqa: F811
    import soundfile as sf

    y = voice_with_pauses(3.2, seed=9)
    source = write_wav(tmp_path / "talk.wav", y)
    window = make_window()
    assert not window.keep_audio.isChecked() and window.keep_audio.isEnabled()  # never kept unless asked
    window.keep_audio.setChecked(True)
    kept = window.app_session.audio_recorder.path
    assert kept == window.session.autosave_path.with_suffix(".wav")
    assert window.open_file(str(source)) and not window.keep_audio.isEnabled()
    qtbot.waitUntil(lambda: window.runner.state == "finished", timeout=60_000)
    window.app_session.audio_recorder.close()
    audio, rate = sf.read(str(kept), dtype="float32")
    assert rate == SR and audio.size == y.size
    review = load_session(window.session.autosave_path)
    assert review.audio_path == kept and review.problems == ()


def test_the_review_draws_the_timeline_the_live_window_drew(qtbot, tiny_model, tmp_path):
    """One data source, one drawing: the session file read back gives the live rows, drawn the same way."""
    from ser_live.engine.monitor import Monitor
    from ser_live.gui.review_window import ReviewWindow
    from ser_live.gui.timeline import HistoryPlot, Timeline
    from ser_live.sinks.writers import CsvRecorder

    silence = np.zeros(4 * SR, np.float32)  # longer than a window: no-speech rows between two stretches of talk
    source = write_wav(tmp_path / "talk.wav", np.concatenate([voice_with_pauses(4.0, seed=3), silence,
                                                              voice_with_pauses(4.0, seed=4)]))
    heard = []
    with CsvRecorder(tmp_path / "s.csv", tiny_model.classes) as recorder:
        monitor = Monitor(tiny_model, on_prediction=heard.append)
        monitor.add_callback(recorder)
        monitor.run_file(str(source))
    live = Timeline.from_predictions(heard, tiny_model.classes, hop_s=monitor.hop_s)
    kept = Timeline.from_recording(load_session(tmp_path / "s.csv"))
    assert live.speech.any() and not live.speech.all()
    np.testing.assert_allclose(kept.t_s, live.t_s, atol=5e-4)  # the file keeps 3 decimals of time, 4 of probability
    np.testing.assert_array_equal(kept.speech, live.speech)
    np.testing.assert_allclose(kept.probs, live.probs, atol=5e-5)  # NaN where no speech, in both
    assert kept.hop_s == pytest.approx(live.hop_s, abs=1e-3)

    history = HistoryPlot(tiny_model.classes)
    review = ReviewWindow(load_session(tmp_path / "s.csv"), player_factory=None)
    qtbot.addWidget(history)
    qtbot.addWidget(review)
    now_s = float(live.t_s[-1])
    history.show_timeline(live, now_s)
    for emotion in tiny_model.classes:
        x_live, y_live = history.lines.curves[emotion].getData()
        x_kept, y_kept = review.lines.curves[emotion].getData()
        np.testing.assert_allclose(x_kept, x_live + now_s, atol=1e-3)  # the live view puts now at 0
        np.testing.assert_allclose(y_kept, y_live, atol=5e-5)
    for item in (0, 1):  # the no-speech bands: edges and heights
        np.testing.assert_allclose(review.lines.no_speech.getData()[item],
                                   history.lines.no_speech.getData()[item] + (now_s if item == 0 else 0.0), atol=1e-3)
