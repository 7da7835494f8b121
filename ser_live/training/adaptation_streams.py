"""Test streams for speaker adaptation: what one held-out speaker says over minutes, as rows of window features.

A live monitor sees one person at a time, and a person does not act every emotion in turn: they stay
in one mood for minutes, change mood once, or are mostly in one. Each protocol lays a held-out
speaker's recordings (original windows only, never augmented copies) end to end in the order such a
person would produce them; a speaker's recordings are repeated, reshuffled, when a protocol needs more
speech than the speaker recorded. Every speech window brings one hop of new speech, so window ``i``
of a stream is heard after ``i * hop_s`` seconds of speech, as in the monitor.

Protocols (:data:`PROTOCOLS`):

- ``shuffled``: all of the speaker's recordings in a random order (every emotion mixed; the corpora's
  balance, and what the first evaluation measured);
- ``sustained``: one emotion only for :attr:`StreamPlan.sustained_s` seconds, for each emotion;
- ``switch``: :attr:`StreamPlan.switch_s` seconds of one emotion, then as long of another (each
  emotion first once, the second drawn at random);
- ``skewed``: :attr:`StreamPlan.skewed_s` seconds of which :attr:`StreamPlan.skew_share` is one emotion
  and the rest the others, recordings in random order (each emotion dominant once).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from .extract import FeatureSet

__all__ = ["PROTOCOLS", "StreamPlan", "Stream", "speaker_streams", "utterance_rows"]

PROTOCOLS = ("shuffled", "sustained", "switch", "skewed")


@dataclasses.dataclass(frozen=True)
class StreamPlan:
    """Lengths of the protocols' streams, in seconds of speech.

    Parameters
    ----------
    sustained_s : float
        One emotion for this long (its recall is scored after 30 and 60 s).
    switch_s : float
        Each emotion of a switch stream lasts this long.
    skewed_s : float
        Length of a skewed stream.
    skew_share : float
        Share of a skewed stream taken by its dominant emotion.
    """

    sustained_s: float = 90.0
    switch_s: float = 60.0
    skewed_s: float = 120.0
    skew_share: float = 0.7

    def __post_init__(self) -> None:
        if min(self.sustained_s, self.switch_s, self.skewed_s) <= 0 or not 0 < self.skew_share < 1:
            raise ValueError("stream lengths must be positive and skew_share within (0, 1)")


@dataclasses.dataclass(frozen=True)
class Stream:
    """One speaker's stream under one protocol.

    Attributes
    ----------
    protocol : str
    speaker, corpus : str
    rows : np.ndarray of int
        Rows of the feature matrix, in the order they are heard.
    labels : np.ndarray of str
        The emotion of each window (its recording's label).
    target : str
        The emotion the stream is about: the sustained or dominant emotion, or the second one of a switch.
    switch_at : int
        Window at which the second emotion of a switch starts (0 for the other protocols).
    """

    protocol: str
    speaker: str
    corpus: str
    rows: np.ndarray
    labels: np.ndarray
    target: str = ""
    switch_at: int = 0


def utterance_rows(features: FeatureSet) -> dict[int, np.ndarray]:
    """Original (not augmented) window rows of every utterance, in time order."""
    original = np.flatnonzero(features.copy == 0)
    owners = features.utterance_index[original]
    order = np.argsort(owners, kind="stable")
    bounds = np.flatnonzero(np.diff(owners[order])) + 1
    return {int(owners[order[g[0]]]): original[order[g]] for g in np.split(np.arange(order.size), bounds) if g.size}


def _fill(utterances: np.ndarray, n_windows: int, rows_of: dict[int, np.ndarray],
          rng: np.random.Generator) -> list[int]:
    """Utterances in random order, reshuffled and repeated, until they hold at least ``n_windows`` windows."""
    chosen: list[int] = []
    held = 0
    while held < n_windows:
        for utterance in rng.permutation(utterances).tolist():
            chosen.append(utterance)
            held += rows_of[utterance].size
            if held >= n_windows:
                break
    return chosen


def _rows(utterances: list[int], rows_of: dict[int, np.ndarray], n_windows: int | None = None) -> np.ndarray:
    rows = np.concatenate([rows_of[u] for u in utterances])
    return rows if n_windows is None else rows[:n_windows]


def speaker_streams(features: FeatureSet, speaker_utterances: np.ndarray, rows_of: dict[int, np.ndarray],
                    protocol: str, plan: StreamPlan, *, hop_s: float, rng: np.random.Generator) -> Iterator[Stream]:
    """The streams of one held-out speaker under ``protocol``.

    Parameters
    ----------
    features : FeatureSet
    speaker_utterances : np.ndarray of int
        The speaker's utterances (indices into ``features.utterances``) that have windows.
    rows_of : dict
        :func:`utterance_rows` of ``features``.
    protocol : str
        One of :data:`PROTOCOLS`.
    plan : StreamPlan
    hop_s : float
        Seconds of new speech per window.
    rng : np.random.Generator
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    labels = features.labels
    speaker = str(features.speakers[speaker_utterances[0]])
    corpus = str(features.corpora[speaker_utterances[0]])
    by_emotion = {str(e): speaker_utterances[labels[speaker_utterances] == e]
                  for e in np.unique(labels[speaker_utterances])}

    def stream(rows: np.ndarray, target: str = "", switch_at: int = 0) -> Stream:
        return Stream(protocol, speaker, corpus, rows, labels[features.utterance_index[rows]], target, switch_at)

    if protocol == "shuffled":
        yield stream(_rows(rng.permutation(speaker_utterances).tolist(), rows_of))
        return
    for emotion, own in by_emotion.items():
        others = speaker_utterances[labels[speaker_utterances] != emotion]
        if protocol == "sustained":
            n = int(round(plan.sustained_s / hop_s))
            yield stream(_rows(_fill(own, n, rows_of, rng), rows_of, n), emotion)
        elif protocol == "switch" and others.size:
            n = int(round(plan.switch_s / hop_s))
            second = str(rng.choice(sorted(set(by_emotion) - {emotion})))
            rows = np.concatenate([_rows(_fill(own, n, rows_of, rng), rows_of, n),
                                   _rows(_fill(by_emotion[second], n, rows_of, rng), rows_of, n)])
            yield stream(rows, second, n)
        elif protocol == "skewed" and others.size:
            n = int(round(plan.skewed_s / hop_s))
            n_own = int(round(n * plan.skew_share))
            mixed = _fill(own, n_own, rows_of, rng) + _fill(others, n - n_own, rows_of, rng)
            yield stream(_rows(rng.permutation(mixed).tolist(), rows_of, n), emotion)
