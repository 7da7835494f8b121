"""The ser-live command as a user runs it: --print (text and JSON), --classify, --record, signals and errors."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
from conftest import REPO, run_cli, tone, write_wav

from ser_live.audio import capture
from ser_live.cli import main as cli
from ser_live.engine.monitor import Prediction
from ser_live.features.handcrafted import FEATURE_VERSION
from ser_live.model.file_format import read_bundle, write_bundle
from ser_live.sinks.writers import TextPrinter, text_bar

HOP_S = 0.5


def voice_file(path, *, pause_s: float = 1.0, voiced_s: float = 3.0, rate_hz: int = 16000):
    """Silence, a voiced stretch, silence: both kinds of hop in one file."""
    silence = np.zeros(int(pause_s * rate_hz), np.float32)
    return write_wav(path, np.concatenate([silence, tone(170.0, voiced_s, sample_rate_hz=rate_hz, vibrato_hz=3.0),
                                           silence]), rate_hz)


def model_args(tiny_model_path) -> list[str]:
    return ["--model", str(tiny_model_path)]


def assert_one_error_line(proc, *fragments: str, returncode: int = 1) -> None:
    assert proc.returncode == returncode, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("ser-live: ") and "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]


# -- --print --json ----------------------------------------------------------------------------------
_JSON_TYPES = {"string": str, "number": (int, float), "integer": int, "boolean": bool, "object": dict,
               "null": type(None)}


def check_schema(obj: dict, fields: dict) -> None:
    """``obj`` has exactly the documented keys, in order, each of one of its documented JSON types."""
    assert list(obj) == list(fields)
    for key, (types, _meaning) in fields.items():
        value = obj[key]
        assert any(isinstance(value, _JSON_TYPES[t]) and not (t in ("number", "integer") and isinstance(value, bool))
                   for t in types), (key, value, types)


def check_json_line(obj: dict, classes: list[str]) -> None:
    """The schema of one --json line (README, ser_live.sinks.writers.PREDICTION_JSON_FIELDS), and its meaning."""
    from ser_live.sinks.writers import PREDICTION_JSON_FIELDS

    check_schema(obj, PREDICTION_JSON_FIELDS)
    speech = obj["speech"]
    assert isinstance(obj["t"], float) and obj["t"] > 0
    assert isinstance(speech, bool)
    assert isinstance(obj["confidence"], float) and 0.0 <= obj["confidence"] <= 1.0
    assert isinstance(obj["level_db"], float) and math.isfinite(obj["level_db"]) and obj["level_db"] <= 0.0
    if speech:
        assert obj["emotion"] in classes
        probs = obj["probs"]
        assert list(probs) == classes and all(isinstance(v, float) and 0 <= v <= 1 for v in probs.values())
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-3)
        assert obj["confidence"] == max(probs.values()) == probs[obj["emotion"]]
    else:
        assert obj["emotion"] is None and obj["confidence"] == 0.0 and obj["probs"] is None


def test_print_json_lines_follow_the_schema(tiny_model_path, tiny_model, tmp_path):
    path = voice_file(tmp_path / "voice.wav")
    proc = run_cli("--print", "--json", "--input", str(path), *model_args(tiny_model_path))
    assert proc.returncode == 0, proc.stderr
    objs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(objs) == 10  # 5 s of audio, a hop every 0.5 s
    for obj in objs:
        check_json_line(obj, list(tiny_model.classes))
    assert [o["t"] for o in objs] == [HOP_S * (k + 1) for k in range(10)]
    assert {o["speech"] for o in objs} == {True, False}
    assert not objs[0]["speech"] and objs[0]["level_db"] == -120.0  # digital silence
    # The summary goes to stderr, so stdout stays pure JSON lines.
    assert "summary: heard 5.0 s" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("name", ["default", "light"])
def test_shipped_models_by_name_follow_the_schema(tmp_path, name):
    """Both shipped models: the default (speech encoder) and --model light."""
    from ser_live.model.emotion_model import EmotionModel

    classes = list(EmotionModel.load(None if name == "default" else name).classes)
    path = voice_file(tmp_path / "voice.wav")
    proc = run_cli("--print", "--json", "--input", str(path), *([] if name == "default" else ["--model", name]))
    assert proc.returncode == 0, proc.stderr
    objs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(objs) == 10
    for obj in objs:
        check_json_line(obj, classes)
    assert {o["speech"] for o in objs} == {True, False}


def test_print_text_lines_are_aligned_under_the_header(tiny_model_path, tmp_path):
    path = voice_file(tmp_path / "voice.wav")
    proc = run_cli("--print", "--input", str(path), *model_args(tiny_model_path))
    assert proc.returncode == 0, proc.stderr
    header, *lines, summary = proc.stdout.splitlines()
    assert header.split() == ["time", "emotion", "conf", "neu", "hap", "sad", "ang", "fea", "dis", "sur", "level"]
    assert len(lines) == 10
    assert summary.startswith("summary: heard 5.0 s, speech in ") and "dropped 0.0 s of audio" in summary
    width = len(header)
    for line in lines:
        assert len(line) == width, f"{line!r} is not as wide as {header!r}"
        assert line.endswith("dBFS")
        assert line[: header.index("time") + 4].strip().endswith("s")  # time right-aligned under 'time'
    speech = [line for line in lines if "(no speech)" not in line]
    quiet = [line for line in lines if "(no speech)" in line]
    assert speech and quiet
    bars_at = header.index("neu")
    assert all(line.index("(no speech)") == bars_at for line in quiet)
    legend = [line for line in proc.stderr.splitlines() if "bars:" in line]
    legend = " ".join(line for line in proc.stderr.splitlines()[1:3])  # two lines, to fit 80 columns
    assert "neu(tral)" in legend and "sur(prised)" in legend


def test_text_printer_shows_each_probability_as_a_bar():
    out = []

    class Sink:
        def write(self, s):
            out.append(s)

        def flush(self):
            pass

    classes = ("neutral", "happy", "sad")
    printer = TextPrinter(Sink(), classes, bar_width=4, repeat_header_every=2)
    probs = {"neutral": 0.0, "happy": 0.75, "sad": 0.25}
    for t in (0.5, 1.0, 1.5):
        printer(Prediction(t, True, "happy", 0.75, probs, -23.4))
    printer(Prediction(2.0, False, None, 0.0, None, -61.0))
    text = "".join(out)
    assert text.count(printer.header()) == 1  # repeated once, before the third line
    first = text.splitlines()[0]
    assert "happy" in first and "75%" in first and "-23 dBFS" in first
    assert "·    ███  █   " in first  # 0 -> dot, 0.75 of 4 cells -> 3 cells, 0.25 -> 1 cell
    assert text_bar(1.0, 5) == "█████" and text_bar(1 / 40, 5) == "▏    " and text_bar(0.0, 5) == "·    "
    assert "(no speech)" in text.splitlines()[-1] and text.splitlines()[-1].endswith("-61 dBFS")


def test_record_csv_matches_the_json_output(tiny_model_path, tmp_path):
    path = voice_file(tmp_path / "voice.wav")
    record = tmp_path / "out" / "session.csv"
    proc = run_cli("--print", "--json", "--input", str(path), "--record", str(record), *model_args(tiny_model_path))
    assert proc.returncode == 0, proc.stderr
    objs = [json.loads(line) for line in proc.stdout.splitlines()]
    with open(record, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(objs)
    for row, obj in zip(rows, objs):
        assert float(row["t_s"]) == obj["t"] and bool(int(row["speech"])) == obj["speech"]
        if obj["speech"]:
            assert row["emotion"] == obj["emotion"]
            assert float(row["p_happy"]) == pytest.approx(obj["probs"]["happy"], abs=1e-4)


def test_smooth_and_window_options_reach_the_monitor(tiny_model_path, tmp_path):
    path = voice_file(tmp_path / "voice.wav")
    proc = run_cli("--print", "--json", "--input", str(path), "--window", "1", "--hop", "0.25", "--smooth", "0.5",
                   *model_args(tiny_model_path))
    assert proc.returncode == 0, proc.stderr
    times = [json.loads(line)["t"] for line in proc.stdout.splitlines()]
    assert times[:3] == [0.25, 0.5, 0.75] and len(times) == 20
    assert "window 1 s, hop 0.25 s" in proc.stderr


# -- --classify ----------------------------------------------------------------------------------------
@pytest.fixture
def clip_folder(tmp_path):
    root = tmp_path / "clips"
    (root / "deeper" / "deepest").mkdir(parents=True)
    voice_file(root / "a.wav", pause_s=0.2, voiced_s=2.0)
    voice_file(root / "deeper" / "b.flac", pause_s=0.2, voiced_s=1.0, rate_hz=44100)
    voice_file(root / "deeper" / "deepest" / "c.ogg", pause_s=0.2, voiced_s=1.5, rate_hz=48000)
    write_wav(root / "deeper" / "silence.wav", np.zeros(16000, np.float32))
    (root / "deeper" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    (root / "notes.txt").write_text("not audio, not picked up from a folder")
    return root


@pytest.mark.parametrize("workers", ["1", "2"])
def test_classify_json_with_good_and_bad_files(tiny_model_path, tiny_model, clip_folder, tmp_path, workers):
    missing = tmp_path / "missing.wav"
    proc = run_cli("--classify", str(clip_folder), str(missing), "--json", "--workers", workers,
                   *model_args(tiny_model_path))
    assert proc.returncode == 1  # some files failed
    results = {os.path.relpath(o["path"], tmp_path): o for o in map(json.loads, proc.stdout.splitlines())}
    assert sorted(results) == sorted([
        "clips/a.wav", "clips/deeper/b.flac", "clips/deeper/deepest/c.ogg", "clips/deeper/silence.wav",
        "clips/deeper/broken.wav", "missing.wav",
    ])
    from ser_live.sinks.writers import CLIP_JSON_FIELDS

    for r in results.values():
        check_schema(r, CLIP_JSON_FIELDS)
    for name in ("clips/a.wav", "clips/deeper/b.flac", "clips/deeper/deepest/c.ogg"):
        r = results[name]
        assert r["error"] is None and r["speech_windows"] > 0
        assert r["emotion"] in tiny_model.classes and list(r["probs"]) == list(tiny_model.classes)
        assert sum(r["probs"].values()) == pytest.approx(1.0, abs=1e-3) and r["confidence"] == max(r["probs"].values())
    assert results["clips/a.wav"]["duration_s"] == pytest.approx(2.4, abs=0.01)
    assert results["clips/deeper/b.flac"]["duration_s"] == pytest.approx(1.4, abs=0.01)
    silence = results["clips/deeper/silence.wav"]
    assert silence["emotion"] is None and silence["probs"] is None and silence["speech_windows"] == 0
    broken = results["clips/deeper/broken.wav"]
    assert "broken.wav" in broken["error"] and broken["emotion"] is None and broken["duration_s"] is None
    assert results["missing.wav"]["error"] == f"{missing}: no such file"
    assert_one_error_line(proc, "classified 6 files (", "; 2 of 6 files could not be classified")


def test_classify_all_good_exits_0_and_prints_text(tiny_model_path, clip_folder):
    proc = run_cli("--classify", str(clip_folder / "a.wav"), str(clip_folder / "deeper" / "b.flac"),
                   *model_args(tiny_model_path))
    assert proc.returncode == 0
    assert re.fullmatch(r"ser-live: classified 2 files \(0\.00 h of audio\) in [0-9.]+ s \([0-9]+ audio-s/s\)\n",
                        proc.stderr), proc.stderr  # the closing summary, and nothing else: stderr is no terminal
    lines = proc.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].split("\t") == ["path", "emotion", "confidence", "duration"]  # the header row
    path, emotion, confidence, duration = lines[1].split("\t")
    assert path.endswith("a.wav") and emotion and 0 < float(confidence) <= 1 and duration == "2.4s"


def test_classify_gives_the_same_results_with_one_or_many_workers(tiny_model_path, clip_folder):
    runs = [run_cli("--classify", str(clip_folder), "--json", "--workers", w, *model_args(tiny_model_path))
            for w in ("1", "3")]
    assert runs[0].stdout == runs[1].stdout


# -- errors ------------------------------------------------------------------------------------------
def test_missing_model_is_one_line(tmp_path):
    path = voice_file(tmp_path / "v.wav")
    proc = run_cli("--print", "--input", str(path), "--model", str(tmp_path / "nope.npz"))
    assert_one_error_line(proc, "nope.npz", "does not exist")
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        ({"config": {"formant_tracking": True}}, ["formant_tracking", "another version of ser-live"]),
        ({"version": FEATURE_VERSION + 1}, [f"features version {FEATURE_VERSION + 1}", "retrain"]),
    ],
)
def test_model_made_for_other_feature_code_is_refused_in_one_line(tiny_model_path, tmp_path, change, fragments):
    from ser_live.errors import ModelError
    from ser_live.model.emotion_model import EmotionModel

    bundle = read_bundle(tiny_model_path)
    if "config" in change:
        bundle["extractor"]["config"] = {**bundle["extractor"]["config"], **change["config"]}
    else:
        bundle["extractor"].update(change)
    bad = tmp_path / "future.npz"
    write_bundle(bad, bundle)
    with pytest.raises(ModelError) as info:
        EmotionModel.load(bad)
    assert all(f in str(info.value) for f in fragments)
    proc = run_cli("--print", "--input", str(voice_file(tmp_path / "v.wav")), "--model", str(bad))
    assert_one_error_line(proc, "future.npz", *fragments)
    assert proc.stdout == ""


@pytest.mark.parametrize("content", [None, b"", b"garbage, not audio"])
def test_unreadable_input_file_is_one_line(tiny_model_path, tmp_path, content):
    path = tmp_path / "in.wav"
    if content is not None:
        path.write_bytes(content)
    proc = run_cli("--print", "--input", str(path), *model_args(tiny_model_path))
    assert_one_error_line(proc, "in.wav")
    assert proc.stdout == ""


def test_hop_longer_than_window_is_one_line(tiny_model_path, tmp_path):
    proc = run_cli("--print", "--input", str(voice_file(tmp_path / "v.wav")), "--window", "1", "--hop", "2",
                   *model_args(tiny_model_path))
    assert_one_error_line(proc, "--hop", returncode=2)


def no_devices(monkeypatch, devices=()):
    """Make PortAudio (in this process) see exactly ``devices``."""
    from test_capture import FakePortAudio, FakePyAudioModule

    pa = FakePortAudio(list(devices), accepts=lambda r, c: True, signal_at=lambda r, c: np.zeros((0, c), np.float32))
    monkeypatch.setattr(capture, "_portaudio", lambda: (FakePyAudioModule, pa))


def test_no_input_device_is_one_line(tiny_model_path, monkeypatch, capsys):
    no_devices(monkeypatch)
    assert cli.main(["--print", *model_args(tiny_model_path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "no input device found" in err and "--input FILE" in err
    assert cli.main(["--list-devices"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err == "ser-live: no input devices found; plug in a microphone or use --input FILE\n"


def test_unknown_device_is_one_line(tiny_model_path, monkeypatch, capsys):
    from test_capture import device

    no_devices(monkeypatch, [device("USB mic", 1, 48000.0)])
    assert cli.main(["--print", "--device", "webcam", *model_args(tiny_model_path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err == "ser-live: error: no input device named like 'webcam'; see 'ser-live --list-devices'\n"
    assert cli.main(["--print", "--device", "7", *model_args(tiny_model_path)]) == 1
    assert "no input device with index 7" in capsys.readouterr().err


def test_list_devices_prints_index_channels_rate_and_name(monkeypatch, capsys):
    from test_capture import device

    no_devices(monkeypatch, [device("Built-in Audio Analog Stereo", 2, 44100.0), device("HDMI out", 0),
                             device("USB PnP Sound Device: Audio (hw:2,0)", 1, 48000.0)])
    assert cli.main(["--list-devices"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["index", "channels", "rate_hz", "name"]
    assert [r.split()[:3] for r in rows] == [["0", "2", "44100"], ["2", "1", "48000"]]
    assert rows[0].endswith("Built-in Audio Analog Stereo [FakeAPI]  (default)")
    assert "USB PnP Sound Device: Audio (hw:2,0) [FakeAPI]" in rows[1]


def test_broken_pipe_is_not_an_error(tiny_model_path, tmp_path):
    path = voice_file(tmp_path / "v.wav", voiced_s=8.0)
    model = " ".join(model_args(tiny_model_path))
    cmd = f"{sys.executable} -m ser_live --print --json --input {path} {model} | head -1"
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, cwd=str(REPO),
                          timeout=120)
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 1
    assert "Traceback" not in proc.stderr and "Error" not in proc.stderr


# -- signals -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_ends_a_realtime_run_cleanly_with_the_summary(tiny_model_path, tmp_path, signum):
    path = voice_file(tmp_path / "long.wav", voiced_s=30.0)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ser_live", "--print", "--input", str(path), "--realtime", *model_args(tiny_model_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(REPO),
    )
    lines: list[str] = []
    first_hops = threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line)
            if sum("dBFS" in x for x in lines) >= 3:
                first_hops.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not first_hops.wait(120):  # a hang guard, not a speed requirement
            proc.kill()
            pytest.fail(f"no hops from ser-live --print --realtime (exit {proc.wait()}): {proc.stderr.read()}")
        proc.send_signal(signum)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(10)
    err = proc.stderr.read()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert lines[-1].startswith("summary: heard ")
    heard_s = float(lines[-1].split()[2])
    assert 1.5 <= heard_s < 30.0  # stopped early, having heard what it printed
    assert sum("dBFS" in x for x in lines) >= 3


def test_runs_as_a_module_and_as_a_console_script():
    for cmd in ([sys.executable, "-m", "ser_live", "--version"], [os.path.join(os.path.dirname(sys.executable),
                                                                               "ser-live"), "--version"]):
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and out.stdout.startswith("ser-live ")


def test_print_without_a_display_or_mode_falls_back_to_the_console(tiny_model_path, tmp_path):
    env = {k: "" for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    proc = run_cli("--input", str(voice_file(tmp_path / "v.wav")), *model_args(tiny_model_path), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "no display found: showing the console monitor instead" in proc.stderr
    assert proc.stdout.splitlines()[0].split()[0] == "time"


def test_the_console_fits_an_80_column_terminal(tmp_path):
    path = voice_file(tmp_path / "voice.wav")
    proc = run_cli("--print", "--input", str(path), "--model", "light")
    assert proc.returncode == 0, proc.stderr
    table = [line for line in proc.stdout.splitlines() if not line.startswith("summary: ")]  # a sentence, it wraps
    legend = [line for line in proc.stderr.splitlines() if not line.startswith("ser-live: listening to ")]
    assert len(table) == 11 and len(legend) == 2
    assert all(len(line) <= 80 for line in table + legend), [line for line in table + legend if len(line) > 80]


def test_the_command_runs_with_one_blas_thread_even_before_numpy_is_loaded():
    """OpenBLAS's spinning second thread cost the encoder monitor a third of a core; ser-live pins one.

    threadpoolctl limits only libraries already loaded, and importing ser_live loads no numpy any more,
    so the limit must load it first (a fresh interpreter, as the command starts).
    """
    code = ("import sys; from ser_live.process import one_blas_thread; one_blas_thread(); "
            "from threadpoolctl import threadpool_info; "
            "print(sorted({i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(REPO), check=True)
    assert out.stdout.strip() == "[1]"
