"""Microphone capture: a thin, honest wrapper over PyAudio/PortAudio that delivers mono samples.

The PortAudio callback only copies: a mono block at the wanted rate goes straight into the sink
(normally the ring buffer); anything else (several channels, another rate) is queued as PortAudio
handed it, and a separate thread mixes it to mono and resamples it with soxr. The callback never
waits on anything. When the device refuses the model's rate, capture runs at the device's own rate.
Every failure is a :class:`~ser_live.errors.DeviceError` with a message that says what to do.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from ..errors import DeviceError

__all__ = ["InputDevice", "list_input_devices", "choose_input_device", "STALL_S", "GapMeter",
           "MicrophoneStream", "native_stderr_silenced"]

SampleSink = Callable[[np.ndarray], None]


@dataclasses.dataclass(frozen=True)
class InputDevice:
    """An audio input as PortAudio reports it."""

    index: int
    name: str
    channels: int
    default_sample_rate_hz: float
    host_api: str
    is_default: bool = False


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the C-level chatter ALSA and JACK print while PortAudio probes devices."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Silence what C libraries (PortAudio, ALSA, JACK) print while capturing; Python's own stderr still shows.

    PortAudio's ALSA back end prints several lines of internal diagnostics when a device
    disappears or overruns; ser-live reports those events itself, in one line. Everything
    written through ``sys.stderr`` keeps reaching the terminal.
    """
    import sys

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    python_stderr = sys.stderr
    sys.stderr = open(  # noqa: SIM115 - closed below; closefd=False keeps the saved descriptor for restoring
        saved, "w", buffering=1, encoding=getattr(python_stderr, "encoding", None) or "utf-8",
        errors="backslashreplace", closefd=False,
    )
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr.close()
        os.dup2(saved, 2)
        os.close(saved)
        sys.stderr = python_stderr


def _portaudio():
    try:
        import pyaudio
    except ImportError as exc:  # pragma: no cover - install problem
        raise DeviceError("PyAudio is not installed; run 'make run' or 'pip install pyaudio'") from exc
    with _quiet_stderr():
        try:
            return pyaudio, pyaudio.PyAudio()
        except Exception as exc:
            raise DeviceError(
                f"PortAudio could not start ({exc}); is an audio system (PulseAudio, PipeWire, ALSA) running?"
            ) from exc


def _devices(pa) -> list[InputDevice]:
    try:
        default_index = pa.get_default_input_device_info()["index"]
    except OSError:
        default_index = None
    devices = []
    for i in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(i)
        if int(info.get("maxInputChannels", 0)) <= 0:
            continue
        devices.append(
            InputDevice(
                index=i,
                name=str(info["name"]),
                channels=int(info["maxInputChannels"]),
                default_sample_rate_hz=float(info["defaultSampleRate"]),
                host_api=str(pa.get_host_api_info_by_index(info["hostApi"])["name"]),
                is_default=(i == default_index),
            )
        )
    return devices


def list_input_devices() -> list[InputDevice]:
    """Every input device PortAudio sees (an empty list when there is none)."""
    _, pa = _portaudio()
    try:
        return _devices(pa)
    finally:
        pa.terminate()


def _device_by_index(devices: Sequence[InputDevice], index: int) -> InputDevice:
    found = next((d for d in devices if d.index == index), None)
    if found is None:
        raise DeviceError(f"no input device with index {index}; see 'ser-live --list-devices'")
    return found


