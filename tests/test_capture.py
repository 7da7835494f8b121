"""Capture without a sound server: device choice, rate fallback, mixing to mono, and Monitor.listen on a fake PortAudio.

The fake stands in for PyAudio at the boundary ser-live uses (``capture._portaudio``): a device
list, ``open()`` that accepts or refuses a rate and channel count like a real device, and a stream
whose thread calls the callback with float32 bytes. The real PortAudio path is tested against a
private PulseAudio server in test_capture_pulse.py.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import soxr
from conftest import tone

from ser_live.audio import capture
from ser_live.audio.capture import InputDevice, MicrophoneStream, choose_input_device
from ser_live.engine.monitor import Monitor
from ser_live.errors import DeviceError


class FakePyAudioModule:
    paFloat32 = 1
    paContinue = 0
    paInputOverflow = 2


class FakeStream:
    """Calls the callback from its own thread with the device's signal, ``speed`` times real time."""

    def __init__(self, signal: np.ndarray, rate_hz: int, frames_per_buffer: int, callback, speed: float) -> None:
        self.signal = signal
        self.rate_hz = rate_hz
        self.frames_per_buffer = frames_per_buffer
        self.callback = callback
        self.speed = speed
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = time.monotonic()
        for i in range(0, self.signal.shape[0], self.frames_per_buffer):
            block = np.ascontiguousarray(self.signal[i : i + self.frames_per_buffer], dtype=np.float32)
            due = t0 + (i + block.shape[0]) / self.rate_hz / self.speed
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            self.callback(block.tobytes(), block.shape[0], {}, 0)
        self.finished.set()

    def start_stream(self) -> None:
        self._thread.start()

    def stop_stream(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def close(self) -> None:
        self.stop_stream()

    def is_active(self) -> bool:
        return not self._stop.is_set()


class FakePortAudio:
    """A PyAudio instance with the given input devices.

    ``accepts(rate_hz, channels)`` decides what ``open`` allows; ``signal_at(rate_hz, channels)``
    gives the audio a stream opened that way delivers.
    """

    def __init__(self, devices, *, accepts, signal_at, speed: float = 50.0, refuse_with=ValueError) -> None:
        self.devices = devices
        self.accepts = accepts
        self.signal_at = signal_at
        self.speed = speed
        self.refuse_with = refuse_with
        self.opened: list[dict] = []
        self.streams: list[FakeStream] = []
        self.terminated = False

    def get_default_input_device_info(self):
        return {"index": 0}

    def get_device_count(self):
        return len(self.devices)

    def get_device_info_by_index(self, i):
        return self.devices[i]

    def get_host_api_info_by_index(self, i):
        return {"name": "FakeAPI"}

    def open(self, *, format, channels, rate, input, input_device_index, frames_per_buffer, stream_callback):
        self.opened.append({"rate": rate, "channels": channels, "device": input_device_index})
        if not self.accepts(rate, channels):
            raise self.refuse_with("[Errno -9997] Invalid sample rate")
        stream = FakeStream(self.signal_at(rate, channels), rate, frames_per_buffer, stream_callback, self.speed)
        self.streams.append(stream)
        return stream

    def terminate(self):
        self.terminated = True


def device(name: str, channels: int = 2, rate_hz: float = 44100.0) -> dict:
    return {"name": name, "maxInputChannels": channels, "defaultSampleRate": rate_hz, "hostApi": 0}


@pytest.fixture
def fake_portaudio(monkeypatch):
    """Install a FakePortAudio built from keyword arguments; returns the installer."""

    def install(**kwargs) -> FakePortAudio:
        pa = FakePortAudio(**kwargs)
        monkeypatch.setattr(capture, "_portaudio", lambda: (FakePyAudioModule, pa))
        return pa

    return install


# -- choosing a device ------------------------------------------------------------------------------
DEVICES = [
    InputDevice(0, "HDA Intel PCH: ALC257 Analog (hw:0,0)", 2, 44100.0, "ALSA"),
    InputDevice(3, "USB Audio: Blue Yeti (hw:1,0)", 2, 48000.0, "ALSA"),
    InputDevice(5, "pulse", 32, 44100.0, "ALSA"),
    InputDevice(6, "default", 32, 44100.0, "ALSA", is_default=True),
]


@pytest.mark.parametrize(
    ("spec", "index"),
    [(None, 6), ("", 6), ("3", 3), (" 5 ", 5), ("yeti", 3), ("BLUE", 3), ("pulse", 5), ("Default", 6)],
)
def test_device_by_index_name_fragment_or_default(spec, index):
    assert choose_input_device(DEVICES, spec).index == index


@pytest.mark.parametrize(
    ("devices", "spec", "message"),
    [
        ([], None, "no input device found"),
        (DEVICES, "9", "no input device with index 9"),
        (DEVICES, "nosuchmic", "no input device named like 'nosuchmic'"),
        (DEVICES, "hw:", "matches several input devices (0: HDA"),
    ],
)
def test_device_errors_name_the_fix(devices, spec, message):
    with pytest.raises(DeviceError, match="--list-devices|--input FILE|give the index") as info:
        choose_input_device(devices, spec)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_an_exact_name_wins_over_fragments():
    devices = [InputDevice(1, "pulse monitor", 2, 44100.0, "ALSA"), InputDevice(2, "Pulse", 2, 44100.0, "ALSA")]
    assert choose_input_device(devices, "pulse").index == 2


def test_list_input_devices_skips_outputs(fake_portaudio):
    fake_portaudio(
        devices=[device("speakers", channels=0), device("mic", 1, 16000.0)],
        accepts=lambda r, c: True,
        signal_at=lambda r, c: np.zeros((0, c), np.float32),
    )
    devices = capture.list_input_devices()
    assert [(d.index, d.name, d.channels, d.default_sample_rate_hz, d.is_default) for d in devices] == [
        (1, "mic", 1, 16000.0, False)
    ]


# -- opening, rate fallback, mixing -------------------------------------------------------------------
def collect(stream_kwargs, pa: FakePortAudio, timeout_s: float = 20.0) -> tuple[MicrophoneStream, np.ndarray]:
    """Run a MicrophoneStream over the fake device until its signal is delivered; return what the sink got."""
    got: list[np.ndarray] = []
    mic = MicrophoneStream(lambda block: got.append(np.array(block, copy=True)), **stream_kwargs)
    mic.start()
    try:
        assert pa.streams[-1].finished.wait(timeout_s)
    finally:
        mic.close()
    return mic, np.concatenate(got) if got else np.zeros(0, np.float32)


def test_mono_at_the_wanted_rate_goes_straight_through(fake_portaudio):
    y = tone(180.0, 1.0)
    pa = fake_portaudio(
        devices=[device("mic", 1, 16000.0)], accepts=lambda r, c: True, signal_at=lambda r, c: y[:, None]
    )
    mic, got = collect({"sample_rate_hz": 16000}, pa)
    assert pa.opened == [{"rate": 16000, "channels": 1, "device": 0}]
    assert mic.capture_rate_hz == 16000 and mic.channels == 1
    np.testing.assert_array_equal(got, y)
    assert pa.terminated


def test_refused_rate_falls_back_to_the_device_rate_and_is_resampled(fake_portaudio):
    x44 = tone(180.0, 2.0, sample_rate_hz=44100)
    pa = fake_portaudio(
        devices=[device("usb mic", 2, 44100.0)],
        accepts=lambda r, c: r == 44100 and c == 2,  # a device that only does its own format
        # Unequal channels whose mean is x: the mix must average them.
        signal_at=lambda r, c: np.stack([1.5 * x44, 0.5 * x44], axis=1),
    )
    mic, got = collect({"sample_rate_hz": 16000}, pa)
    assert [(o["rate"], o["channels"]) for o in pa.opened] == [(16000, 1), (44100, 1), (16000, 2), (44100, 2)]
    assert mic.capture_rate_hz == 44100 and mic.channels == 2
    expected = soxr.resample(x44, 44100, 16000)
    # A streaming resampler holds back its last few ms until flushed; everything it gave must match.
    assert expected.shape[0] - 400 < got.shape[0] <= expected.shape[0]
    np.testing.assert_allclose(got, expected[: got.shape[0]], atol=2e-3)


@pytest.mark.parametrize("channels", [2, 6])
def test_several_channels_at_the_wanted_rate_are_mixed_to_mono(fake_portaudio, channels):
    y = tone(140.0, 1.0)
    weights = np.linspace(0.0, 2.0, channels)  # mean 1
    pa = fake_portaudio(
        devices=[device("array mic", channels, 16000.0)],
        accepts=lambda r, c: c == channels,
        signal_at=lambda r, c: y[:, None] * weights[None, :],
    )
    mic, got = collect({"sample_rate_hz": 16000}, pa)
    assert mic.channels == channels and mic.capture_rate_hz == 16000
    np.testing.assert_allclose(got, y, atol=1e-6)


@pytest.mark.parametrize(
    ("error", "hint"),
    [(OSError("[Errno -9985] Device unavailable"), "close the other program"), (ValueError("Invalid sample rate"),
                                                                                   "pick another with --device")],
)
def test_a_device_that_cannot_be_opened_is_one_clear_error(fake_portaudio, error, hint):
    pa = fake_portaudio(
        devices=[device("mic", 1, 16000.0)],
        accepts=lambda r, c: False,
        signal_at=lambda r, c: np.zeros((0, c), np.float32),
        refuse_with=lambda message: error,
    )
    with pytest.raises(DeviceError) as info:
        MicrophoneStream(lambda b: None, sample_rate_hz=16000).start()
    assert "cannot open input device 'mic'" in str(info.value) and hint in str(info.value)
    assert pa.terminated  # nothing left open


# -- the monitor on a (fake) microphone ----------------------------------------------------------------
def test_listen_gives_predictions_on_the_hop_grid_with_speech_where_the_voice_is(fake_portaudio, tiny_model):
    rate = 48000
    voice = tone(160.0, 3.0, sample_rate_hz=rate, vibrato_hz=3.0)
    signal = np.concatenate([np.zeros(2 * rate, np.float32), voice, np.zeros(3 * rate, np.float32)])
    pa = fake_portaudio(
        devices=[device("mic", 1, float(rate))],
        accepts=lambda r, c: r == rate,
        signal_at=lambda r, c: signal[:, None],
        speed=4.0,
    )
    predictions = []
    done = threading.Event()

    def on_prediction(p):
        predictions.append(p)
        if p.t_s >= 7.5:
            done.set()

    monitor = Monitor(tiny_model, on_prediction=on_prediction)
    monitor.listen()
    try:
        assert done.wait(30), f"only {len(predictions)} predictions arrived"
    finally:
        monitor.stop()
    assert [(o["rate"], o["channels"]) for o in pa.opened] == [(16000, 1), (48000, 1)]
    assert monitor.summary.lost_s == 0.0
    times = [p.t_s for p in predictions]
    # Every window ends on the hop grid; late ones may be skipped, never reordered or repeated.
    assert times == sorted(set(times)) and all(abs(t / 0.5 - round(t / 0.5)) < 1e-9 for t in times)
    assert len(times) + monitor.summary.skipped_windows >= 15
    silent = [p for p in predictions if p.t_s <= 2.0 or p.t_s >= 7.5]
    voiced = [p for p in predictions if 3.0 <= p.t_s <= 5.0]
    assert silent and not any(p.speech for p in silent)
    assert voiced and all(p.speech and abs(sum(p.probs.values()) - 1) < 1e-6 for p in voiced)


def test_a_failing_conversion_thread_marks_the_stream_unhealthy(fake_portaudio):
    x44 = tone(180.0, 1.0, sample_rate_hz=44100)
    pa = fake_portaudio(
        devices=[device("usb mic", 1, 44100.0)], accepts=lambda r, c: r == 44100, signal_at=lambda r, c: x44[:, None],
        speed=1.0,
    )

    def broken_sink(block):
        raise RuntimeError("sink failed")

    mic = MicrophoneStream(broken_sink, sample_rate_hz=16000)
    mic.start()
    try:
        mic._converter_thread.join(timeout=10)  # ends on the first block
        assert not mic.healthy()  # so the monitor reconnects instead of silently hearing nothing
        assert str(mic.conversion_error) == "sink failed"
    finally:
        mic.close()
    assert pa.terminated
