"""The application layer: one SessionConfig and open_session under both front-ends, the same answers in each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, voice_with_pauses, write_wav
from test_gui import _windows_deleted_on_the_gui_thread, devices, make_window  # noqa: F401 - the window's fixtures

from ser_live.app.session import MonitorSettings, SessionConfig, open_session
from ser_live.audio.capture import InputDevice, choose_input_device
from ser_live.errors import ConfigError, DeviceError, SessionFileError
from ser_live.results import Prediction, StatusKind

SR = 16000


def voice(seconds: float, seed: int = 0) -> np.ndarray:
    return voice_with_pauses(seconds, seed)


@pytest.fixture(scope="module")
def light_model():
    from ser_live.model.emotion_model import EmotionModel

    return EmotionModel.load("light")


@pytest.fixture
def voice_file(tmp_path) -> Path:
    return write_wav(tmp_path / "voice.wav", voice(12.0))


# -- SessionConfig: validated at the boundary ----------------------------------------------------------------
@pytest.mark.parametrize(("fields", "message"), [
    ({"window_s": 0.001}, "--window (0.001 s) must be between 0.5 and 8 s"),
    ({"window_s": 100.0}, "--window (100 s) must be between 0.5 and 8 s"),
    ({"hop_s": 1e-9}, "--hop (1e-09 s) must be at least 0.05 s"),
    ({"hop_s": float("nan")}, "--hop (nan s) must be at least 0.05 s"),
    ({"window_s": 1.0, "hop_s": 2.0}, "--hop (2 s) must not be longer than --window (1 s)"),
    ({"smoothing": 1.0}, "--smooth must be in [0, 1)"),
    ({"profile": ""}, "--profile needs a value"),
    ({"record_path": " "}, "--record needs a value"),
    ({"profile": "../etc"}, "--profile: profile name '../etc' must be"),
    ({"realtime": True}, "--realtime goes with --input FILE"),
    ({"device": "0", "input_path": "a.wav"}, "--device chooses a microphone; it does not apply with --input"),
])
def test_config_refuses_what_cannot_work_in_one_line(fields, message):
    with pytest.raises(ConfigError) as info:
        SessionConfig(**fields)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_a_model_window_that_does_not_fit_is_named_as_the_models(light_model):
    with pytest.raises(ConfigError, match=r"--hop \(3 s\) must not be longer than the model's window \(2 s\)"):
        open_session(SessionConfig(hop_s=3.0), model=light_model)
    session = open_session(SessionConfig(window_s=4.0, hop_s=1.0, smoothing=0.5), model=light_model)
    assert session.settings == MonitorSettings(4.0, 1.0, 0.5)


# -- open_session -------------------------------------------------------------------------------------------
def test_open_session_runs_a_file_and_keeps_the_voice_in_a_profile(voice_file, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    events, rows = [], []
    # The default model: the light one judges none of this even tone neutral, so --adapt would learn nothing.
    config = SessionConfig(model="default", input_path=str(voice_file), profile="tester", adapt=True,
                           record_path=str(tmp_path / "rec.csv"))
    with open_session(config, on_status=events.append) as session:
        assert session.adapting and session.settings == MonitorSettings(2.0, 0.5, 0.0)
        monitor = session.monitor(on_prediction=rows.append)
        monitor.add_callback(session.recorder)
        monitor.run_file(str(voice_file))
        learnt = session.learnt_s
    assert len(rows) == 24 and all(isinstance(r, Prediction) for r in rows)
    # --adapt learns the windows the plain model judges neutral: some of this even tone, never more than all.
    assert 0 < learnt <= 0.5 * sum(r.speech for r in rows)
    assert (tmp_path / "rec.csv").read_text().count("\n") == 25  # header + a row per hop
    saved = tmp_path / "xdg" / "ser-live" / "profiles" / "tester.json"
    assert saved.is_file()
    # The next session starts from the saved voice and says so, as a typed notice.
    events.clear()
    with open_session(config.__class__(model="default", profile="tester"), on_status=events.append) as again:
        assert again.learnt_s == pytest.approx(learnt)
    assert [e.kind for e in events] == [StatusKind.NOTICE] and "already learnt" in events[0].message


def test_a_record_file_is_checked_before_anything_runs(light_model, tmp_path):
    existing = tmp_path / "old.csv"
    existing.write_text("kept\n")
    for path, message in ((existing, "already exists"), (tmp_path, "is a folder"),
                          (str(tmp_path / "new-dir") + "/", "is a folder")):
        with pytest.raises(SessionFileError, match=message):
            open_session(SessionConfig(record_path=str(path)), model=light_model)
    assert existing.read_text() == "kept\n" and not (tmp_path / "new-dir").exists()


def test_calibration_holds_predictions_back_and_reports_progress(light_model, voice_file):
    events, shown = [], []
    session = open_session(SessionConfig(calibrate_s=3.0), model=light_model, on_status=events.append)
    monitor = session.monitor(on_prediction=shown.append)
    monitor.run_file(str(voice_file))
    session.close()
    kinds = [e.kind for e in events]
    assert kinds[0] == StatusKind.CALIBRATING and kinds.count(StatusKind.CALIBRATED) == 1
    assert StatusKind.CALIBRATION_INCOMPLETE not in kinds
    # 24 windows, all speech, ending at 0.5, 1.0, ... 12 s: the 6th completes 3 s of the voice (a hop of
    # new speech each) but was classified before it was learnt from, so the 7th is the first shown.
    assert len(shown) == 24 - 6 and shown[0].t_s == pytest.approx(7 * 0.5)


def test_calibration_that_cannot_finish_says_so(light_model, voice_file):
    events = []
    session = open_session(SessionConfig(calibrate_s=60.0), model=light_model, on_status=events.append)
    session.monitor(on_prediction=lambda p: None).run_file(str(voice_file))
    session.close()
    assert events[-1].kind == StatusKind.CALIBRATION_INCOMPLETE
    assert "learnt 12 of 60 s" in events[-1].message


def test_calibration_is_honoured_by_the_console(voice_file):
    proc = run_cli("--print", "--json", "--input", str(voice_file), "--model", "light", "--calibrate", "3")
    assert proc.returncode == 0, proc.stderr
    assert "calibrating: read this aloud in your everyday voice (3 s of speech)" in proc.stderr
    assert "calibration done: learnt 3 s of your neutral voice; monitoring" in proc.stderr
    assert len(proc.stdout.splitlines()) == 24 - 6


def test_calibration_is_honoured_by_the_window(make_window, light_model, voice_file, qtbot):  # noqa: F811
    window = make_window(model=light_model, calibrate_s=3.0)
    window.open_file(str(voice_file))
    qtbot.waitUntil(lambda: window.runner.state == "finished", timeout=60_000)
    assert len(window.session) == 24 - 6  # the same rows the console printed
    assert window.app_session.calibration.done


def test_options_given_to_the_window_and_the_console_mean_the_same(light_model):
    from ser_live.cli.main import build_parser

    args = build_parser().parse_args(["--model", "light", "--window", "3", "--hop", "1", "--smooth", "0.2",
                                      "--no-adapt", "--device", "USB"])
    config = SessionConfig.from_args(args)
    assert config == SessionConfig(model="light", window_s=3.0, hop_s=1.0, smoothing=0.2, adapt=False, device="USB")
    assert not open_session(config, model=light_model).adapting


# -- one device choice ----------------------------------------------------------------------------------------
DEVICES = [
    InputDevice(0, "HDA Intel PCH: ALC257 Analog (hw:0,0)", 2, 44100.0, "ALSA"),
    InputDevice(3, "USB Audio: Blue Yeti (hw:1,0)", 2, 48000.0, "ALSA"),
    InputDevice(5, "pulse", 32, 44100.0, "ALSA"),
    InputDevice(6, "default", 32, 44100.0, "ALSA", is_default=True),
    InputDevice(7, "0", 1, 16000.0, "ALSA"),
]
#: spec -> the index both front-ends must choose, or the start of the error both must give.
DEVICE_CASES = [
    (None, 6), ("", 6), ("3", 3), ("yeti", 3), ("BLUE", 3), ("pulse", 5), ("Default", 6),
    ("0", 7),  # a device named "0" is that device, not index 0
    ("9", "no input device with index 9"),
    ("nosuchmic", "no input device named like 'nosuchmic'"),
    ("hw:", "'hw:' matches several input devices (0: HDA Intel PCH: ALC257 Analog (hw:0,0), 3: USB Audio"),
]


def _console_choice(monkeypatch, spec):
    from ser_live.audio import capture

    monkeypatch.setattr(capture, "list_input_devices", lambda: list(DEVICES))
    try:
        return capture.choose_input_device(capture.list_input_devices(), spec).index
    except DeviceError as exc:
        return str(exc)


def _window_choice(make_window, monkeypatch, spec):  # noqa: F811
    monkeypatch.setattr("ser_live.audio.capture.list_input_devices", lambda: list(DEVICES))
    window = make_window(device=spec)
    if window.banner.level == "error":
        assert window.selected_device() is None  # nothing preselected on a guess
        return window.banner.text().removeprefix("--device: ")
    return window.selected_device()


@pytest.mark.parametrize(("spec", "expected"), DEVICE_CASES)
def test_device_choice_is_the_same_in_both_front_ends(make_window, monkeypatch, spec, expected):  # noqa: F811
    console = _console_choice(monkeypatch, spec)
    window = _window_choice(make_window, monkeypatch, spec)
    assert console == window
    if isinstance(expected, int):
        assert console == expected == choose_input_device(DEVICES, spec).index
    else:
        assert console.startswith(expected)


# -- options that do not apply are errors ---------------------------------------------------------------------
REJECTED = [
    (["--classify", "x.wav", "--input", "a.wav"], "--input does not apply to --classify"),
    (["--classify", "x.wav", "--print"], "--print does not apply to --classify"),
    (["--classify", "x.wav", "--record", "r.csv"], "--record does not apply to --classify"),
    (["--classify", "x.wav", "--realtime"], "--realtime does not apply to --classify"),
    (["--classify", "x.wav", "--device", "0"], "--device does not apply to --classify"),
    (["--classify", "x.wav", "--window", "3"], "--window does not apply to --classify"),
    (["--classify", "x.wav", "--hop", "1"], "--hop does not apply to --classify"),
    (["--classify", "x.wav", "--profile", "me"], "--profile does not apply to --classify"),
    (["--classify", "x.wav", "--calibrate", "5"], "--calibrate does not apply to --classify"),
    (["--classify", "x.wav", "--no-adapt"], "--no-adapt does not apply to --classify"),
    (["--classify", "x.wav", "--adapt"], "--adapt does not apply to --classify"),
    (["--classify", "x.wav", "--smooth", "0.5"], "--smooth does not apply to --classify"),
    (["--list-devices", "--model", "light"], "--model does not apply to --list-devices"),
    (["--print", "--workers", "2"], "--workers only applies to --classify"),
    (["--print", "--profile", "me", "--no-adapt"], "--profile uses a learnt voice, which --no-adapt turns off"),
    (["--print", "--calibrate", "5", "--no-adapt"], "--calibrate uses a learnt voice, which --no-adapt turns off"),
    (["--print", "--adapt", "--no-adapt"], "argument --no-adapt: not allowed with argument --adapt"),
    (["--print", "--record", ""], "--record needs a value"),
    (["--print", "--profile", ""], "--profile needs a value"),
    (["--print", "--hop", "1e-9"], "--hop (1e-09 s) must be at least 0.05 s"),
    (["--print", "--window", "0.001"], "--window (0.001 s) must be between 0.5 and 8 s"),
    (["--print", "--realtime"], "--realtime goes with --input FILE"),
    (["--print", "--input", "a.wav", "--device", "1"], "--device chooses a microphone"),
    (["--hop", "abc"], "argument --hop: 'abc' is not a number"),
]


@pytest.mark.parametrize(("argv", "message"), REJECTED, ids=[" ".join(a) for a, _ in REJECTED])
def test_options_that_do_not_apply_are_one_line_and_exit_2(argv, message):
    proc = run_cli(*argv)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr and proc.stdout == ""
    assert lines[0].startswith(f"ser-live: error: {message}"), lines[0]


