#!/usr/bin/env python3
"""Five corpora, each held out in turn: which way of training on all of them recognises a corpus never heard best,
in a noisy room too, and how true its confidence is there.

Example::

    python scripts/corpus_study.py --data ../shared/data --out models/corpus_study.md --json corpus_study.json
    python scripts/corpus_study.py --data ../shared/data --candidates "shipped recipe" "corpus weights"
    python scripts/corpus_study.py --model light --data ../shared/data

Every candidate is a shipped model's features and estimator (the default's: Whisper-base block 3, mean and standard
deviation of its frames, 3 averaged MLP(64,), alpha 1; the light one's: handcrafted features, 5 averaged MLP(256,),
alpha 10) on the clean recordings of every corpus, changed in one way. For each of the corpora, a model
trained on the others scores every recording of it (utterance UAR over that corpus's own classes, the window
probabilities averaged) and a seeded sample of its recordings played in a simulated room with noise at 10 dB SNR
(babble from other speakers of the same corpus). The headline is the mean over the held-out corpora, each counting
once. Confidence: each held-out corpus's window probabilities tempered by the temperature fitted on the other
held-out corpora's (so no corpus is calibrated on itself), then the expected calibration error and the accuracy of
the answers shown at 80 % or more, per window (what the live display shows) and per recording (what --classify
shows).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ser_live.training.script_args import add_data_arguments, data_error_reported, quiet_training_warnings

#: Recordings per corpus played in the 10 dB room (seeded); each corpus's room figure is measured on them.
ROOM_SAMPLE = 150


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One way of training on the corpora, differing from the shipped recipe as its fields say.

    Parameters
    ----------
    description : str
        How it was made, for the table.
    weighting : str
        One of :data:`ser_live.training.estimator.WEIGHTINGS`.
    n_seeds : int, optional
        MLPs averaged (the model family's own number when omitted).
    corpus_directions : int
        Directions separating the training corpora removed from the standardised features (0: none).
    speaker_standardised : {"", "population", "own speaker"}
        Train on each speaker's features standardised by that speaker's statistics; a held-out recording is
        standardised by the population's (the mean of the speaker means, the root mean within-speaker variance),
        which is what a live monitor without speaker adaptation can do, or by its own speaker's statistics over all
        their test windows, which a live monitor cannot (it has not heard the speaker's other moods yet): the most
        a speaker adaptation could reach.
    codec_copy : bool
        Train on one more copy of every training recording, passed through a codec (:func:`_codec_copy`).
    blocks : tuple of int, optional
        The default family only: pool these encoder blocks instead of block 3 (read from the same cache entries).
    alpha_factor : float
        The networks' L2 penalty is the family's times this.
    """

    description: str
    weighting: str = "recording"
    n_seeds: int | None = None
    corpus_directions: int = 0
    speaker_standardised: str = ""
    codec_copy: bool = False
    blocks: tuple[int, ...] | None = None
    alpha_factor: float = 1.0


def _codec_copy() -> Any:
    from ser_live.training.augment import Augmenter

    return Augmenter(n_copies=1, room_share=0.0, noises=(), gain_db=(0.0, 0.0), pitch_semitones=(0.0, 0.0),
                     tempo=(1.0, 1.0), codec_share=1.0)


