"""Devices that fail: the sound server dies mid-session (and comes back), or a device opens at no usable rate."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest
from conftest import REPO
from pulse import PulseServer, PulseUnavailable, require_pulse_tools

from ser_live.audio import capture
from ser_live.cli import main as cli


class _Lines:
    """Collect a pipe's lines on a thread so the test can wait for one without blocking the child."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._q: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self._q.put(line)

    def drain(self) -> list[str]:
        """Every line read so far, taking in what is queued without waiting."""
        while True:
            try:
                self.lines.append(self._q.get_nowait())
            except queue.Empty:
                return self.lines

    def wait_for(self, predicate, *, timeout_s: float, what: str) -> str:
        """Read lines until one satisfies ``predicate``; fail with ``what`` on timeout (a hang guard)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self._q.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"timed out waiting for {what}; got so far: {self.lines[-8:]}") from None
            self.lines.append(line)
            if predicate(line):
                return line


@pytest.fixture
def pulse():
    require_pulse_tools()
    server = PulseServer()
    try:
        server.start()
    except PulseUnavailable as exc:
        server.stop()
        pytest.skip(f"private PulseAudio server did not start: {exc}")
    yield server
    server.stop()


@pytest.mark.pulse
@pytest.mark.slow
def test_lost_sound_server_is_reported_retried_resumed_and_stoppable(pulse, tiny_model_path, tmp_path):
    record = tmp_path / "session.csv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ser_live", "--print", "--json", "--model", str(tiny_model_path),
         "--record", str(record), "--record-audio"],
        env=pulse.client_env(), cwd=str(REPO), text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = _Lines(proc.stdout), _Lines(proc.stderr)
    try:
        for _ in range(2):
            line = out.wait_for(lambda line: line.startswith("{"), timeout_s=60, what="predictions from the microphone")
        stream_began_at = time.monotonic() - json.loads(line)["t"]  # a line arrives just after its window ends
        pulse.kill()
        err.wait_for(lambda line: "input device lost" in line, timeout_s=30, what="the device-lost message")
        # It keeps retrying (and saying so) while the device is gone ...
        for _ in range(2):
            err.wait_for(lambda line: "still no input device" in line, timeout_s=30, what="a retry message")
        assert proc.poll() is None
        n_before = len(out.lines)
        last_t = json.loads(out.lines[-1])["t"] if out.lines else 0.0
        pulse.start()
        # ... and carries on when it is back.
        err.wait_for(lambda line: "input device back" in line, timeout_s=30, what="the device-back message")
        for _ in range(3):
            line = out.wait_for(lambda line: line.startswith("{"), timeout_s=30, what="predictions after reconnect")
        assert len(out.lines) > n_before and json.loads(line)["t"] > last_t
        # The outage (10 s and more) is counted as lost audio once the device delivers again.
        time.sleep(2.0)
        newest = json.loads(out.drain()[-1])
        assert newest["lost_s"] >= 5.0
        # ... and written as silence of its length: stream time (the session file's and the kept audio's clock)
        # keeps the wall clock's pace across the outage (behind by the analysis latency and a line's hop).
        behind_s = (time.monotonic() - stream_began_at) - newest["t"]
        assert -0.5 <= behind_s <= 2.0, (behind_s, newest)
        # Lost again, and this time the user gives up: Ctrl-C while retrying ends cleanly.
        pulse.kill()
        err.wait_for(lambda line: "input device lost" in line, timeout_s=30, what="the second device-lost message")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        err.wait_for(lambda line: "summary:" in line, timeout_s=10, what="the closing summary")
        assert not any("Traceback" in line for line in err.lines)
        _check_the_kept_audio_matches_the_session_file(record)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _check_the_kept_audio_matches_the_session_file(record) -> None:
    """The kept audio and the session file share one time base: the WAV ends where the last window ends."""
    import csv

    import soundfile

    rows = list(csv.DictReader(record.open()))
    audio_s = soundfile.info(str(record.with_suffix(".wav"))).duration
    assert float(rows[-1]["t_s"]) - 0.6 <= audio_s <= float(rows[-1]["t_s"]) + 2.5, (audio_s, rows[-1]["t_s"])


class _RefusingPortAudio:
    """A PortAudio with one input device that refuses every rate and channel count."""

    paFloat32 = 1
    paContinue = 0

    def __init__(self) -> None:
        self.attempts: list[tuple[int, int]] = []

    def get_default_input_device_info(self):
        return {"index": 0}

    def get_device_count(self):
        return 1

    def get_device_info_by_index(self, i):
        return {"name": "Odd USB Mic", "maxInputChannels": 2, "defaultSampleRate": 44100.0, "hostApi": 0}

    def get_host_api_info_by_index(self, i):
        return {"name": "ALSA"}

    def open(self, *, rate, channels, **kwargs):
        self.attempts.append((rate, channels))
        raise OSError(-9997, "Invalid sample rate")

    def terminate(self):
        pass


def test_device_that_opens_at_no_usable_rate_is_one_clear_error(monkeypatch, tiny_model_path, capsys):
    pa = _RefusingPortAudio()
    monkeypatch.setattr(capture, "_portaudio", lambda: (pa, pa))
    code = cli.main(["--print", "--model", str(tiny_model_path)])
    out, err = capsys.readouterr()
    assert code == 1
    # Every combination was tried: the model's rate and the device's, mono and its own channel count.
    assert set(pa.attempts) == {(16000, 1), (44100, 1), (16000, 2), (44100, 2)}
    error_lines = [line for line in err.splitlines() if "error" in line]
    assert len(error_lines) == 1
    assert "cannot open input device 'Odd USB Mic' at any usable rate" in error_lines[0]
    assert "--device" in error_lines[0] and "Traceback" not in err
    assert len(out.splitlines()) <= 1  # at most the legend: no prediction was printed
