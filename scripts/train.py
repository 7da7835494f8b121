#!/usr/bin/env python3
"""Train the ser-live emotion model on emotional-speech corpora, evaluate it speaker-independently, and save it.

Example::

    python scripts/train.py --data ../shared/data --out models/
    python scripts/evaluate_adaptation.py --data ../shared/data --model-dir models/
    python scripts/train.py --model light --data ../shared/data --out models/light/
    python scripts/evaluate_adaptation.py --model light --data ../shared/data --model-dir models/light/

``--model default`` (the default) is the Whisper-base encoder + MLP model, ``--model light`` the
handcrafted-feature model.

The model includes the speaker-adaptive variant (referenced to each speaker's neutral voice; see
ser_live.training.adaptation); its evaluation under the adaptation protocols takes a few minutes and is
scripts/evaluate_adaptation.py's job, which adds it to metrics.json and MODEL_CARD.md (``make train``
runs both). A retraining that reproduces the same evaluation keeps the adaptation report already there.

Recognised corpora (by their own file naming, any folder layout): RAVDESS, EMOVO, ASED, nEMO, TESS, CREMA-D,
SAVEE, EmoDB, and the Kaggle bundle of Crema/ Ravdess/ Savee/ Tess/.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from ser_live.training.script_args import add_data_arguments, data_error_reported, quiet_training_warnings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(parser, jobs_help="extraction processes (default: all cores)")
    parser.add_argument("--model", choices=["default", "light"], default="default",
                        help="which shipped model to train: default (speech encoder) or light (handcrafted features)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory for the model and reports")
    parser.add_argument("--augment", type=int, default=None, metavar="COPIES",
                        help="augmented copies per training recording (default: the shipped configuration's)")
    parser.add_argument("--no-adaptation", action="store_true",
                        help="leave out the speaker-adaptive variant (a few seconds faster)")
    parser.add_argument("--no-robustness", action="store_true",
                        help="leave out rooms, noise and short replies (their first extraction takes as long as the "
                             "clean one; then cached)")
    parser.add_argument("--random-split", action="store_true",
                        help='also report a "random split (speaker seen in training)" figure, for contrast')
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    start = time.perf_counter()
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    quiet_training_warnings()
    import dataclasses

    from ser_live.errors import SerLiveError
    from ser_live.model.emotion_model import SHIPPED_MODELS
    from ser_live.training.augment import Augmenter
    from ser_live.training.recipe import SHIPPED_CONFIGS, train_model
    from ser_live.training.report import summary_table

    if data_error_reported(args):
        return 2
    config = SHIPPED_CONFIGS[args.model]
    if args.augment is not None:
        if args.augment < 0:
            print("error: --augment must be 0 or more", file=sys.stderr)
            return 2
        config = dataclasses.replace(config, augmenter=Augmenter(n_copies=args.augment) if args.augment else None)
    try:
        extra = {"adaptation": False} if args.no_adaptation else {}
        if args.no_robustness:
            extra["robustness"] = False
        metrics = train_model(args.data, args.out, config, cache_dir=args.cache_dir, n_jobs=args.jobs,
                              progress=not args.no_progress, random_split=args.random_split,
                              model_name=Path(SHIPPED_MODELS[args.model]).name, **extra)
    except (SerLiveError, ValueError, FileNotFoundError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

    print(summary_table(metrics))
    summary = metrics["summary"]
    print(f"speaker-independent utterance UAR {summary['ours']['utterance']['overall']['uar']:.3f} "
          f"(classic recipe {summary['classic_recipe']['utterance']['overall']['uar']:.3f}, "
          f"ratio {summary['uar_ratio_vs_classic']:.2f})")
    if "robustness" in metrics:
        from ser_live.training.robustness import robustness_table

        print(f"rooms, noise and short replies (held-out speakers):\n{robustness_table(metrics['robustness'])}")
    if "adaptive_variant" in metrics:
        if "adaptation" in metrics:
            print(f"speaker-adaptive variant: the adaptation report in {args.out} was made on this same evaluation "
                  "and is kept")
        else:
            data = " ".join(shlex.quote(d) for d in args.data)
            which = "" if args.model == "default" else f" --model {args.model}"
            print("speaker-adaptive variant fitted; its live evaluation: "
                  f"python scripts/evaluate_adaptation.py{which} --data {data} --model-dir {shlex.quote(args.out)}")
    print("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in metrics["timings_s"].items())
          + f"; with reports and charts {time.perf_counter() - start:.1f} s")
    written = Path(args.out) / metrics["model_file"]
    print(f"model: {written} (SHA-256 {metrics['model_sha256']})\n"
          f"use it with: ser-live --model {shlex.quote(str(written))}")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
