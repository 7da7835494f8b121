"""A slow model must never hold up capture: late windows are skipped (latency bounded) or drops counted."""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest
from conftest import SAMPLE_RATE_HZ as SR
from conftest import tone

from ser_live.audio import capture
from ser_live.engine.monitor import Monitor
from ser_live.model.emotion_model import EmotionModel
from ser_live.sinks.writers import format_summary

BLOCK_S = 0.05


def speech_like(duration_s: float) -> np.ndarray:
    """Voice with short pauses, so the speech gate passes (nearly) every window to the model."""
    pattern = np.concatenate([tone(150.0, 1.2, vibrato_hz=3.0), np.random.default_rng(0).normal(0, 0.002, SR // 5)])
    return np.resize(pattern.astype(np.float32), int(duration_s * SR))


class FakeMicrophone:
    """Stands in for MicrophoneStream: a producer thread writes ``signal`` to the sink in 50 ms blocks.

    ``pace`` is real-time seconds per second of audio (1.0 = real time). Each write's wall-clock
    duration is recorded: the sink (the ring buffer) must never make the producer wait.
    """

    signal = np.zeros(0, np.float32)
    pace = 1.0
    #: ``(at_s, for_s)``: after ``at_s`` of audio, deliver nothing for ``for_s`` seconds (that audio is lost).
    pause: tuple[float, float] | None = None
    instances: list[FakeMicrophone] = []

    def __init__(self, sink, *, device=None, sample_rate_hz: int = SR) -> None:
        self.sink = sink
        self.device = dataclasses.make_dataclass("Dev", ["name"])("fake mic")
        self.done = threading.Event()
        self.blocks_written = 0
        self.received_s = self.last_block_at = 0.0  # what MicrophoneStream's callback keeps, for loss counting
        self.failure = None
        self._stop = threading.Event()
        FakeMicrophone.instances.append(self)

    def start(self) -> None:
        threading.Thread(target=self._produce, daemon=True).start()

    def _produce(self) -> None:
        n = int(BLOCK_S * SR)
        t0 = time.monotonic()
        for i in range(0, self.signal.shape[0], n):
            if self._stop.is_set():
                break
            self.sink(self.signal[i : i + n])
            self.blocks_written += 1
            self.received_s += min(n, self.signal.shape[0] - i) / SR
            self.last_block_at = time.monotonic()
            if self.pause is not None and i < self.pause[0] * SR <= i + n:
                time.sleep(self.pause[1])
                t0 += self.pause[1]
            delay = t0 + (i + n) / SR * self.pace - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        self.done.set()

    def healthy(self) -> bool:
        return True

    def close(self) -> None:
        self._stop.set()


@pytest.fixture
def fake_mic(monkeypatch):
    FakeMicrophone.instances, FakeMicrophone.pause = [], None
    monkeypatch.setattr(capture, "MicrophoneStream", FakeMicrophone)
    return FakeMicrophone


@dataclasses.dataclass
class SlowEstimator:
    """Wraps a fitted estimator: every predict_proba first sleeps, or waits for ``gate`` to open."""

    inner: object
    sleep_s: float = 0.0
    gate: threading.Event | None = None
    calls: int = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def predict_proba(self, x):
        self.calls += 1
        if self.gate is not None and not self.gate.wait(timeout=120):
            raise TimeoutError("test gate never opened")
        if self.sleep_s:
            time.sleep(self.sleep_s)
        return self.inner.predict_proba(x)


def slowed(model: EmotionModel, **kwargs) -> tuple[EmotionModel, SlowEstimator]:
    estimator = SlowEstimator(model.estimator, **kwargs)
    return dataclasses.replace(model, estimator=estimator), estimator


def _wait(predicate, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.mark.parametrize("max_lag_windows", [4, None])
def test_blocked_model_never_blocks_capture(tiny_model, fake_mic, max_lag_windows):
    """The model is stuck until the producer has written 15 s into a 10 s buffer: capture must finish."""
    gate = threading.Event()
    model, estimator = slowed(tiny_model, gate=gate)
    fake_mic.signal, fake_mic.pace = speech_like(15.0), 0.1
    got = []
    monitor = Monitor(model, buffer_s=10.0, max_lag_windows=max_lag_windows, on_prediction=got.append)
    monitor.listen()
    try:
        mic = fake_mic.instances[0]
        # If writing waited on the analysis this would never happen (the model waits for it).
        assert mic.done.wait(timeout=60), "capture was blocked by the stuck model"
        assert estimator.calls >= 1  # the model was indeed stuck in a call while all of it was written
        written = monitor.buffer.total_written
        assert written == fake_mic.signal.shape[0]
        n_before = len(got)
        gate.set()
        _wait(lambda: monitor.schedule.samples_until_next(written) > 0, "the analysis to catch up")
    finally:
        monitor.stop()
    after = got[n_before:]
    summary = monitor.summary
    if max_lag_windows is not None:
        # Stale windows were skipped: what is analysed after the stall is the most recent audio.
        # Besides the batch already in the model when it stuck, at most max_lag windows were analysed,
        # and they are the newest ones: latency is bounded, nothing queues up.
        assert summary.skipped_windows > 0 and summary.lost_s == 0
        assert len(got) + summary.skipped_windows == written // monitor.hop_samples
        assert len(got) <= 2 * max_lag_windows
        assert got[-1].t_s == (written // monitor.hop_samples) * monitor.hop_s
        assert [p.t_s for p in after[-max_lag_windows:]] == [
            got[-1].t_s - k * monitor.hop_s for k in reversed(range(max_lag_windows))
        ]
        assert f"skipped {summary.skipped_windows} late windows" in format_summary(summary)
    else:
        # Nothing skipped, so the overwritten audio is counted as dropped (and read as silence).
        assert summary.skipped_windows == 0 and len(got) == written // monitor.hop_samples
        assert summary.lost_s >= 15.0 - 10.0 - 2 * monitor.window_s
        assert f"dropped {summary.lost_s:.1f} s of audio" in format_summary(summary)


@pytest.mark.slow
def test_slow_model_latency_stays_bounded(tiny_model, fake_mic):
    """Each window costs 0.6 s against a 0.25 s hop: without skipping the lag would grow ~0.6 s/s."""
    sleep_s, hop_s, max_lag = 0.6, 0.25, 2
    model, estimator = slowed(tiny_model, sleep_s=sleep_s)
    fake_mic.signal, fake_mic.pace = speech_like(14.0), 1.0
    lags_s = []
    monitor = Monitor(model, window_s=1.0, hop_s=hop_s, max_lag_windows=max_lag)
    monitor.add_callback(lambda p: lags_s.append(monitor.buffer.total_written / SR - p.t_s))
    monitor.listen()
    try:
        assert fake_mic.instances[0].done.wait(timeout=120)
    finally:
        monitor.stop()
    assert estimator.calls >= 5 and monitor.summary.skipped_windows > 0
    # A bound set by the lag allowance and the cost of one batch, not by the session's length.
    bound_s = max_lag * (hop_s + sleep_s) + hop_s + 1.0
    assert max(lags_s) <= bound_s, lags_s
    assert max(lags_s[len(lags_s) // 2 :]) <= bound_s  # and it does not creep up late in the run


def _zero_runs(samples: np.ndarray) -> list[tuple[int, int]]:
    """``(start, length)`` of every run of exact zeros."""
    edges = np.flatnonzero(np.diff(np.r_[0, samples == 0, 0].astype(np.int8)))
    return [(int(a), int(b - a)) for a, b in zip(edges[::2], edges[1::2])]


@pytest.mark.slow
def test_audio_the_device_withheld_is_counted_and_written_as_silence_of_its_length(tiny_model, fake_mic):
    """2 s without audio in the middle of 6 s: counted lost, and the stream (and the kept audio) keeps wall time."""
    fake_mic.signal = np.random.default_rng(1).normal(0, 0.05, 6 * SR).astype(np.float32)  # never exactly 0
    fake_mic.pause = (3.0, 2.0)
    kept, rows = [], []

    def keep(samples: np.ndarray, *, lost: int) -> None:
        kept.extend([np.zeros(lost, np.float32), samples])

    monitor = Monitor(tiny_model, on_prediction=rows.append)
    monitor.add_audio_sink(keep)
    monitor.listen()
    started = time.monotonic()
    try:
        assert fake_mic.instances[0].done.wait(timeout=60)
        span_s = time.monotonic() - started
        time.sleep(0.1)  # the last window is analysed
        lost_s = monitor.lost_s  # before stopping, which counts a stall still going on (the source ended)
    finally:
        monitor.stop()
    assert lost_s == pytest.approx(2.0, abs=0.25)
    # What was heard is the audio delivered, exactly; the silence written is the loss counted, to the sample.
    assert monitor.summary.heard_s == pytest.approx(6.0, abs=1e-6)
    assert monitor.silence_samples == round(lost_s * SR)
    # So stream time keeps the wall clock's pace: the stream is as long as the session lasted.
    assert monitor.buffer.total_written / SR == pytest.approx(span_s, abs=0.4)
    # The kept audio holds it as one run of silence of that length, soon after the 3 s where audio stopped
    # (written once the loss is measured, before the next block: within the meter's settling time).
    audio = np.concatenate(kept)
    assert audio.size == monitor.buffer.total_written
    start, length = max(_zero_runs(audio), key=lambda run: run[1])
    assert length == monitor.silence_samples
    assert 3.0 <= start / SR <= 3.0 + 1.0, start / SR
    assert rows[-1].lost_s == pytest.approx(lost_s, abs=0.01)
