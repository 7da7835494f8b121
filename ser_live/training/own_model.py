"""A model of a user's own recordings and classes: the shipped recipe's evaluation, fit and reports, for any labels.

:func:`train_own_model` extracts the features of a :class:`~ser_live.training.own_data.Dataset` with either
shipped model's extractor (cached, so a second run with other network settings skips the extraction), evaluates
by grouped folds that keep every speaker on one side (random folds, labelled optimistic, when the data names no
speakers), measures rooms, noise and short replies and the calibration of the confidence on the same folds, fits
the model on everything and writes it with ``metrics.json``, the charts and a ``MODEL_CARD.md``.
"""

from __future__ import annotations

import collections
import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .augment import Augmenter
from .corpora import ScanResult
from .estimator import ModelParams
from .evaluate import RANDOM_SPLIT, calibration
from .extract import extract_dataset
from .own_data import Dataset, DatasetError, dataset_problems
from .recipe import (
    SHIPPED_CONFIGS,
    Evaluation,
    TrainingConfig,
    evaluate_scan,
    evaluation_fingerprint,
    fit_final,
    robustness_of,
    save_model,
)

__all__ = ["FEATURES", "own_config", "train_own_model", "own_model_card"]

#: ``--features``: the shipped model whose feature extractor (and estimator settings) a model of one's own uses.
FEATURES = ("default", "light")


def own_config(features: str = "default", *, augment: int | None = None,
               hidden_layer_sizes: tuple[int, ...] | None = None, alpha: float | None = None,
               n_seeds: int | None = None) -> TrainingConfig:
    """The shipped model ``features``'s configuration on any data, with the given settings changed.

    Raises
    ------
    ValueError
        If ``features`` is not one of :data:`FEATURES` or a setting is out of range.
    """
    if features not in FEATURES:
        raise ValueError(f"--features must be one of {', '.join(FEATURES)}, not {features!r}")
    base = SHIPPED_CONFIGS[features]
    changes = {k: v for k, v in (("hidden_layer_sizes", hidden_layer_sizes), ("alpha", alpha), ("n_seeds", n_seeds))
               if v is not None}
    counts = [*changes.get("hidden_layer_sizes", ()), changes.get("n_seeds", 1)]
    if min(counts) < 1 or min(changes.get("alpha", 0.0), augment or 0) < 0:
        raise ValueError("layer sizes and --seeds must be 1 or more; --alpha and --augment 0 or more")
    augmenter = base.augmenter if augment is None else (Augmenter(n_copies=augment) if augment else None)
    params: ModelParams = dataclasses.replace(base.params, **changes)
    return dataclasses.replace(base, params=params, augmenter=augmenter, corpora=None)


def _say(message: str) -> None:
    print(f"ser-live-train: {message}", file=sys.stderr, flush=True)