CANDIDATES: dict[str, Candidate] = {
    "shipped recipe": Candidate("today's default recipe on the clean recordings of all five corpora: every class "
                                "counts equally, and every recording within a class"),
    "corpus weights": Candidate("within each class every corpus that has it counts equally, then every speaker in "
                                "it, then every recording of that speaker", weighting="corpus"),
    "sqrt-speaker weights": Candidate("as corpus weights, but a corpus's share of a class grows with the square "
                                      "root of its speakers", weighting="sqrt-speakers"),
    "corpus directions removed": Candidate("sqrt-speaker weights; the 3 directions that separate the training "
                                           "corpora most relative to emotions projected out of the standardised "
                                           "features", weighting="sqrt-speakers", corpus_directions=3),
    "speaker-standardised": Candidate("sqrt-speaker weights; each training speaker standardised by their own "
                                      "statistics, a held-out recording by the population's",
                                      weighting="sqrt-speakers", speaker_standardised="population"),
    "speaker-standardised, own speaker": Candidate("as speaker-standardised, but each held-out recording standardised "
                                                   "by its own speaker's statistics over all their windows (not "
                                                   "reproducible live; the most speaker adaptation could reach)",
                                                   weighting="sqrt-speakers", speaker_standardised="own speaker"),
    "codec copies": Candidate("sqrt-speaker weights; one more copy of every training recording through Opus at "
                              "8-32 kbit/s or a narrow-band phone line (half each), nothing else changed",
                              weighting="sqrt-speakers", codec_copy=True),
    "blocks 1+3": Candidate("sqrt-speaker weights; encoder blocks 1 and 3 pooled (the default family only)",
                            weighting="sqrt-speakers", blocks=(1, 3)),
    "block 2": Candidate("today's default recipe, but encoder block 2 pooled instead of block 3 (a quarter less "
                         "encoder per window; the default family only)", blocks=(2,)),
    "block 1": Candidate("sqrt-speaker weights; encoder block 1 pooled (the default family only)",
                         weighting="sqrt-speakers", blocks=(1,)),
    "alpha 3x": Candidate("sqrt-speaker weights; an L2 penalty three times the family's (3 for the default, 30 for "
                          "the light model)", weighting="sqrt-speakers", alpha_factor=3.0),
    "directions, speaker-standardised, 7": Candidate("the three above that each helped together: sqrt-speaker "
                                                     "weights, each training speaker standardised, the 3 corpus "
                                                     "directions removed, 7 MLPs", weighting="sqrt-speakers",
                                                     speaker_standardised="population", corpus_directions=3,
                                                     n_seeds=7),
    "ensemble of 7": Candidate("sqrt-speaker weights; 7 MLPs from different seeds averaged instead of 3",
                               weighting="sqrt-speakers", n_seeds=7),
}


def _window_weights(candidate: Candidate, features: Any, rows: np.ndarray) -> np.ndarray:
    from ser_live.training.estimator import window_weights

    recordings, speakers, corpora = (column[rows] for column in features.window_strata())
    return window_weights(features.labels[features.utterance_index[rows]], recordings, candidate.weighting,
                          (speakers, corpora))


