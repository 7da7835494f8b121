"""Damaged files, profiles and signals that used to get through: each refused or reported in one true line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO, child_pids, process_alive, run_cli, tone, write_wav

from ser_live.audio.capture import GapMeter
from ser_live.model.speaker import SpeakerNormalizer, SpeakerPrior

SR = 16000


def one_error_line(proc, *fragments: str, returncode: int = 1) -> str:
    assert proc.returncode == returncode, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]
    return lines[-1]


@pytest.fixture
def voice_wav(tmp_path) -> Path:
    return write_wav(tmp_path / "voice.wav", np.concatenate([tone(150.0, 2.0, vibrato_hz=3.0),
                                                             np.zeros(SR // 2, np.float32)]))


# 1. A model file with a byte appended -----------------------------------------------------------------------
def test_a_model_file_with_a_byte_appended_is_refused_at_once(tmp_path, voice_wav):
    damaged = tmp_path / "x.npz"
    damaged.write_bytes((REPO / "models" / "light" / "ser-live-light.npz").read_bytes() + b"X")
    started = time.monotonic()
    proc = run_cli("--print", "--input", str(voice_wav), "--model", str(damaged), timeout=30)
    assert time.monotonic() - started < 10  # was: the decompressor looped, memory grew until OOM
    one_error_line(proc, f"model file {damaged} is damaged (1 unexpected bytes after its end)")


@pytest.mark.parametrize(("mangle", "reason"), [
    (lambda b: b[: len(b) // 2], "is damaged or truncated"),
    (lambda b: b[:1000] + bytes(64) + b[1064:], "is damaged"),
    (lambda b: b[: len(b) // 2] + bytes(64) + b[len(b) // 2 + 64 :], "is damaged"),
])
def test_damaged_models_say_what_is_wrong(tmp_path, voice_wav, mangle, reason):
    damaged = tmp_path / "m.npz"
    damaged.write_bytes(mangle((REPO / "models" / "light" / "ser-live-light.npz").read_bytes()))
    proc = run_cli("--print", "--input", str(voice_wav), "--model", str(damaged), timeout=30)
    line = one_error_line(proc, reason)
    assert "(error)" not in line


def test_a_device_given_as_the_model_is_named_as_such():
    proc = run_cli("--print", "--model", "/dev/zero")
    one_error_line(proc, "model path /dev/zero is not a regular file")


# 2. Speaker profiles: every number checked, size bounded, the damaged file kept -----------------------------
def _prior(n: int = 4) -> SpeakerPrior:
    return SpeakerPrior(np.zeros(n), np.ones(n), half_s=2.5)


def _profile(**stats) -> str:
    base = {"count": 10, "mean": [0.0] * 4, "m2": [1.0] * 4}
    return json.dumps({"profile_version": 2, "feature_version": "handcrafted-4", "n_features": 4,
                       "stats": {**base, **stats}})


@pytest.mark.parametrize("content", [
    _profile(m2=[1.0, float("nan"), 1.0, 1.0]).replace("NaN", "NaN"),
    _profile(mean=[1e308, 0.0, 0.0, 0.0]),
    _profile().replace('"count": 10', '"count": 1e400'),
    _profile(count=2.5),
    _profile(count=True),
    "[" * 100_000 + "]" * 100_000,
], ids=["nan-second-moment", "huge-mean", "infinite-count", "fractional-count", "boolean-count", "deeply-nested"])
def test_a_damaged_profile_is_ignored_and_kept_aside(tmp_path, content):
    path = tmp_path / "me.json"
    path.write_text(content)
    speaker = SpeakerNormalizer(_prior(), hop_s=0.5)
    with pytest.warns(UserWarning, match="ignoring speaker profile .* kept as .*me.json.bad"):
        assert not speaker.load(path, profile_key="handcrafted-4")
    assert speaker.stats.count == 0 and np.all(np.isfinite(speaker.transform(np.ones(4))))
    assert not path.exists() and (tmp_path / "me.json.bad").read_text() == content


def test_a_huge_profile_is_refused_unread(tmp_path):
    path = tmp_path / "big.json"
    with open(path, "wb") as fh:  # 200 MB without writing 200 MB
        fh.truncate(200 << 20)
    speaker = SpeakerNormalizer(_prior(), hop_s=0.5)
    started = time.monotonic()
    with pytest.warns(UserWarning, match="larger than 1 MB"):
        assert not speaker.load(path, profile_key="handcrafted-4")
    assert time.monotonic() - started < 1.0


def test_a_valid_profile_still_loads(tmp_path):
    path = tmp_path / "ok.json"
    path.write_text(_profile())
    speaker = SpeakerNormalizer(_prior(), hop_s=0.5)
    assert speaker.load(path, profile_key="handcrafted-4") and speaker.learnt_s == 5.0


def test_a_damaged_profile_on_the_command_line_never_stops_the_monitor(tmp_path, voice_wav):
    profiles = tmp_path / "xdg" / "ser-live" / "profiles"
    profiles.mkdir(parents=True)
    (profiles / "me.json").write_text(_profile(m2=[float("nan")] * 208))
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg")}
    for _ in range(2):  # and on the next start too
        # A 1 s calibration learns every speech window of it, so there is a voice to save.
        proc = run_cli("--print", "--input", str(voice_wav), "--model", "light", "--profile", "me", "--calibrate", "1",
                       env=env)
        assert proc.returncode == 0, proc.stderr
        assert "summary: heard 2.5 s" in proc.stdout
    assert (profiles / "me.json.bad").is_file()
    assert json.loads((profiles / "me.json").read_text())["stats"]["count"] > 0  # learnt afresh and saved


def test_a_folder_where_the_profile_goes_is_a_warning_and_leaves_nothing_behind(tmp_path, voice_wav):
    profiles = tmp_path / "xdg" / "ser-live" / "profiles"
    (profiles / "me.json").mkdir(parents=True)
    proc = run_cli("--print", "--input", str(voice_wav), "--model", "light", "--profile", "me",
                   env={"XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert "could not save the speaker profile" in proc.stderr
    assert sorted(p.name for p in profiles.iterdir()) == ["me.json"]  # no .tmp left


# 3.-4. --classify: signals end the workers too; unreadable folders are errors --------------------------------
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_an_interrupted_classify_ends_its_workers_and_says_how_far_it_got(tmp_path, signum):
    folder = tmp_path / "many"
    folder.mkdir()
    clip = tone(150.0, 3.0, vibrato_hz=3.0)
    for i in range(400):
        write_wav(folder / f"{i:03d}.wav", clip)
    proc = subprocess.Popen([sys.executable, "-m", "ser_live", "--classify", str(folder), "--workers", "2",
                             "--model", "light"], cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 60
    while len(child_pids(proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = child_pids(proc.pid)
    assert len(workers) >= 2, "the workers never started"
    time.sleep(1.0)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signum, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ser-live: interrupted by {signal.Signals(signum).name}: "
                                                   "classified ") and "of 400 files" in lines[0], err
    done = int(lines[0].split("classified ")[1].split(" of")[0])
    assert len(out.splitlines()) == done + 1  # the header and a line per file classified
    time.sleep(0.5)
    assert not [w for w in workers if process_alive(w)], "workers outlived the batch"


def _clips_with_a_locked_folder(tmp_path) -> tuple[Path, Path]:
    clips = tmp_path / "clips"
    (clips / "locked").mkdir(parents=True)
    write_wav(clips / "a.wav", tone(150.0, 2.0, vibrato_hz=3.0))
    write_wav(clips / "locked" / "b.wav", tone(150.0, 2.0, vibrato_hz=3.0))
    return clips, clips / "locked"


def test_unreadable_folders_are_listed_as_errors(tmp_path, monkeypatch, capsys):
    """os.walk's report of a folder it may not list (simulated: as root every folder is readable)."""
    from ser_live.cli.console import run_classify
    from ser_live.engine import batch

    clips, locked = _clips_with_a_locked_folder(tmp_path)
    real_walk = os.walk

    def walk(top, onerror=None, **kwargs):
        for folder, dirs, names in real_walk(top, onerror=onerror, **kwargs):
            if Path(folder) == locked:
                onerror(PermissionError(13, "Permission denied", str(locked)))
                continue
            yield folder, dirs, names

    monkeypatch.setattr(batch.os, "walk", walk)
    assert run_classify([str(clips)], model_name="light", json_lines=True, workers=1) == 1
    out, err = capsys.readouterr()
    results = [json.loads(line) for line in out.splitlines()]
    assert [r["path"] for r in results] == [str(locked), str(clips / "a.wav")]
    assert results[0]["error"] == "cannot read this folder (Permission denied); its files were not classified"
    assert results[1]["error"] is None
    assert "1 of 2 files and folders could not be classified" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may list every folder; this case needs an ordinary user")