def train_own_model(dataset: Dataset, out_dir: str | Path, config: TrainingConfig, *, robustness: bool = True,
                    cache_dir: str | Path | None = None, n_jobs: int | None = None, progress: bool = True,
                    say: Callable[[str], None] = _say) -> dict[str, Any]:
    """Evaluate, fit and write a model of ``dataset``'s classes to ``out_dir`` (named after the folder).

    Parameters
    ----------
    dataset : Dataset
    out_dir : path-like
        Receives ``<name>.npz``, ``metrics.json``, ``MODEL_CARD.md`` and the charts.
    config : TrainingConfig
        From :func:`own_config`; its folds are cut to the number of speakers when there are fewer than five.
    robustness : bool
        Also measure rooms and noise at 20, 10 and 5 dB and short replies on the folds.
    cache_dir, n_jobs, progress
        As for :func:`~ser_live.training.recipe.train_model`.
    say : callable
        Receives a line per stage.

    Returns
    -------
    metrics : dict
        What was written to ``metrics.json``.

    Raises
    ------
    DatasetError
        If recordings the speech gate hears nothing in leave a class too small.
    """
    out_dir = Path(out_dir)
    start = time.perf_counter()
    say(f"features of {len(dataset.utterances)} recordings{_copies(config)}: computed once, then read from the "
        "cache")
    features = extract_dataset(dataset.utterances, config.setup, augmenter=config.augmenter, cache_dir=cache_dir,
                               n_jobs=n_jobs, progress=progress)
    problems = dataset_problems(features.labels.tolist(),
                                features.speakers.tolist() if dataset.speakers_known else None)
    if problems:
        raise DatasetError([f"{p} in which the speech gate hears speech ({len(features.dropped)} recording(s) "
                            "without)" for p in problems])
    n_speakers = len(set(features.speakers.tolist()))
    config = dataclasses.replace(config, n_splits=min(config.n_splits, n_speakers))
    say(f"cross-validation: {config.n_splits} folds, " + ("every speaker on one side" if dataset.speakers_known
                                                          else "speakers unknown, so random folds (optimistic)"))
    scan = ScanResult(dataset.utterances, collections.Counter({"unreadable": len(dataset.unreadable)}
                                                              if dataset.unreadable else {}))
    evaluation = evaluate_scan(scan, config, classic=False, speaker_independent=dataset.speakers_known,
                               cache_dir=cache_dir, n_jobs=n_jobs, features=features)
    timings = dict(evaluation.timings_s)
    timings["extraction_s"] = time.perf_counter() - start - timings["cross_validation_s"]
    extra = _measures(evaluation, config, robustness=robustness, cache_dir=cache_dir, n_jobs=n_jobs,
                      progress=progress, say=say)
    timings.update({"robustness_s": extra["robustness"]["seconds"]} if "robustness" in extra else {})
    return _fit_and_write(dataset, evaluation, config, out_dir, timings, extra, n_jobs=n_jobs, say=say, start=start)


def _copies(config: TrainingConfig) -> str:
    n_copies = config.augmenter.n_copies if config.augmenter is not None else 0
    return f" and {n_copies} copies of each in simulated rooms with noise" if n_copies else ""


def _measures(evaluation: Evaluation, config: TrainingConfig, *, robustness: bool, cache_dir: str | Path | None,
              n_jobs: int | None, progress: bool, say: Callable[[str], None]) -> dict[str, Any]:
    """The temperature that makes the confidence true, how true it is then, and (when asked) rooms, noise and
    short replies."""
    extra: dict[str, Any] = {"calibration": calibration(evaluation.result, evaluation.features)}
    if robustness:
        say("rooms, noise and short replies, on the same folds")
        extra["robustness"] = robustness_of(evaluation, config, cache_dir=cache_dir, n_jobs=n_jobs,
                                            progress=progress)
    return extra


def _fit_and_write(dataset: Dataset, evaluation: Evaluation, config: TrainingConfig, out_dir: Path,
                   timings: dict[str, float], extra: dict[str, Any], *, n_jobs: int | None,
                   say: Callable[[str], None], start: float) -> dict[str, Any]:
    from . import report as reporting
    from .adaptation import fit_shipped_adaptation, variant_summary

    say("the model, on every recording")
    fit_start = time.perf_counter()
    estimator, n_windows = fit_final(evaluation.features, config, n_jobs=n_jobs)
    adaptive = None
    if "neutral" in evaluation.result.classes:  # the adaptive variant references each voice to its neutral
        adaptive = fit_shipped_adaptation(evaluation.features, config, n_jobs=n_jobs)
        extra["adaptive_variant"] = variant_summary()
    timings["final_fit_s"] = time.perf_counter() - fit_start
    timings["total_s"] = time.perf_counter() - start
    metrics = reporting.build_metrics(evaluation, config, timings, extra)
    metrics["evaluation_sha256"] = evaluation_fingerprint(evaluation, config)
    metrics["data"]["source"] = dataset.name
    metrics["data"]["speakers_known"] = dataset.speakers_known
    metrics["data"]["unreadable_files"] = [{"path": str(p), "reason": why} for p, why in dataset.unreadable]
    metrics.update(save_model(out_dir / f"{out_dir.resolve().name}.npz", estimator, config, metrics,
                              n_windows=n_windows, adaptive=adaptive,
                              license_text="the terms of the recordings it was trained on; see MODEL_CARD.md",
                              temperature=extra["calibration"]["temperature"]))
    reporting.write_artifacts(out_dir, metrics, card=own_model_card(metrics))
    return metrics


