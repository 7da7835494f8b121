#!/usr/bin/env python3
"""Evaluate live speaker adaptation speaker-independently and print UAR against seconds of the speaker heard.

Example::

    python scripts/evaluate_adaptation.py --data ../shared/data

Runs the shipped configuration's speaker-independent evaluation (features from the cache that
scripts/train.py fills), then streams each held-out speaker through the adaptive normaliser; the
protocol is described in :mod:`ser_live.training.adaptation`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", required=True, metavar="DIR", help="corpus directories")
    parser.add_argument("--cache-dir", metavar="DIR",
                        help="feature cache (default: the user cache directory, or $SER_LIVE_FEATURE_CACHE)")
    parser.add_argument("--jobs", type=int, default=2, metavar="N", help="processes (default: 2)")
    parser.add_argument("--orders", type=int, default=5, metavar="N", help="random orders per speaker (default: 5)")
    parser.add_argument("--no-blend", action="store_true", help="normalised model alone, no blending")
    parser.add_argument("--json", metavar="FILE", help="also write the full report as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from ser_live.training.adaptation import AdaptationConfig, evaluate_live_adaptation, summary_table
    from ser_live.training.pipeline import SHIPPED_CONFIG

    for directory in args.data:
        if not Path(directory).is_dir():
            print(f"error: data directory {directory} does not exist or is not a directory", file=sys.stderr)
            return 2
    if args.jobs < 1 or args.orders < 1:
        print("error: --jobs and --orders must be at least 1", file=sys.stderr)
        return 2
    config = AdaptationConfig(n_orders=args.orders, blend=not args.no_blend)
    try:
        report = evaluate_live_adaptation(args.data, SHIPPED_CONFIG, config, cache_dir=args.cache_dir,
                                          n_jobs=args.jobs, progress=False)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(summary_table(report))
    print(f"half_s per fold {report['half_s_per_fold']} -> shipped half_s {report['half_s']} s")
    print(f"protocol: {report['protocol']}")
    print(f"blend: {report['blend']}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
