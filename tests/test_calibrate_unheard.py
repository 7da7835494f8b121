"""A trained model's confidence on corpora it never heard: the temperature fitted there, how true the confidence
then is, the model card's table, bench's rows and the window's line (ser_live.training.calibrate)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ser_live.model.emotion_model import EmotionModel
from ser_live.training.calibrate import calibrate_on_unheard, calibration_summary, raw_probabilities
from ser_live.training.corpora import Utterance
from ser_live.training.extract import FeatureSet

CLASSES = ("angry", "happy", "sad")


@pytest.fixture(scope="module")
def overconfident(tiny_fitted_model) -> tuple[EmotionModel, FeatureSet]:
    """A model trained on well-separated classes (so it is very sure) and windows of two corpora it never heard,
    where the classes overlap (so it is often wrong, and still sure)."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    dim = tiny_fitted_model.extractor.dim
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=3.0, size=(len(CLASSES), dim))
    labels = np.repeat(np.arange(len(CLASSES)), 60)
    estimator = make_pipeline(StandardScaler(), MLPClassifier((16,), alpha=1e-4, max_iter=500, random_state=0))
    estimator.fit(centres[labels] + rng.normal(size=(labels.size, dim)), np.array(CLASSES)[labels])
    model = EmotionModel(estimator, tiny_fitted_model.extractor)
    utterances, rows, owner = [], [], []
    for corpus, spread in (("far", 9.0), ("farther", 12.0)):
        for i in range(90):
            label = i % len(CLASSES)
            utterances.append(Utterance(Path(f"/{corpus}/{i}.wav"), CLASSES[label], f"{corpus}:{i % 3}", corpus))
            for _ in range(3):
                rows.append(centres[label] + rng.normal(scale=spread, size=dim))
                owner.append(len(utterances) - 1)
    features = FeatureSet(utterances, np.array(rows), np.array(owner), np.zeros(len(owner), dtype=int))
    return model, features


def test_the_temperature_fitted_on_corpora_never_heard_makes_the_confidence_true_on_each(overconfident):
    model, features = overconfident
    report = calibrate_on_unheard(model, features)
    assert report["temperature"] > 1.5 and set(report["per_corpus"]) == {"far", "farther"}
    for corpus, v in report["per_corpus"].items():
        before, after = v["before"]["window"], v["after"]["window"]
        assert before["mean_confidence"] > before["accuracy"] + 0.15, corpus  # surer than right, untempered
        assert after["ece"] < before["ece"] / 2, corpus  # tempered by the other corpus's temperature
        assert after["accuracy"] == before["accuracy"]  # tempering never changes an answer
        assert v["after"]["utterance"]["n"] == 90
        assert v["temperature_from_others"] > 1.0
    # A model that already carries a temperature is calibrated from its untempered probabilities.
    model.temperature = 3.0
    np.testing.assert_allclose(raw_probabilities(model, features.X[:5]), model.untempered(model.predict_proba(
        features.X[:5])))
    again = calibrate_on_unheard(model, features)
    assert again["temperature"] == pytest.approx(report["temperature"], abs=1e-3)
    model.temperature = 1.0
    summary = calibration_summary(report)
    assert summary["per_corpus"]["far"]["ece"] == report["per_corpus"]["far"]["after"]["window"]["ece"]


def test_calibrating_needs_two_corpora_and_the_models_classes(overconfident):
    model, features = overconfident
    one = features.subset(np.flatnonzero(features.corpora == "far"))
    with pytest.raises(ValueError, match="at least two"):
        calibrate_on_unheard(model, one)
    other = [Utterance(u.path, "calm", u.speaker, u.corpus) if i == 0 else u for i, u in enumerate(features.utterances)]
    with pytest.raises(ValueError, match="classes the model does not: calm"):
        calibrate_on_unheard(model, FeatureSet(other, features.X, features.utterance_index, features.copy))


