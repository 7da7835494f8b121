"""Training across corpora: how much each corpus and speaker weighs, and the directions that tell corpora apart."""

from __future__ import annotations

import numpy as np

from .adaptation_methods import speaker_directions

__all__ = ["WEIGHTINGS", "hierarchical_weights", "corpus_directions", "remove_directions"]

#: How a corpus's share within a class grows with its number of speakers: ``"recording"`` is the shipped
#: weighting (every recording of a class counts equally, so the largest corpus outvotes the others);
#: ``"corpus"`` gives each corpus that has the class an equal share, ``"sqrt-speakers"`` a share growing with the
#: square root of its speakers (a corpus of 65 voices says more about people than one of 2, but not 30 times more).
WEIGHTINGS = ("recording", "corpus", "sqrt-speakers")


def _distinct_per(key: np.ndarray, member: np.ndarray) -> np.ndarray:
    """For each row, how many distinct ``member`` values share its ``key``."""
    pairs = np.unique(np.stack([key, member], axis=1), axis=0)
    keys, counts = np.unique(pairs[:, 0], return_counts=True)
    return counts[np.searchsorted(keys, key)]


def hierarchical_weights(labels: np.ndarray, groups: np.ndarray, speakers: np.ndarray, corpora: np.ndarray, *,
                         weighting: str = "corpus") -> np.ndarray:
    """Per-window weights: every class counts equally; within a class, each corpus that has it counts as
    ``weighting`` says, each speaker within that corpus equally and each recording of that speaker equally (its
    windows share the recording's weight).

    Parameters
    ----------
    labels, groups, speakers, corpora : np.ndarray, shape (n_windows,)
        Each window's class, recording (or augmented copy), speaker and corpus.
    weighting : {"corpus", "sqrt-speakers"}
        A corpus's share of a class: equal, or in proportion to the square root of its speakers of that class.

    Returns
    -------
    weights : np.ndarray, shape (n_windows,), mean 1
    """
    if weighting not in WEIGHTINGS[1:]:
        raise ValueError(f"weighting must be one of {WEIGHTINGS[1:]}, not {weighting!r}")
    labels, groups = np.asarray(labels).astype(str), np.asarray(groups).astype(str)
    speakers, corpora = np.asarray(speakers).astype(str), np.asarray(corpora).astype(str)
    _, group_id, group_size = np.unique(groups, return_inverse=True, return_counts=True)
    class_corpus = np.char.add(np.char.add(labels, "\0"), corpora)
    class_speaker = np.char.add(np.char.add(class_corpus, "\0"), speakers)
    speakers_here = _distinct_per(class_corpus, speakers).astype(np.float64)
    weights = 1.0 / (group_size[group_id] * _distinct_per(class_speaker, groups) * speakers_here)
    corpus_share = np.ones_like(weights) if weighting == "corpus" else np.sqrt(speakers_here)
    weights = weights * corpus_share
    classes, class_id = np.unique(labels, return_inverse=True)
    class_total = np.bincount(class_id, weights=weights, minlength=classes.size)
    weights = weights / class_total[class_id]
    return weights * (weights.size / weights.sum())


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