def own_model_card(metrics: dict[str, Any]) -> str:
    """The text of the ``MODEL_CARD.md`` of a model of one's own (a function of ``metrics.json`` alone)."""
    from .report import counts_table, robustness_section, top_confusions

    data, config = metrics["data"], metrics["config"]
    utterance = metrics["ours"]["utterance"]["overall"]
    window = metrics["ours"]["window"]["overall"]
    classes = utterance["confusion"]["labels"]
    n_speakers = sum(len(s) for s in data["speakers"].values())
    return f"""# A model of {data['source']}: model card

File: `{metrics['model_file']}` (SHA-256 `{metrics['model_sha256']}`, {metrics['model_size_bytes'] / 1e6:.2f} MB).
Made by `ser-live-train`; every figure here is in `metrics.json`. Use it with `ser-live --model <this folder>`.

## What it does
Classifies a {config['window_s']:g} s window of 16 kHz speech (one every {config['hop_s']:g} s, only windows the
speech gate accepts) into {len(classes)} classes: {', '.join(classes)}. Input: {_features_text(config)}.
Estimator: `StandardScaler` + soft-voting average of {config['model_params']['n_seeds']}
`MLPClassifier{tuple(config['model_params']['hidden_layer_sizes'])}` (alpha {config['model_params']['alpha']}),
windows weighted so that each class and each recording counts equally. Augmentation:
{_augmentation(config)}.

## Training data
{data['n_utterances']} recordings ({data['n_windows_original']} speech windows) of {_speakers_text(data, n_speakers)}.

{counts_table(data)}

{_left_out(data)}

## How well it does
{_protocol_text(metrics)}

| level | UAR | accuracy | n |
|---|---|---|---|
{_figure_row("per recording (window probabilities averaged)", utterance)}
{_figure_row(f"per {config['window_s']:g} s window (what the live view shows)", window)}

UAR is the unweighted average recall (balanced accuracy); chance is {1 / len(classes):.3f}. Per-class recall (per
recording): {', '.join(f'{k} {v:.2f}' for k, v in utterance['recall'].items())}. Per-fold UAR:
{', '.join(f'{v:.3f}' for v in metrics['ours']['utterance']['fold_uar'])}. The classes it mixes up most (true ->
predicted, share of the true class): {top_confusions(metrics)}.

{_calibration_text(metrics['calibration'])}
{robustness_section(metrics)}
## Known limits
- It knows {n_speakers if data['speakers_known'] else 'an unknown number of'} speaker(s) and the rooms and
  microphones of these recordings; other voices, rooms and microphones lower its accuracy, often a lot.
- Its classes are what its labels meant to whoever labelled the recordings; it cannot know more.
- It is not a lie detector or a diagnostic tool; do not use it to make decisions about people.
{_adaptation_text(metrics)}
Charts: `confusion_matrix.png`, `per_class_recall.png`, `class_counts.png` (also `class_counts.csv`),
`training_loss.png`. Training took {metrics['timings_s'].get('total_s', 0):.0f} s.
"""


def _figure_row(level: str, report: dict[str, Any]) -> str:
    return f"| {level} | {report['uar']:.3f} | {report['accuracy']:.3f} | {report['n']} |"