def test_the_card_bench_and_window_say_how_true_the_confidence_is(overconfident, tmp_path):
    from ser_live.gui.modelinfo import describe_model
    from ser_live.training.report import calibration_section, write_calibration_report

    model, features = overconfident
    report = {**calibrate_on_unheard(model, features), "base_evaluation_sha256": "abc"}
    section = calibration_section({"calibration": report})
    assert "| far |" in section and "| farther |" in section and f"{report['temperature']:g}" in section
    (tmp_path / "metrics.json").write_text(json.dumps({"evaluation_sha256": "other", "model_sha256": "x"}))
    with pytest.raises(ValueError, match="not made from the evaluation"):
        write_calibration_report(tmp_path, report, model_sha256="y", model_size_bytes=1)

    rows = _bench()._calibration_rows(report, 0.05)
    assert len(rows) == 4 and all("never heard" in r for r in rows)

    model.metadata["calibration"] = calibration_summary(report)
    errors = [v["after"]["window"]["ece"] for v in report["per_corpus"].values()]
    line = describe_model(model).confidence
    assert line.startswith("Confidence: tempered for corpora it never heard (far, farther)")
    assert f"off by {round(100 * min(errors))}-{round(100 * max(errors))} points" in line
    right = [r for v in report["per_corpus"].values() if (r := v["after"]["window"]["confident_accuracy"]) is not None]
    assert f"were right {min(right):.0%}" in line if right else "it never showed 80 % or more" in line
    shares = [v["after"]["window"]["confident_share"] for v in report["per_corpus"].values()
              if v["after"]["window"]["confident_accuracy"] is not None]
    assert not shares or f"(on at most {max(shares):.1%} of windows) were right" in line
    assert line in describe_model(model).summary_lines()
    model.metadata["calibration"] = {"per_corpus": {"a": {"ece": 0.04, "confident_accuracy": None}}}
    assert describe_model(model).confidence.endswith("off by 4 points on average; it never showed 80 % or more there")
    model.metadata["calibration"] = {"per_corpus": {"x": {"ece": "bad"}}}
    assert describe_model(model).confidence == ""  # a damaged entry shows nothing rather than nonsense


def _bench() -> Any:
    """scripts/bench.py as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench", Path(__file__).parents[1] / "scripts" / "bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


@pytest.fixture(scope="module")
def two_tiny_corpora(tmp_path_factory) -> Path:
    """Two tiny corpora in TESS's and nEMO's naming (espeak-ng voices): three classes, five speakers in all."""
    from conftest import espeak

    data = tmp_path_factory.mktemp("data")
    lines = {"angry": "Stop that right now!", "sad": "I miss them so much.", "happy": "What a lovely day!"}
    polish = {"angry": "anger", "sad": "sadness", "happy": "happiness"}
    for i, (emotion, text) in enumerate(lines.items()):
        for speaker, voice in (("OAF", "en+f3"), ("YAF", "en+f5")):
            for word in ("dog", "kite"):
                path = data / "tess" / speaker / f"{speaker}_{word}_{emotion}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                espeak(f"Say the word {word}. {text}", path, voice=voice)
        for speaker, voice in (("EB0", "pl"), ("SB0", "pl+m3"), ("KL0", "pl+f2")):
            for n in range(2):
                path = data / "nemo" / speaker / f"{speaker}_{polish[emotion]}_{i * 2 + n}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                espeak(f"{text} {n}", path, voice=voice)
    return data


def _light_copy(model_dir: Path, *, heard: list[str] | None = None) -> Path:
    """A copy of the shipped light model and its metrics.json in ``model_dir``; with ``heard``, its record of the
    corpora it was trained on says those (and metrics.json the new file's SHA-256)."""
    import shutil

    from ser_live.model.emotion_model import file_sha256, shipped_model_path

    model_dir.mkdir()
    source = shipped_model_path("light")
    for name in (source.name, "metrics.json"):
        shutil.copy(source.parent / name, model_dir / name)
    path = model_dir / source.name
    if heard is not None:
        model = EmotionModel.load(path)
        model.metadata["corpora"] = heard
        model.save(path)
        metrics = json.loads((model_dir / "metrics.json").read_text())
        (model_dir / "metrics.json").write_text(json.dumps({**metrics, "model_sha256": file_sha256(path)}))
    return path


def _calibrate(data: Path, model_dir: Path, *extra: str) -> Any:
    import subprocess
    import sys

    command = [sys.executable, "scripts/calibrate_model.py", "--data", str(data), "--model-dir", str(model_dir),
               "--no-progress", "--jobs", "1", *extra]
    return subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).parents[1], timeout=600)


