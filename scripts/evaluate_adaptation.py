#!/usr/bin/env python3
"""Evaluate live speaker adaptation speaker-independently and print UAR against seconds of the speaker heard.

Example::

    python scripts/evaluate_adaptation.py --data ../shared/data
    python scripts/evaluate_adaptation.py --data ../shared/data --model-dir models/

Runs the shipped configuration's speaker-independent evaluation (features from the cache that
scripts/train.py fills), then streams each held-out speaker through the adaptive normaliser; the
protocol is described in :mod:`ser_live.training.adaptation`. half_s is selected per fold on inner
speaker splits, and the script says whether the selection agrees with the shipped half_s
(``SHIPPED_ADAPTATION.half_s``, which scripts/train.py fits the adaptive variant with).

With ``--model-dir`` (a directory scripts/train.py wrote; ``make train`` runs the two in this order)
the report becomes the ``adaptation`` section of its metrics.json and MODEL_CARD.md is regenerated.
The base evaluation is checked to be the one that directory was trained on first, so figures never
describe another model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ser_live.training.script_args import add_data_arguments, data_argument_error


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(parser)
    parser.add_argument("--model", choices=["default", "light"], default="default",
                        help="which shipped model's configuration: default (speech encoder) or light (handcrafted)")
    parser.add_argument("--orders", type=int, default=None, metavar="N",
                        help="random orders per speaker (default: the shipped settings' 5)")
    parser.add_argument("--no-blend", action="store_true", help="normalised model alone, no blending")
    parser.add_argument("--model-dir", metavar="DIR",
                        help="write the report into this trained model directory's metrics.json and MODEL_CARD.md "
                             "(shipped settings only)")
    parser.add_argument("--json", metavar="FILE", help="also write the full report as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    start = time.perf_counter()
    args = parse_args(argv)
    import dataclasses

    from ser_live.training.adaptation import SHIPPED_ADAPTATION, evaluate_live_adaptation, summary_table
    from ser_live.training.pipeline import SHIPPED_CONFIGS
    from ser_live.training.report import adaptation_target, write_adaptation_report

    error = data_argument_error(args) or (
        "error: --orders must be at least 1" if args.orders is not None and args.orders < 1 else None)
    if error:
        print(error, file=sys.stderr)
        return 2
    config = SHIPPED_ADAPTATION
    if args.orders is not None or args.no_blend:
        if args.model_dir:
            print("error: --model-dir records the shipped settings' evaluation; drop --orders and --no-blend",
                  file=sys.stderr)
            return 2
        config = dataclasses.replace(config, n_orders=args.orders or config.n_orders, blend=not args.no_blend)
    try:
        # Checked before the evaluation's minutes: a directory that cannot take the report fails at once.
        expected = adaptation_target(Path(args.model_dir), config) if args.model_dir else None
        report = evaluate_live_adaptation(args.data, SHIPPED_CONFIGS[args.model], config, cache_dir=args.cache_dir,
                                          n_jobs=args.jobs, progress=False, expected_sha256=expected)
        if args.model_dir:
            write_adaptation_report(Path(args.model_dir), report)
    except (ValueError, FileNotFoundError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(summary_table(report))
    agrees = report["selection_agrees_with_shipped"]
    print(f"half_s selected per fold {report['half_s_per_fold']}, most often {report['half_s']:g} s; shipped half_s "
          f"{report['shipped_half_s']:g} s: " + ("the selection agrees" if agrees else
                                                 "the selection does NOT agree (update SHIPPED_ADAPTATION in "
                                                 "ser_live/training/adaptation.py and retrain)"))
    print(f"protocol: {report['protocol']}")
    print(f"blend: {report['blend']}")
    print("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in report["timings_s"].items())
          + f"; in all {time.perf_counter() - start:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    if args.model_dir:
        print(f"wrote the adaptation report into {Path(args.model_dir) / 'metrics.json'} and MODEL_CARD.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
