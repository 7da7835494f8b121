"""The classic baseline recipe, for comparison only: mean MFCC-40 + chroma + mel of a whole utterance, MLP(300,).

This is the recipe of the popular tutorials (librosa features averaged over the utterance, an
unscaled ``MLPClassifier(hidden_layer_sizes=(300,))``). ser-live reports it beside its own model,
under the same speaker-independent protocol, so the comparison is like for like.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

__all__ = ["CLASSIC_KEY", "classic_features", "make_classic_estimator"]

#: Settings of the recipe (also the cache key of its features).
CLASSIC_KEY: dict[str, Any] = {"recipe": "mfcc40+chroma+mel means", "n_mfcc": 40, "version": 1}


def classic_features(y: np.ndarray, *, sample_rate_hz: int) -> np.ndarray:
    """Mean MFCC-40, chroma (12) and mel spectrogram (128) over the whole utterance: 180 values.

    The same numbers as the recipe's three ``librosa.feature`` calls on ``y``, with the STFT and the
    mel spectrogram computed once and shared (the recipe recomputes them per call).
    """
    from .jit_cache import import_librosa

    librosa = import_librosa()
    y = np.asarray(y, dtype=np.float32)
    magnitude = np.abs(librosa.stft(y))
    mel = _mel_basis(sample_rate_hz) @ magnitude**2
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=CLASSIC_KEY["n_mfcc"]).mean(axis=1)
    chroma = librosa.feature.chroma_stft(S=magnitude, sr=sample_rate_hz).mean(axis=1)
    return np.concatenate([mfcc, chroma, mel.mean(axis=1)]).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _mel_basis(sample_rate_hz: int) -> np.ndarray:
    from .jit_cache import import_librosa

    return import_librosa().filters.mel(sr=sample_rate_hz, n_fft=2048)


def make_classic_estimator(random_state: int = 0) -> Any:
    """The recipe's classifier, with the tutorials' settings."""
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(alpha=0.01, batch_size=256, epsilon=1e-08, hidden_layer_sizes=(300,),
                         learning_rate="adaptive", max_iter=500, random_state=random_state)
