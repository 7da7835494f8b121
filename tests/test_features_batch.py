"""Batch feature extraction: overlapping windows share their frame analysis and give the live vectors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tone
from hypothesis import given, settings
from hypothesis import strategies as st

from ser_live.audio.buffer import utterance_windows
from ser_live.dsp import primitives as dsp
from ser_live.dsp.gate import SpeechGate
from ser_live.features.handcrafted import FeatureConfig, extract_features, extract_features_batch, feature_names


def _speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Voiced syllables with pauses, room noise and a DC offset."""
    rng = np.random.default_rng(seed)
    y = tone(130.0, seconds, vibrato_hz=4.0, harmonics=20)
    t = np.arange(y.size) / 16000
    y = y * (np.sin(2 * np.pi * 2.5 * t) > -0.3)
    return (y + 0.003 * rng.standard_normal(y.size) + 0.01).astype(np.float32)


def _live_windows(y: np.ndarray) -> tuple[list[int], list[np.ndarray]]:
    pairs = list(utterance_windows(y, window_samples=32000, hop_samples=8000))
    return [e for e, _ in pairs], [w for _, w in pairs]


def test_batch_equals_one_window_at_a_time_including_padded_and_tail_windows() -> None:
    y = _speechlike(4.3)  # not a whole number of hops: the tail window is off the hop grid
    ends, windows = _live_windows(y)
    assert ends[0] == 8000 and ends[-1] == y.size and len(windows) == 9
    one_by_one = np.stack([extract_features(w) for w in windows])
    batch = extract_features_batch(windows, ends=ends)
    assert batch.shape == one_by_one.shape == (9, len(feature_names()))
    np.testing.assert_allclose(batch, one_by_one, rtol=1e-5, atol=1e-5)


def test_windows_are_only_shared_when_their_samples_really_overlap() -> None:
    y = _speechlike(3.0, seed=1)
    ends, windows = _live_windows(y)
    windows[3] = windows[3].copy()
    windows[3][-100:] *= 0.5  # the ends claim an overlap the samples do not have
    expected = np.stack([extract_features(w) for w in windows])
    np.testing.assert_allclose(extract_features_batch(windows, ends=ends), expected, rtol=1e-5, atol=1e-5)
    lying_ends = [e + 37 for e in ends[:2]] + ends[2:]  # steps that are not whole frames
    np.testing.assert_allclose(extract_features_batch(windows, ends=lying_ends), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(extract_features_batch(windows), expected, rtol=1e-5, atol=1e-5)


def test_empty_batch_and_mismatched_ends() -> None:
    assert extract_features_batch([]).shape == (0, len(feature_names()))
    with pytest.raises(ValueError, match="ends"):
        extract_features_batch([np.zeros(32000, np.float32)], ends=[1, 2])


def test_a_dc_offset_changes_nothing_and_digital_silence_stays_silent() -> None:
    y = _speechlike(2.0, seed=2)
    shifted = extract_features(y + 0.2)
    np.testing.assert_allclose(shifted, extract_features(y), rtol=1e-3, atol=2e-3)
    padded = np.concatenate([np.zeros(16000, np.float32), y[:16000]])
    named = dict(zip(feature_names(), extract_features(padded)))
    assert named["active_fraction"] == pytest.approx(0.5, abs=0.03)  # the zeros are not "quiet speech"


masks = st.integers(1, 4).flatmap(lambda w: st.lists(st.lists(st.booleans(), min_size=12, max_size=12),
                                                      min_size=w, max_size=w))


@settings(max_examples=60, deadline=None)
@given(mask_rows=masks, seed=st.integers(0, 1000))
def test_masked_statistics_equal_numpy_on_the_selected_frames(mask_rows, seed) -> None:
    mask = np.array(mask_rows, dtype=bool)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(mask.shape[0], mask.shape[1], 3))
    times = np.arange(mask.shape[1]) * 0.01
    mean, std = dsp.masked_moments(x, mask)
    p10, p50, p90 = dsp.masked_percentiles(x, mask, (10, 50, 90))
    diffs, valid = dsp.compacted_diffs(x[:, :, 0], mask)
    n_runs, run_length = dsp.mask_runs(mask)
    slopes = dsp.masked_slope(x[:, :, 0], times, mask)
    for w in range(mask.shape[0]):
        selected = x[w][mask[w]]
        if selected.shape[0] == 0:
            assert not mean[w].any() and not std[w].any() and not p50[w].any() and n_runs[w] == 0
            continue
        np.testing.assert_allclose(mean[w], selected.mean(axis=0), atol=1e-12)
        np.testing.assert_allclose(std[w], selected.std(axis=0), atol=1e-12)
        np.testing.assert_allclose(np.stack([p10[w], p50[w], p90[w]]), np.percentile(selected, [10, 50, 90], axis=0),
                                   atol=1e-12)
        np.testing.assert_allclose(diffs[w][valid[w]], np.diff(selected[:, 0]), atol=1e-12)
        edges = np.diff(np.concatenate([[0], mask[w].astype(int), [0]]))
        assert n_runs[w] == np.count_nonzero(edges == 1)
        assert run_length[w] == pytest.approx(mask[w].sum() / n_runs[w])
        if selected.shape[0] > 1:
            expected_slope = np.polyfit(times[mask[w]], selected[:, 0], 1)[0]
            assert slopes[w] == pytest.approx(expected_slope, abs=1e-9)
        else:
            assert slopes[w] == 0.0