def test_calibrate_model_script_stores_the_temperature_and_the_figures(two_tiny_corpora, tmp_path):
    """scripts/calibrate_model.py on a copy of the shipped light model recorded as trained on RAVDESS, EMOVO and
    ASED only, and the two tiny corpora it never heard: the file carries the temperature, metrics.json and the card
    the figures, the model still loads and classifies; run again, it starts from the untempered probabilities."""
    import subprocess
    import sys

    from ser_live.model.emotion_model import file_sha256

    data, model_dir = two_tiny_corpora, tmp_path / "light"
    path = _light_copy(model_dir, heard=["ravdess", "emovo", "ased"])
    first = _calibrate(data, model_dir)
    assert first.returncode == 0, first.stderr
    metrics = json.loads((model_dir / "metrics.json").read_text())
    model = EmotionModel.load(path)
    assert model.temperature == metrics["calibration"]["temperature"] >= 1.0
    assert metrics["model_sha256"] == file_sha256(path)
    assert set(metrics["calibration"]["per_corpus"]) == {"nemo", "tess"}
    assert metrics["calibration"]["corpora_were"] == "unheard"
    assert model.metadata["calibration"]["per_corpus"].keys() == {"nemo", "tess"}
    assert "| tess |" in (model_dir / "MODEL_CARD.md").read_text()
    assert f"temperature {model.temperature:g}" in first.stdout and "tess (never heard)" in first.stdout
    second = _calibrate(data, model_dir)
    assert second.returncode == 0, second.stderr
    assert json.loads((model_dir / "metrics.json").read_text())["calibration"] == metrics["calibration"]
    classify = subprocess.run([sys.executable, "-m", "ser_live", "--model", str(path), "--classify",
                               str(data / "tess")], capture_output=True, text=True, cwd=Path(__file__).parents[1],
                              timeout=300)
    assert classify.returncode == 0 and "OAF_dog_sad" in classify.stdout, classify.stderr
    path.write_bytes(b"not a model")
    broken = _calibrate(data, model_dir)
    assert broken.returncode == 1 and broken.stderr.count("\n") == 1 and "train it again" in broken.stderr


def test_a_model_that_heard_every_corpus_is_calibrated_on_its_recipe_trained_without_each(two_tiny_corpora,
                                                                                          tmp_path):
    """The light recipe trained on both tiny corpora heard them all, so calibrate_model.py scores each by the
    recipe trained on the other instead; a directory trained with another recipe than --model names is refused in
    one line, and its file left as it was."""
    import subprocess
    import sys

    from ser_live.gui.modelinfo import describe_model
    from ser_live.model.emotion_model import file_sha256

    data, model_dir = two_tiny_corpora, tmp_path / "light"
    train = subprocess.run([sys.executable, "scripts/train.py", "--model", "light", "--data", str(data), "--out",
                            str(model_dir), "--no-adaptation", "--no-robustness", "--no-progress", "--jobs", "1"],
                           capture_output=True, text=True, cwd=Path(__file__).parents[1], timeout=600)
    assert train.returncode == 0, train.stderr
    path = model_dir / "ser-live-light.npz"
    before = file_sha256(path)
    wrong = _calibrate(data, model_dir)  # --model default: not the recipe the directory was trained with
    assert wrong.returncode == 1 and wrong.stderr.count("\n") == 1 and "--model" in wrong.stderr
    assert file_sha256(path) == before
    done = _calibrate(data, model_dir, "--model", "light")
    assert done.returncode == 0, done.stderr
    metrics = json.loads((model_dir / "metrics.json").read_text())
    calibration = metrics["calibration"]
    assert calibration["corpora_were"] == "held out" and set(calibration["per_corpus"]) == {"nemo", "tess"}
    assert "leave-one-corpus-out" in calibration["protocol"] and "tess (held out)" in done.stdout
    model = EmotionModel.load(path)
    assert model.temperature == calibration["temperature"] and metrics["model_sha256"] == file_sha256(path)
    assert "| corpus held out |" in (model_dir / "MODEL_CARD.md").read_text()
    assert all("(held out)" in row for row in _bench()._calibration_rows(calibration, 0.07))
    assert describe_model(model).confidence.startswith(
        "Confidence: tempered on each corpus it learnt from, left out of its training in turn (nemo, tess)")
