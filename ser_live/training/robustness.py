"""How a configuration does on audio its corpora lack: rooms and noise at 20, 10 and 5 dB, and short replies.

The test speakers' recordings of every speaker-independent fold are turned into each condition of
:mod:`ser_live.training.conditions` (never the training side's: the babble is made of other speakers of the
same test fold), and scored by the fold's model trained on the clean training side, exactly as the clean
cross-validation scores them. Each recording is mixed at one of the SNRs (drawn from its content), so each
level is measured on about a third of the recordings; the clean figure beside it is measured on the same
third. A recording of which the speech gate accepts no window under a condition counts as a miss: the
monitor would show nothing for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..model.emotion_model import file_sha256
from .conditions import RoomNoise, ShortReply
from .estimator import ModelParams, fit_estimator
from .evaluate import aligned_proba, classes_of, report_groups, training_rows
from .extract import FeatureSet, WindowSetup, extract_condition

__all__ = ["ROOM_NOISE", "SHORT_REPLY", "babble_talkers", "extract_conditions", "condition_probabilities",
           "robustness_report", "evaluate_robustness", "robustness_table"]

#: The rooms-and-noise condition every shipped model is measured in.
ROOM_NOISE = RoomNoise()
#: The short-reply condition.
SHORT_REPLY = ShortReply()


def babble_talkers(features: FeatureSet, folds: Sequence[tuple[np.ndarray, np.ndarray]], *, n_talkers: int,
                   seed: int = 0) -> dict[str, tuple[str, ...]]:
    """For every test recording, ``n_talkers`` recordings of other speakers of its test fold (seeded)."""
    paths = np.array([str(u.path) for u in features.utterances])
    speakers = features.speakers
    rng = np.random.default_rng(seed)
    out: dict[str, tuple[str, ...]] = {}
    for _, test in folds:
        for i in test:
            others = test[speakers[test] != speakers[i]]
            if others.size:
                out[paths[i]] = tuple(paths[rng.choice(others, size=min(n_talkers, others.size), replace=False)])
    return out


def extract_conditions(features: FeatureSet, folds: Sequence[tuple[np.ndarray, np.ndarray]], setup: WindowSetup, *,
                       conditions: Sequence[Any] = (ROOM_NOISE, SHORT_REPLY), measure: np.ndarray | None = None,
                       cache_dir: Any = None, n_jobs: int | None = None,
                       progress: bool = True) -> dict[str, FeatureSet]:
    """Each condition's features of the recordings ``measure`` picks (all by default), cached like the clean ones.

    The babble of a recording is drawn from its whole test fold whichever recordings are measured, so a
    measure of a part gives the figures of that part of the whole measure.
    """
    chosen = [features.utterances[i] for i in (measure if measure is not None else range(len(features.utterances)))]
    out = {}
    for condition in conditions:
        talkers = (babble_talkers(features, folds, n_talkers=condition.n_talkers, seed=condition.seed)
                   if isinstance(condition, RoomNoise) else None)
        out[condition.name] = extract_condition(chosen, condition, setup, talkers=talkers, cache_dir=cache_dir,
                                                n_jobs=n_jobs, progress=progress)
    return out


def _fold_predictions(features: FeatureSet, conditioned: Mapping[str, FeatureSet], clean_id: Mapping[str, np.ndarray],
                      train: np.ndarray, test: np.ndarray, params: ModelParams, augmented: bool, random_state: int,
                      classes: tuple[str, ...]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """One fold: fit on the clean training side, then the window probabilities of each condition's test rows."""
    window_labels = features.labels[features.utterance_index]
    groups, speakers, corpora = features.window_strata()
    train_rows, _ = training_rows(features, train, test, augmented=augmented)
    estimator = fit_estimator(features.X[train_rows], window_labels[train_rows], groups[train_rows], params,
                              strata=(speakers[train_rows], corpora[train_rows]), random_state=random_state)
    out = {}
    for name, cond in conditioned.items():
        rows = np.flatnonzero(np.isin(clean_id[name][cond.utterance_index], test))
        out[name] = (rows, aligned_proba(estimator, cond.X[rows], classes) if rows.size else np.zeros((0, 0)))
    return out


def condition_probabilities(features: FeatureSet, conditioned: Mapping[str, FeatureSet],
                            folds: Sequence[tuple[np.ndarray, np.ndarray]], params: ModelParams | None = None, *,
                            augmented: bool = False, random_state: int = 0,
                            n_jobs: int | None = 1) -> dict[str, np.ndarray]:
    """Out-of-fold utterance probabilities under each condition, indexed like ``features``' utterances.

    Each fold's model is the one :func:`~ser_live.training.evaluate.cross_validate` fits (the same rows, seeds and
    parameters); a recording the gate found no speech in under a condition has a row of NaN.
    """
    from joblib import Parallel, delayed

    params = params if params is not None else ModelParams()
    classes = classes_of(features.labels)
    index_of = {str(u.path): i for i, u in enumerate(features.utterances)}
    clean_id = {name: np.array([index_of[str(u.path)] for u in cond.utterances], dtype=np.int64)
                for name, cond in conditioned.items()}
    outputs = Parallel(n_jobs=n_jobs or -1)(
        delayed(_fold_predictions)(features, conditioned, clean_id, train, test, params, augmented, random_state,
                                   classes)
        for train, test in folds
    )
    out = {}
    for name, cond in conditioned.items():
        sums = np.zeros((len(features.utterances), len(classes)))
        counts = np.zeros(len(features.utterances))
        for fold in outputs:
            rows, proba = fold[name]
            owners = clean_id[name][cond.utterance_index[rows]]
            np.add.at(sums, owners, proba)
            np.add.at(counts, owners, 1.0)
        with np.errstate(invalid="ignore"):
            out[name] = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], np.nan)
    return out