def _inputs(candidate: Candidate, features: Any, train_rows: np.ndarray,
            tests: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The training windows and each test set's windows (with their speakers) as the candidate feeds them to the
    estimator."""
    from ser_live.training.adaptation import normalise_per_speaker, speaker_statistics
    from ser_live.training.domain import corpus_directions, remove_directions

    X_train = features.X[train_rows].astype(np.float64)
    owner = features.utterance_index[train_rows]
    if candidate.speaker_standardised:
        stats = speaker_statistics(X_train, features.speakers[owner])
        mean = np.mean([m for m, _ in stats.values()], axis=0)
        std = np.sqrt(np.maximum(np.mean([v for _, v in stats.values()], axis=0), 1e-12))
        X_train = normalise_per_speaker(X_train, features.speakers[owner])
        own = candidate.speaker_standardised == "own speaker"
        standardised = [normalise_per_speaker(t, who) if own else (t - mean) / std for t, who in tests]
    else:
        standardised = [t for t, _ in tests]
    if candidate.corpus_directions:
        mean, std = X_train.mean(axis=0), X_train.std(axis=0) + 1e-12
        X_train = (X_train - mean) / std
        projector = corpus_directions(X_train, features.corpora[owner], features.labels[owner],
                                      candidate.corpus_directions)
        X_train = remove_directions(X_train, projector)
        standardised = [remove_directions((t - mean) / std, projector) for t in standardised]
    return X_train, standardised


def _fit_predict(candidate: Candidate, features: Any, params: Any, train_utterances: np.ndarray,
                 tests: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """Train on the windows of ``train_utterances`` (and their codec copies, if the candidate has them) and give the
    probabilities of each test set's windows."""
    from ser_live.process import blas_threads
    from ser_live.training.estimator import make_estimator
    from ser_live.training.evaluate import aligned_proba, classes_of

    in_train = np.isin(features.utterance_index, train_utterances)
    train_rows = np.flatnonzero(in_train & ((features.copy == 0) | candidate.codec_copy))
    X_train, inputs = _inputs(candidate, features, train_rows, [(X.astype(np.float64), who) for X, who in tests])
    params = dataclasses.replace(params, n_seeds=candidate.n_seeds or params.n_seeds,
                                 alpha=params.alpha * candidate.alpha_factor)
    estimator = make_estimator(params, random_state=0)
    labels = features.labels[features.utterance_index[train_rows]]
    classes = classes_of(features.labels)
    with blas_threads(1):
        estimator.fit(X_train.astype(np.float32), labels,
                      mlp__sample_weight=_window_weights(candidate, features, train_rows))
        return [aligned_proba(estimator, X, classes) for X in inputs]


def _held_out(candidate: Candidate, features: Any, room: Any, corpus: str,
              params: Any) -> list[np.ndarray]:
    """Window probabilities of the held-out corpus's clean windows and of its room windows."""
    test_rows = (features.corpora[features.utterance_index] == corpus) & (features.copy == 0)
    room_rows = room.corpora[room.utterance_index] == corpus
    return _fit_predict(candidate, features, params, np.flatnonzero(features.corpora != corpus),
                        [_with_speakers(features, test_rows), _with_speakers(room, room_rows)])


def _speaker_fold(candidate: Candidate, features: Any, params: Any, train: np.ndarray,
                  test: np.ndarray) -> np.ndarray:
    rows = np.isin(features.utterance_index, test) & (features.copy == 0)
    return _fit_predict(candidate, features, params, train, [_with_speakers(features, rows)])[0]


def _with_speakers(features: Any, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return features.X[rows], features.speakers[features.utterance_index[rows]]


def speaker_independent_cv(candidate: Candidate, features: Any, params: Any, n_jobs: int) -> dict[str, Any]:
    """Utterance UAR of the speaker-independent 5-fold CV over all the corpora (the shipped models' folds), overall
    and per corpus."""
    from joblib import Parallel, delayed

    from ser_live.training.evaluate import classes_of, classification_report, speaker_folds, utterance_mean

    folds = speaker_folds(features.speakers, features.labels, n_splits=5, random_state=0)
    outputs = Parallel(n_jobs=n_jobs)(delayed(_speaker_fold)(candidate, features, params, train, test)
                                      for train, test in folds)
    classes = classes_of(features.labels)
    original = features.copy == 0
    window_proba = np.zeros((int(original.sum()), len(classes)))
    owner = features.utterance_index[original]
    for (_, test), proba in zip(folds, outputs):
        window_proba[np.isin(owner, test)] = proba
    predicted = np.array(classes)[utterance_mean(window_proba, owner, len(features.utterances)).argmax(axis=1)]
    corpora = features.corpora
    return {"uar": classification_report(features.labels, predicted, classes)["uar"],
            "per_corpus": {c: classification_report(features.labels[corpora == c], predicted[corpora == c],
                                                    classes)["uar"] for c in sorted(set(corpora.tolist()))}}


def _corpus_figures(features: Any, room: Any, names: list[str], clean: list[np.ndarray],
                    rooms: list[np.ndarray]) -> dict[str, Any]:
    """UAR, room UAR and calibration (:func:`ser_live.training.calibrate.calibration_per_corpus`) per held-out
    corpus."""
    from ser_live.training.calibrate import calibration_per_corpus
    from ser_live.training.evaluate import classes_of

    classes = classes_of(features.labels)
    original = features.copy == 0
    owner = features.utterance_index[original]
    proba = np.zeros((owner.size, len(classes)))
    for corpus, held_out in zip(names, clean):
        proba[features.corpora[owner] == corpus] = held_out
    calibration = calibration_per_corpus(proba, owner, features.labels, features.corpora, classes)
    out = {}
    for corpus, held_out, room_proba in zip(names, clean, rooms):
        fitted = calibration[corpus]
        out[corpus] = {**_one_corpus(features, room, corpus, held_out, room_proba, classes),
                       "calibration": {level: {when: fitted[when][level] for when in ("before", "after")}
                                       for level in ("window", "utterance")},
                       "temperature": fitted["temperature_from_others"]}
    return out


def _utterance_level(features: Any, corpus: str, window_proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each utterance of ``corpus``: its label and the mean of its windows' probabilities."""
    from ser_live.training.evaluate import utterance_mean

    members = np.flatnonzero(features.corpora == corpus)
    rows = (features.copy == 0) & np.isin(features.utterance_index, members)
    local = np.searchsorted(members, features.utterance_index[rows])
    return features.labels[members], utterance_mean(window_proba, local, members.size)


def _one_corpus(features: Any, room: Any, corpus: str, clean: np.ndarray, room_proba: np.ndarray,
                classes: tuple[str, ...]) -> dict[str, Any]:
    """The held-out corpus's utterance report, window UAR, and the 10 dB room's UAR beside the same sample's clean."""
    from ser_live.training.evaluate import classification_report

    window_rows = (features.copy == 0) & (features.corpora[features.utterance_index] == corpus)
    window_labels = features.labels[features.utterance_index[window_rows]]
    labels, utterance_proba = _utterance_level(features, corpus, clean)
    room_labels, room_utterances = _utterance_level(room, corpus, room_proba)
    sampled = np.isin([str(u.path) for u in features.utterances if u.corpus == corpus],
                      [str(u.path) for u in room.utterances if u.corpus == corpus])
    names = np.array(classes)
    return {
        "utterance": classification_report(labels, names[utterance_proba.argmax(1)], classes),
        "window_uar": classification_report(window_labels, names[clean.argmax(1)], classes)["uar"],
        "room_10db_uar": classification_report(room_labels, names[room_utterances.argmax(1)], classes)["uar"],
        "room_sample_clean_uar": classification_report(labels[sampled], names[utterance_proba[sampled].argmax(1)],
                                                       classes)["uar"],
    }


def leave_each_corpus_out(candidate: Candidate, features: Any, room: Any, params: Any, n_jobs: int) -> dict[str, Any]:
    """The candidate's figures on each corpus held out in turn, and their means."""
    from joblib import Parallel, delayed

    names = sorted(set(features.corpora.tolist()))
    outputs = Parallel(n_jobs=n_jobs)(delayed(_held_out)(candidate, features, room, c, params) for c in names)
    per_corpus = _corpus_figures(features, room, names, [o[0] for o in outputs], [o[1] for o in outputs])
    return {"per_corpus": per_corpus,
            "mean_uar": float(np.mean([v["utterance"]["uar"] for v in per_corpus.values()])),
            "mean_room_10db_uar": float(np.mean([v["room_10db_uar"] for v in per_corpus.values()])),
            "mean_room_sample_clean_uar": float(np.mean([v["room_sample_clean_uar"] for v in per_corpus.values()]))}


def load_features(config: Any, data_dirs: list[str], cache_dir: str | None, n_jobs: int, *,
                  codec_copy: bool, blocks: tuple[int, ...] | None = None) -> tuple[Any, Any]:
    """The clean features of every recording of the five corpora (and their codec copies, if asked), and the 10 dB
    room features of a sample (with ``blocks``, of those encoder blocks)."""
    from ser_live.training.conditions import RoomNoise
    from ser_live.training.extract import extract_condition, extract_dataset
    from ser_live.training.recipe import scan_for
    from ser_live.training.robustness import babble_talkers

    config = dataclasses.replace(config, corpora=None, augmenter=None)
    if blocks is not None:
        from ser_live.features.extractor import EncoderFeatures

        config = dataclasses.replace(config, setup=dataclasses.replace(config.setup, extractor=EncoderFeatures(blocks)))
    scan = scan_for(data_dirs, config)
    features = extract_dataset(scan.utterances, config.setup, cache_dir=cache_dir, n_jobs=n_jobs,
                               augmenter=_codec_copy() if codec_copy else None)
    corpora = features.corpora
    names = sorted(set(corpora.tolist()))
    rng = np.random.default_rng(0)
    members = [np.flatnonzero(corpora == c) for c in names]
    sample = np.sort(np.concatenate([rng.choice(m, size=min(ROOM_SAMPLE, m.size), replace=False) for m in members]))
    condition = RoomNoise(snr_db=(10.0,))
    folds = [(np.flatnonzero(corpora != c), m) for c, m in zip(names, members)]
    talkers = babble_talkers(features, folds, n_talkers=condition.n_talkers, seed=condition.seed)
    room = extract_condition([features.utterances[i] for i in sample], condition, config.setup, talkers=talkers,
                             cache_dir=cache_dir, n_jobs=n_jobs)
    return features, room


def table(results: dict[str, dict[str, Any]]) -> str:
    """Markdown: one row per candidate, the held-out corpora's UAR and calibration."""
    names = sorted(next(iter(results.values()))["per_corpus"])
    head = ("| candidate | CV UAR (five corpora) | mean UAR, corpus never heard | " + " | ".join(names)
            + " | room 10 dB (clean, same sample) | score | ECE window (each corpus) | right at >= 80 % "
              "(each corpus) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, r in results.items():
        per = r["per_corpus"]
        ece = " / ".join(f"{per[c]['calibration']['window']['after']['ece']:.2f}" for c in names)
        confident = " / ".join(_share(per[c]["calibration"]["window"]["after"]) for c in names)
        cv = f"{r['cv']['uar']:.3f}" if "cv" in r else "–"
        lines.append(f"| {name} | {cv} | {r['mean_uar']:.3f} | " + " | ".join(f"{per[c]['utterance']['uar']:.3f}"
                                                                         for c in names)
                     + f" | {r['mean_room_10db_uar']:.3f} ({r['mean_room_sample_clean_uar']:.3f}) | "
                       f"{(r['mean_uar'] + r['mean_room_10db_uar']) / 2:.3f} | {ece} | {confident} |")
    return "\n".join(lines)


def _share(report: dict[str, Any]) -> str:
    if report["confident_accuracy"] is None:
        return "none"
    return f"{report['confident_accuracy']:.2f} ({100 * report['confident_share']:.0f} %)"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(parser)
    parser.add_argument("--model", choices=["default", "light"], default="default",
                        help="which shipped model's features and estimator: default (speech encoder) or light")
    parser.add_argument("--candidates", nargs="+", choices=list(CANDIDATES), metavar="NAME",
                        help="which to evaluate (default: all): " + ", ".join(map(repr, CANDIDATES)))
    parser.add_argument("--cv", nargs="*", choices=list(CANDIDATES), metavar="NAME",
                        help="also the speaker-independent 5-fold CV over all the corpora (5 more fits a candidate) "
                             "of these candidates (of all without a name)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write every figure as JSON")
    parser.add_argument("--out", type=Path, metavar="FILE", help="also write the table as Markdown")
    return parser.parse_args(argv)


def evaluate(name: str, features: Any, room: Any, params: Any, *, cv: bool, n_jobs: int) -> dict[str, Any]:
    """One candidate's figures (and its CV, if asked), with how it was made and how long it took."""
    began = time.perf_counter()
    result = leave_each_corpus_out(CANDIDATES[name], features, room, params, n_jobs)
    if cv:
        result["cv"] = speaker_independent_cv(CANDIDATES[name], features, params, n_jobs)
    result["description"] = CANDIDATES[name].description
    result["seconds"] = round(time.perf_counter() - began, 1)
    print(f"{name}: mean UAR {result['mean_uar']:.3f}, room {result['mean_room_10db_uar']:.3f} "
          f"({result['seconds']:.0f} s)", flush=True)
    return result


def run(args: argparse.Namespace, config: Any, chosen: list[str]) -> dict[str, dict[str, Any]]:
    """Every chosen candidate's figures, each feature set read once (and the JSON rewritten after each)."""
    start = time.perf_counter()
    n_jobs = args.jobs or 2
    codec_copy = any(CANDIDATES[n].codec_copy for n in chosen)  # then read for every candidate
    loaded: dict[tuple[int, ...] | None, tuple[Any, Any]] = {}
    results = {}
    for name in chosen:
        blocks = CANDIDATES[name].blocks
        if blocks not in loaded:
            loaded[blocks] = load_features(config, args.data, args.cache_dir, n_jobs, blocks=blocks,
                                           codec_copy=codec_copy)
            print(f"features: {loaded[blocks][0].X.shape[0]} windows ({time.perf_counter() - start:.0f} s)",
                  flush=True)
        results[name] = evaluate(name, *loaded[blocks], config.params, n_jobs=n_jobs,
                                 cv=args.cv is not None and (not args.cv or name in args.cv))
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if data_error_reported(args):
        return 1
    quiet_training_warnings()
    from ser_live.training.recipe import SHIPPED_CONFIGS

    chosen = args.candidates or [n for n, c in CANDIDATES.items() if not c.blocks or args.model == "default"]
    text = table(run(args, SHIPPED_CONFIGS[args.model], chosen))
    print(text)
    if args.out:
        args.out.write_text(document(text, args.model, argv if argv is not None else sys.argv[1:]))
    return 0


def document(text: str, model: str, argv: list[str]) -> str:
    """The Markdown file ``--out`` writes: what was measured, how, by which command, and the table."""
    method = __doc__.split("\n\n", 1)[0].replace("\n", " ")
    how = " ".join(__doc__.split("Every candidate is", 1)[1].split())
    return (f"# {method}\n\nMade by `python scripts/corpus_study.py {' '.join(argv)}` ({model} family).\n\n"
            f"Every candidate is {how}\n\n{text}\n\nscore = mean of the corpus-never-heard UAR and the 10 dB room "
            "UAR; ECE window = expected calibration error of the window probabilities, each held-out corpus tempered "
            "by the temperature fitted on the others; right at >= 80 % = accuracy of the windows shown at 80 % or "
            "more (their share).\n")


if __name__ == "__main__":
    sys.exit(main())
