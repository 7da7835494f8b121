"""A model of one's own classes (calm / irritated / escalating): every output and view shows those classes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import OWN_CLASSES, run_cli, tone, write_wav

from ser_live.errors import ModelError

CLASSES = OWN_CLASSES


@pytest.fixture
def voice(tmp_path) -> Path:
    return write_wav(tmp_path / "voice.wav", np.concatenate([tone(170.0, 3.0, vibrato_hz=5.0),
                                                             np.zeros(8000, np.float32)]))


def test_the_model_keeps_its_classes_in_its_own_order(own_model):
    from ser_live.model.emotion_model import EmotionModel

    model = EmotionModel.load(own_model)
    assert set(model.classes) == set(CLASSES) and len(model.classes) == 3
    probs = model.predict_proba(np.zeros(model.extractor.dim))
    assert probs.shape == (3,) and probs.sum() == pytest.approx(1.0)


def test_print_and_classify_show_the_models_classes(own_model, voice, tmp_path):
    from ser_live.model.emotion_model import EmotionModel

    classes = EmotionModel.load(own_model).classes
    printed = run_cli("--model", str(own_model), "--print", "--input", str(voice), "--record", str(tmp_path / "s.csv"))
    assert printed.returncode == 0, printed.stderr
    header = next(line for line in printed.stdout.splitlines() if line.lstrip().startswith("time"))
    assert header.split()[3:6] == [c[:3] for c in classes]
    assert all(f"{c[:3]}({c[3:]})" in printed.stderr for c in classes)  # the legend spells them out
    classified = run_cli("--model", str(own_model), "--classify", str(voice), "--json")
    result = json.loads(classified.stdout)
    assert classified.returncode == 0 and list(result["probs"]) == list(classes) and result["emotion"] in CLASSES
    # The session file has the model's columns, and the review reads it back with them.
    first = (tmp_path / "s.csv").read_text().splitlines()[0]
    assert all(f"p_{c}" in first for c in classes) and "p_neutral" not in first
    reviewed = run_cli("--review", str(tmp_path / "s.csv"), "--export", str(tmp_path / "review.png"))
    assert reviewed.returncode == 0 and (tmp_path / "review.png").stat().st_size > 0, reviewed.stderr
    summary = run_cli("--review", str(tmp_path / "s.csv"), env={"DISPLAY": "", "WAYLAND_DISPLAY": "",
                                                                "QT_QPA_PLATFORM": ""})  # no display: the summary
    assert summary.returncode == 0 and any(c in summary.stdout for c in CLASSES), summary.stdout + summary.stderr


def test_the_window_shows_the_models_classes_each_in_a_colour_of_its_own(qtbot, own_model, tmp_path):
    from ser_live.app.session import SessionConfig, open_session
    from ser_live.gui import palette
    from ser_live.gui.window import MainWindow
    from ser_live.model.emotion_model import EmotionModel

    model = EmotionModel.load(own_model)
    window = MainWindow(open_session(SessionConfig(), model=model), sessions_dir=tmp_path, realtime=False)
    qtbot.addWidget(window)
    assert window.bars.classes == model.classes == window.history.classes
    colours = [palette.colour_of(c, model.classes) for c in model.classes]
    assert len(set(colours)) == 3 and palette.NO_SPEECH_COLOUR not in colours
    assert not set(colours) & set(palette.EMOTION_COLOURS.values())  # never mistaken for a shipped emotion
    legend = window.history.legend_html()
    assert all(f"color:{colour}" in legend for colour in colours)
    assert window.history_title.text().startswith("class probabilities")  # not emotions
    # The headline shrinks a long class name to fit, and takes its full size back for a short one.
    from PyQt6 import QtGui

    from ser_live.results import Prediction

    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    name = window.headline.name
    for label in ("escalating", "calm"):
        probs = {c: (0.9 if c == label else 0.05) for c in model.classes}
        window.headline.show_prediction(Prediction(t_s=1.0, speech=True, emotion=label, confidence=0.9, probs=probs,
                                                      level_db=-20.0))
        assert QtGui.QFontMetrics(name.font()).horizontalAdvance(label) <= name.contentsRect().width()
    assert name.font().pixelSize() == 96


def test_abbreviations_stay_apart_and_bad_class_names_are_refused():
    import io

    from sklearn.dummy import DummyClassifier

    from ser_live.features.handcrafted import FeatureConfig, feature_names
    from ser_live.model.emotion_model import EmotionModel
    from ser_live.sinks.writers import TextPrinter

    header = TextPrinter(io.StringIO(), ("calm", "calming", "angry")).header().split()
    assert header[3:6] == ["calm", "calmi", "angry"]
    x = np.zeros((4, len(feature_names(FeatureConfig()))))
    for labels in (["a,b", "c", "a,b", "c"], [" calm", "x", " calm", "x"], ["only", "only", "only", "only"]):
        with pytest.raises(ModelError, match="two or more different names"):
            EmotionModel(DummyClassifier().fit(x, labels), FeatureConfig())
