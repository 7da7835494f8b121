"""Ring buffer and window schedule: wrap-around, overflow accounting, a threaded stress test, window timing."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from ser_live.audio.buffer import RingBuffer, WindowSchedule, signal_windows, utterance_windows


def ramp(start: int, stop: int) -> np.ndarray:
    """Samples whose value is their absolute index + 1 (exact in float32 below 2**24), so 0 means 'missing'."""
    return np.arange(start + 1, stop + 1, dtype=np.float32)


# -- wrap-around and overflow -----------------------------------------------------------------------
def test_read_back_across_the_wrap_point():
    buf = RingBuffer(10)
    buf.write(ramp(0, 7))
    buf.write(ramp(7, 13))  # wraps: indices 10..12 land in slots 0..2
    assert buf.total_written == 13
    np.testing.assert_array_equal(buf.read(3, 13), ramp(3, 13))
    assert buf.dropped_samples == 0


@pytest.mark.parametrize("block", [1, 3, 7, 10, 11, 25])
def test_every_block_size_wraps_correctly(block):
    buf = RingBuffer(10)
    written = 0
    for _ in range(12):
        buf.write(ramp(written, written + block))
        written += block
        lo = max(0, written - 10)
        np.testing.assert_array_equal(buf.read(lo, written), ramp(lo, written))


def test_block_larger_than_capacity_keeps_the_newest_samples():
    buf = RingBuffer(8)
    buf.write(ramp(0, 20))
    assert buf.total_written == 20
    np.testing.assert_array_equal(buf.read(12, 20), ramp(12, 20))


def test_reading_before_time_zero_is_zero_padded_and_not_a_drop():
    buf = RingBuffer(16)
    buf.write(ramp(0, 4))
    out = buf.read(-6, 4)
    np.testing.assert_array_equal(out, np.concatenate([np.zeros(6, np.float32), ramp(0, 4)]))
    assert buf.dropped_samples == 0


def test_overwritten_samples_read_as_zero_and_are_counted_once():
    buf = RingBuffer(10)
    buf.write(ramp(0, 25))  # indices 0..14 are gone
    out = buf.read(10, 20)
    np.testing.assert_array_equal(out[:5], np.zeros(5, np.float32))
    np.testing.assert_array_equal(out[5:], ramp(15, 20))
    assert buf.dropped_samples == 5
    # Reading an overlapping span again must not count the same loss twice.
    buf.read(12, 22)
    assert buf.dropped_samples == 5


def test_samples_the_reader_never_asked_for_are_not_counted_as_dropped():
    # Skipped windows (the schedule jumping ahead) are reported separately; the buffer only counts
    # audio that was requested but already overwritten.
    buf = RingBuffer(10)
    buf.write(ramp(0, 100))  # 0..89 are overwritten; the reader never asked for 0..87
    out = buf.read(88, 98)
    np.testing.assert_array_equal(out, np.concatenate([np.zeros(2, np.float32), ramp(90, 98)]))
    assert buf.dropped_samples == 2
    buf.write(ramp(100, 104))  # now 92..93 are overwritten too, but the reader had them already
    buf.read(92, 102)
    assert buf.dropped_samples == 2
    buf.write(ramp(104, 130))
    out = buf.read(110, 120)  # all lost; 104..109 were never asked for
    assert not out.any() and buf.dropped_samples == 12


def test_reading_unwritten_or_oversized_spans_is_refused():
    buf = RingBuffer(10)
    buf.write(ramp(0, 5))
    with pytest.raises(ValueError, match="only 5 written"):
        buf.read(0, 6)
    with pytest.raises(ValueError, match="cannot read"):
        buf.read(-20, 5)
    with pytest.raises(ValueError):
        RingBuffer(0)


def test_peek_clips_to_what_exists_and_counts_nothing():
    buf = RingBuffer(10)
    buf.write(ramp(0, 30))
    out = buf.peek(0, 40)
    np.testing.assert_array_equal(out, ramp(20, 30))
    assert buf.dropped_samples == 0


# -- producer/consumer across threads ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("capacity", "window", "max_block", "max_lag_windows"),
    [
        (4096, 1024, 768, None),  # the reader must take every window, however late
        (4096, 1024, 768, 4),  # the live set-up: stale windows are skipped
        # Windows as long as the buffer: every read overlaps the writer's overwrite.
        (2048, 2048, 2000, 1),
    ],
)
def test_writer_thread_and_reader_thread_every_sample_correct_or_counted_as_dropped(
    capacity, window, max_block, max_lag_windows
):
    """A writer at high rate with random block sizes, a reader taking scheduled windows.

    Every sample the reader gets must be its true value or zero; zeros may only be a prefix of the
    window's real samples (the overwritten oldest part) and every zero in the part not read before must be
    counted in ``dropped_samples``.
    """
    hop = 256
    total = 2_000_000
    buf = RingBuffer(capacity)
    schedule = WindowSchedule(window, hop, max_lag_windows=max_lag_windows)
    done = threading.Event()
    errors: list[str] = []

    def writer():
        rng = np.random.default_rng(1)
        written = 0
        while written < total:
            n = int(rng.integers(1, max_block + 1))
            n = min(n, total - written)
            buf.write(ramp(written, written + n))
            written += n
        done.set()

    seen_until = 0
    zeros_in_new_parts = 0
    n_windows = 0
    n_windows_with_loss = 0
    thread = threading.Thread(target=writer)
    # Switch threads very often so the reader lands inside the writer's copy as often as possible.
    switch_interval_s = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    thread.start()
    try:
        rng = np.random.default_rng(2)
        while not (done.is_set() and schedule.samples_until_next(buf.total_written) > 0):
            spans = schedule.due(buf.total_written)
            for start, stop in spans:
                out = buf.read(start, stop)
                n_windows += 1
                truth = ramp(start, stop)
                truth[: max(0, -start)] = 0.0  # before time 0: zero padding
                lost = out != truth
                if lost.any():
                    n_windows_with_loss += 1
                    if np.any(out[lost] != 0.0):
                        errors.append(f"window {start}..{stop} holds wrong non-zero samples")
                    first_real = max(0, -start)
                    last_lost = int(np.flatnonzero(lost)[-1])
                    if not lost[first_real : last_lost + 1].all():
                        errors.append(f"window {start}..{stop}: lost samples are not the oldest ones")
                new_from = max(seen_until, start, 0)
                zeros_in_new_parts += int(np.count_nonzero(lost[new_from - start :]))
                seen_until = max(seen_until, stop)
                # A reader that sometimes falls behind, so overflow really happens.
                if rng.random() < 0.02:
                    done.wait(0.002)
            if not spans:
                done.wait(0.0001)
    finally:
        thread.join()
        sys.setswitchinterval(switch_interval_s)
    assert not errors, errors[:5]
    # Every window was handed out in order or skipped as stale.
    assert n_windows + schedule.skipped_windows == (total - hop) // hop + 1
    assert buf.dropped_samples == zeros_in_new_parts
    # The reader did fall behind sometimes; otherwise this test proves nothing about overflow.
    assert n_windows_with_loss > 0 and buf.dropped_samples > 0


# -- window schedule and timing ---------------------------------------------------------------------
def test_window_k_ends_at_k_plus_one_hops_and_the_first_ones_reach_before_zero():
    schedule = WindowSchedule(8, 2)
    assert schedule.due(1) == []
    assert schedule.samples_until_next(1) == 1
    assert schedule.due(7) == [(-6, 2), (-4, 4), (-2, 6)]
    assert schedule.due(8) == [(0, 8)]
    assert schedule.due(8) == []


def test_schedule_skips_stale_windows_when_the_consumer_lags():
    schedule = WindowSchedule(8, 2, max_lag_windows=2)
    spans = schedule.due(20)  # windows ending at 2, 4, ..., 20 are due: 10 of them
    assert spans == [(10, 18), (12, 20)]
    assert schedule.skipped_windows == 8
    assert schedule.due(22) == [(14, 22)]


def test_windows_taken_one_at_a_time_are_checked_for_lag_again_after_a_slow_one():
    schedule = WindowSchedule(8, 2, max_lag_windows=2)
    # Three are due: the oldest is stale (lag 2), the newest waits for the next call.
    assert schedule.due(6, limit=1) == [(-4, 4)] and schedule.skipped_windows == 1
    # A slow analysis of that one: meanwhile the writer reached 20, so the one left behind is stale now too.
    assert schedule.due(20, limit=1) == [(10, 18)]
    assert schedule.skipped_windows == 7 and schedule.due(20) == [(12, 20)]


def test_signal_windows_match_the_schedule_over_a_buffer():
    y = np.random.default_rng(0).normal(size=1000).astype(np.float32)
    window, hop = 160, 40
    buf = RingBuffer(400)
    schedule = WindowSchedule(window, hop)
    live = []
    for i in range(0, y.size, 37):  # odd block size
        buf.write(y[i : i + 37])
        live.extend((stop, buf.read(start, stop)) for start, stop in schedule.due(buf.total_written))
    offline = list(signal_windows(y, window_samples=window, hop_samples=hop))
    assert [e for e, _ in live] == [e for e, _ in offline] == list(range(hop, 1001, hop))
    for (_, a), (_, b) in zip(live, offline):
        np.testing.assert_array_equal(a, b)
    assert np.all(offline[0][1][: window - hop] == 0)  # zero padding at the start


def test_utterance_windows_add_one_ending_at_the_last_sample():
    y = np.ones(130, dtype=np.float32)
    ends = [e for e, w in utterance_windows(y, window_samples=100, hop_samples=40)]
    assert ends == [40, 80, 120, 130]
    assert [e for e, _ in utterance_windows(y[:120], window_samples=100, hop_samples=40)] == [40, 80, 120]
    short = list(utterance_windows(y[:10], window_samples=100, hop_samples=40))
    assert len(short) == 1 and short[0][1].shape == (100,) and short[0][1][-10:].sum() == 10
