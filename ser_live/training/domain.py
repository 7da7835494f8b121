"""Training across corpora: the directions in the features that tell corpora apart more than emotions."""

from __future__ import annotations

import numpy as np

from .adaptation_methods import speaker_directions

__all__ = ["corpus_directions", "remove_directions"]


def corpus_directions(Z: np.ndarray, corpora: np.ndarray, labels: np.ndarray, n_directions: int, *,
                      ridge: float = 0.1) -> np.ndarray:
    """Projector onto the directions where corpora differ most relative to emotions: the speaker-directions
    adaptation's projection (:func:`~ser_live.training.adaptation_methods.speaker_directions`) fitted on corpus
    labels instead of speakers (at most one direction fewer than there are corpora).

    Parameters
    ----------
    Z : np.ndarray, shape (n_windows, n_features)
        Standardised features.
    corpora, labels : np.ndarray, shape (n_windows,)
    n_directions : int
    ridge : float
        As for ``speaker_directions``.
    """
    return speaker_directions(Z, np.asarray(corpora), np.asarray(labels), n_directions, ridge=ridge)


def remove_directions(Z: np.ndarray, projector: np.ndarray) -> np.ndarray:
    """``Z`` without its component along the projector's directions (rows are windows)."""
    return Z - Z @ projector.T
