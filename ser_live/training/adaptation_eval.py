"""Live speaker-adaptation evaluation: every method against none, under every protocol, on speaker-independent folds.

Within the shipped evaluation's folds, each method's estimator is fitted on the fold's training
speakers (:func:`~ser_live.training.adaptation_methods.fit_method`); each held-out speaker is then
streamed under every protocol (:mod:`ser_live.training.adaptation_streams`) and every window is scored
as the monitor shows it: the method's probabilities given what was learnt before that window, against
the unadapted model's out-of-fold probabilities of the same window. Figures are pooled over windows
of all folds' speakers, overall and per corpus:

- ``shuffled`` and ``skewed``: window UAR over the windows after :data:`WARM_S` seconds of speech;
- ``sustained``: each emotion's recall over the windows after 30 s and after 60 s;
- ``switch``: seconds after the switch until the last 5 s of windows read the second emotion most
  often (a stream that never does counts as never), and the second emotion's recall.

:func:`ship_verdict` applies the shipping rule: on sustained moods each emotion's adapted recall at
least the unadapted one minus :data:`SUSTAINED_TOLERANCE`, and on shuffled streams a window UAR at least
:data:`SHUFFLED_GAIN` above unadapted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..model.speaker import effect_line
from .adaptation_methods import METHODS, NEUTRAL, AdaptationMethod, FittedMethod, fit_method, stream_inputs
from .adaptation_streams import PROTOCOLS, Stream, StreamPlan, speaker_streams, utterance_rows
from .estimator import ModelParams
from .evaluate import aligned_proba, classes_of, report_groups
from .extract import FeatureSet

__all__ = ["WARM_S", "SUSTAINED_TOLERANCE", "SHUFFLED_GAIN", "SWITCH_READ_S", "EvaluationPlan", "evaluate_methods",
           "ship_verdict", "protocol_table", "sustained_table"]

#: Windows heard before this many seconds of speech are not scored on shuffled and skewed streams.
WARM_S = 30.0
#: The shipping rule's allowance on sustained moods, and its required gain on shuffled streams.
SUSTAINED_TOLERANCE = 0.03
SHUFFLED_GAIN = 0.02
#: A switch "reads right" once the most frequent prediction over this many seconds of windows is the new emotion.
SWITCH_READ_S = 5.0
#: Checkpoints of the sustained protocol, seconds of speech.
SUSTAINED_AFTER_S = (30.0, 60.0)
UNADAPTED = "none (--no-adapt)"


@dataclasses.dataclass(frozen=True)
class EvaluationPlan:
    """What the evaluation runs.

    Parameters
    ----------
    methods : tuple of AdaptationMethod
    streams : StreamPlan
    shuffled_orders : int
        Random orders of each speaker's shuffled stream.
    random_state : int
    """

    methods: tuple[AdaptationMethod, ...] = METHODS
    streams: StreamPlan = StreamPlan()
    shuffled_orders: int = 3
    random_state: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"methods": [m.to_dict() for m in self.methods], "streams": dataclasses.asdict(self.streams),
                "shuffled_orders": self.shuffled_orders, "random_state": self.random_state,
                "warm_s": WARM_S, "switch_read_s": SWITCH_READ_S}


@dataclasses.dataclass
class _Scored:
    """A stream and each method's predicted class per window (column of ``classes``)."""

    stream: Stream
    predictions: dict[str, np.ndarray]


