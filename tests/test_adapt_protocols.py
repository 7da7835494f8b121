"""Speaker adaptation under the protocols a real person produces: held moods, switches, skewed and shuffled mixes.

Synthetic speakers: every window is a speaker offset (the voice) plus an emotion's mean plus noise, so
what each method should do is known. The held-mood test is the issue's: a speaker whose windows sit in
one class's region for the whole stream must keep reading as that class under the shipped methods,
and the method used until now (running statistics of all speech) is shown to lose it, so the test can
tell the difference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ser_live.engine.monitor import WindowAnalyzer
from ser_live.model.emotion_model import EmotionModel, ModelAdaptation
from ser_live.model.speaker import SpeakerNormalizer, SpeakerPrior
from ser_live.training.adaptation import CONTINUOUS_METHOD, ENROLMENT_METHOD
from ser_live.training.adaptation_eval import EvaluationPlan, evaluate_methods, ship_verdict
from ser_live.training.adaptation_methods import METHODS, causal_statistics, fit_method, stream_inputs
from ser_live.training.adaptation_streams import StreamPlan, speaker_streams, utterance_rows
from ser_live.training.corpora import Utterance
from ser_live.training.estimator import ModelParams
from ser_live.training.evaluate import speaker_folds
from ser_live.training.extract import FeatureSet

CLASSES = ("neutral", "happy", "sad", "angry")
N_FEATURES = 6
HOP_S = 0.5
PARAMS = ModelParams(hidden_layer_sizes=(16,), n_seeds=1, max_iter=200, batch_size=64)
RUNNING = next(m for m in METHODS if m.name.startswith("running statistics"))


def _emotion_means() -> np.ndarray:
    means = np.zeros((len(CLASSES), N_FEATURES))
    for i in range(1, len(CLASSES)):
        means[i, i - 1] = 2.5  # each emotion moves its own direction; neutral is the origin
    return means


def _corpus(n_speakers: int = 8, utterances_per_emotion: int = 6, windows: int = 4, seed: int = 0) -> FeatureSet:
    """Speakers whose voices differ by offsets as large as the emotions, every emotion recorded."""
    rng = np.random.default_rng(seed)
    means = _emotion_means()
    utterances, rows, owners = [], [], []
    for s in range(n_speakers):
        offset = rng.normal(0, 1.0, N_FEATURES)
        for e, emotion in enumerate(CLASSES):
            for k in range(utterances_per_emotion):
                owners += [len(utterances)] * windows
                utterances.append(Utterance(Path(f"s{s}_{emotion}_{k}.wav"), emotion, f"syn:s{s}", "syn"))
                rows.append(offset + means[e] + rng.normal(0, 0.5, (windows, N_FEATURES)))
    n = len(owners)
    return FeatureSet(utterances, np.vstack(rows), np.array(owners), np.zeros(n, dtype=np.int64))


def _fit(features: FeatureSet, method, utterances: np.ndarray):
    rows = np.flatnonzero(np.isin(features.utterance_index, utterances))
    owner = features.utterance_index[rows]
    return fit_method(method, features.X[rows], features.speakers[owner], features.labels[owner], owner, PARAMS)


def _plain(features: FeatureSet, utterances: np.ndarray):
    from ser_live.training.estimator import fit_estimator

    rows = np.flatnonzero(np.isin(features.utterance_index, utterances))
    owner = features.utterance_index[rows]
    return fit_estimator(features.X[rows], features.labels[owner], owner, PARAMS)


@pytest.fixture(scope="module")
def corpus() -> FeatureSet:
    return _corpus()


# -- the streams -----------------------------------------------------------------------------------
PLAN = StreamPlan(sustained_s=30.0, switch_s=10.0, skewed_s=40.0, skew_share=0.7)


def _streams(corpus: FeatureSet, protocol: str) -> list:
    own = np.flatnonzero(corpus.speakers == "syn:s0")
    return list(speaker_streams(corpus, own, utterance_rows(corpus), protocol, PLAN, hop_s=HOP_S,
                                rng=np.random.default_rng(1)))


def test_a_sustained_stream_holds_one_emotion_repeating_the_speakers_recordings(corpus):
    sustained = _streams(corpus, "sustained")
    assert sorted(s.target for s in sustained) == sorted(CLASSES)
    for stream in sustained:  # 30 s = 60 windows of one emotion, more than its 6 x 4 recorded: repeated
        assert stream.rows.size == 60 and set(stream.labels) == {stream.target}
        assert set(corpus.speakers[corpus.utterance_index[stream.rows]]) == {"syn:s0"}


def test_a_switch_stream_changes_emotion_once_at_its_middle(corpus):
    for stream in _streams(corpus, "switch"):
        assert stream.switch_at == 20 and stream.rows.size == 40
        assert len(set(stream.labels[:20])) == 1 and set(stream.labels[20:]) == {stream.target}
        assert stream.labels[0] != stream.target


def test_a_skewed_stream_is_mostly_one_emotion_and_a_shuffled_one_is_everything_once(corpus):
    for stream in _streams(corpus, "skewed"):
        assert stream.rows.size == 80
        assert np.mean(stream.labels == stream.target) == pytest.approx(0.7, abs=0.1)
    (shuffled,) = _streams(corpus, "shuffled")
    everything = np.flatnonzero(corpus.speakers[corpus.utterance_index] == "syn:s0")
    assert sorted(shuffled.rows.tolist()) == sorted(everything.tolist())
    with pytest.raises(ValueError, match="unknown protocol"):
        _streams(corpus, "random")


def test_causal_statistics_use_only_the_learnt_windows_before_each_window():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(12, 3))
    learn = rng.random(12) < 0.5
    mean, var, count = causal_statistics(X, learn)
    for i in range(12):
        seen = X[:i][learn[:i]]
        assert count[i] == len(seen)
        if len(seen):
            np.testing.assert_allclose(mean[i], seen.mean(axis=0), atol=1e-12)
            np.testing.assert_allclose(var[i], seen.var(axis=0), atol=1e-9)


# -- a held mood ---------------------------------------------------------------------------------------
def _held_anger(seed: int, n_windows: int = 180) -> tuple[np.ndarray, np.ndarray]:
    """A new speaker angry for 90 s of speech, and their 20 s neutral reading."""
    rng = np.random.default_rng(seed)
    offset = rng.normal(0, 0.5, N_FEATURES)  # a voice the plain model reads well at first
    angry = offset + _emotion_means()[CLASSES.index("angry")] + rng.normal(0, 0.5, (n_windows, N_FEATURES))
    reading = offset + rng.normal(0, 0.5, (40, N_FEATURES))
    return angry, reading


def _recall_over_time(method, fitted, plain, X: np.ndarray, reading: np.ndarray) -> np.ndarray:
    """Recall of anger over the first 10 s and the last 30 s: adapted by ``method`` (None: the plain model)."""
    from ser_live.training.evaluate import aligned_proba

    proba = aligned_proba(plain, X, CLASSES)
    if method is not None:
        inputs, weight = stream_inputs(method, fitted, X, proba, CLASSES.index("neutral"), hop_s=HOP_S,
                                       enrolment=reading)
        proba = weight[:, None] * aligned_proba(fitted.estimator, inputs, CLASSES) + (1 - weight[:, None]) * proba
    right = proba.argmax(axis=1) == CLASSES.index("angry")
    return np.array([right[:20].mean(), right[-60:].mean()])


def test_a_held_mood_keeps_reading_as_itself_under_the_shipped_methods(corpus):
    """Ten new speakers each angry for 90 s (the plain model reads them at about 0.97, start and end)."""
    everyone = np.arange(len(corpus.utterances))
    plain = _plain(corpus, everyone)
    speakers = [_held_anger(100 + seed) for seed in range(10)]

    def recall(method) -> np.ndarray:
        fitted = None if method is None else _fit(corpus, method, everyone)
        return np.mean([_recall_over_time(method, fitted, plain, *speaker) for speaker in speakers], axis=0)

    unadapted_first, unadapted_last = recall(None)
    for method in (CONTINUOUS_METHOD, ENROLMENT_METHOD):
        first, last = recall(method)
        assert last >= first - 0.05 and last >= unadapted_last - 0.03, (method.name, first, last, unadapted_last)
    # What the issue found: learning all speech learns the anger as the voice, and the anger fades
    # (here from about 0.88 to 0.58), so this test tells the two kinds of method apart.
    first, last = recall(RUNNING)
    assert last < first - 0.2 and last < unadapted_last - 0.2, (first, last)


def test_the_live_analyser_keeps_a_held_mood_with_the_shipped_variant(corpus):
    """The monitor's own path (WindowAnalyzer): --adapt learns only windows judged neutral, so anger stays anger."""
    from ser_live.features.handcrafted import FeatureConfig

    everyone = np.arange(len(corpus.utterances))
    fitted = _fit(corpus, CONTINUOUS_METHOD, everyone)
    adaptation = ModelAdaptation(fitted.estimator, SpeakerPrior(fitted.mean, fitted.std, CONTINUOUS_METHOD.half_s),
                                 reference="neutral", neutral_threshold=CONTINUOUS_METHOD.neutral_threshold)
    model = EmotionModel(_plain(corpus, everyone), FeatureConfig(), adaptation=adaptation)
    angry, reading = _held_anger(106)
    for learn, start in (("judged-neutral", []), ("frozen", reading)):
        normalizer = SpeakerNormalizer(adaptation.prior, hop_s=HOP_S, learn="every")
        for x in start:  # a calibration's reading: every window learnt, then the mode of the session
            normalizer.update(x)
        normalizer.learn = learn
        analyzer = WindowAnalyzer(model, normalizer=normalizer)
        shown = [model.classes[int(np.argmax(analyzer.classify_speech(x)))] for x in angry]
        assert np.mean(np.array(shown[-60:]) == "angry") >= np.mean(np.array(shown[:20]) == "angry") - 0.05, learn
        # Judged-neutral learning learns (almost) nothing from a held anger; a frozen voice learns nothing.
        assert normalizer.stats.count <= (0.1 * len(angry) if learn == "judged-neutral" else len(reading)), learn
    # A tempered model (its confidence calibrated) learns from exactly the windows the untempered one does: the
    # neutral threshold is on the estimator's own probabilities, and tempering at 4 would otherwise keep almost
    # every window under it.
    tempered = EmotionModel(model.estimator, FeatureConfig(), adaptation=adaptation, temperature=4.0)
    counts = []
    for each in (model, tempered):
        normalizer = SpeakerNormalizer(adaptation.prior, hop_s=HOP_S, learn="judged-neutral")
        analyzer = WindowAnalyzer(each, normalizer=normalizer)
        for x in [*reading, *angry]:
            analyzer.classify_speech(x)
        counts.append(normalizer.stats.count)
    assert counts[0] == counts[1] >= 0.5 * len(reading), counts
    # The earlier kind of variant (reference "all") learns every window, as before.
    old = ModelAdaptation(fitted.estimator, adaptation.prior, reference="all")
    assert old.learns_from(np.array([0.0, 1.0, 0.0, 0.0]), CLASSES)
    assert not adaptation.learns_from(np.array([0.2, 0.8, 0.0, 0.0]), CLASSES)
    assert adaptation.learns_from(np.array([0.6, 0.2, 0.1, 0.1]), CLASSES)


