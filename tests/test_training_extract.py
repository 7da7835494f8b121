"""Training extraction: resampling, live-window equivalence, the feature cache, augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import assert_same_features, tone, write_wav

from ser_live.audio.buffer import utterance_windows
from ser_live.audio.files import read_audio
from ser_live.dsp.gate import SpeechGate
from ser_live.features.handcrafted import extract_features
from ser_live.training import extract as extract_mod
from ser_live.training.augment import Augmenter
from ser_live.training.corpora import scan_corpora
from ser_live.training.extract import FeatureCache, WindowSetup, extract_dataset, window_features


def _speechlike(seconds: float, seed: int = 0, f0_hz: float = 140.0) -> np.ndarray:
    y = tone(f0_hz, seconds, vibrato_hz=3.0, seed=seed)
    y[:3200] *= 0.001  # a quiet lead-in, as recordings have, so the gate finds the noise floor
    return y


def test_corpus_audio_is_resampled_to_16k_and_downmixed(tmp_path: Path) -> None:
    t = np.arange(44100) / 44100
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 440 * t)], axis=1)
    path = write_wav(tmp_path / "a.wav", stereo.astype(np.float32), sample_rate_hz=44100)
    y = read_audio(path, sample_rate_hz=16000)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(y.shape[0] - 16000) <= 1
    spectrum = np.abs(np.fft.rfft(y[1000:15000] * np.hanning(14000)))
    peak_hz = np.argmax(spectrum) * 16000 / 14000
    assert abs(peak_hz - 440) < 3


def test_window_features_are_the_live_windows_the_gate_accepts() -> None:
    setup = WindowSetup()
    y = _speechlike(5.0)
    y[int(1.5 * 16000):] *= 0.001  # trailing near-silence the gate must reject
    X, ends = window_features(y, setup)
    gate = SpeechGate(sample_rate_hz=16000)
    expected = [(end, extract_features(w, setup.extractor.config))
                for end, w in utterance_windows(y, window_samples=32000, hop_samples=8000)
                if gate(w, end_s=end / 16000).speech]
    assert 0 < len(expected) < len(list(utterance_windows(y, window_samples=32000, hop_samples=8000)))
    assert ends.tolist() == [end for end, _ in expected]
    # Shared frame analysis across overlapping windows: the live numbers up to float32 rounding.
    np.testing.assert_allclose(X, np.stack([f for _, f in expected]), rtol=1e-5, atol=1e-5)


def _corpus(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    for i, name in enumerate(["neu-f1-b1", "rab-f1-b1", "neu-m1-b1", "rab-m1-b1"]):
        write_wav(root / f"{name}.wav", _speechlike(2.2, seed=i, f0_hz=120 + 30 * i), sample_rate_hz=16000)
    return root


def test_cache_makes_the_second_run_read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    utterances = scan_corpora([_corpus(tmp_path)]).utterances
    first = extract_dataset(utterances, cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    assert first.X.shape[0] > 0 and len(first.utterances) == 4

    def boom(*args, **kwargs):
        raise AssertionError("features recomputed although cached")

    monkeypatch.setattr(extract_mod, "window_features", boom)
    second = extract_dataset(utterances, cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    np.testing.assert_array_equal(first.X, second.X)
    np.testing.assert_array_equal(first.utterance_index, second.utterance_index)


def test_cache_key_follows_content_not_name(tmp_path: Path) -> None:
    root = _corpus(tmp_path)
    utterances = scan_corpora([root]).utterances
    extract_dataset(utterances[:1], cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    entries = list((tmp_path / "cache").rglob("*.npz"))
    assert len(entries) == 1
    # Changing the file's content changes the key: a new entry, never a stale hit.
    write_wav(utterances[0].path, _speechlike(2.2, seed=99), sample_rate_hz=16000)
    extract_dataset(utterances[:1], cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 2


def test_damaged_cache_entry_is_recomputed(tmp_path: Path) -> None:
    utterances = scan_corpora([_corpus(tmp_path)]).utterances[:1]
    first = extract_dataset(utterances, cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    (entry,) = list((tmp_path / "cache").rglob("*.npz"))
    entry.write_bytes(b"garbage")
    again = extract_dataset(utterances, cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    assert_same_features(again.X, first.X)  # recomputed, not read back
    assert FeatureCache(tmp_path / "cache").get("0" * 64, "nothing") is None


def test_parallel_extraction_equals_serial(tmp_path: Path) -> None:
    utterances = scan_corpora([_corpus(tmp_path)]).utterances
    serial = extract_dataset(utterances, cache_dir=None, n_jobs=1, progress=False)
    serial_dir = extract_dataset(utterances, cache_dir=tmp_path / "c1", n_jobs=1, progress=False)
    parallel = extract_dataset(utterances, cache_dir=tmp_path / "c2", n_jobs=2, progress=False)
    assert_same_features(parallel.X, serial_dir.X)  # computed in worker processes
    assert serial.X.shape == parallel.X.shape


def test_augmenter_is_reproducible_and_perturbs() -> None:
    y = _speechlike(2.0)
    augmenter = Augmenter(n_copies=2, seed=3)
    a = augmenter(y, sample_rate_hz=16000, rng=augmenter.rng("file", 1))
    b = augmenter(y, sample_rate_hz=16000, rng=augmenter.rng("file", 1))
    c = augmenter(y, sample_rate_hz=16000, rng=augmenter.rng("file", 2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # Tempo within +-10 %: the length changes by at most that much.
    assert 0.88 * y.size <= a.size <= 1.12 * y.size
    assert np.max(np.abs(a)) <= 1.0


def test_augmented_copies_are_marked(tmp_path: Path) -> None:
    utterances = scan_corpora([_corpus(tmp_path)]).utterances
    fs = extract_dataset(utterances, augmenter=Augmenter(n_copies=1), cache_dir=tmp_path / "cache", n_jobs=1,
                         progress=False)
    assert set(fs.copy.tolist()) == {0, 1}
    plain = extract_dataset(utterances, cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    np.testing.assert_array_equal(fs.X[fs.copy == 0], plain.X)
