"""Audio between capture and analysis: the ring buffer and the schedule of analysis windows it hands out.

One producer (the capture callback, or a file reader) writes; one consumer (the pipeline) reads
windows. Writing never blocks and never waits for the reader: when the reader falls behind, the
oldest audio is overwritten and counted as dropped. Samples are addressed by their absolute index
since the stream started, so a window's timestamp is exact however much was dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

__all__ = ["RingBuffer", "WindowSchedule", "signal_windows", "utterance_windows", "stream_utterance_windows"]


class RingBuffer:
    """Fixed-capacity single-producer, single-consumer buffer of mono float32 samples.

    The writer takes no lock, so it can be called from a PortAudio callback: it first announces
    how far it is about to write, then copies into a preallocated array, then publishes the new
    total (each a single attribute assignment, atomic in CPython). The reader copies a span and
    then checks the announcement (a sequence-lock check): whatever a write in progress may have
    overwritten during the copy is returned as zeros, never as wrong audio. Overwritten samples
    the reader asked for and had not read before are counted in :attr:`dropped_samples`.

    Parameters
    ----------
    capacity_samples : int
        Samples kept; older ones are overwritten.
    """

    def __init__(self, capacity_samples: int) -> None:
        if capacity_samples <= 0:
            raise ValueError("capacity_samples must be positive")
        self.capacity_samples = int(capacity_samples)
        self._data = np.zeros(self.capacity_samples, dtype=np.float32)
        self._written = 0
        self._writing_until = 0  # announced before a write touches the data, see _copy
        self._read_until = 0
        self.dropped_samples = 0

    @property
    def total_written(self) -> int:
        """Samples written since the stream started (the absolute index of the next sample)."""
        return self._written

    def write(self, samples: np.ndarray) -> None:
        """Append samples, overwriting the oldest when full. Never blocks.

        Parameters
        ----------
        samples : np.ndarray, shape (n,)
            Mono samples; converted to float32.
        """
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        n = samples.shape[0]
        if n == 0:
            return
        end = self._written + n
        if n > self.capacity_samples:
            samples = samples[-self.capacity_samples :]
        self._writing_until = end  # announce first: a concurrent reader must distrust these slots
        m = samples.shape[0]
        pos = (end - m) % self.capacity_samples
        first = min(m, self.capacity_samples - pos)
        self._data[pos : pos + first] = samples[:first]
        if first < m:
            self._data[: m - first] = samples[first:]
        self._written = end  # publish only after the copy

    def read(self, start: int, stop: int) -> np.ndarray:
        """Copy the samples with absolute indices ``start <= i < stop``.

        Indices before the stream began read as zeros (a window that starts before time 0 is
        zero-padded). Samples already overwritten (or being overwritten) read as zeros and are
        added to :attr:`dropped_samples` unless an earlier read reached past them. Reads are
        expected in increasing order, as the window schedule makes them.

        Raises
        ------
        ValueError
            If ``stop`` lies beyond what was written, or the span exceeds the capacity.
        """
        if stop < start:
            raise ValueError("stop must be >= start")
        if stop - start > self.capacity_samples:
            raise ValueError(f"cannot read {stop - start} samples from a buffer of {self.capacity_samples}")
        if stop > self._written:
            raise ValueError(f"samples up to {stop} requested but only {self._written} written")
        out, oldest_valid = self._copy(start, stop)
        # Count only samples asked for now and never read before: windows overlap, and audio the
        # reader skipped on purpose (stale windows) is not a loss of the buffer's making.
        unseen_from = max(self._read_until, start, 0)
        if oldest_valid > unseen_from:
            self.dropped_samples += min(oldest_valid, stop) - unseen_from
        self._read_until = max(self._read_until, stop)
        return out

    def peek(self, start: int, stop: int) -> np.ndarray:
        """Like :meth:`read` but for displays: clipped to what was written, no drop accounting."""
        stop = min(stop, self._written)
        start = min(max(start, stop - self.capacity_samples), stop)
        return self._copy(start, stop)[0]

    def _copy(self, start: int, stop: int) -> tuple[np.ndarray, int]:
        out = np.zeros(stop - start, dtype=np.float32)
        lo = max(start, 0)
        if lo < stop:
            pos = lo % self.capacity_samples
            first = min(stop - lo, self.capacity_samples - pos)
            out[lo - start : lo - start + first] = self._data[pos : pos + first]
            if lo + first < stop:
                out[lo - start + first :] = self._data[: stop - lo - first]
        # Read the announcement only after the copy: any write that started before the copy ended
        # announced itself first, so whatever it may have overwritten is below this index.
        oldest_valid = self._writing_until - self.capacity_samples
        if oldest_valid > lo:
            out[lo - start : min(oldest_valid, stop) - start] = 0.0
        return out, oldest_valid


class WindowSchedule:
    """Which analysis windows are due: one ending at every multiple of the hop.

    Window ``k`` (k = 0, 1, ...) covers samples ``[(k+1)*hop - window, (k+1)*hop)``; the first
    windows reach back before time 0 and are zero-padded, so the first result comes one hop after
    the start rather than one window after it.

    Parameters
    ----------
    window_samples, hop_samples : int
        Window length and hop in samples.
    max_lag_windows : int or None
        If the consumer falls more than this many windows behind, the stale ones are skipped
        (counted in :attr:`skipped_windows`) so latency stays bounded. ``None`` never skips
        (files analysed as fast as possible).
    """

    def __init__(self, window_samples: int, hop_samples: int, *, max_lag_windows: int | None = None) -> None:
        if window_samples <= 0 or hop_samples <= 0:
            raise ValueError("window_samples and hop_samples must be positive")
        if max_lag_windows is not None and max_lag_windows < 1:
            raise ValueError("max_lag_windows must be at least 1")
        self.window_samples = int(window_samples)
        self.hop_samples = int(hop_samples)
        self.max_lag_windows = max_lag_windows
        self.next_end = self.hop_samples
        self.skipped_windows = 0

    def due(self, total_written: int, *, limit: int | None = None) -> list[tuple[int, int]]:
        """Spans ``(start, stop)`` of every window now complete (at most ``limit`` of them), oldest first, and
        advance past them."""
        n_due = (total_written - self.next_end) // self.hop_samples + 1 if total_written >= self.next_end else 0
        if self.max_lag_windows is not None and n_due > self.max_lag_windows:
            skip = n_due - self.max_lag_windows
            self.skipped_windows += skip
            self.next_end += skip * self.hop_samples
            n_due = self.max_lag_windows
        spans = []
        for _ in range(n_due if limit is None else min(n_due, limit)):
            spans.append((self.next_end - self.window_samples, self.next_end))
            self.next_end += self.hop_samples
        return spans

    def samples_until_next(self, total_written: int) -> int:
        """Samples still to be written before the next window is complete."""
        return max(0, self.next_end - total_written)


def signal_windows(y: np.ndarray, *, window_samples: int, hop_samples: int) -> Iterator[tuple[int, np.ndarray]]:
    """The windows the live monitor would analyse if ``y`` were played into it.

    Yields
    ------
    end_sample : int
        Absolute index one past the window's last sample (its timestamp is ``end_sample / rate``).
    window : np.ndarray, shape (window_samples,)
        Zero-padded at the start for the first windows.
    """
    y = np.asarray(y, dtype=np.float32)
    for end in range(hop_samples, y.shape[0] + 1, hop_samples):
        start = end - window_samples
        if start >= 0:
            yield end, y[start:end]
        else:
            yield end, np.concatenate([np.zeros(-start, dtype=np.float32), y[:end]])


def utterance_windows(y: np.ndarray, *, window_samples: int, hop_samples: int) -> Iterator[tuple[int, np.ndarray]]:
    """The live windows of a whole recording, plus one ending at its last sample.

    Used to classify or train on complete recordings: the live windows (see
    :func:`signal_windows`) and, when the recording does not end on a hop boundary, a final
    window ending at its last sample, so the tail and clips shorter than a hop are analysed too.
    """
    return stream_utterance_windows([y], window_samples=window_samples, hop_samples=hop_samples)


def stream_utterance_windows(
    blocks: Iterable[np.ndarray], *, window_samples: int, hop_samples: int
) -> Iterator[tuple[int, np.ndarray]]:
    """:func:`utterance_windows` of a recording that arrives block by block (memory stays flat).

    Cut through a :class:`RingBuffer` and :class:`WindowSchedule` exactly as the live monitor cuts.
    """
    buffer = RingBuffer(window_samples + hop_samples)
    schedule = WindowSchedule(window_samples, hop_samples)
    for block in blocks:
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        for i in range(0, block.shape[0], hop_samples):  # a hop at a time: nothing due is overwritten
            buffer.write(block[i : i + hop_samples])
            for start, stop in schedule.due(buffer.total_written):
                yield stop, buffer.read(start, stop)
    total = buffer.total_written
    if total % hop_samples or total == 0:
        yield total, buffer.read(total - window_samples, total)
