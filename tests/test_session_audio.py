"""Keeping the audio of a session (--record FILE.csv --record-audio): a WAV beside the CSV, on the CSV's time base."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO, run_cli, voice_with_pauses, write_wav

from ser_live.sinks.writers import AudioRecorder

SR = 16000


def last_t(csv_path) -> float:
    with open(csv_path, newline="") as fh:
        return float(list(csv.DictReader(fh))[-1]["t_s"])


def test_the_audio_beside_the_csv_is_what_the_monitor_heard(tmp_path):
    y = voice_with_pauses(6.3, seed=4)
    source = write_wav(tmp_path / "talk.wav", y)
    record = tmp_path / "session.csv"
    proc = run_cli("--print", "--input", str(source), "--model", "light", "--record", str(record), "--record-audio")
    assert proc.returncode == 0, proc.stderr
    assert f"keeping the audio in {tmp_path / 'session.wav'}" in proc.stderr
    kept, rate = sf.read(str(tmp_path / "session.wav"), dtype="float32")
    assert rate == SR and kept.shape == y.shape
    np.testing.assert_allclose(kept, y, atol=1.0 / 32768)  # 16-bit
    assert last_t(record) == pytest.approx(y.size / SR, abs=1e-3)  # the file's last window ends where the audio does


def test_a_session_killed_with_sigkill_leaves_both_files_open_and_aligned(tmp_path):
    source = write_wav(tmp_path / "talk.wav", voice_with_pauses(30.0, seed=5))
    record = tmp_path / "kept.csv"
    proc = subprocess.Popen([sys.executable, "-m", "ser_live", "--print", "--input", str(source), "--realtime",
                             "--model", "light", "--record", str(record), "--record-audio"], cwd=str(REPO),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (record.exists() and record.read_text().count("\n") > 8):
        time.sleep(0.05)
    time.sleep(1.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    csv_end_s = last_t(record)  # the CSV opens: every row but one being written is there
    info = sf.info(str(tmp_path / "kept.wav"))  # and so does the WAV
    kept, _ = sf.read(str(tmp_path / "kept.wav"), dtype="float32")
    assert kept.size == info.frames > 0
    wav_s = info.frames / info.samplerate
    assert csv_end_s - 1.0 - 0.05 <= wav_s <= csv_end_s + 0.6, (csv_end_s, wav_s)  # at most a second lost
    original, _ = sf.read(str(source), dtype="float32")
    np.testing.assert_allclose(kept, original[: kept.size], atol=1.0 / 32768)  # aligned from the first sample


@pytest.mark.parametrize(("args", "message", "status"), [
    (["--record-audio"], "--record-audio keeps the audio beside the session file: give --record FILE.csv too", 2),
    (["--record", "{tmp}/s.wav", "--record-audio"], "name the session file .csv", 1),
])
def test_record_audio_that_cannot_work_is_one_line(tmp_path, args, message, status):
    source = write_wav(tmp_path / "talk.wav", voice_with_pauses(2.0))
    proc = run_cli("--print", "--input", str(source), "--model", "light", *[a.format(tmp=tmp_path) for a in args])
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == status and len(lines) == 1 and message in lines[0], proc.stderr


def test_an_existing_audio_file_is_never_overwritten_and_no_csv_is_left(tmp_path):
    source = write_wav(tmp_path / "talk.wav", voice_with_pauses(2.0))
    (tmp_path / "s.wav").write_bytes(b"earlier recording")
    proc = run_cli("--print", "--input", str(source), "--model", "light", "--record", str(tmp_path / "s.csv"),
                   "--record-audio")
    assert proc.returncode == 1 and "already exists" in proc.stderr
    assert (tmp_path / "s.wav").read_bytes() == b"earlier recording" and not (tmp_path / "s.csv").exists()


def test_audio_the_analysis_could_not_keep_is_silence_of_its_length(tmp_path):
    recorder = AudioRecorder(tmp_path / "a.wav", SR, flush_s=0.01)
    recorder.write(np.full(800, 0.5, np.float32))
    recorder.write(np.full(400, -0.5, np.float32), lost=1600)
    assert recorder.seconds == pytest.approx((800 + 1600 + 400) / SR) and recorder.silence_s == pytest.approx(0.1)
    y, _ = sf.read(str(tmp_path / "a.wav"), dtype="float32")  # flushed: readable before it is closed
    assert y.size == 2800 and np.all(y[800:2400] == 0) and np.all(y[2400:] < 0) and np.all(y[:800] > 0)
    recorder.close()


def test_the_monitor_hands_its_sinks_every_sample_once_in_order(tiny_model):
    from ser_live.engine.monitor import Monitor

    y = voice_with_pauses(3.3, seed=6)
    got: list[tuple[np.ndarray, int]] = []
    monitor = Monitor(tiny_model)
    monitor.add_audio_sink(lambda samples, lost=0: got.append((samples.copy(), lost)))
    for block in np.array_split(y, 7):
        monitor.feed(block)
    assert sum(lost for _, lost in got) == 0
    np.testing.assert_array_equal(np.concatenate([s for s, _ in got]), y)


def test_the_wav_header_is_rewritten_on_flush(tmp_path):
    """What the kill test relies on: libsndfile's flush rewrites the WAV header, so a killed file reads whole."""
    code = ("import numpy as np, os, signal, soundfile as sf;"
            f"f = sf.SoundFile({str(tmp_path / 'k.wav')!r}, 'w', samplerate=16000, channels=1, format='WAV',"
            " subtype='PCM_16'); f.write(np.zeros(16000, np.float32) + 0.1); f.flush();"
            "os.kill(os.getpid(), signal.SIGKILL)")
    subprocess.run([sys.executable, "-c", code], check=False)
    assert sf.info(str(tmp_path / "k.wav")).frames == 16000
    assert os.path.getsize(tmp_path / "k.wav") == 44 + 32000