def _fit_all(features: FeatureSet, folds: Sequence[tuple[np.ndarray, np.ndarray]], rows_of: dict[int, np.ndarray],
             methods: Sequence[AdaptationMethod], params: ModelParams, random_state: int,
             n_jobs: int | None) -> dict[tuple[tuple[str, str], int], FittedMethod]:
    """One estimator per fold and distinct :attr:`AdaptationMethod.estimator_key`, fitted in one pool."""
    from joblib import Parallel, delayed

    speakers, labels, corpora = features.speakers, features.labels, features.corpora
    jobs = []
    for k, (train, _) in enumerate(folds):
        rows = np.concatenate([rows_of[int(u)] for u in train if int(u) in rows_of])
        owner = features.utterance_index[rows]
        for key, method in {m.estimator_key: m for m in methods}.items():
            jobs.append(((key, k), delayed(fit_method)(method, features.X[rows], speakers[owner], labels[owner],
                                                         owner, params, corpora=corpora[owner],
                                                         random_state=random_state + k)))
    results = Parallel(n_jobs=n_jobs or -1)(call for _, call in jobs)
    return {key: fitted for (key, _), fitted in zip(jobs, results)}


def _enrolment(features: FeatureSet, speaker_utts: np.ndarray, rows_of: dict[int, np.ndarray], enrol_s: float,
               hop_s: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows of a neutral reading of ``enrol_s`` seconds, and the utterances left for the streams.

    Half of the speaker's neutral recordings (at least one; repeated as needed) are the reading; they
    are never streamed, so no method is scored on windows an enrolment learnt from. A speaker without
    neutral recordings has an empty reading (enrolment then leaves the plain model's output).
    """
    neutral = rng.permutation(speaker_utts[features.labels[speaker_utts] == NEUTRAL])
    if not neutral.size:
        return features.X[:0], speaker_utts
    reading = neutral[: max(1, neutral.size // 2)]
    n = int(round(enrol_s / hop_s))
    chosen: list[int] = []
    while sum(rows_of[u].size for u in chosen) < n:
        chosen += rng.permutation(reading).tolist()
    rows = np.concatenate([rows_of[u] for u in chosen])[:n]
    return features.X[rows], np.setdiff1d(speaker_utts, reading)


def _fold_streams(features: FeatureSet, test: np.ndarray, rows_of: dict[int, np.ndarray], plan: EvaluationPlan,
                  hop_s: float, seed: int) -> list[tuple[Stream, np.ndarray]]:
    """Every stream of a fold's held-out speakers, with that speaker's enrolment rows."""
    rng = np.random.default_rng(seed)
    speakers = features.speakers
    enrol_s = max((m.enrol_s for m in plan.methods), default=20.0)
    out = []
    for speaker in sorted(set(speakers[test].tolist())):
        own = np.array([u for u in test[speakers[test] == speaker] if int(u) in rows_of])
        if not own.size:
            continue
        enrolment, own = _enrolment(features, own, rows_of, enrol_s, hop_s, rng)
        for protocol in PROTOCOLS:
            repeats = plan.shuffled_orders if protocol == "shuffled" else 1
            for _ in range(repeats):
                out += [(s, enrolment) for s in speaker_streams(features, own, rows_of, protocol, plan.streams,
                                                                hop_s=hop_s, rng=rng)]
    return out


def _score_fold(features: FeatureSet, streams: list[tuple[Stream, np.ndarray]],
                fitted: dict[tuple[str, str], FittedMethod], base_window_proba: np.ndarray,
                methods: Sequence[AdaptationMethod], classes: tuple[str, ...],
                hop_s: float) -> list[_Scored]:
    """Each method's window predictions on every stream of a fold (one estimator call per method)."""
    from ..process import blas_threads

    neutral_column = classes.index(NEUTRAL)
    scored = [_Scored(s, {UNADAPTED: base_window_proba[s.rows].argmax(axis=1)}) for s, _ in streams]
    bounds = np.cumsum([0] + [s.rows.size for s, _ in streams])
    for method in methods:
        fit = fitted[method.estimator_key]
        parts = [stream_inputs(method, fit, features.X[s.rows], base_window_proba[s.rows], neutral_column,
                               hop_s=hop_s, enrolment=enrolment) for s, enrolment in streams]
        with blas_threads(1):
            adapted = aligned_proba(fit.estimator, np.vstack([p[0] for p in parts]), classes)
        weight = np.concatenate([p[1] for p in parts])[:, None]
        rows = np.concatenate([s.rows for s, _ in streams])
        blended = weight * adapted + (1 - weight) * base_window_proba[rows]
        for i, item in enumerate(scored):
            item.predictions[method.name] = blended[bounds[i]:bounds[i + 1]].argmax(axis=1)
    return scored


def _recall(truth: np.ndarray, predicted: np.ndarray, classes: tuple[str, ...]) -> dict[str, float]:
    names = np.array(classes)[predicted]
    return {c: float(np.mean(names[truth == c] == c)) for c in classes if np.any(truth == c)}


def _uar(truth: np.ndarray, predicted: np.ndarray, classes: tuple[str, ...]) -> float | None:
    recall = _recall(truth, predicted, classes)
    return float(np.mean(list(recall.values()))) if recall else None


def _pooled(items: list[_Scored], method: str, start: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions of every window from ``start`` on, over ``items``."""
    truth = [i.stream.labels[start:] for i in items]
    pred = [i.predictions[method][start:] for i in items]
    return (np.concatenate(truth), np.concatenate(pred)) if truth else (np.zeros(0, str), np.zeros(0, int))


def _uar_after(items: list[_Scored], method: str, classes: tuple[str, ...], start: int) -> dict[str, Any]:
    truth, pred = _pooled(items, method, start)
    return {"uar": _uar(truth, pred, classes), "n_windows": int(truth.size)}


def _sustained(items: list[_Scored], method: str, classes: tuple[str, ...], hop_s: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for after_s in SUSTAINED_AFTER_S:
        truth, pred = _pooled(items, method, int(round(after_s / hop_s)))
        recall = _recall(truth, pred, classes)
        out[f"after_{after_s:g}_s"] = {"recall": recall,
                                       "mean_recall": float(np.mean(list(recall.values()))) if recall else None}
    return out


def _read_after_s(item: _Scored, method: str, target_column: int, hop_s: float) -> float | None:
    """Seconds after the switch until the last SWITCH_READ_S of windows read the target most often."""
    n = max(1, int(round(SWITCH_READ_S / hop_s)))
    after = item.predictions[method][item.stream.switch_at:]
    for end in range(n, after.size + 1):
        counts = np.bincount(after[end - n:end], minlength=target_column + 1)
        if counts[target_column] == counts.max():
            return end * hop_s
    return None


def _switch(items: list[_Scored], method: str, classes: tuple[str, ...], hop_s: float) -> dict[str, Any]:
    seconds = [_read_after_s(i, method, classes.index(i.stream.target), hop_s) for i in items]
    read = [s for s in seconds if s is not None]
    truth = np.concatenate([i.stream.labels[i.stream.switch_at:] for i in items]) if items else np.zeros(0, str)
    pred = np.concatenate([i.predictions[method][i.stream.switch_at:] for i in items]) if items else np.zeros(0, int)
    return {"mean_s_to_read": float(np.mean(read)) if read else None,
            "share_never_read": 1 - len(read) / len(items) if items else None,
            "second_emotion_uar": _uar(truth, pred, classes), "n_streams": len(items)}


def _protocol_scores(items: list[_Scored], method: str, classes: tuple[str, ...], hop_s: float) -> dict[str, Any]:
    """Every protocol's figures for one method over ``items``."""
    by_protocol = {p: [i for i in items if i.stream.protocol == p] for p in PROTOCOLS}
    warm = int(round(WARM_S / hop_s))
    return {"shuffled": _uar_after(by_protocol["shuffled"], method, classes, warm),
            "sustained": _sustained(by_protocol["sustained"], method, classes, hop_s),
            "switch": _switch(by_protocol["switch"], method, classes, hop_s),
            "skewed": _uar_after(by_protocol["skewed"], method, classes, warm)}


def evaluate_methods(features: FeatureSet, folds: Sequence[tuple[np.ndarray, np.ndarray]],
                     base_window_proba: np.ndarray, params: ModelParams, *, hop_s: float,
                     plan: EvaluationPlan | None = None, n_jobs: int | None = 1) -> dict[str, Any]:
    """Every method of ``plan`` and the unadapted model under every protocol.

    Parameters
    ----------
    features : FeatureSet
    folds : sequence of (train_utterances, test_utterances)
        The shipped evaluation's speaker-independent folds.
    base_window_proba : np.ndarray, shape (n_windows, n_classes)
        The unadapted model's out-of-fold probabilities for every row of ``features.X`` (augmented
        rows are never used), columns in :func:`~ser_live.training.evaluate.classes_of` order.
    params : ModelParams
        The shipped model's estimator hyper-parameters.
    hop_s : float
        The monitor's hop: seconds of new speech per window.
    plan : EvaluationPlan, optional
        What to run (default: ``EvaluationPlan()``, what the model cards report).
    n_jobs : int or None
        Processes for the fits (``None`` = all cores). Results do not depend on it.

    Returns
    -------
    report : dict
        ``methods`` (name -> ``{"overall": scores, corpus: scores, ...}``), ``verdicts`` (name ->
        :func:`ship_verdict`), ``plan``, ``hop_s``, ``n_streams``.
    """
    plan = plan or EvaluationPlan()
    classes = classes_of(features.labels)
    rows_of = utterance_rows(features)
    fitted = _fit_all(features, folds, rows_of, plan.methods, params, plan.random_state, n_jobs)
    scored: list[_Scored] = []
    for k, (_, test) in enumerate(folds):
        streams = _fold_streams(features, np.asarray(test), rows_of, plan, hop_s, plan.random_state + 700 + k)
        fold_fits = {key: fit for (key, fold), fit in fitted.items() if fold == k}
        scored += _score_fold(features, streams, fold_fits, base_window_proba, plan.methods, classes, hop_s)
    names = [UNADAPTED] + [m.name for m in plan.methods]
    methods = {name: _group_scores(scored, features, name, classes, hop_s) for name in names}
    return {"plan": plan.to_dict(), "hop_s": hop_s, "classes": list(classes), "methods": methods,
            "n_streams": {p: sum(i.stream.protocol == p for i in scored) for p in PROTOCOLS},
            "verdicts": {name: ship_verdict(methods[name]["overall"], methods[UNADAPTED]["overall"])
                         for name in names[1:]}}


def _group_scores(scored: list[_Scored], features: FeatureSet, method: str, classes: tuple[str, ...],
                  hop_s: float) -> dict[str, Any]:
    """A method's protocol scores overall and for each corpus (and corpus group) of the report."""
    groups = {"overall": tuple(sorted(set(features.corpora.tolist())))} | report_groups(features.corpora.tolist())
    return {group: _protocol_scores([i for i in scored if i.stream.corpus in members], method, classes, hop_s)
            for group, members in groups.items()}


def ship_verdict(adapted: dict[str, Any], unadapted: dict[str, Any]) -> dict[str, Any]:
    """Whether a method may be the default: no harm on sustained moods, a gain on shuffled streams.

    Parameters
    ----------
    adapted, unadapted : dict
        One group's protocol scores (``report["methods"][name]["overall"]``).
    """
    drop, where = _largest_sustained_drop(adapted, unadapted)
    scored = None not in (adapted["shuffled"]["uar"], unadapted["shuffled"]["uar"])  # a speaker shorter than WARM_S
    gain = round(float(adapted["shuffled"]["uar"] - unadapted["shuffled"]["uar"]), 4) if scored else None
    no_harm = drop <= SUSTAINED_TOLERANCE
    helps = gain is not None and gain >= SHUFFLED_GAIN
    return {"no_harm_on_sustained": no_harm, "largest_sustained_drop": round(drop, 4), "largest_drop_at": where,
            "shuffled_gain": gain, "helps_shuffled": helps, "passes": no_harm and helps}


def _largest_sustained_drop(adapted: dict[str, Any], unadapted: dict[str, Any]) -> tuple[float, str]:
    """The largest fall of a held emotion's recall against the plain model, and which emotion and checkpoint."""
    drops = [(float(unadapted["sustained"][checkpoint]["recall"][emotion] - recall),
              f"{emotion} {checkpoint.replace('_', ' ')}")
             for checkpoint, figures in adapted["sustained"].items() for emotion, recall in figures["recall"].items()]
    return max(drops, default=(0.0, ""))


def _cell(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def protocol_table(report: dict[str, Any], group: str = "overall") -> str:
    """Markdown: one row per method, the four protocols' headline figures and the shipping verdict."""
    lines = ["| method | shuffled UAR | sustained mean recall 30 s / 60 s | switch: s to read (never) | skewed UAR "
             "| ships? |", "|---|---|---|---|---|---|"]
    for name, groups in report["methods"].items():
        scores = groups[group]
        sustained = " / ".join(_cell(scores["sustained"][f"after_{a:g}_s"]["mean_recall"]) for a in SUSTAINED_AFTER_S)
        switch = scores["switch"]
        never = switch["share_never_read"]
        verdict = report["verdicts"].get(name) if group == "overall" else None
        ships = "–" if verdict is None else ("yes" if verdict["passes"] else "no (" + effect_line(verdict) + ")")
        lines.append(f"| {name} | {_cell(scores['shuffled']['uar'])} | {sustained} | "
                     f"{_cell(switch['mean_s_to_read'], 1)} ({_cell(never and 100 * never, 0)} %) | "
                     f"{_cell(scores['skewed']['uar'])} | {ships} |")
    return "\n".join(lines)


def sustained_table(report: dict[str, Any], after_s: float = 30.0, group: str = "overall") -> str:
    """Markdown: each emotion's recall when held, after ``after_s`` seconds, per method."""
    key = f"after_{after_s:g}_s"
    classes = [c for c in report["classes"]
               if c in report["methods"][UNADAPTED][group]["sustained"][key]["recall"]]
    lines = ["| method | " + " | ".join(classes) + " |", "|---" * (len(classes) + 1) + "|"]
    for name, groups in report["methods"].items():
        recall = groups[group]["sustained"][key]["recall"]
        lines.append(f"| {name} | " + " | ".join(_cell(recall.get(c), 2) for c in classes) + " |")
    return "\n".join(lines)


def default_choice(report: dict[str, Any]) -> str | None:
    """The method that ships as the default: the passing one with the best shuffled gain; None when none passes."""
    passing = [(v["shuffled_gain"], name) for name, v in report["verdicts"].items() if v["passes"]]
    return max(passing)[1] if passing else None


def _verdict_sentence(chosen: str | None, variant: dict[str, Any]) -> str:
    """What the rule's verdict means for the product, for the model card."""
    if chosen is None:
        return "**No method passes, so adaptation is off by default.**"
    option = next((f"`--{mode}`" for mode in ("adapt", "calibrate") if variant.get(mode) == chosen), None)
    runs = f"{option} runs it" if option else "no option of the product runs it"
    return (f"**{chosen}** passes; {runs}. The product still starts with the plain model for both shipped models "
            "(the README says why), and the window and `--print` say what the method was measured to do.")


def model_card_section(variant: dict[str, Any], report: dict[str, Any] | None = None) -> str:
    """The speaker-adaptation section of ``MODEL_CARD.md``.

    Parameters
    ----------
    variant : dict
        ``metrics.json``'s ``adaptive_variant`` (:func:`ser_live.training.adaptation.variant_summary`).
    report : dict, optional
        ``metrics.json``'s ``adaptation``: the evaluation ``scripts/evaluate_adaptation.py --model-dir`` adds.
        Without it the section says how to get it.
    """
    if report is None:
        evaluation = ("Its evaluation is not in this directory's `metrics.json` yet: run "
                      "`python scripts/evaluate_adaptation.py --data DIR... --model-dir DIR` (`make train` does).\n")
    else:
        chosen = default_choice(report)
        rule = (f"Shipping rule: held moods (sustained) each emotion's recall at least the plain model's "
                f"- {SUSTAINED_TOLERANCE}, after 30 s and after 60 s; mixed emotions (shuffled) window UAR at least "
                f"the plain model's + {SHUFFLED_GAIN}. ")
        rule += _verdict_sentence(chosen, variant)
        timings = report.get("timings_s", {})
        run = f" Evaluated by `scripts/evaluate_adaptation.py` in {sum(timings.values()):.0f} s." if timings else ""
        streams = ", ".join(f"{n} {p}" for p, n in report["n_streams"].items())
        streams_plan = report["plan"]["streams"]
        evaluation = f"""Measured on held-out speakers (the same speaker-independent folds), window by window as the
monitor shows it, every method against the plain model on the same windows ({streams} streams).{run}

{protocol_table(report)}

{rule}

Each emotion's recall when a speaker holds it (after 30 s of speech):

{sustained_table(report, 30.0)}

After 60 s:

{sustained_table(report, 60.0)}

Protocols: *shuffled*, all of a speaker's recordings in random order; *sustained*, one emotion for
{streams_plan['sustained_s']:g} s; *switch*, {streams_plan['switch_s']:g} s of one emotion then as long of another
(seconds until the last {report['plan']['switch_read_s']:g} s of windows read the second most often; in brackets
the share of switches never read); *skewed*, {100 * streams_plan['skew_share']:.0f} % one emotion and the rest the
others. Shuffled and skewed are scored after {report['plan']['warm_s']:g} s of speech.
A speaker's recordings are repeated (reshuffled) when a protocol needs more speech than they recorded; half of
each speaker's neutral recordings are the enrolment reading and are never streamed.
Methods: running statistics learn the mean and spread of all speech (what ser-live did before); slow and
bounded is the same with a half-way point of 60 s and at most half the weight; judged-neutral statistics
learn the neutral voice only from windows the plain model calls neutral with probability at least 0.5 (the
idea of Busso et al.'s iterative feature normalisation); speaker directions remove the speaker's offset only
along the directions in which training speakers differ most relative to how emotions differ
(nuisance-attribute projection); neutral enrolment learns the neutral voice from a
{report['plan']['methods'][-1]['enrol_s']:g} s neutral reading and then freezes it. Settings were fixed before the
evaluation.
"""
    return f"""## Speaker adaptation (off by default)
The model file also holds a variant trained on each training speaker's features referenced to their own
neutral voice (standardised with the mean and spread of their neutral speech; inputs: {variant['inputs']}).
Live it needs the current speaker's neutral voice, learnt in one of two ways:
- `--calibrate S` (window: "Calibrate…", 20 s): read the shown passage in your everyday voice for S s of speech;
  the voice learnt is then frozen, so a mood that follows is never learnt as the voice (in the tables:
  "{variant['calibrate']}").
- `--adapt` (window: "Adapt to my voice"): learn from the windows the plain model already calls neutral
  (probability at least {variant['neutral_threshold']:g}); it assumes you speak neutrally some of the time (in the
  tables: "{variant['adapt']}").
The output is `w * adapted + (1 - w) * plain` with `w = t / (t + {variant['half_s']:g} s)` after `t` s of learnt speech.
`--profile NAME` keeps the learnt voice between sessions (profiles of the earlier method are refused once and
kept as `.bad`).

{evaluation}
Limits of adaptation:
- It learns whoever speaks: with two people at one microphone it learns their mixture. Use a profile per
  person, and calibrate again when the speaker, the room or the microphone changes.
- A calibration read in a tense or tired voice makes that voice the reference; read it as you usually talk.
"""