def test_gate_reuses_pitch_only_of_frames_it_really_heard_before() -> None:
    y = _speechlike(5.0, seed=3)
    ends, windows = _live_windows(y)
    windows[5] = windows[5].copy()
    windows[5][:4000] = 0.0  # claims to continue the stream but does not
    remembering, forgetful = SpeechGate(), SpeechGate()
    for end, window in zip(ends, windows):
        decision = remembering(window, end_s=end / 16000)
        forgetful._previous = None  # nothing to reuse: every loud frame is tracked afresh
        assert decision == forgetful(window, end_s=end / 16000)


def test_a_custom_configuration_is_batched_the_same_way() -> None:
    config = FeatureConfig(frame_hop_s=0.005, n_mels=32, n_mfcc=13)
    y = _speechlike(2.6, seed=4)
    pairs = list(utterance_windows(y, window_samples=16000, hop_samples=4000))
    windows = [w for _, w in pairs]
    expected = np.stack([extract_features(w, config) for w in windows])
    batch = extract_features_batch(windows, ends=[e for e, _ in pairs], config=config)
    np.testing.assert_allclose(batch, expected, rtol=1e-5, atol=1e-5)


def test_allocator_setting_applies_on_linux_and_can_be_repeated() -> None:
    import sys

    from ser_live.heap import keep_large_blocks_on_heap

    expected = sys.platform.startswith("linux")
    assert keep_large_blocks_on_heap() is expected
    assert keep_large_blocks_on_heap() is expected


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.floats(-200, 200), min_size=1, max_size=50))
def test_percentiles_equal_numpy(values) -> None:
    q = (0, 10, 50, 90, 95, 100)
    np.testing.assert_allclose(dsp.percentiles(np.array(values), q), np.percentile(values, q), atol=1e-9)


def test_pitch_the_gate_tracked_is_reused_and_changes_nothing() -> None:
    y = _speechlike(4.0, seed=5)
    ends, windows = _live_windows(y)
    gate = SpeechGate()
    tracks = []
    for end, window in zip(ends, windows):
        tracks.append(gate(window, end_s=end / 16000).pitch)
    assert all(t is not None and t.tracked.any() for t in tracks[1:])
    plain = extract_features_batch(windows, ends=ends)
    np.testing.assert_allclose(extract_features_batch(windows, ends=ends, pitch=tracks), plain, rtol=1e-5, atol=1e-5)
    for window, track in zip(windows, tracks):
        np.testing.assert_allclose(extract_features(window, pitch=track), extract_features(window),
                                   rtol=1e-5, atol=1e-5)
    # A track made with another search range is not this extractor's and is ignored.
    other = SpeechGate(f0_min_hz=80.0)
    foreign = other(windows[-1]).pitch
    np.testing.assert_allclose(extract_features(windows[-1], pitch=foreign), extract_features(windows[-1]),
                               rtol=1e-6, atol=1e-6)