# -- the evaluation ------------------------------------------------------------------------------------
def test_evaluation_reports_every_protocol_and_applies_the_rule(corpus):
    """End to end on the synthetic corpus: the held-mood harm of running statistics is caught by the rule."""
    folds = speaker_folds(corpus.speakers, corpus.labels, n_splits=4)
    base = np.zeros((corpus.X.shape[0], len(CLASSES)))
    for train, test in folds:  # out-of-fold plain probabilities, as the shipped evaluation gives them
        from ser_live.training.evaluate import aligned_proba

        rows = np.flatnonzero(np.isin(corpus.utterance_index, test))
        base[rows] = aligned_proba(_plain(corpus, train), corpus.X[rows], CLASSES)
    plan = EvaluationPlan(methods=(RUNNING, CONTINUOUS_METHOD, ENROLMENT_METHOD),
                          streams=StreamPlan(sustained_s=70.0, switch_s=20.0, skewed_s=70.0), shuffled_orders=1)
    report = evaluate_methods(corpus, folds, base, PARAMS, hop_s=HOP_S, plan=plan)
    overall = report["methods"]["none (--no-adapt)"]["overall"]
    assert set(overall) == {"shuffled", "sustained", "switch", "skewed"}
    assert set(overall["sustained"]["after_30_s"]["recall"]) == set(CLASSES)
    assert report["n_streams"]["sustained"] == 8 * len(CLASSES)
    assert not report["verdicts"][RUNNING.name]["no_harm_on_sustained"]
    assert report["verdicts"][ENROLMENT_METHOD.name]["no_harm_on_sustained"]


def test_the_shipping_rule_on_made_up_figures():
    sustained = {"after_30_s": {"recall": {"angry": 0.8}}, "after_60_s": {"recall": {"angry": 0.8}}}
    plain_scores = {"sustained": sustained, "shuffled": {"uar": 0.5}}
    worse = {"sustained": {k: {"recall": {"angry": 0.76}} for k in sustained}, "shuffled": {"uar": 0.53}}
    assert ship_verdict(worse, plain_scores)["passes"] is False  # 0.04 lower on a held mood
    within = {"sustained": {k: {"recall": {"angry": 0.78}} for k in sustained}, "shuffled": {"uar": 0.53}}
    assert ship_verdict(within, plain_scores)["passes"] is True
    assert ship_verdict(within | {"shuffled": {"uar": 0.51}}, plain_scores)["passes"] is False  # too little gain
