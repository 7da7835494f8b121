"""Playing a session's audio back from any moment: a thin PyAudio output stream whose callback only copies samples."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from ..errors import DeviceError

__all__ = ["AudioPlayer"]


class AudioPlayer:
    """Plays mono float32 samples through the default output device, from a chosen second.

    The PortAudio callback only copies the next block and advances a counter; :attr:`position_s` is read
    from any thread (a display's timer moves its cursor with it).

    Parameters
    ----------
    samples : np.ndarray
        Mono audio.
    sample_rate_hz : int
    block_frames : int
        Frames per callback (about 30 ms at 16 kHz).

    Raises
    ------
    DeviceError
        When no output device can be opened (one line, from :meth:`play`).
    """

    def __init__(self, samples: np.ndarray, sample_rate_hz: int, *, block_frames: int = 512) -> None:
        self.samples = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
        self.sample_rate_hz = int(sample_rate_hz)
        self.block_frames = int(block_frames)
        self._frame = 0
        self._lock = threading.Lock()
        self._pa: Any = None
        self._stream: Any = None

    @property
    def duration_s(self) -> float:
        return self.samples.size / self.sample_rate_hz

    @property
    def position_s(self) -> float:
        """The second of the audio being played (or where it stopped)."""
        return self._frame / self.sample_rate_hz

    @property
    def playing(self) -> bool:
        stream = self._stream
        return stream is not None and stream.is_active()

    def _callback(self, in_data: Any, frame_count: int, time_info: Any, status: int) -> tuple[bytes, int]:
        import pyaudio

        with self._lock:
            start = self._frame
            block = self.samples[start : start + frame_count]
            self._frame = start + block.shape[0]
        if block.shape[0] < frame_count:  # the end: pad the last block and finish
            return np.pad(block, (0, frame_count - block.shape[0])).tobytes(), pyaudio.paComplete
        return block.tobytes(), pyaudio.paContinue

    def play(self, from_s: float | None = None) -> None:
        """Play from ``from_s`` (where it stopped when omitted) to the end."""
        import pyaudio

        self.stop()
        if from_s is not None:
            with self._lock:
                self._frame = int(min(max(from_s, 0.0), self.duration_s) * self.sample_rate_hz)
        if self._pa is None:
            self._pa = pyaudio.PyAudio()
        try:
            self._stream = self._pa.open(format=pyaudio.paFloat32, channels=1, rate=self.sample_rate_hz,
                                         output=True, frames_per_buffer=self.block_frames,
                                         stream_callback=self._callback)
        except (OSError, ValueError) as exc:
            self._stream = None
            raise DeviceError(f"cannot play the audio: no usable output device ({exc})") from exc

    def stop(self) -> None:
        """Stop playing; :attr:`position_s` stays where it was."""
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop_stream()
            stream.close()

    def close(self) -> None:
        """Stop and release the audio system (idempotent)."""
        self.stop()
        pa, self._pa = self._pa, None
        if pa is not None:
            pa.terminate()
