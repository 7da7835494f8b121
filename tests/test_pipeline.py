"""The analysis pipeline: window timing, files vs live feeding, resampling, channel mixing, smoothing, summaries."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import soxr
from conftest import SAMPLE_RATE_HZ as SR
from conftest import tone, write_wav

from ser_live.audio.buffer import signal_windows
from ser_live.audio.files import AudioFileError
from ser_live.engine.monitor import Monitor, WindowAnalyzer, classify_signal


def voice_with_pauses(rate_hz: int = SR) -> np.ndarray:
    """1 s of near-silence, two 'sentences' of different pitch with a pause, 1.3 s of near-silence."""
    rng = np.random.default_rng(3)

    def quiet(s):
        return rng.normal(0, 1e-4, int(s * rate_hz)).astype(np.float32)

    return np.concatenate([
        quiet(1.0), tone(130.0, 2.5, sample_rate_hz=rate_hz, vibrato_hz=2.0), quiet(0.8),
        tone(260.0, 2.0, sample_rate_hz=rate_hz, vibrato_hz=5.0, seed=1), quiet(1.3),
    ])


def run_fed(model, y: np.ndarray, block_sizes, **monitor_kwargs):
    """Predictions of a Monitor fed ``y`` in blocks whose sizes cycle through ``block_sizes``."""
    monitor = Monitor(model, **monitor_kwargs)
    out, i, k = [], 0, 0
    while i < y.shape[0]:
        n = block_sizes[k % len(block_sizes)]
        out.extend(monitor.feed(y[i : i + n]))
        i, k = i + n, k + 1
    return monitor, out


def run_file(model, path, *, windows: list | None = None, **monitor_kwargs):
    """Predictions of ``Monitor.run_file``; the analysed windows are appended to ``windows`` if given."""
    got = []
    monitor = Monitor(model, on_prediction=got.append, **monitor_kwargs)
    if windows is not None:
        analyse = monitor.analyzer.__call__
        monitor.analyzer = lambda window, *, t_s: (windows.append(np.array(window)), analyse(window, t_s=t_s))[1]
    monitor.run_file(str(path))
    return monitor, got


def assert_same_predictions(a, b, *, prob_atol: float = 1e-6, level_atol_db: float = 1e-3):
    assert [p.t_s for p in a] == pytest.approx([p.t_s for p in b], abs=1e-9)
    assert [p.speech for p in a] == [p.speech for p in b]
    for p, q in zip(a, b):
        assert p.level_db == pytest.approx(q.level_db, abs=level_atol_db)
        if p.speech:
            assert list(p.probs) == list(q.probs)
            np.testing.assert_allclose(list(p.probs.values()), list(q.probs.values()), atol=prob_atol)


# -- window timing ------------------------------------------------------------------------------------
def test_window_k_ends_at_k_plus_one_hops(tiny_model):
    y = voice_with_pauses()
    _, predictions = run_fed(tiny_model, y, [y.shape[0]])
    n_hops = y.shape[0] // (SR // 2)
    assert [p.t_s for p in predictions] == [0.5 * (k + 1) for k in range(n_hops)]


def test_monitor_analyses_exactly_the_zero_padded_windows_of_the_signal(tiny_model):
    y = voice_with_pauses()
    _, fed = run_fed(tiny_model, y, [1234])
    analyzer = WindowAnalyzer(tiny_model)
    offline = [analyzer(w, t_s=end / SR) for end, w in signal_windows(y, window_samples=2 * SR, hop_samples=SR // 2)]
    assert_same_predictions(fed, offline, prob_atol=0, level_atol_db=0)
    assert any(p.speech for p in fed) and not all(p.speech for p in fed)


def test_block_size_does_not_change_anything(tiny_model):
    y = voice_with_pauses()
    _, whole = run_fed(tiny_model, y, [y.shape[0]])
    _, odd = run_fed(tiny_model, y, [1, 997, 8000, 13, 30011, 4096])
    assert_same_predictions(whole, odd, prob_atol=0, level_atol_db=0)


def test_input_file_gives_the_live_windows_and_timestamps(tiny_model, tmp_path):
    y = voice_with_pauses()
    path = write_wav(tmp_path / "voice.wav", y, subtype="FLOAT")
    _, live = run_fed(tiny_model, y, [441, 1023, 160])  # what a microphone callback would deliver
    monitor, from_file = run_file(tiny_model, path)
    # A file also gets the window ending at its last sample (a live stream has no last sample).
    assert_same_predictions(live, from_file[:-1], prob_atol=0, level_atol_db=0)
    assert y.shape[0] % (SR // 2) and from_file[-1].t_s == pytest.approx(y.shape[0] / SR)
    assert monitor.summary.heard_s == pytest.approx(y.shape[0] / SR)


def test_custom_window_and_hop(tiny_model):
    y = voice_with_pauses()
    monitor, predictions = run_fed(tiny_model, y, [5000], window_s=1.0, hop_s=0.25)
    assert monitor.window_samples == SR and monitor.hop_samples == SR // 4
    assert [p.t_s for p in predictions][:4] == [0.25, 0.5, 0.75, 1.0]
    with pytest.raises(ValueError, match="hop"):
        Monitor(tiny_model, window_s=1.0, hop_s=1.5)


# -- resampling and channels ------------------------------------------------------------------------
@pytest.mark.parametrize("rate_hz", [22050, 44100, 48000])
def test_files_at_other_rates_give_the_same_windows_and_times(tiny_model, tmp_path, rate_hz):
    # One sound, as recorders at 16 kHz and at other rates would have stored it.
    master = voice_with_pauses(48000)
    y16 = soxr.resample(master, 48000, SR, quality="VHQ")
    y_rate = master if rate_hz == 48000 else soxr.resample(master, 48000, rate_hz, quality="VHQ")
    ref_windows, got_windows = [], []
    _, ref = run_file(tiny_model, write_wav(tmp_path / "16k.wav", y16, SR, subtype="FLOAT"), windows=ref_windows)
    _, got = run_file(tiny_model, write_wav(tmp_path / f"{rate_hz}.wav", y_rate, rate_hz, subtype="FLOAT"),
                      windows=got_windows)
    assert len(got) == len(ref) >= 14
    assert [p.t_s for p in got] == [p.t_s for p in ref]
    # The same audio in every window: aligned to the sample, differing only by resampler noise.
    for a, b in zip(got_windows, ref_windows):
        assert np.sqrt(np.mean((a - b) ** 2)) <= 1e-3 * max(np.sqrt(np.mean(b**2)), 1e-3)
    assert [p.speech for p in got] == [p.speech for p in ref]
    for p, q in zip(got, ref):
        if q.level_db > -60:
            assert p.level_db == pytest.approx(q.level_db, abs=0.05)
        if p.speech:  # the tiny test model sits near a decision boundary here and there
            np.testing.assert_allclose(list(p.probs.values()), list(q.probs.values()), atol=0.1)


def test_resampled_audio_is_aligned_in_time(tmp_path):
    # A click at exactly 1.5 s must stay at 1.5 s after the file is resampled to the model's rate.
    from ser_live.audio.files import read_audio

    for rate_hz in (44100, 48000, 22050):
        y = np.zeros(3 * rate_hz, np.float32)
        y[int(1.5 * rate_hz)] = 0.9
        got = read_audio(write_wav(tmp_path / f"click{rate_hz}.wav", y, rate_hz, subtype="FLOAT"), sample_rate_hz=SR)
        assert got.shape[0] == pytest.approx(3 * SR, abs=2)
        assert int(np.argmax(np.abs(got))) == pytest.approx(1.5 * SR, abs=1)


@pytest.mark.parametrize("channels", [2, 6])
def test_multichannel_files_are_mixed_to_mono(tiny_model, tmp_path, channels):
    y = voice_with_pauses()
    weights = np.linspace(0.5, 1.5, channels).astype(np.float32)  # unequal channels, mean 1
    multi = y[:, None] * weights[None, :]
    _, mono = run_file(tiny_model, write_wav(tmp_path / "mono.wav", y, subtype="FLOAT"))
    _, mixed = run_file(tiny_model, write_wav(tmp_path / f"{channels}ch.wav", multi, subtype="FLOAT"))
    assert_same_predictions(mono, mixed, prob_atol=1e-4, level_atol_db=1e-3)


def test_classify_signal_at_any_rate_and_layout(tiny_model):
    y16 = voice_with_pauses(SR)
    ref = classify_signal(y16, sample_rate_hz=SR, model=tiny_model)
    y44 = voice_with_pauses(44100)
    stereo = np.stack([y44 * 1.2, y44 * 0.8], axis=1)
    got = classify_signal(stereo, sample_rate_hz=44100, model=tiny_model)
    assert ref.emotion is not None and got.emotion == ref.emotion
    assert got.duration_s == pytest.approx(ref.duration_s, abs=1e-3)
    assert got.n_speech_windows == ref.n_speech_windows > 0
    np.testing.assert_allclose(list(got.probs.values()), list(ref.probs.values()), atol=0.1)
    assert sum(ref.probs.values()) == pytest.approx(1.0)
    silent = classify_signal(np.zeros(3 * SR, np.float32), sample_rate_hz=SR, model=tiny_model)
    assert silent.emotion is None and silent.probs is None and silent.n_speech_windows == 0


def test_a_clip_shorter_than_a_hop_is_still_classified(tiny_model):
    short = tone(200.0, 0.4, vibrato_hz=4.0)
    result = classify_signal(short, sample_rate_hz=SR, model=tiny_model)
    assert result.n_windows == 1 and result.duration_s == pytest.approx(0.4)


# -- smoothing and the summary ------------------------------------------------------------------------
def test_smoothing_is_an_exponential_moving_average_over_speech_windows(tiny_model):
    y = voice_with_pauses()
    _, raw = run_fed(tiny_model, y, [8000])
    _, smooth = run_fed(tiny_model, y, [8000], smoothing=0.6)
    state = None
    for r, s in zip(raw, smooth):
        assert r.speech == s.speech
        if not r.speech:
            assert s.probs is None and s.emotion is None
            continue
        p = np.array(list(r.probs.values()))
        state = p if state is None else 0.6 * state + 0.4 * p
        np.testing.assert_allclose(list(s.probs.values()), state, atol=1e-9)
        assert s.emotion == list(r.probs)[int(np.argmax(state))] and s.confidence == pytest.approx(state.max())
    with pytest.raises(ValueError, match="smoothing"):
        Monitor(tiny_model, smoothing=1.0)


def test_summary_counts_what_was_heard(tiny_model):
    y = voice_with_pauses()
    monitor, predictions = run_fed(tiny_model, y, [3000])
    s = monitor.summary
    assert s.heard_s == pytest.approx(y.shape[0] / SR)
    assert s.n_windows == len(predictions) and s.n_speech == sum(p.speech for p in predictions) > 0
    assert sum(s.shares().values()) == pytest.approx(1.0)
    assert s.lost_s == 0.0 and s.skipped_windows == 0
    assert s.emotion_counts == Counter(p.emotion for p in predictions if p.speech)


def test_no_speech_predictions_are_honest(tiny_model):
    _, predictions = run_fed(tiny_model, np.zeros(3 * SR, np.float32), [4000])
    assert predictions and all(
        not p.speech and p.emotion is None and p.probs is None and p.confidence == 0.0 and p.level_db == -120.0
        for p in predictions
    )
    d = predictions[0].to_json_dict()
    assert list(d) == ["t", "speech", "emotion", "confidence", "probs", "level_db", "lost_s"] and d["probs"] is None


def test_run_file_errors_and_stop(tiny_model, tmp_path):
    monitor = Monitor(tiny_model)
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    with pytest.raises(AudioFileError, match="bad.wav"):
        monitor.run_file(str(bad))
    path = write_wav(tmp_path / "long.wav", voice_with_pauses())
    got = []
    stopper = Monitor(tiny_model, on_prediction=lambda p: (got.append(p), stopper.request_stop()))
    stopper.run_file(str(path))
    assert len(got) == 1  # stopped after the block in which the first window became due


def test_resampler_used_by_the_file_reader_is_a_library_one(tmp_path):
    # The same samples soxr gives when asked directly (no hand-written resampler in between).
    from ser_live.audio.files import read_audio

    y = tone(300.0, 1.0, sample_rate_hz=44100)
    got = read_audio(write_wav(tmp_path / "a.wav", y, 44100, subtype="FLOAT"), sample_rate_hz=SR)
    np.testing.assert_allclose(got, soxr.resample(y, 44100, SR, quality="HQ"), atol=1e-5)
