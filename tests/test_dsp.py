"""DSP against librosa (mel filterbank, MFCCs), and determinism of the feature vector."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, assert_same_features, tone

from ser_live.audio.buffer import RingBuffer
from ser_live.dsp import primitives as dsp
from ser_live.features.handcrafted import FeatureConfig, extract_features, feature_names


@pytest.fixture(scope="module")
def librosa():
    # Only through the lock-protected import: two first imports at once have corrupted numba's cache.
    from ser_live.training.jit_cache import import_librosa

    return import_librosa()


@pytest.mark.parametrize(
    ("sample_rate_hz", "n_fft", "n_mels", "fmin_hz", "fmax_hz"),
    [(16000, 512, 40, 50.0, 8000.0), (16000, 512, 64, 0.0, None), (22050, 1024, 128, 20.0, 11025.0),
     (16000, 400, 26, 300.0, 7600.0)],
)
def test_mel_filterbank_equals_librosa(librosa, sample_rate_hz, n_fft, n_mels, fmin_hz, fmax_hz):
    ours = dsp.mel_filterbank(
        sample_rate_hz=sample_rate_hz, n_fft=n_fft, n_mels=n_mels, fmin_hz=fmin_hz, fmax_hz=fmax_hz
    )
    theirs = librosa.filters.mel(sr=sample_rate_hz, n_fft=n_fft, n_mels=n_mels, fmin=fmin_hz, fmax=fmax_hz)
    assert ours.shape == theirs.shape == (n_mels, n_fft // 2 + 1)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)


def test_mel_scale_equals_librosa(librosa):
    hz = np.array([0.0, 50.0, 700.0, 999.9, 1000.0, 1000.1, 4000.0, 8000.0, 11025.0])
    np.testing.assert_allclose(dsp.hz_to_mel(hz), librosa.hz_to_mel(hz), rtol=1e-10)
    mels = np.linspace(0, 40, 17)
    np.testing.assert_allclose(dsp.mel_to_hz(mels), librosa.mel_to_hz(mels), rtol=1e-10)
    np.testing.assert_allclose(dsp.mel_to_hz(dsp.hz_to_mel(hz)), hz, rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("n_mfcc", [13, 20])
def test_mfccs_equal_librosa_on_the_same_power_spectrum(librosa, n_mfcc):
    config = FeatureConfig(n_mfcc=n_mfcc)
    y = tone(170.0, 1.0, vibrato_hz=3.0) + np.random.default_rng(0).normal(0, 0.01, 16000).astype(np.float32)
    frames = dsp.frame_signal(y, frame_length=config.frame_length, hop_length=config.hop_length)
    power = dsp.power_spectrum(frames, n_fft=config.n_fft)
    weights = dsp.mel_filterbank(sample_rate_hz=16000, n_fft=config.n_fft, n_mels=config.n_mels,
                                 fmin_hz=config.fmin_hz, fmax_hz=config.fmax_hz)
    ours = dsp.dct_ortho(dsp.power_to_db(power @ weights.T), n_coefficients=n_mfcc)

    mel_power = librosa.feature.melspectrogram(S=power.T, sr=16000, n_fft=config.n_fft, n_mels=config.n_mels,
                                               fmin=config.fmin_hz, fmax=config.fmax_hz)
    log_mel = librosa.power_to_db(mel_power, top_db=None)
    theirs = librosa.feature.mfcc(S=log_mel, n_mfcc=n_mfcc, dct_type=2, norm="ortho")
    assert ours.shape == theirs.T.shape
    np.testing.assert_allclose(ours, theirs.T, rtol=1e-4, atol=1e-3)


def test_power_to_db_equals_librosa_without_top_db(librosa):
    power = np.array([0.0, 1e-12, 1e-10, 1e-3, 1.0, 50.0])
    np.testing.assert_allclose(dsp.power_to_db(power), librosa.power_to_db(power, top_db=None), rtol=1e-12)


def test_delta_equals_librosa_inside_the_signal(librosa):
    x = np.random.default_rng(1).normal(size=(50, 4))
    ours = dsp.delta(x, width=2)
    theirs = librosa.feature.delta(x.T, width=5, order=1, mode="nearest").T
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9)


def test_pitch_tracker_finds_the_right_octave(librosa):
    # Cross-check the autocorrelation tracker against librosa's YIN on a clean voice-like tone.
    y = tone(180.0, 1.0)
    frames = dsp.frame_signal(y, frame_length=640, hop_length=160)
    f0, periodicity = dsp.autocorrelation_pitch(frames, sample_rate_hz=16000, f0_min_hz=60, f0_max_hz=500)
    yin = librosa.yin(y, fmin=60, fmax=500, sr=16000, frame_length=1024, hop_length=160)
    assert np.median(yin) == pytest.approx(180.0, rel=0.005)
    assert np.median(f0) == pytest.approx(np.median(yin), rel=0.03)  # no octave errors; see the next test
    assert np.median(periodicity) > 0.9


@pytest.mark.parametrize("f0_hz", [100.0, 180.0, 300.0])
def test_pitch_tracker_is_accurate_to_one_percent(f0_hz):
    t = np.arange(16000) / 16000
    for y in (np.sin(2 * np.pi * f0_hz * t).astype(np.float32), tone(f0_hz, 1.0)):
        frames = dsp.frame_signal(y, frame_length=640, hop_length=160)
        f0, _ = dsp.autocorrelation_pitch(frames, sample_rate_hz=16000, f0_min_hz=60, f0_max_hz=500)
        assert np.median(f0) == pytest.approx(f0_hz, rel=0.01)


# -- determinism -----------------------------------------------------------------------------------------
def test_features_are_deterministic_bit_for_bit():
    y = tone(150.0, 2.0, vibrato_hz=2.0)
    first = extract_features(y)
    assert first.dtype == np.float32 and first.shape == (len(feature_names()),)
    assert np.all(np.isfinite(first))
    for _ in range(3):
        assert extract_features(y).tobytes() == first.tobytes()
    # Memory layout does not matter: an unaligned, strided copy of the same samples.
    backing = np.zeros(2 * y.shape[0] + 1, dtype=np.float32)
    backing[1::2] = y
    assert extract_features(backing[1::2]).tobytes() == first.tobytes()
    # Nor does the route the samples took: a window read back from the ring buffer.
    buf = RingBuffer(3 * 16000)
    buf.write(np.zeros(20000, np.float32))
    buf.write(y)
    assert extract_features(buf.read(20000, 20000 + y.shape[0])).tobytes() == first.tobytes()


def _features_in_subprocess(env: dict[str, str]) -> np.ndarray:
    code = (
        "import sys; sys.path.insert(0, 'tests');"
        "from conftest import tone; from ser_live.features.handcrafted import extract_features;"
        "sys.stdout.write(extract_features(tone(210.0, 2.0, vibrato_hz=4.0)).tobytes().hex())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(REPO),
                         env={**os.environ, **env}, check=True, timeout=120)
    return np.frombuffer(bytes.fromhex(out.stdout), dtype=np.float32)


def test_features_are_the_same_in_another_process():
    here = extract_features(tone(210.0, 2.0, vibrato_hz=4.0))
    # Another process, or another BLAS thread count there, may sum the mel projection in another order: the last
    # bits may differ, nothing more.
    assert_same_features(_features_in_subprocess({}), here)
    assert_same_features(_features_in_subprocess({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}), here)
    assert_same_features(_features_in_subprocess({"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}), here)


def test_features_ignore_gain_offset_and_bad_samples():
    y = tone(150.0, 2.0, vibrato_hz=2.0)
    base = extract_features(y)
    names = feature_names()
    # Level-free features do not change with the microphone gain.
    louder = extract_features(y * np.float32(4.0))
    relative = [i for i, n in enumerate(names) if n.startswith(("energy_rel", "f0_st", "voiced_fraction", "mel"))]
    np.testing.assert_allclose(louder[relative], base[relative], atol=1e-3)
    # A DC offset is removed before anything else.
    np.testing.assert_allclose(extract_features(y + np.float32(0.05)), base, atol=1e-3, rtol=1e-3)
    # NaN/inf are treated as silence, never propagated.
    bad = y.copy()
    bad[100:200] = np.nan
    bad[300] = np.inf
    assert np.all(np.isfinite(extract_features(bad)))
    assert np.all(np.isfinite(extract_features(np.zeros(100, np.float32))))
