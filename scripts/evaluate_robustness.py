#!/usr/bin/env python3
"""Measure a shipped configuration in rooms, in noise and on short replies, on its speaker-independent folds.

Example::

    python scripts/evaluate_robustness.py --data ../shared/data
    python scripts/evaluate_robustness.py --model light --data ../shared/data --model-dir models/light/

Reruns the configuration's speaker-independent evaluation (features from the cache scripts/train.py fills),
then plays every test recording in a simulated room with a noise at 20, 10 or 5 dB over its speech, and cuts
it to its loudest 0.6-1.0 s, and scores both with the fold's own model (see ser_live.training.robustness).
The first run extracts the changed recordings' features (as long as the clean extraction); later runs read
the cache. scripts/train.py measures the same as part of training; this script adds the report to a model
directory trained before (``--model-dir``: the evaluation must be the one that directory was trained on).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ser_live.training.script_args import add_data_arguments, data_error_reported, quiet_training_warnings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(parser)
    parser.add_argument("--model", choices=["default", "light"], default="default",
                        help="which shipped model's configuration: default (speech encoder) or light (handcrafted)")
    parser.add_argument("--model-dir", metavar="DIR",
                        help="write the report into this trained model directory's metrics.json and MODEL_CARD.md")
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    start = time.perf_counter()
    args = parse_args(argv)
    quiet_training_warnings()
    if data_error_reported(args):
        return 2
    from ser_live.training.recipe import (
        SHIPPED_CONFIGS,
        evaluate_configuration,
        inputs_fingerprint,
        robustness_of,
        scan_for,
    )
    from ser_live.training.report import write_robustness_report
    from ser_live.training.robustness import robustness_table

    config = SHIPPED_CONFIGS[args.model]
    try:
        if args.model_dir:  # checked before the minutes of the extraction and the conditions
            recorded = json.loads((Path(args.model_dir) / "metrics.json").read_text()).get("evaluation_sha256")
            if recorded != inputs_fingerprint(scan_for(args.data, config).utterances, config):
                raise ValueError(f"{args.model_dir} was not trained on this evaluation (another model, or retrained "
                                 "with other data or settings); train it again or give the right --model")
        evaluation = evaluate_configuration(args.data, config, classic=False, cache_dir=args.cache_dir,
                                            n_jobs=args.jobs, progress=False)
        report = robustness_of(evaluation, config, cache_dir=args.cache_dir, n_jobs=args.jobs, progress=False)
        if args.model_dir:
            write_robustness_report(Path(args.model_dir), report)
    except (ValueError, FileNotFoundError, PermissionError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    for group in ("overall", *sorted(set(evaluation.features.corpora.tolist()))):
        print(f"\n## {group}\n{robustness_table(report, group)}")
    print(f"\nin all {time.perf_counter() - start:.1f} s (conditions {report['seconds']:.1f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    if args.model_dir:
        print(f"wrote the report into {Path(args.model_dir) / 'metrics.json'} and MODEL_CARD.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