def choose_input_device(devices: Sequence[InputDevice], spec: int | str | None) -> InputDevice:
    """The device ``--device`` (or the window's preselection) means, among ``devices``.

    The rules, in order: no ``spec`` means the default input (else the first); a name equal to a
    device's (case-insensitive); an index; a fragment of exactly one device's name.

    Parameters
    ----------
    devices : sequence of InputDevice
        What :func:`list_input_devices` returned.
    spec : int, str or None
        An index, a name or a case-insensitive fragment of one.

    Raises
    ------
    DeviceError
        No device at all, no such index or name, or a fragment of several names (the message lists them).
    """
    if not devices:
        raise DeviceError(
            "no input device found; plug in a microphone (or check the audio system), "
            "or analyse a file with --input FILE"
        )
    text = "" if spec is None else str(spec).strip()
    if not text:
        return next((d for d in devices if d.is_default), devices[0])
    exact = next((d for d in devices if d.name.lower() == text.lower()), None)
    if exact is not None:
        return exact
    if text.isdigit():
        return _device_by_index(devices, int(text))
    return _device_by_fragment(devices, text)


def _device_by_fragment(devices: Sequence[InputDevice], text: str) -> InputDevice:
    matches = [d for d in devices if text.lower() in d.name.lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise DeviceError(f"no input device named like '{text}'; see 'ser-live --list-devices'")
    names = ", ".join(f"{d.index}: {d.name}" for d in matches)
    raise DeviceError(f"'{text}' matches several input devices ({names}); give the index instead")


#: No audio for this long from a stream that delivered before is a stall: the monitor reports it
#: (:attr:`ser_live.results.StatusKind.STALLED`, shown by both front-ends) and reopens the device. The one stall
#: threshold: longer than any gap a loaded machine or a Bluetooth link leaves between blocks.
STALL_S = 2.0


class GapMeter:
    """Audio a device never delivered, from the wall clock against the frames received.

    Fed from the analysis thread with what the capture callback recorded (when the last block arrived
    and how many frames had arrived by then, across every stream of a session, reconnects included). A
    block arrives a little after its audio was captured, and late blocks arrive in bursts, so the
    deficit ``(arrival - start) - frames / rate`` of a single block is noise; its smallest value over
    ``settle_s`` is not. A rise of that settled deficit by more than ``step_s`` is audio lost (a stall,
    an overflow, a device gone and back); slower change (two clocks a few ppm apart) is followed, not
    counted.

    Parameters
    ----------
    settle_s : float
        Window of the minimum that removes delivery jitter.
    step_s : float
        Smallest rise counted as lost audio.
    """

    def __init__(self, *, settle_s: float = 0.5, step_s: float = 0.1) -> None:
        self.settle_s = settle_s
        self.step_s = step_s
        #: Seconds of audio lost so far.
        self.lost_s = 0.0
        self._start: float | None = None
        self._recent: collections.deque[tuple[float, float]] = collections.deque()
        self._reference: float | None = None
        self._reference_at = 0.0
        self._last_arrival = -1.0

    def observe(self, arrival_s: float, audio_s: float) -> float:
        """Take one reading: the block that arrived at ``arrival_s`` (monotonic) brought the audio to ``audio_s``.

        Returns :attr:`lost_s`.
        """
        if arrival_s == self._last_arrival:
            return self.lost_s
        self._last_arrival = arrival_s
        if self._start is None:
            self._start = arrival_s - audio_s  # the first block's audio began this long before it arrived
        deficit = (arrival_s - self._start) - audio_s
        self._recent.append((arrival_s, deficit))
        while self._recent[0][0] < arrival_s - self.settle_s:
            self._recent.popleft()
        settled = min(d for _, d in self._recent)
        if self._reference is None:
            self._reference, self._reference_at = settled, arrival_s
        elif settled - self._reference > self.step_s:
            self.lost_s += settled - self._reference
            self._reference, self._reference_at = settled, arrival_s
        elif arrival_s - self._reference_at > 4 * self.settle_s:  # follow slow drift, either way
            self._reference, self._reference_at = settled, arrival_s
        return self.lost_s

    def lost_until(self, now_s: float) -> float:
        """:attr:`lost_s` plus the audio missing since the last block, when that is more than a step (a stall)."""
        if self._start is None or self._last_arrival < 0:
            return self.lost_s
        missing = now_s - self._last_arrival - self.step_s  # a block is always on its way
        return self.lost_s + (missing if missing > self.step_s else 0.0)


class MicrophoneStream:
    """Capture from one input device and hand mono float32 blocks at ``sample_rate_hz`` to a sink.

    Parameters
    ----------
    sink : callable
        Receives each block (for ser-live, ``RingBuffer.write``). Called on PortAudio's thread when
        the device delivers mono at ``sample_rate_hz``, else on the conversion thread; it must not
        block.
    device : int or str, optional
        Index or name fragment; the default input when omitted.
    sample_rate_hz : int
        Rate the sink wants.
    block_s : float
        PortAudio buffer length.
    stall_s : float
        No audio for this long, once audio has begun to arrive, means the device is lost.
    start_timeout_s : float
        How long the first block may take after the stream starts (a loaded machine, a waking
        Bluetooth headset can take seconds); no audio by then means the device is lost too.
    """

    def __init__(
        self,
        sink: SampleSink,
        *,
        device: int | str | None = None,
        sample_rate_hz: int = 16000,
        block_s: float = 0.05,
        stall_s: float = STALL_S,
        start_timeout_s: float = 6.0,
    ) -> None:
        self._sink = sink
        self._device_spec = device
        self.sample_rate_hz = int(sample_rate_hz)
        self.block_s = block_s
        self.stall_s = stall_s
        self.start_timeout_s = start_timeout_s
        #: Seconds of audio PortAudio delivered since this object was made (every stream it opened).
        self.received_s = 0.0
        self._seconds_per_frame = 1.0 / self.sample_rate_hz
        #: When the last block arrived (monotonic seconds; 0 before the first).
        self.last_block_at = 0.0
        #: Why the device counts as lost (None while it delivers).
        self.failure: str | None = None
        #: Whether the failure is a stall (the stream delivered, then no audio for ``stall_s``).
        self.stalled = False
        self._started_at = 0.0
        self.device: InputDevice | None = None
        self.capture_rate_hz: int | None = None
        self.channels = 1
        self._pa = None
        self._stream = None
        self._queue: queue.SimpleQueue | None = None
        self._converter_thread: threading.Thread | None = None
        #: Why the conversion thread stopped, if it failed.
        self.conversion_error: Exception | None = None

    # PortAudio's thread: copy and return, nothing else.
    def _callback(self, in_data, frame_count, time_info, status):
        if self._queue is not None:
            self._queue.put(in_data)  # PortAudio's own bytes object; converted on the other thread
        else:
            self._sink(np.frombuffer(in_data, dtype=np.float32))  # the sink copies it
        # Count first, then time it: a reader that sees the new time also sees these frames.
        self.received_s += frame_count * self._seconds_per_frame
        self.last_block_at = time.monotonic()
        return None, self._pyaudio.paContinue

    def _convert_loop(self, q: queue.SimpleQueue, from_rate_hz: int, channels: int) -> None:
        """Mix to mono and resample what the callback queued, then pass it to the sink."""
        stream = None
        if from_rate_hz != self.sample_rate_hz:
            import soxr

            stream = soxr.ResampleStream(from_rate_hz, self.sample_rate_hz, 1, dtype="float32")
        try:
            while True:
                data = q.get()
                if data is None:
                    return
                block = np.frombuffer(data, dtype=np.float32)
                if channels > 1:
                    block = block.reshape(-1, channels).mean(axis=1, dtype=np.float32)
                if stream is not None:
                    block = stream.resample_chunk(block)
                if block.size:
                    self._sink(block)
        except Exception as exc:  # the thread ends; healthy() turns false and the monitor reopens the device
            self.conversion_error = exc

    def _open_at(self, rate_hz: int, channels: int):
        return self._pa.open(
            format=self._pyaudio.paFloat32,
            channels=channels,
            rate=rate_hz,
            input=True,
            input_device_index=self.device.index,
            frames_per_buffer=max(64, int(rate_hz * self.block_s)),
            stream_callback=self._callback,
        )

    def start(self) -> None:
        """Open the device and start capturing.

        Tries the wanted rate in mono first, then the device's own rate and channel count.

        Raises
        ------
        DeviceError
            No such device, device busy, or no usable rate.
        """
        self._pyaudio, self._pa = _portaudio()
        try:
            self.device = choose_input_device(_devices(self._pa), self._device_spec)
            self._open_stream()
        except BaseException:
            self._release()
            raise
        if self._queue is not None:
            self._converter_thread = threading.Thread(
                target=self._convert_loop,
                args=(self._queue, self.capture_rate_hz, self.channels),
                name="ser-live-convert",
                daemon=True,
            )
            self._converter_thread.start()
        self._started_at = time.monotonic()
        self.failure, self.stalled = None, False
        self._stream.start_stream()

    def _open_stream(self) -> None:
        """Open :attr:`device` at the first rate and channel count that works (DeviceError when none does)."""
        attempts = [(self.sample_rate_hz, 1), (int(self.device.default_sample_rate_hz), 1)]
        attempts += [(rate, self.device.channels) for rate, _ in attempts if self.device.channels > 1]
        errors = []
        for rate_hz, channels in dict.fromkeys(attempts):
            self.channels = channels
            self.capture_rate_hz = rate_hz
            self._seconds_per_frame = 1.0 / rate_hz
            converting = rate_hz != self.sample_rate_hz or channels > 1
            self._queue = queue.SimpleQueue() if converting else None
            try:
                with _quiet_stderr():
                    self._stream = self._open_at(rate_hz, channels)
                return
            except (OSError, ValueError) as exc:
                errors.append(f"{rate_hz} Hz x{channels}: {exc}")
        busy = any("busy" in e.lower() or "unavailable" in e.lower() for e in errors)
        hint = "close the other program using it" if busy else "pick another with --device"
        raise DeviceError(
            f"cannot open input device '{self.device.name}' at any usable rate ({'; '.join(errors)}); {hint}"
        )

    def healthy(self) -> bool:
        """False once the device has stopped delivering audio (unplugged, server gone, conversion failed).

        The stall limit counts from the last block, and before the first block from the start with its
        own, longer limit: a stream that is slow to start is not a lost device. :attr:`failure` says why.
        """
        if self._stream is None or self.failure is not None:
            return False
        name = self.device.name if self.device is not None else "the input"
        self.failure = self._broken(name) or self._silent(name, time.monotonic())
        return self.failure is None

    def _broken(self, name: str) -> str | None:
        """Why the stream or its conversion stopped, if it did."""
        try:
            active = self._stream.is_active()
        except (OSError, ValueError):
            active = False
        if not active:
            return f"the stream of '{name}' stopped"
        if self._converter_thread is not None and not self._converter_thread.is_alive():
            return f"converting the audio of '{name}' failed ({self.conversion_error})"
        return None

    def _silent(self, name: str, now: float) -> str | None:
        """Why no audio counts as a failure yet: none since opening, or a stall (:attr:`stalled`)."""
        if self.last_block_at < self._started_at:
            if now - self._started_at > self.start_timeout_s:
                return (f"no audio came from '{name}' within {self.start_timeout_s:g} s of opening it; "
                        "is it muted, asleep or used by another program?")
            return None
        if now - self.last_block_at > self.stall_s:
            self.stalled = True
            return f"no audio from '{name}' for {now - self.last_block_at:.1f} s"
        return None

    def restart(self) -> None:
        """Close and reopen the device (after it was lost); raises DeviceError while it is gone."""
        self.close()
        self.start()

    def _release(self) -> None:
        if self._queue is not None:
            self._queue.put(None)
        if self._converter_thread is not None:
            self._converter_thread.join(timeout=1.0)
        self._converter_thread = None
        self._queue = None
        if self._pa is not None:
            with _quiet_stderr():
                self._pa.terminate()
        self._pa = None

    def close(self) -> None:
        """Stop capturing and release the device. Safe to call twice."""
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.stop_stream()
            with contextlib.suppress(OSError, ValueError):
                stream.close()
        self._release()
