"""Speaker adaptation in the product: the adaptive model bundle, the monitor, and the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli, tone, write_wav

from ser_live.engine.monitor import Monitor
from ser_live.errors import ModelError
from ser_live.features.handcrafted import FeatureConfig, extract_features
from ser_live.model.emotion_model import EMOTIONS, EmotionModel, ModelAdaptation
from ser_live.model.speaker import SpeakerNormalizer, adaptive_input, profile_path
from ser_live.training.adaptation import normalise_per_speaker, population_prior

SR = 16000
HALF_S = 4.0


def _adaptive(model: EmotionModel, *, blend: bool = True) -> EmotionModel:
    """The tiny test model plus a speaker-normalised variant trained the way training does it."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    config = FeatureConfig()
    x, labels, speakers = [], [], []
    for i, emotion in enumerate(EMOTIONS):
        for j in range(4):  # "speaker" j speaks every emotion a little higher than speaker j - 1
            x.append(extract_features(tone(90.0 + 40.0 * i + 15 * j, 2.0, vibrato_hz=1.0 + i, seed=7 * i + j),
                                      config))
            labels.append(emotion)
            speakers.append(f"s{j}")
    x, speakers = np.array(x), np.array(speakers)
    estimator = make_pipeline(StandardScaler(), MLPClassifier((16,), max_iter=500, random_state=0))
    estimator.fit(adaptive_input(x, normalise_per_speaker(x, speakers), "raw+normalised"), labels)
    adaptation = ModelAdaptation(estimator, population_prior(x, speakers, half_s=HALF_S), blend=blend)
    return EmotionModel(model.estimator, model.extractor, window_s=model.window_s, hop_s=model.hop_s,
                        metadata={"note": "test fixture, not shipped"}, adaptation=adaptation)


