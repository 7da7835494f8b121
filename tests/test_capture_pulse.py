"""Real capture through PortAudio: a private PulseAudio server, a virtual microphone, espeak-ng speech.

Runs wherever ``pulseaudio``, ``pactl`` and ``paplay`` are installed (``make test`` installs them)
and skips with a reason elsewhere. The server is private (see tests/pulse.py): the user's own
sound server is never touched.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from conftest import REPO, espeak, write_wav

from ser_live.audio.files import read_audio

pytest_plugins = ["pulse"]
pytestmark = pytest.mark.pulse

RATE_HZ = 16000


class LiveRun:
    """``python -m ser_live ...`` against the private server, with every stdout line time-stamped on arrival."""

    def __init__(self, server, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ser_live", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(REPO), env=server.client_env(),
        )
        self.lines: list[tuple[float, str]] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self._changed.notify_all()

    def wait_for_lines(self, n: int, timeout_s: float = 60.0) -> None:
        with self._changed:
            ok = self._changed.wait_for(lambda: len(self.lines) >= n or self.proc.poll() is not None, timeout_s)
        if not ok or len(self.lines) < n:
            self.finish(signal.SIGKILL)
            pytest.fail(f"ser-live printed {len(self.lines)} of {n} lines; stderr: {self.stderr}")

    def finish(self, signum: int, timeout_s: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        self.stderr = self.proc.stderr.read()
        return self.proc.returncode

    stderr = ""


@pytest.fixture(scope="module")
def speech_clip(tmp_path_factory):
    """(path of silence + espeak-ng speech + silence at 22.05 kHz, lead silence s, speech onset s, speech end s)."""
    folder = tmp_path_factory.mktemp("pulse-audio")
    speech_path = espeak("Hello, this is a test of the live emotion monitor, speaking into a virtual microphone.",
                         folder / "speech.wav")
    speech = read_audio(speech_path, sample_rate_hz=22050)
    loud = np.flatnonzero(np.abs(speech) > 0.02 * np.abs(speech).max())
    lead_s, tail_s = 3.0, 3.0
    silence = np.zeros(int(22050 * lead_s), np.float32)
    clip = np.concatenate([silence, speech, np.zeros(int(22050 * tail_s), np.float32)])
    path = write_wav(folder / "silence-speech-silence.wav", clip, 22050)
    return path, lead_s, lead_s + loud[0] / 22050, lead_s + loud[-1] / 22050


def test_pyaudio_lists_the_pulse_device(pulse_server):
    proc = subprocess.run([sys.executable, "-m", "ser_live", "--list-devices"], capture_output=True, text=True,
                          cwd=str(REPO), env=pulse_server.client_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    header, *rows = proc.stdout.splitlines()
    assert header.split() == ["index", "channels", "rate_hz", "name"]
    names = [row.split(None, 3)[3] for row in rows]
    assert any(name.startswith("pulse ") for name in names), proc.stdout


def test_microphone_stream_records_what_is_played(pulse_server, monkeypatch, tmp_path):
    # In this process: PortAudio's ALSA 'pulse' device, opened at 16 kHz mono, hears a 440 Hz tone.
    from ser_live.audio.capture import MicrophoneStream

    for key, value in pulse_server.env.items():
        monkeypatch.setenv(key, value)
    t = np.arange(int(1.5 * 44100)) / 44100
    tone_path = write_wav(tmp_path / "a440.wav", (0.25 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 44100)
    got: list[np.ndarray] = []
    mic = MicrophoneStream(lambda block: got.append(np.array(block, copy=True)), device="pulse", sample_rate_hz=RATE_HZ)
    mic.start()
    try:
        time.sleep(0.3)
        pulse_server.play(tone_path)
        time.sleep(0.5)
    finally:
        mic.close()
    assert mic.device.name == "pulse" and mic.capture_rate_hz == RATE_HZ and mic.channels == 1
    y = np.concatenate(got)
    assert y.shape[0] > 1.5 * RATE_HZ
    frames = y[: y.shape[0] // 1600 * 1600].reshape(-1, 1600)
    loud = frames[np.sqrt(np.mean(frames**2, axis=1)) > 0.05]
    assert loud.shape[0] >= 10  # about a second of the tone arrived
    spectrum = np.abs(np.fft.rfft(loud * np.hanning(1600), axis=1)).mean(axis=0)
    assert np.fft.rfftfreq(1600, 1 / RATE_HZ)[np.argmax(spectrum)] == pytest.approx(440, abs=10)
    assert np.sqrt(np.mean(loud**2)) == pytest.approx(0.25 / np.sqrt(2), rel=0.25)


def test_live_print_json_finds_speech_where_it_was_played_and_stops_on_sigint(
    pulse_server, speech_clip, tiny_model_path, record_property
):
    path, lead_s, onset_s, end_s = speech_clip
    run = LiveRun(pulse_server, "--print", "--json", "--model", str(tiny_model_path))
    run.wait_for_lines(4)  # two seconds of the virtual microphone's silence
    played_at = time.monotonic()
    pulse_server.play(path)
    run.wait_for_lines(len(run.lines) + 4)  # the tail of the clip, and two more seconds
    status = run.finish(signal.SIGINT)

    assert status == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert "listening to microphone 'default'" in run.stderr
    assert "summary: heard " in run.stderr.splitlines()[-1]
    hops = [(arrived, json.loads(line)) for arrived, line in run.lines]
    times = [h["t"] for _, h in hops]
    assert times == [0.5 * (k + 1) for k in range(len(times))]  # every hop, in order, none skipped

    # Stream time of the clip: the earliest arrival minus its time stamp is when the stream began
    # (plus the least processing delay).
    stream_started = min(arrived - h["t"] for arrived, h in hops)
    onset_t = played_at + onset_s - stream_started
    end_t = played_at + end_s - stream_started
    slack_s = 0.5  # paplay start-up and the server's buffering
    before = [h for _, h in hops if h["t"] <= onset_t - slack_s]
    # Windows holding at least half a second of the speech.
    during = [h for _, h in hops if onset_t + 0.5 + slack_s <= h["t"] <= end_t + 1.5 - slack_s]
    after = [h for _, h in hops if h["t"] - 2.0 >= end_t + slack_s]
    detail = f"onset at {onset_t:.2f} s, end at {end_t:.2f} s: {[(h['t'], h['speech']) for _, h in hops]}"
    assert len(before) >= 6 and not any(h["speech"] for h in before), detail
    assert all(h["level_db"] == -120.0 for h in before), detail  # the virtual microphone's digital silence
    assert len(during) >= 6 and all(h["speech"] for h in during), detail
    assert len(after) >= 2 and not any(h["speech"] for h in after), detail

    # Reaction time as a user sees it: speech starts playing -> first speech line arrives.
    first_speech_arrival = next(arrived for arrived, h in hops if h["speech"])
    reaction_s = first_speech_arrival - (played_at + onset_s)
    record_property("speech_reaction_s", round(reaction_s, 3))
    print(f"\nspeech onset -> first speech hop on stdout: {reaction_s:.2f} s ({detail})")


def test_device_by_name_and_by_index(pulse_server, tiny_model_path):
    listing = subprocess.run([sys.executable, "-m", "ser_live", "--list-devices"], capture_output=True, text=True,
                             cwd=str(REPO), env=pulse_server.client_env(), timeout=60)
    rows = [row.split(None, 3) for row in listing.stdout.splitlines()[1:]]
    index = next(row[0] for row in rows if row[3].startswith("pulse "))
    for spec in ("Puls", index):  # a case-insensitive fragment of the name, and the index
        run = LiveRun(pulse_server, "--print", "--json", "--device", spec, "--model", str(tiny_model_path))
        run.wait_for_lines(2)
        status = run.finish(signal.SIGTERM)
        assert status == 0, run.stderr
        assert "listening to microphone 'pulse'" in run.stderr and "Traceback" not in run.stderr
        assert all(not json.loads(line)["speech"] for _, line in run.lines)
        assert run.stderr.splitlines()[-1].startswith("ser-live: summary: heard ")


def test_unknown_device_on_a_real_server_is_one_line(pulse_server, tiny_model_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ser_live", "--print", "--device", "no such mic", "--model", str(tiny_model_path)],
        capture_output=True, text=True, cwd=str(REPO), env=pulse_server.client_env(), timeout=60,
    )
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == "ser-live: error: no input device named like 'no such mic'; see 'ser-live --list-devices'\n"


def test_live_output_into_a_pipe_that_closes_ends_quietly(pulse_server, tiny_model_path):
    cmd = (f"{sys.executable} -m ser_live --print --json --model {tiny_model_path} | head -3")
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, cwd=str(REPO),
                          env=pulse_server.client_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 3
    assert proc.stderr.splitlines() == [
        "ser-live: listening to microphone 'default'; window 2 s, hop 0.5 s; Ctrl-C to stop"
    ]
