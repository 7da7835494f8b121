#!/usr/bin/env python3
"""Evaluate speaker-adaptation methods speaker-independently under four protocols and print the tables.

Example::

    python scripts/evaluate_adaptation.py --data ../shared/data
    python scripts/evaluate_adaptation.py --data ../shared/data --model-dir models/

Runs the shipped configuration's speaker-independent evaluation (features from the cache that
scripts/train.py fills), then streams each held-out speaker as a real person talks (one mood held,
a switch of mood, a skewed mix, every emotion shuffled) through every method of
:mod:`ser_live.training.adaptation_methods` and the plain model, window by window; the protocol is
described in :mod:`ser_live.training.adaptation_eval`. It says which method, if any, passes the
shipping rule (no harm on held moods, a gain on mixed ones).

With ``--model-dir`` (a directory scripts/train.py wrote; ``make train`` runs the two in this order)
the report becomes the ``adaptation`` section of its metrics.json and MODEL_CARD.md is regenerated; it then
also holds the same evaluation on EMOVO alone (``reproduction``), which tests/test_adapt_corpus.py reruns.
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
                        help="random orders of each speaker's shuffled stream (default: the plan's 3)")
    parser.add_argument("--model-dir", metavar="DIR",
                        help="write the report into this trained model directory's metrics.json and MODEL_CARD.md "
                             "(shipped plan only)")
    parser.add_argument("--json", metavar="FILE", help="also write the full report as JSON")
    return parser.parse_args(argv)


def _print_report(report: dict) -> None:
    from ser_live.training.adaptation_eval import default_choice, protocol_table, sustained_table

    for group in report["methods"][next(iter(report["methods"]))]:
        print(f"\n## {group}\n{protocol_table(report, group)}")
    print(f"\n## each emotion held, recall after 30 s (overall)\n{sustained_table(report, 30.0)}")
    print(f"\n## after 60 s\n{sustained_table(report, 60.0)}")
    chosen = default_choice(report)
    print("\ndefault: " + (f"{chosen} passes the shipping rule" if chosen else
                           "no method passes the shipping rule; adaptation stays off by default"))
    print("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in report["timings_s"].items()))


def _argument_error(args: argparse.Namespace) -> str | None:
    if args.orders is not None and args.orders < 1:
        return "error: --orders must be at least 1"
    if args.orders is not None and args.model_dir:
        return "error: --model-dir records the shipped plan's evaluation; drop --orders"
    return data_argument_error(args)


def main(argv: list[str] | None = None) -> int:
    start = time.perf_counter()
    args = parse_args(argv)
    import dataclasses

    from ser_live.training.adaptation_eval import EvaluationPlan
    from ser_live.training.recipe import SHIPPED_CONFIGS, adaptation_reproduction, evaluate_live_adaptation
    from ser_live.training.report import adaptation_target, write_adaptation_report

    error = _argument_error(args)
    if error:
        print(error, file=sys.stderr)
        return 2
    plan = EvaluationPlan()
    if args.orders is not None:
        plan = dataclasses.replace(plan, shuffled_orders=args.orders)
    try:
        # Checked before the evaluation's minutes: a directory that cannot take the report fails at once.
        expected = adaptation_target(Path(args.model_dir)) if args.model_dir else None
        report = evaluate_live_adaptation(args.data, SHIPPED_CONFIGS[args.model], plan, cache_dir=args.cache_dir,
                                          n_jobs=args.jobs, progress=False, expected_sha256=expected)
        if args.model_dir:
            # The same evaluation on EMOVO alone, which the corpus test reruns (minutes on a cold feature cache).
            report["reproduction"] = adaptation_reproduction(args.data, SHIPPED_CONFIGS[args.model], plan,
                                                             cache_dir=args.cache_dir, n_jobs=args.jobs)
            write_adaptation_report(Path(args.model_dir), report)
    except (ValueError, FileNotFoundError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    _print_report(report)
    print(f"in all {time.perf_counter() - start:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    if args.model_dir:
        print(f"wrote the adaptation report into {Path(args.model_dir) / 'metrics.json'} and MODEL_CARD.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
