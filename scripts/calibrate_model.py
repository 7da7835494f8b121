#!/usr/bin/env python3
"""Make a trained model's confidence true on corpora it never heard: fit its temperature there and record how true.

Example::

    python scripts/calibrate_model.py --data ../shared/data --model-dir models/
    python scripts/calibrate_model.py --model light --data ../shared/data --model-dir models/light/

The directory is one scripts/train.py wrote (``make train`` runs this after it). Where ``--data`` holds two or more
corpora the model was not trained on, every recording of them is scored window by window, exactly as live (features
from the cache training fills). Where the model heard (nearly) every corpus, each corpus is instead scored by the
shipped recipe (``--model``) trained on the others, which needs that recipe to be the one the directory was trained
with. The temperature that makes those probabilities as sure as they are right is stored in the model file
(``ser_live.training.calibrate``), and the figures (each corpus tempered by the temperature fitted on the others) go
into its metrics.json and MODEL_CARD.md and, in short, into the model file for the window's model panel.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ser_live.training.script_args import add_data_arguments, data_error_reported


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(parser)
    parser.add_argument("--model-dir", required=True, metavar="DIR", help="a directory scripts/train.py wrote")
    parser.add_argument("--model", choices=["default", "light"], default="default",
                        help="the shipped recipe the directory was trained with (used when the model heard (nearly) "
                             "every corpus under --data)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def calibrate(model_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Fit, store and record the temperature of the model in ``model_dir`` (ValueError with a one-line reason)."""
    import json

    from ser_live.model.emotion_model import EmotionModel, file_sha256
    from ser_live.training.calibrate import calibration_summary
    from ser_live.training.corpora import scan_corpora
    from ser_live.training.recipe import held_out_calibration
    from ser_live.training.report import write_calibration_report

    try:
        metrics = json.loads((model_dir / "metrics.json").read_text())
        path = model_dir / metrics["model_file"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{model_dir} has no metrics.json from scripts/train.py ({exc})") from None
    if not path.is_file() or file_sha256(path) != metrics.get("model_sha256"):
        raise ValueError(f"{path} is not the model {model_dir / 'metrics.json'} describes; train it again")
    model = EmotionModel.load(path)
    heard = set(model.metadata.get("corpora", []))
    unheard = [u for u in scan_corpora(args.data).utterances if u.corpus not in heard]
    if len({u.corpus for u in unheard}) >= 2:
        report = {**_on_unheard(model, unheard, args), "base_evaluation_sha256": metrics["evaluation_sha256"]}
    else:
        report = held_out_calibration(args.data, _shipped_config(args.model, metrics, model_dir),
                                      cache_dir=args.cache_dir, n_jobs=args.jobs, progress=not args.no_progress)
    model.temperature = report["temperature"]
    model.metadata["calibration"] = calibration_summary(report)
    sha256 = model.save(path)
    write_calibration_report(model_dir, report, model_sha256=sha256, model_size_bytes=path.stat().st_size)
    return report


def _on_unheard(model: Any, unheard: list[Any], args: argparse.Namespace) -> dict[str, Any]:
    """The model's own window probabilities for the recordings of corpora it never heard, calibrated."""
    from ser_live.training.calibrate import calibrate_on_unheard
    from ser_live.training.extract import WindowSetup, extract_dataset

    setup = WindowSetup(extractor=model.extractor, window_s=model.window_s, hop_s=model.hop_s,
                        gate_params=tuple(sorted(model.gate_params.items())))
    features = extract_dataset(unheard, setup, cache_dir=args.cache_dir, n_jobs=args.jobs,
                               progress=not args.no_progress)
    return calibrate_on_unheard(model, features)


def _shipped_config(name: str, metrics: dict[str, Any], model_dir: Path) -> Any:
    """The shipped recipe ``name``, if it is the one ``model_dir`` was trained with (ValueError otherwise)."""
    import json

    from ser_live.training.recipe import SHIPPED_CONFIGS

    config = SHIPPED_CONFIGS[name]
    if json.loads(json.dumps(config.to_dict())) != metrics.get("config"):  # as the file has it: lists, not tuples
        raise ValueError(f"{model_dir} was not trained with the shipped {name} recipe, and the model heard nearly "
                         f"every corpus under --data; give --model the recipe it was trained with")
    return config


def _right(report: dict[str, Any]) -> str:
    if report["confident_accuracy"] is None:
        return "(none shown)"
    return f"{report['confident_accuracy']:.0%} of {report['confident_share']:.0%} of windows"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if data_error_reported(args):
        return 2
    from ser_live.errors import SerLiveError

    model_dir = Path(args.model_dir)
    try:
        report = calibrate(model_dir, args)
    except (SerLiveError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted (the model file is unchanged)", file=sys.stderr)
        return 130
    print(f"temperature {report['temperature']:g}, stored in the model in {model_dir}")
    role = "never heard" if report["corpora_were"] == "unheard" else "held out"
    for corpus, v in report["per_corpus"].items():
        before, after = v["before"]["window"], v["after"]["window"]
        print(f"{corpus} ({role}): calibration error per window {before['ece']:.3f} -> {after['ece']:.3f}; "
              f"answers shown at >= 80 % right {_right(before)} -> {_right(after)} "
              f"(tempered by {v['temperature_from_others']:g}, fitted on the others)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
