"""The command-line arguments every training script shares (corpus directories, feature cache, processes)."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

__all__ = ["add_data_arguments", "data_argument_error", "data_error_reported", "quiet_training_warnings"]

#: Warnings of the MLP that are part of how it is used, not news for the user (see quiet_training_warnings).
MLP_WARNINGS = "ignore::UserWarning:sklearn.neural_network._multilayer_perceptron"


def quiet_training_warnings() -> None:
    """Silence the MLP's notices here and in worker processes: the classic recipe's unscaled MLP warns on every
    fold that it has not converged (that is part of the recipe), and tiny corpora trigger batch-size notices;
    neither is actionable. The environment variable carries the filter into the workers."""
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), MLP_WARNINGS]))
    warnings.filterwarnings("ignore", category=UserWarning, module="sklearn.neural_network._multilayer_perceptron")


def add_data_arguments(parser: argparse.ArgumentParser, *,
                       jobs_help: str = "processes (default: all cores)") -> None:
    """Add ``--data DIR [DIR ...]`` (required), ``--cache-dir DIR`` and ``--jobs N`` to ``parser``."""
    parser.add_argument("--data", nargs="+", required=True, metavar="DIR", help="corpus directories")
    parser.add_argument("--cache-dir", metavar="DIR",
                        help="feature cache (default: the user cache directory, or $SER_LIVE_FEATURE_CACHE)")
    parser.add_argument("--jobs", type=int, default=None, metavar="N", help=jobs_help)


def data_argument_error(args: argparse.Namespace) -> str | None:
    """The one-line error for a missing data directory or a ``--jobs`` below 1, or ``None`` if both are fine."""
    for directory in args.data:
        if not Path(directory).is_dir():
            return f"error: data directory {directory} does not exist or is not a directory"
    if args.jobs is not None and args.jobs < 1:
        return "error: --jobs must be at least 1"
    return None


def data_error_reported(args: argparse.Namespace) -> bool:
    """Print :func:`data_argument_error`'s one line to stderr, if there is one, and say whether there was."""
    error = data_argument_error(args)
    if error:
        print(error, file=sys.stderr)
    return error is not None
