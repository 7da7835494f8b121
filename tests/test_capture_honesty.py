"""Honest capture: real PortAudio capture from the private PulseAudio microphone, on a loaded machine and
with the source suspended. What the monitor says it lost must be what it did not hear.

The truth is measured beside the monitor: the wall-clock time from its first audio to its end, less the
audio it says it heard. A suspended source withholds audio for as long as it is suspended; CPU hogs
(started and stopped by the test) only delay delivery, so nothing may be reported lost, and no device
may be called lost.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import re
import signal
import time

import numpy as np
import pytest
from conftest import write_wav
from test_capture_pulse import LiveRun

pytest_plugins = ["pulse"]
pytestmark = [pytest.mark.pulse, pytest.mark.slow]

SR = 16000


def _hog(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(20_000))


@pytest.fixture
def noise_clip(tmp_path):
    """Quiet noise, so every block carries audio (a digital-silence source could pass for a stalled one)."""
    rng = np.random.default_rng(0)
    return write_wav(tmp_path / "noise.wav", (rng.normal(0, 0.02, 40 * SR)).astype(np.float32))


def _summary(stderr: str) -> tuple[float, float]:
    """(heard_s, lost_s) from the closing summary line (stderr with --json)."""
    line = [ln for ln in stderr.splitlines() if ln.startswith("ser-live: summary: ")][-1]
    heard = float(re.search(r"heard ([\d.]+) s", line).group(1))
    dropped = float(re.search(r"dropped ([\d.]+) s of audio", line).group(1))
    return heard, dropped


def _run(pulse_server, noise_clip, during) -> tuple[LiveRun, float, float, float]:
    """Run the monitor, call ``during()`` in the middle; returns the run and (heard, reported, true) losses."""
    player = pulse_server.play(noise_clip, wait=False)
    run = LiveRun(pulse_server, "--print", "--json", "--model", "light")
    try:
        run.wait_for_lines(4)
        first_line_at = run.lines[0][0]
        during()
        # Then 4 s more (not lines: after an outage its silence brings several windows at once), and two lines,
        # so the last line is not one analysed before the silence of a loss measured just then was written.
        time.sleep(4.0)
        run.wait_for_lines(len(run.lines) + 2)
        stopped_at = time.monotonic()
        status = run.finish(signal.SIGINT)
    finally:
        player.kill()
        player.wait()
    assert status == 0, run.stderr
    heard_s, lost_s = _summary(run.stderr)
    # The first line reports the window ending 0.5 s into the stream: the stream began about then.
    span_s = stopped_at - (first_line_at - json.loads(run.lines[0][1])["t"])
    print(f"\nheard {heard_s} s, reported lost {lost_s} s, true lost {span_s - heard_s:.2f} s\n{run.stderr}")
    return run, heard_s, lost_s, span_s - heard_s


def test_a_loaded_machine_loses_nothing_and_loses_no_device(pulse_server, noise_clip):
    stop = mp.Event()

    def load() -> None:
        hogs = [mp.Process(target=_hog, args=(stop,)) for _ in range(3)]  # more hogs than cores
        for hog in hogs:
            hog.start()
        time.sleep(8.0)
        stop.set()
        for hog in hogs:
            hog.join()

    run, heard_s, lost_s, true_lost_s = _run(pulse_server, noise_clip, load)
    assert "lost" not in run.stderr.replace("dropped", ""), run.stderr  # no device lost, no audio lost
    assert "input device" not in run.stderr, run.stderr
    assert abs(lost_s - max(true_lost_s, 0.0)) <= 0.2, (heard_s, lost_s, true_lost_s)
    assert lost_s <= 0.2


def test_a_suspended_source_is_counted_as_lost_audio(pulse_server, noise_clip):
    def suspend() -> None:
        pulse_server.pactl("suspend-source", pulse_server.source, "1")
        time.sleep(3.0)
        pulse_server.pactl("suspend-source", pulse_server.source, "0")

    run, heard_s, lost_s, true_lost_s = _run(pulse_server, noise_clip, suspend)
    assert true_lost_s >= 2.8, (heard_s, true_lost_s)  # the source really withheld the 3 s
    assert abs(lost_s - true_lost_s) <= 0.2, (heard_s, lost_s, true_lost_s, run.stderr)
    # Said live as well as in the summary, and in the lines themselves.
    assert "ser-live: lost " in run.stderr, run.stderr
    last = json.loads(run.lines[-1][1])
    assert last["lost_s"] == pytest.approx(lost_s, abs=0.15)
    # The lost audio was written as silence of its length: stream time kept the wall clock's pace.
    span_s = heard_s + true_lost_s
    assert span_s - 1.5 <= last["t"] <= span_s + 0.3, (last["t"], span_s)
