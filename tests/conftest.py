"""Shared test fixtures: generated audio, a tiny trained model, and the location of the corpora."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SAMPLE_RATE_HZ = 16000

# Qt must never try to open a real display from the unit tests.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def assert_same_features(actual: np.ndarray, expected: np.ndarray) -> None:
    """Two computations of the same float32 features agree to float32 rounding.

    Used where they ran in other processes, or were recomputed rather than read back: BLAS sums the mel projection
    (and the encoder's products) in another order with another thread count or kernel, which moves the last bits,
    a relative 1e-5 at most; values near zero (deltas, means of centred signals) get the absolute 1e-6. A shifted
    window or another feature changes them by orders of magnitude more (tests/test_extractor_regression.py).
    Copies and cache round trips are compared exactly instead: storage must not change a bit.
    """
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def requires_corpora():
    """Skip marker for tests that read ../shared/data."""
    return pytest.mark.skipif(
        not (SHARED_DATA / "ravdess").is_dir(),
        reason=f"needs the RAVDESS/EMOVO corpora in {SHARED_DATA} (present in CI, absent on users' machines)",
    )


def tone(
    f0_hz: float, duration_s: float, *, sample_rate_hz: int = SAMPLE_RATE_HZ, level: float = 0.3,
    vibrato_hz: float = 0.0, harmonics: int = 8, seed: int = 0,
) -> np.ndarray:
    """A voiced, speech-like harmonic signal with a little noise (deterministic)."""
    t = np.arange(int(duration_s * sample_rate_hz)) / sample_rate_hz
    f = f0_hz * (1.0 + 0.03 * np.sin(2 * np.pi * vibrato_hz * t)) if vibrato_hz else np.full_like(t, f0_hz)
    phase = 2 * np.pi * np.cumsum(f) / sample_rate_hz
    y = sum(np.sin(k * phase) / k for k in range(1, harmonics + 1))
    # Syllable-like amplitude envelope, 4 Hz.
    y = y * (0.6 + 0.4 * np.sin(2 * np.pi * 4.0 * t) ** 2)
    rng = np.random.default_rng(seed)
    y = y / np.max(np.abs(y)) * level + rng.normal(0, level * 0.01, t.shape)
    return y.astype(np.float32)


def voice_with_pauses(seconds: float, seed: int = 0, *, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Voiced stretches of 0.8-1.6 s and pauses of 0.3-0.9 s, deterministic for a seed."""
    rng = np.random.default_rng(seed)
    parts = []
    while sum(p.size for p in parts) < seconds * sample_rate_hz:
        parts.append(tone(float(rng.uniform(110, 240)), float(rng.uniform(0.8, 1.6)), sample_rate_hz=sample_rate_hz,
                          vibrato_hz=3.0, seed=len(parts)))
        parts.append(np.zeros(int(rng.uniform(0.3, 0.9) * sample_rate_hz), np.float32))
    return np.concatenate(parts)[: int(seconds * sample_rate_hz)]


def child_pids(pid: int, *, recursive: bool = False) -> list[int]:
    """The processes a process started (its workers), now; empty once it is gone."""
    import psutil

    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=recursive)]
    except psutil.NoSuchProcess:
        return []


def process_alive(pid: int) -> bool:
    """Whether a process still runs (a zombie waiting for its parent does not)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def write_wav(
    path: Path, samples: np.ndarray, sample_rate_hz: int = SAMPLE_RATE_HZ, subtype: str | None = None
) -> Path:
    """Write audio with soundfile and return the path."""
    import soundfile as sf

    sf.write(str(path), samples, sample_rate_hz, subtype=subtype)
    return path


def espeak(text: str, path: Path, *, voice: str = "en") -> Path:
    """Synthesise speech with espeak-ng into a WAV file (skips the test if espeak-ng is missing)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.skip("espeak-ng is not installed ('make test' installs it)")
    subprocess.run([exe, "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    return path


@pytest.fixture(scope="session")
def tiny_fitted_model(tmp_path_factory):
    """A small model trained inside the test session on generated signals (never shipped), as training leaves it:
    with its scikit-learn estimator, and saved (its ``path``).

    Seven pitch/vibrato patterns stand in for the seven emotions, so the model is really trained
    and its predictions depend on the input.
    """
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ser_live.features.handcrafted import FeatureConfig, extract_features
    from ser_live.model.emotion_model import EMOTIONS, EmotionModel

    config = FeatureConfig()
    x, labels = [], []
    for i, emotion in enumerate(EMOTIONS):
        for j in range(6):
            y = tone(90.0 + 40.0 * i + 3 * j, 2.0, vibrato_hz=1.0 + i, seed=10 * i + j)
            x.append(extract_features(y, config))
            labels.append(emotion)
    estimator = make_pipeline(StandardScaler(), MLPClassifier((16,), max_iter=500, random_state=0))
    estimator.fit(np.array(x), labels)
    model = EmotionModel(estimator, config, window_s=2.0, hop_s=0.5, metadata={"note": "test fixture, not shipped"})
    model.path = tmp_path_factory.mktemp("model") / "tiny.npz"
    model.save(model.path)
    return model


@pytest.fixture(scope="session")
def tiny_model_path(tiny_fitted_model) -> Path:
    """The tiny test model's file."""
    return tiny_fitted_model.path


@pytest.fixture(scope="session")
def tiny_model(tiny_model_path):
    """The tiny test model, loaded from its file."""
    from ser_live.model.emotion_model import EmotionModel

    return EmotionModel.load(tiny_model_path)


#: The classes of :func:`own_model`, a model of made-up classes as a user would train.
OWN_CLASSES = ("calm", "irritated", "escalating")


@pytest.fixture(scope="session")
def own_model(tmp_path_factory):
    """A small model trained here on three made-up classes (pitch and vibrato patterns stand in for them)."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ser_live.features.handcrafted import FeatureConfig, extract_features
    from ser_live.model.emotion_model import EmotionModel

    x, labels = [], []
    for i, label in enumerate(OWN_CLASSES):
        for j in range(8):
            x.append(extract_features(tone(100.0 + 70.0 * i + 3 * j, 2.0, vibrato_hz=1.0 + 2 * i, seed=10 * i + j)))
            labels.append(label)
    estimator = make_pipeline(StandardScaler(), MLPClassifier((16,), max_iter=500, random_state=0))
    estimator.fit(np.array(x), labels)
    path = tmp_path_factory.mktemp("own-model") / "calls.npz"
    EmotionModel(estimator, FeatureConfig(), metadata={"note": "a user's own classes"}).save(path)
    return path


def run_cli(*args: str, env: dict | None = None, timeout: float = 120, input_bytes: bytes | None = None):
    """Run ``python -m ser_live`` as a user would and return the CompletedProcess (text mode)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ser_live", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=str(REPO),
        input=input_bytes.decode() if input_bytes else None,
    )