def _features_text(config: dict[str, Any]) -> str:
    extractor = config["extractor"]
    if extractor["kind"] == "handcrafted":
        return f"the light model's handcrafted features (version {extractor['version']})"
    blocks = ", ".join(map(str, extractor["config"]["blocks"]))
    return f"the default model's features: pooled states of block(s) {blocks} of the Whisper-base speech encoder"


def _augmentation(config: dict[str, Any]) -> str:
    augmentation = config["augmentation"]
    if augmentation is None:
        return "none"
    return f"{augmentation['n_copies']} copies of each training recording in simulated rooms with noise"


def _speakers_text(data: dict[str, Any], n_speakers: int) -> str:
    if data["speakers_known"]:
        return f"{n_speakers} speakers"
    return "speakers the data does not name (each recording counted as its own)"


def _left_out(data: dict[str, Any]) -> str:
    unreadable = data.get("unreadable_files", [])
    dropped = data["dropped_utterances"]
    lines = [f"{len(unreadable)} file(s) could not be read and were left out; {len(dropped)} recording(s) were left "
             "out because the speech gate heard no speech in them (both listed in `metrics.json`)."]
    lines += [f"- `{row['path']}`: {row['reason']}" for row in (unreadable + dropped)[:20]]
    return "\n".join(lines)


def _protocol_text(metrics: dict[str, Any]) -> str:
    n_splits = metrics["config"]["n_splits"]
    if metrics["summary"]["protocol"] == RANDOM_SPLIT:
        return (f"**Optimistic: {RANDOM_SPLIT}.** The recordings name no speakers, so the {n_splits} folds are "
                "random and the same voices are on both sides of each: these figures say how well it knows voices "
                "it has heard, not a new one. Put each speaker's recordings in a folder of their own (or give a "
                "speaker column) for an honest figure.")
    return (f"{metrics['summary']['protocol']}: grouped {n_splits}-fold cross-validation, every speaker in exactly "
            "one test fold (asserted), the features' scaling and any augmentation only from the training "
            "speakers. This is the figure to expect for a new voice in the same conditions.")


def _calibration_text(calibration: dict[str, Any]) -> str:
    before, after = calibration["utterance"]["before"], calibration["utterance"]["after"]
    window = calibration["window"]["after"]
    return f"""**Is its confidence true?** The networks' probabilities are tempered by {calibration['temperature']:g}
(fitted on the folds' predictions so that the confidence it shows is no higher than the accuracy behind it; never
below 1, which would make it surer here and overconfident where it is right less often). On the folds, each
tempered by the temperature fitted on the others: per recording, a mean confidence of
{after['mean_confidence']:.2f} for an accuracy of {after['accuracy']:.2f} (expected calibration error
{after['ece']:.3f}; {before['ece']:.3f} untempered); per window {window['mean_confidence']:.2f} for
{window['accuracy']:.2f} (error {window['ece']:.3f}). {_leaning(after)}{_confident_text(after)}
"""


def _leaning(report: dict[str, Any]) -> str:
    """Which way the confidence errs, if it does by more than 0.02."""
    gap = report["mean_confidence"] - report["accuracy"]
    if gap > 0.02:
        return "It is surer than it is right: take its confidence with a grain of salt. "
    if gap < -0.02:
        return "It is less sure than it is right: it errs on the side of caution. "
    return ""


def _confident_text(report: dict[str, Any]) -> str:
    threshold = f"{report['confident']:.0%}"
    if report["confident_accuracy"] is None:
        return f"No recording was answered with a confidence of {threshold} or more."
    return (f"{report['confident_share']:.0%} of the recordings were answered with a confidence of {threshold} or "
            f"more, and {report['confident_accuracy']:.0%} of those answers were right.")


def _adaptation_text(metrics: dict[str, Any]) -> str:
    if "adaptive_variant" in metrics:
        return ("- `--adapt` and `--calibrate` reference each voice to its neutral speech (the model has a neutral "
                "class); their effect on this data was not measured.\n")
    return "- `--adapt` and `--calibrate` need a class called `neutral`; this model has none, so they are off.\n"