def test_a_folder_the_user_may_not_list_is_an_error(tmp_path):
    clips, locked = _clips_with_a_locked_folder(tmp_path)
    locked.chmod(0)
    try:
        proc = run_cli("--classify", str(clips), "--model", "light")
    finally:
        locked.chmod(0o755)
    assert proc.returncode == 1 and "cannot read this folder" in proc.stdout


# 5. A file shorter than its header says -----------------------------------------------------------------------
@pytest.fixture
def short_wav(tmp_path) -> Path:
    long_path = tmp_path / "long.wav"
    sf.write(str(long_path), (tone(150.0, 5.27, vibrato_hz=3.0) * 0.8), SR, subtype="PCM_16")
    data = long_path.read_bytes()
    short = tmp_path / "short.wav"
    short.write_bytes(data[: 44 + int(0.45 * SR) * 2])  # the header still promises 5.27 s
    return short


def test_a_file_shorter_than_its_header_is_analysed_with_a_warning(short_wav):
    for args in (["--print", "--input", str(short_wav)], ["--classify", str(short_wav)]):
        proc = run_cli(*args, "--model", "light")
        assert proc.returncode == 0, proc.stderr
        warning = f"ser-live: warning: {short_wav}: the file is shorter than its header says (0.45 s of 5.27 s)"
        assert [line for line in proc.stderr.splitlines() if line.startswith(warning)], proc.stderr