def _uar(truth: np.ndarray, predicted: np.ndarray, classes: tuple[str, ...]) -> float:
    """Mean recall over the classes present (a prediction of "" — nothing shown — is never right)."""
    return float(np.mean([np.mean(predicted[truth == c] == c) for c in classes if np.any(truth == c)]))


def _predicted(proba: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    unscored = np.isnan(proba).any(axis=1)
    best = np.array(classes)[np.argmax(np.nan_to_num(proba, nan=-1.0), axis=1)]
    return np.where(unscored, "", best)


def robustness_report(features: FeatureSet, clean_proba: np.ndarray, condition_proba: Mapping[str, np.ndarray],
                      subsets: Mapping[str, tuple[str, np.ndarray]], classes: tuple[str, ...]) -> dict[str, Any]:
    """Utterance UAR under each condition beside the clean UAR of the same recordings, overall and per corpus.

    Parameters
    ----------
    clean_proba : np.ndarray, shape (n_utterances, n_classes)
        The clean cross-validation's out-of-fold utterance probabilities.
    condition_proba : dict
        From :func:`condition_probabilities`.
    subsets : dict
        Row label -> (condition name, boolean mask of the recordings it is measured on).
    """
    labels, corpora = features.labels, features.corpora
    clean_pred = _predicted(clean_proba, classes)
    rows = {}
    for label, (name, mask) in subsets.items():
        pred = _predicted(condition_proba[name], classes)
        per_group = {}
        for group, members in {"overall": tuple(sorted(set(corpora.tolist()))),
                               **report_groups(corpora.tolist())}.items():
            keep = mask & np.isin(corpora, members)
            if not keep.any():
                continue
            per_group[group] = {"n": int(keep.sum()), "clean_uar": _uar(labels[keep], clean_pred[keep], classes),
                                "uar": _uar(labels[keep], pred[keep], classes),
                                "no_speech_found": int(np.sum(pred[keep] == ""))}
        rows[label] = per_group
    return rows


def evaluate_robustness(features: FeatureSet, folds: Sequence[tuple[np.ndarray, np.ndarray]], clean_proba: np.ndarray,
                        setup: WindowSetup, params: ModelParams, *, augmented: bool = False, random_state: int = 0,
                        measure: np.ndarray | None = None, cache_dir: Any = None, n_jobs: int | None = None,
                        progress: bool = True) -> dict[str, Any]:
    """Extract the conditions, score them on the folds, and report them beside the clean figure (see module).

    ``measure`` (utterance ids) measures a part only: a quick reproduction of part of the recorded figures.
    """
    conditioned = extract_conditions(features, folds, setup, measure=measure, cache_dir=cache_dir, n_jobs=n_jobs,
                                     progress=progress)
    probabilities = condition_probabilities(features, conditioned, folds, params, augmented=augmented,
                                            random_state=random_state, n_jobs=n_jobs)
    measured = np.zeros(len(features.utterances), dtype=bool)
    measured[measure if measure is not None else slice(None)] = True
    snr = np.array([ROOM_NOISE.snr_of(file_sha256(str(u.path))) if m else np.nan
                    for u, m in zip(features.utterances, measured)])
    subsets = {f"room, {db:g} dB SNR": (ROOM_NOISE.name, measured & (snr == db)) for db in ROOM_NOISE.snr_db}
    subsets[f"short reply ({SHORT_REPLY.min_s:g}-{SHORT_REPLY.max_s:g} s)"] = (SHORT_REPLY.name, measured)
    return {"protocol": "the test speakers of the speaker-independent folds, their audio changed; each fold's "
                        "model trained on the clean training side",
            "conditions": {ROOM_NOISE.name: ROOM_NOISE.key(), SHORT_REPLY.name: SHORT_REPLY.key()},
            "rows": robustness_report(features, clean_proba, probabilities, subsets, classes_of(features.labels))}


def robustness_table(report: dict[str, Any], group: str = "overall") -> str:
    """Markdown: each condition's UAR beside the clean UAR of the same recordings."""
    lines = ["| condition | recordings | clean UAR | UAR | drop | no speech found |", "|---|---|---|---|---|---|"]
    for label, groups in report["rows"].items():
        row = groups.get(group)
        if row is None:
            continue
        lines.append(f"| {label} | {row['n']} | {row['clean_uar']:.3f} | {row['uar']:.3f} | "
                     f"{row['clean_uar'] - row['uar']:+.3f} | {row['no_speech_found']} |")
    return "\n".join(lines)