@pytest.fixture(scope="module")
def adaptive_model_path(tiny_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("adaptive") / "adaptive.npz"
    _adaptive(tiny_model).save(path)
    return path


@pytest.fixture(scope="module")
def adaptive_model(adaptive_model_path):
    return EmotionModel.load(adaptive_model_path)


def _speech(seconds: float, f0_hz: float = 180.0) -> np.ndarray:
    return tone(f0_hz, seconds, vibrato_hz=3.0, seed=3)


def _model_args(path) -> list[str]:
    return ["--model", str(path)]


# -- the model bundle ------------------------------------------------------------------------------
def test_adaptive_bundle_round_trips(tiny_model, tmp_path):
    model = _adaptive(tiny_model)
    path = tmp_path / "m.npz"
    model.save(path)
    again = EmotionModel.load(path)
    assert again.adaptation is not None and again.adaptation.blend
    np.testing.assert_array_equal(again.adaptation.prior.mean, model.adaptation.prior.mean)
    np.testing.assert_array_equal(again.adaptation.prior.std, model.adaptation.prior.std)
    assert again.adaptation.prior.half_s == HALF_S
    x = model.extractor(_speech(2.0))
    norm = SpeakerNormalizer(model.adaptation.prior, hop_s=0.5)
    for shift in range(10):
        norm.update(x + shift)
    np.testing.assert_allclose(again.predict_proba_adapted(x, norm), model.predict_proba_adapted(x, norm))
    # A model without the entry still loads and does not adapt.
    assert EmotionModel.load(tiny_model.path).adaptation is None


def test_malformed_adaptation_entry_is_refused(tiny_model, tmp_path):
    from ser_live.model.file_format import write_bundle

    bundle = _adaptive(tiny_model).to_bundle()
    bundle["adaptation"]["prior"]["mean"] = bundle["adaptation"]["prior"]["mean"][:-1]
    bundle["adaptation"]["prior"]["std"] = bundle["adaptation"]["prior"]["std"][:-1]
    write_bundle(tmp_path / "bad.npz", bundle)
    with pytest.raises(ModelError, match="adaptive variant"):
        EmotionModel.load(tmp_path / "bad.npz")
    bundle["adaptation"] = {"estimator": None, "prior": {}, "blend": True}
    write_bundle(tmp_path / "bad2.npz", bundle)
    with pytest.raises(ModelError, match="malformed speaker-adaptive variant"):
        EmotionModel.load(tmp_path / "bad2.npz")


def test_blend_follows_the_normaliser_weight(adaptive_model):
    """Documented schedule: adapted = w * normalised + (1 - w) * unadapted, w = heard / (heard + half_s)."""
    x = adaptive_model.extractor(_speech(2.0, 220.0))
    norm = SpeakerNormalizer(adaptive_model.adaptation.prior, hop_s=0.5)
    # Nothing heard: the adaptive output is exactly the unadapted model's.
    np.testing.assert_allclose(adaptive_model.predict_proba_adapted(x, norm), adaptive_model.predict_proba(x))
    for k in range(16):  # 8 s of speech at a 4 s half-way point: w = 2/3
        norm.update(x * (1.0 + 0.01 * k))
    assert norm.weight == pytest.approx(8.0 / (8.0 + HALF_S))
    alone = EmotionModel(adaptive_model.estimator, adaptive_model.extractor,
                         adaptation=ModelAdaptation(adaptive_model.adaptation.estimator,
                                                    adaptive_model.adaptation.prior, blend=False,
                                                    inputs=adaptive_model.adaptation.inputs))
    expected = norm.weight * alone.predict_proba_adapted(x, norm) + (1 - norm.weight) * adaptive_model.predict_proba(x)
    np.testing.assert_allclose(adaptive_model.predict_proba_adapted(x, norm), expected)


# -- the monitor ---------------------------------------------------------------------------------------
def test_silence_does_not_move_the_statistics(adaptive_model):
    monitor = Monitor(adaptive_model, adapt=True)
    assert monitor.adapting
    rng = np.random.default_rng(0)
    predictions = monitor.feed(rng.normal(0, 1e-4, 6 * SR).astype(np.float32))
    assert predictions and not any(p.speech for p in predictions)
    assert monitor.adapted_s == 0.0 and monitor.adaptation_weight == 0.0
    assert monitor.analyzer.normalizer.stats.count == 0
    predictions = monitor.feed(_speech(6.0))
    n_speech = sum(p.speech for p in predictions)
    assert n_speech > 0
    # Exactly one hop of speech per speech window, nothing for the silent ones.
    assert monitor.adapted_s == pytest.approx(n_speech * monitor.hop_s)
    assert monitor.adaptation_weight == pytest.approx(monitor.adapted_s / (monitor.adapted_s + HALF_S))
    # Silence again: the first windows still hold the end of the speech, the later ones only silence.
    tail = monitor.feed(np.zeros(4 * SR, np.float32))
    assert not tail[-1].speech
    n_speech += sum(p.speech for p in tail)
    assert monitor.adapted_s == pytest.approx(n_speech * monitor.hop_s)
    learnt = monitor.analyzer.normalizer.stats.mean.copy()
    assert not any(p.speech for p in monitor.feed(np.zeros(3 * SR, np.float32)))
    np.testing.assert_array_equal(monitor.analyzer.normalizer.stats.mean, learnt)
    assert monitor.adapted_s == pytest.approx(n_speech * monitor.hop_s)


def test_monitor_without_adaptation_is_the_plain_model(adaptive_model, tiny_model):
    y = np.concatenate([_speech(5.0), _speech(5.0, 240.0)])
    plain = [p.probs for p in Monitor(tiny_model).feed(y) if p.speech]
    off = Monitor(adaptive_model, adapt=False)
    assert not off.adapting and off.adapted_s == 0.0
    assert [p.probs for p in off.feed(y) if p.speech] == plain
    on = [p.probs for p in Monitor(adaptive_model, adapt=True).feed(y) if p.speech]
    assert on[0] == pytest.approx(plain[0])  # nothing learnt before the first speech window
    assert any(a != pytest.approx(b, abs=1e-6) for a, b in zip(on, plain))  # then the speaker counts


def test_speaker_carries_over_between_monitors(adaptive_model):
    first = Monitor(adaptive_model, adapt=True)
    first.feed(_speech(4.0))
    learnt = first.adapted_s
    assert learnt > 0
    second = Monitor(adaptive_model, adapt=True, speaker=first.analyzer.normalizer)
    assert second.adapted_s == learnt


# -- the command line ----------------------------------------------------------------------------------
def _voice(tmp_path, seconds: float = 6.0):
    silence = np.zeros(SR, np.float32)
    return write_wav(tmp_path / "voice.wav", np.concatenate([silence, _speech(seconds), silence]))


def _json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_adaptation_is_off_by_default_and_on_with_adapt(adaptive_model_path, tiny_model_path, tmp_path):
    path = _voice(tmp_path)
    plain = run_cli("--print", "--json", "--input", str(path), *_model_args(tiny_model_path))
    default = run_cli("--print", "--json", "--input", str(path), *_model_args(adaptive_model_path))
    off = run_cli("--print", "--json", "--input", str(path), "--no-adapt", *_model_args(adaptive_model_path))
    on = run_cli("--print", "--json", "--input", str(path), "--adapt", *_model_args(adaptive_model_path))
    for proc in (plain, default, off, on):
        assert proc.returncode == 0, proc.stderr
    assert _json_lines(off.stdout) == _json_lines(plain.stdout) == _json_lines(default.stdout)
    adapted = _json_lines(on.stdout)
    # Same keys as issue 2's schema: adaptation adds none.
    assert [list(o) for o in adapted] == [list(o) for o in _json_lines(plain.stdout)]
    assert adapted != _json_lines(plain.stdout)
    assert "neutral voice learnt from" in on.stderr.strip().splitlines()[-1]
    assert "learning from windows heard as neutral" in on.stderr.strip().splitlines()[-1]
    for proc in (default, off):
        assert proc.stderr.strip().splitlines()[-1].endswith("; speaker adaptation off (the plain model)")


def test_profile_round_trip_through_the_cli(adaptive_model_path, tmp_path):
    env = {"XDG_DATA_HOME": str(tmp_path / "data")}
    path = _voice(tmp_path)
    first = run_cli("--print", "--input", str(path), "--adapt", "--profile", "alice",
                    *_model_args(adaptive_model_path), env=env)
    assert first.returncode == 0, first.stderr
    saved = tmp_path / "data" / "ser-live" / "profiles" / "alice.json"
    payload = json.loads(saved.read_text())
    assert payload["feature_version"] == "handcrafted-4"  # the extractor's kind and version (app.profile_key)
    assert payload["stats"]["count"] > 0
    learnt_s = payload["stats"]["count"] * 0.5
    second = run_cli("--print", "--input", str(path), "--adapt", "--profile", "alice",
                     *_model_args(adaptive_model_path), env=env)
    assert second.returncode == 0, second.stderr
    assert f"{learnt_s:.0f} s of speech already learnt" in second.stderr
    assert json.loads(saved.read_text())["stats"]["count"] == 2 * payload["stats"]["count"]
    # The profile alone uses the learnt voice without learning more.
    third = run_cli("--print", "--input", str(path), "--profile", "alice", *_model_args(adaptive_model_path), env=env)
    assert third.returncode == 0, third.stderr
    assert json.loads(saved.read_text())["stats"]["count"] == 2 * payload["stats"]["count"]
    assert third.stdout.strip().splitlines()[-1].endswith(", frozen")  # the summary (on stdout without --json)


def test_profile_of_the_earlier_method_is_refused_once_and_kept(adaptive_model_path, tmp_path, monkeypatch):
    env = {"XDG_DATA_HOME": str(tmp_path / "data")}
    monkeypatch.setenv("XDG_DATA_HOME", env["XDG_DATA_HOME"])
    saved = profile_path("carol")
    saved.parent.mkdir(parents=True)
    old = {"profile_version": 1, "feature_version": "handcrafted-4", "n_features": 3,
           "stats": {"count": 4, "mean": [0.0, 0.0, 0.0], "m2": [1.0, 1.0, 1.0]}}
    saved.write_text(json.dumps(old))
    proc = run_cli("--print", "--input", str(_voice(tmp_path)), "--profile", "carol", *_model_args(adaptive_model_path),
                   env=env)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "made by the earlier adaptation" in warnings[0], proc.stderr
    assert json.loads(saved.with_name("carol.json.bad").read_text()) == old
    again = run_cli("--print", "--input", str(_voice(tmp_path)), "--profile", "carol",
                    *_model_args(adaptive_model_path), env=env)
    assert "warning" not in again.stderr  # refused once: the new profile replaced it


def test_damaged_profile_is_one_warning_line_and_is_replaced(adaptive_model_path, tmp_path, monkeypatch):
    env = {"XDG_DATA_HOME": str(tmp_path / "data")}
    monkeypatch.setenv("XDG_DATA_HOME", env["XDG_DATA_HOME"])
    saved = profile_path("bob")
    saved.parent.mkdir(parents=True)
    saved.write_text("{this is not json")
    proc = run_cli("--print", "--json", "--input", str(_voice(tmp_path)), "--adapt", "--profile", "bob",
                   *_model_args(adaptive_model_path), env=env)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "warning: ignoring speaker profile" in warnings[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert json.loads(saved.read_text())["stats"]["count"] > 0  # the session's statistics replaced it


def test_calibrate_learns_first_then_monitors(adaptive_model_path, tmp_path):
    path = _voice(tmp_path, seconds=8.0)
    full = run_cli("--print", "--json", "--input", str(path), *_model_args(adaptive_model_path))
    calibrated = run_cli("--print", "--json", "--input", str(path), "--calibrate", "3",
                         *_model_args(adaptive_model_path))
    assert calibrated.returncode == 0, calibrated.stderr
    assert "calibrating: read this aloud in your everyday voice (3 s of speech): \"The North Wind" in calibrated.stderr
    assert "calibration done: learnt 3 s of your neutral voice" in calibrated.stderr
    shown, every = _json_lines(calibrated.stdout), _json_lines(full.stdout)
    # The first 3 s of speech (6 speech windows at a 0.5 s hop) and the silence before them are held back.
    first_speech = next(i for i, o in enumerate(every) if o["speech"])
    assert [o["t"] for o in shown] == [o["t"] for o in every[first_speech + 6:]]
    # Then the voice is frozen: 3 s learnt, however long the speech goes on.
    summary = calibrated.stderr.strip().splitlines()[-1]
    assert "neutral voice learnt from 3 s of speech" in summary and summary.endswith(", frozen")


def test_calibrate_without_adaptation_is_an_error(adaptive_model_path, tmp_path):
    proc = run_cli("--print", "--input", str(_voice(tmp_path)), "--calibrate", "5", "--no-adapt",
                   *_model_args(adaptive_model_path))
    assert proc.returncode == 2  # options that contradict each other
    assert proc.stderr.strip().splitlines() == ["ser-live: error: --calibrate uses a learnt voice, which --no-adapt "
                                                "turns off; drop one of them (see 'ser-live --help')"]