# 7. SIGHUP ends the console monitor like SIGTERM: summary printed, profile saved ------------------------------
def test_sighup_ends_the_monitor_with_its_summary_and_saves_the_profile(tmp_path):
    path = write_wav(tmp_path / "long.wav", np.tile(np.concatenate([tone(150.0, 1.5, vibrato_hz=3.0),
                                                                    np.zeros(SR // 2, np.float32)]), 30))
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    proc = subprocess.Popen([sys.executable, "-m", "ser_live", "--print", "--input", str(path), "--realtime",
                             "--model", "light", "--profile", "hup"], cwd=str(REPO), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(6.0)
    proc.send_signal(signal.SIGHUP)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.strip().splitlines()[-1].startswith("summary: heard ")
    assert (tmp_path / "xdg" / "ser-live" / "profiles" / "hup.json").is_file()


# 8. The true reason, in one line -------------------------------------------------------------------------------
def test_devices_and_pipes_are_not_called_empty_files(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for path in ("/dev/null", str(fifo)):
        proc = run_cli("--print", "--input", path, "--model", "light", timeout=30)
        one_error_line(proc, f"{path}: is not a regular file (a device, a pipe or a socket)")


def test_the_models_own_window_is_not_blamed_on_the_window_option(tmp_path, voice_wav, tiny_model):
    from ser_live.model.emotion_model import EmotionModel

    model = EmotionModel(tiny_model.estimator, tiny_model.extractor, window_s=100.0, hop_s=0.5,
                         metadata={"note": "a model made for 100 s windows"})
    path = tmp_path / "odd.npz"
    model.save(path)
    proc = run_cli("--print", "--input", str(voice_wav), "--model", str(path))
    line = one_error_line(proc, "the model's window (100 s) must be between 0.5 and 8 s")
    assert "--window" not in line


# 9. Native libraries stay quiet -------------------------------------------------------------------------------------
def test_mp3_decoder_chatter_is_silenced(tmp_path):
    good = tmp_path / "t.mp3"
    try:
        sf.write(str(good), tone(150.0, 2.0, vibrato_hz=3.0), SR, format="MP3")
    except (sf.LibsndfileError, TypeError, ValueError) as exc:
        pytest.skip(f"this libsndfile cannot write MP3 ({exc})")
    data = good.read_bytes()
    damaged = tmp_path / "bad.mp3"
    damaged.write_bytes(data[:400] + bytes(200) + data[600:] + b"garbage" * 50)
    loud = run_cli("--classify", str(damaged), "--model", "light", "--debug")
    assert "libmpg123" in loud.stderr  # the decoder does complain about this file ...
    quiet = run_cli("--classify", str(damaged), "--model", "light")
    assert quiet.returncode == 0 and "libmpg123" not in quiet.stderr  # ... but not to users
    # only ser-live's own lines: the warning about the file, and the closing summary
    assert [line.split(": ")[1].split(" ")[0] for line in quiet.stderr.splitlines()] == ["warning", "classified"]


# 10. A clip shorter than a hop gives its one result; --record is checked first ------------------------------------
def test_a_clip_shorter_than_a_hop_gives_one_result_live_as_in_classify(tmp_path):
    path = write_wav(tmp_path / "blip.wav", tone(150.0, 0.3, vibrato_hz=3.0))
    live = run_cli("--print", "--json", "--input", str(path), "--model", "light")
    batch = run_cli("--classify", str(path), "--json", "--model", "light")
    assert live.returncode == 0 and batch.returncode == 0, live.stderr + batch.stderr
    lines = [json.loads(line) for line in live.stdout.splitlines()]
    assert len(lines) == 1 and lines[0]["t"] == pytest.approx(0.3)
    assert lines[0]["emotion"] == json.loads(batch.stdout)["emotion"]


@pytest.mark.parametrize("target", ["dir/", "existing-dir"])
def test_a_record_path_that_is_a_folder_is_refused_before_listening(tmp_path, voice_wav, target):
    (tmp_path / "existing-dir").mkdir()
    record = f"{tmp_path}{os.sep}{target}"  # as typed: pathlib would drop the trailing slash
    proc = run_cli("--print", "--input", str(voice_wav), "--model", "light", "--record", record)
    one_error_line(proc, "is a folder; give a file name inside it")
    assert "listening" not in proc.stderr and not (tmp_path / "dir").exists()


def test_calibration_longer_than_the_file_says_it_was_incomplete(voice_wav):
    proc = run_cli("--print", "--input", str(voice_wav), "--model", "light", "--calibrate", "5")
    assert proc.returncode == 0
    assert "calibration incomplete: learnt 2 of 5 s of speech before the input ended" in proc.stderr


# The meter behind "dropped N s of audio" ------------------------------------------------------------------------
def _feed(meter: GapMeter, arrivals: list[tuple[float, float]]) -> float:
    for t, audio in arrivals:
        meter.observe(t, audio)
    return meter.lost_s


def test_gap_meter_counts_nothing_for_jittery_or_bunched_delivery():
    rng = np.random.default_rng(0)
    arrivals, audio = [], 0.0
    for k in range(2000):  # 100 s of 50 ms blocks, each 0-80 ms late, some delivered in bursts
        audio += 0.05
        arrivals.append((audio + rng.uniform(0, 0.08) + (0.3 if k % 97 == 0 else 0.0), audio))
    arrivals.sort()
    assert _feed(GapMeter(), arrivals) == 0.0


def test_gap_meter_counts_a_gap_as_long_as_it_was():
    arrivals, audio, t = [], 0.0, 0.0
    for k in range(400):
        t += 0.05 + (3.0 if k == 200 else 0.0)  # three seconds withheld in the middle
        audio += 0.05
        arrivals.append((t + 0.01, audio))
    assert _feed(GapMeter(), arrivals) == pytest.approx(3.0, abs=0.05)


def test_gap_meter_ignores_slow_clock_drift():
    arrivals = [(k * 0.05 * (1 + 200e-6), (k + 1) * 0.05) for k in range(72_000)]  # one hour, 200 ppm apart
    assert _feed(GapMeter(), arrivals) == 0.0


def test_gap_meter_counts_a_stall_that_lasts_until_the_end():
    meter = GapMeter()
    _feed(meter, [(0.05 * (k + 1), 0.05 * (k + 1)) for k in range(100)])
    assert meter.lost_until(5.0 + 4.0) == pytest.approx(4.0, abs=0.15)
