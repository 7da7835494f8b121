"""The ``ser-live-train`` command (also ``python -m ser_live.training``): a model of one's own recordings and classes.

Example::

    ser-live-train my-recordings/ --out my-model       # my-recordings/<class>/[<speaker>/]*.wav
    ser-live-train labels.csv --out my-model --features light
    ser-live --model my-model

Exit status: 0 trained, 1 the data or the options cannot give a model (one line per problem on stderr),
130 interrupted (the features computed so far are cached; the same command resumes).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

__all__ = ["main", "parse_args"]

_EPILOG = """DATA is a folder with one sub-folder per class (optionally a folder per speaker inside each) or a CSV/TSV
with path,label[,speaker] columns. Without speakers the figures are optimistic (voices on both sides of the folds):
name them by folders, a speaker column or --speaker-pattern. Unreadable files are listed and left out."""


def _layer_sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes such as 64 or 128,64, not {text!r}") from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of ``ser-live-train``."""
    parser = argparse.ArgumentParser(prog="ser-live-train", description=__doc__.splitlines()[0], epilog=_EPILOG)
    parser.add_argument("data", metavar="DATA", help="folder of class folders, or a CSV/TSV of path,label[,speaker]")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder for the model, MODEL_CARD.md and metrics.json (the model is named after it)")
    parser.add_argument("--features", choices=["default", "light"], default="default",
                        help="the feature extractor of the shipped default model (speech encoder) or of the light "
                             "one (handcrafted, many times faster)")
    parser.add_argument("--speaker-pattern", metavar="REGEX",
                        help="take the speaker from file names: a regular expression with a group named speaker, "
                             "matched at the start of the name, e.g. '(?P<speaker>[^_]+)_' for anna_01.wav")
    parser.add_argument("--allow-similar-labels", action="store_true",
                        help="train even when two labels look like one class written two ways")
    parser.add_argument("--augment", type=int, metavar="COPIES",
                        help="copies of each training recording in simulated rooms with noise (default: as the "
                             "shipped model whose features are used: 2 for default, 0 for light)")
    parser.add_argument("--hidden", type=_layer_sizes, metavar="SIZES", help="hidden layer sizes, e.g. 64 or 128,64")
    parser.add_argument("--alpha", type=float, help="L2 penalty of the networks")
    parser.add_argument("--seeds", type=int, metavar="N", help="networks averaged")
    parser.add_argument("--no-robustness", action="store_true", help="leave out rooms, noise and short replies")
    parser.add_argument("--cache-dir", metavar="DIR",
                        help="feature cache (default: the user cache directory, or $SER_LIVE_FEATURE_CACHE)")
    parser.add_argument("--jobs", type=int, metavar="N", help="processes (default: all cores)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def _error(message: str) -> None:
    print(f"ser-live-train: error: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run ``ser-live-train``; returns the exit status."""
    args = parse_args(argv)
    try:
        return _train(args)
    except KeyboardInterrupt:
        print("ser-live-train: interrupted; the features computed so far are cached, so the same command goes on "
              "from there", file=sys.stderr)
        return 130


def _train(args: argparse.Namespace) -> int:
    try:
        from ..errors import SerLiveError
        from .own_data import DatasetError, read_dataset
        from .own_model import own_config, train_own_model
        from .script_args import quiet_training_warnings
    except ModuleNotFoundError as exc:  # the training extras are not installed
        _error(f"training needs the package {exc.name}: pip install 'ser-live[train]'")
        return 1
    quiet_training_warnings()
    if args.jobs is not None and args.jobs < 1:
        _error("--jobs must be at least 1")
        return 1
    try:
        config = own_config(args.features, augment=args.augment, hidden_layer_sizes=args.hidden, alpha=args.alpha,
                            n_seeds=args.seeds)
        dataset = read_dataset(args.data, speaker_pattern=args.speaker_pattern,
                               allow_similar_labels=args.allow_similar_labels)
        _describe(dataset)
        metrics = train_own_model(dataset, args.out, config, robustness=not args.no_robustness,
                                  cache_dir=args.cache_dir, n_jobs=args.jobs, progress=not args.no_progress)
    except DatasetError as exc:
        _left_out(exc.unreadable)
        for problem in exc.problems:
            _error(problem)
        return 1
    except (SerLiveError, ValueError, OSError) as exc:
        _error(str(exc))
        return 1
    except ModuleNotFoundError as exc:
        _error(f"training needs the package {exc.name}: pip install 'ser-live[train]'")
        return 1
    print(_summary(metrics, args.out))
    return 0


def _describe(dataset: Any) -> None:
    """What was found, on stderr: classes, speakers, the files left out."""
    counts: dict[str, int] = {}
    for utterance in dataset.utterances:
        counts[utterance.label] = counts.get(utterance.label, 0) + 1
    speakers = (f"{len({u.speaker for u in dataset.utterances})} speakers" if dataset.speakers_known
                else "speakers not named (the figures will be optimistic)")
    print(f"ser-live-train: {len(dataset.utterances)} recordings in {len(counts)} classes "
          f"({', '.join(f'{label} {n}' for label, n in sorted(counts.items()))}), {speakers}", file=sys.stderr)
    _left_out(dataset.unreadable)


def _left_out(unreadable: list[Any]) -> None:
    for path, reason in unreadable:
        print(f"ser-live-train: left out {path}: {reason}", file=sys.stderr)


def _summary(metrics: dict[str, Any], out: str) -> str:
    """What the run printed last: the honest figures and how to use the model."""
    from .evaluate import RANDOM_SPLIT
    from .robustness import robustness_table

    utterance = metrics["ours"]["utterance"]["overall"]
    window = metrics["ours"]["window"]["overall"]
    calibration = metrics["calibration"]["utterance"]
    data = metrics["data"]
    protocol = metrics["summary"]["protocol"]
    optimistic = "OPTIMISTIC (the data names no speakers), " if protocol == RANDOM_SPLIT else ""
    lines = [f"{optimistic}{protocol}, {metrics['config']['n_splits']} folds: per recording UAR "
             f"{utterance['uar']:.3f}, accuracy {utterance['accuracy']:.3f}; per window UAR {window['uar']:.3f} "
             f"(chance {1 / len(utterance['recall']):.3f})",
             "recall: " + ", ".join(f"{label} {value:.2f}" for label, value in utterance["recall"].items()),
             f"confidence (tempered by {metrics['calibration']['temperature']:g}): mean "
             f"{calibration['after']['mean_confidence']:.2f} for an accuracy of {calibration['after']['accuracy']:.2f} "
             f"(calibration error {calibration['after']['ece']:.3f}, untempered {calibration['before']['ece']:.3f})"]
    if "robustness" in metrics:
        lines.append("rooms, noise and short replies (UAR, clean in brackets):\n"
                     + robustness_table(metrics["robustness"]))
    left_out = len(data["unreadable_files"]) + len(data["dropped_utterances"])
    if left_out:
        lines.append(f"left out: {len(data['unreadable_files'])} unreadable file(s), "
                     f"{len(data['dropped_utterances'])} without speech (listed in metrics.json)")
    folder = Path(out)
    lines += [f"model: {folder / metrics['model_file']} (card: {folder / 'MODEL_CARD.md'}, figures: "
              f"{folder / 'metrics.json'})", f"use it with: ser-live --model {shlex.quote(out)}"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
