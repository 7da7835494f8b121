#!/usr/bin/env python3
"""How far these features and this data go: speaker-independent UAR of other model families, more training
speakers per fold, each corpus alone, and an oracle per-speaker normalisation.

Example::

    python scripts/ceiling_study.py --data ../shared/data --out models/light/ceiling_study.md

Every row is the utterance-level UAR of speaker-independent cross-validation on the shipped
configuration's features (the feature cache that scripts/train.py fills), computed with the package's
own evaluation code (``cross_validate``, ``full_report``). It answers whether the accuracy targets of
issues 3 (utterance UAR >= 0.58) and 5 (>= 0.66 after 60 s of the speaker) are within reach of another
estimator, of more speakers, or of perfect knowledge of the test speaker:

- **model families**: the shipped MLP ensemble beside logistic regression, shrinkage LDA and an RBF SVM on
  the same windows and folds, and the average of their probabilities;
- **speakers per fold**: 5-fold (21 training speakers), 13-fold (24) and leave-one-speaker-out (25);
- **one corpus alone**: each corpus trained and tested on its own speakers;
- **oracle**: every speaker's windows standardised with that speaker's own mean and deviation over *all*
  of their speech, test utterances included. No live monitor can know this much (issue 5's adaptation
  learns it from what it has heard so far), so it bounds what per-speaker normalisation can reach.

Takes about 9 minutes on 2 cores. Nothing here changes the shipped model.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ser_live.training.script_args import add_data_arguments, data_error_reported


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(parser)
    parser.add_argument("--out", metavar="FILE", help="also write the table (Markdown) here")
    return parser.parse_args(argv)


def _families() -> dict[str, Any]:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return {
        "logistic regression (C 0.01)": Pipeline([("scaler", StandardScaler()),
                                                  ("model", LogisticRegression(C=0.01, max_iter=2000))]),
        "LDA (shrinkage auto; unweighted)": Pipeline([("scaler", StandardScaler()), (
            "model", LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"))]),
        # Platt-scaled probabilities, as SVC(probability=True) gave before scikit-learn 1.9 deprecated it.
        "SVM, RBF kernel (C 1)": Pipeline([("scaler", StandardScaler()), (
            "model", CalibratedClassifierCV(SVC(C=1.0), method="sigmoid", ensemble=False))]),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if data_error_reported(args):
        return 2
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from ser_live.training.adaptation import normalise_per_speaker
    from ser_live.training.corpora import scan_corpora
    from ser_live.training.evaluate import cross_validate, full_report, mean_result, speaker_folds
    from ser_live.training.extract import extract_dataset
    from ser_live.training.recipe import LIGHT_CONFIG

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    config = LIGHT_CONFIG  # the handcrafted features' ceiling (the light model)
    scan = scan_corpora(args.data)
    if not scan.utterances:
        print(f"error: no recordings of a known corpus under {', '.join(args.data)}", file=sys.stderr)
        return 1
    features = extract_dataset(scan.utterances, config.setup, augmenter=None, classic=False,
                               cache_dir=args.cache_dir, n_jobs=args.jobs)
    corpora = sorted(set(features.corpora.tolist()))
    rows: list[tuple[str, str, dict[str, Any], float]] = []

    def run(group: str, name: str, data: Any = features, n_splits: int = config.n_splits, params: Any = None,
            estimator: Any = None) -> Any:
        start = time.perf_counter()
        folds = speaker_folds(data.speakers, data.labels, n_splits=n_splits, random_state=config.random_state)
        result = cross_validate(data, folds, params or config.params, augmented=False,
                                random_state=config.random_state, n_jobs=args.jobs, estimator=estimator)
        rows.append((group, name, full_report(result, data)["utterance"], time.perf_counter() - start))
        print(f"{group} | {name}: {rows[-1][2]['overall']['uar']:.3f}", file=sys.stderr, flush=True)
        return result

    shipped = run("model family (5-fold)", "shipped: 5 averaged MLPClassifier(256,), alpha 10")  # = metrics.json
    families = _families()
    others = {name: run("model family (5-fold)", name, estimator=estimator) for name, estimator in families.items()}
    start = time.perf_counter()
    ensemble = mean_result([shipped, others["LDA (shrinkage auto; unweighted)"], others["SVM, RBF kernel (C 1)"]])
    rows.append(("model family (5-fold)", "average of shipped MLPs, LDA and SVM",
                 full_report(ensemble, features)["utterance"], time.perf_counter() - start))
    n_speakers = np.unique(features.speakers).size
    for k in sorted({k for k in (13, n_speakers) if config.n_splits < k <= n_speakers}):
        label = "leave one speaker out" if k == n_speakers else f"{k}-fold"
        run("speakers per fold", f"shipped, {label} (about {n_speakers - n_speakers / k:.0f} training speakers)",
            n_splits=k)
    for corpus in corpora:
        only = features.subset(np.flatnonzero(features.corpora == corpus))
        if np.unique(only.speakers).size >= config.n_splits:
            run("one corpus alone (5-fold)", f"shipped, trained and tested on {corpus} only", data=only)
    speakers = features.speakers[features.utterance_index]
    oracle = dataclasses.replace(features, X=normalise_per_speaker(features.X, speakers))
    run("oracle speaker normalisation (5-fold)", "shipped MLPs on features standardised per speaker", data=oracle)
    run("oracle speaker normalisation (5-fold)", "same, alpha 1", data=oracle,
        params=dataclasses.replace(config.params, alpha=1.0))
    run("oracle speaker normalisation (5-fold)", "SVM, RBF kernel (C 1), same features", data=oracle,
        estimator=families["SVM, RBF kernel (C 1)"])

    header = ["group", "model", "utterance UAR", *corpora, "time"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for group, name, report, seconds in rows:
        cells = [f"{report[c]['uar']:.3f}" if c in report else "" for c in ("overall", *corpora)]
        lines.append(f"| {group} | {name} | " + " | ".join(cells) + f" | {seconds:.0f} s |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).write_text(
            "# Ceiling study: how far these features and this data go\n\n"
            f"Made by `python scripts/ceiling_study.py --data {' '.join(args.data)}` (see its docstring for the "
            "protocol). Speaker-independent, utterance-level UAR (window probabilities averaged), "
            f"{len(features.utterances)} utterances, {np.unique(features.speakers).size} speakers, features "
            f"v{config.setup.extractor.version}.\n\n{table}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
