"""The compiled forward pass: same probabilities as scikit-learn, model files of arrays, no scikit-learn at run time."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import REPO

from ser_live.errors import ModelError
from ser_live.features.handcrafted import FeatureConfig, feature_names
from ser_live.model import forward as inference_mod
from ser_live.model.emotion_model import EMOTIONS, MODEL_FORMAT_VERSION, EmotionModel, ModelAdaptation
from ser_live.model.file_format import read_bundle, write_bundle
from ser_live.model.speaker import SpeakerNormalizer, SpeakerPrior
from ser_live.training.estimator import ModelParams, make_estimator

N_FEATURES = len(feature_names(FeatureConfig()))


def _data(labels: tuple[str, ...], n_per_class: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Separable rows on the scale of real features (offsets and spreads far from 0 and 1)."""
    rng = np.random.default_rng(seed)
    offset, spread = rng.uniform(-500, 500, N_FEATURES), rng.uniform(0.1, 200, N_FEATURES)
    y = np.repeat(np.array(labels), n_per_class)
    z = rng.normal(0, 1, (y.size, N_FEATURES))
    for k, label in enumerate(labels):
        z[y == label, k] += 3.0
    return offset + spread * z, y


def _fit(estimator, labels=EMOTIONS, dtype=np.float64):
    x, y = _data(labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # too few iterations to converge: irrelevant here
        return estimator.fit(x.astype(dtype), y)


def _mlp(**kwargs):
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=kwargs.pop("hidden", (12,)), max_iter=kwargs.pop("max_iter", 40),
                         random_state=kwargs.pop("random_state", 0), **kwargs)


def _scaled(head, *extra_steps):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), *extra_steps, head)


def _estimator(shape: str):
    from sklearn.ensemble import BaggingClassifier, VotingClassifier
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    seeds = [(f"s{i}", _mlp(random_state=i)) for i in range(3)]
    if shape == "single":
        return _fit(_scaled(_mlp()))
    if shape == "bare-mlp":  # no pipeline, no scaler
        return _fit(_mlp(hidden=(6,)))
    if shape == "two-hidden-layers":
        return _fit(_scaled(_mlp(hidden=(16, 8))))
    if shape in ("tanh", "logistic", "identity"):
        return _fit(_scaled(_mlp(activation=shape)))
    if shape == "voting":
        return _fit(_scaled(VotingClassifier(seeds, voting="soft")))
    if shape == "voting-weights-drop":
        return _fit(_scaled(VotingClassifier([*seeds, ("gone", "drop")], voting="soft", weights=[1, 2, 0.5, 3])))
    if shape == "bagging":
        return _fit(_scaled(BaggingClassifier(_mlp(), n_estimators=4, bootstrap=False, max_features=0.5,
                                              random_state=0)))
    if shape == "bagging-bootstrap-features":
        return _fit(_scaled(BaggingClassifier(_mlp(), n_estimators=3, max_features=0.7, bootstrap_features=True,
                                              random_state=1)))
    if shape == "clip":
        return _fit(_scaled(_mlp(), FunctionTransformer(np.clip, kw_args={"a_min": -1.0, "a_max": 1.0})))
    if shape == "scaler-without-mean":
        from sklearn.pipeline import make_pipeline

        return _fit(make_pipeline(StandardScaler(with_mean=False), _mlp()))
    if shape == "binary":
        return _fit(_scaled(_mlp()), labels=("happy", "sad"))
    if shape == "binary-voting":
        return _fit(_scaled(VotingClassifier(seeds, voting="soft")), labels=("angry", "neutral"))
    if shape == "float32-trained":  # as training fits them: float32 weights, float64 inputs
        return _fit(_scaled(_mlp()), dtype=np.float32)
    raise AssertionError(shape)


SHAPES = ["single", "bare-mlp", "two-hidden-layers", "tanh", "logistic", "identity", "voting", "voting-weights-drop",
          "bagging", "bagging-bootstrap-features", "clip", "scaler-without-mean", "binary", "binary-voting",
          "float32-trained"]


def _compiled(model: EmotionModel) -> bool:
    return model._classifier.forward is not None


@pytest.mark.parametrize("shape", SHAPES)
def test_compiled_forward_pass_matches_scikit_learn(shape):
    estimator = _estimator(shape)
    model = EmotionModel(estimator, FeatureConfig())
    assert _compiled(model)
    x, _ = _data(tuple(estimator.classes_), seed=5)  # other rows than training, and extremes
    x = np.vstack([x[:40], np.zeros(N_FEATURES), x[:3] * 50.0])
    order = [list(estimator.classes_).index(c) for c in model.classes]
    expected = estimator.predict_proba(x)[:, order]
    np.testing.assert_allclose(model.predict_proba(x), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.predict_proba(x[7]), expected[7], rtol=0, atol=1e-12)


@pytest.mark.parametrize("params", [ModelParams(n_seeds=1), ModelParams(n_seeds=3),
                                    ModelParams(n_seeds=3, max_features=0.6),
                                    ModelParams(n_seeds=2, clip_z=2.5, activation="tanh")],
                         ids=["one-seed", "voting", "bagging", "clip-tanh"])
def test_estimators_training_makes_are_compiled(params):
    params = ModelParams(**{**params.to_dict(), "hidden_layer_sizes": (10,), "max_iter": 20, "batch_size": 32})
    estimator = _fit(make_estimator(params, random_state=3), dtype=np.float32)
    model = EmotionModel(estimator, FeatureConfig())
    assert _compiled(model)
    x, _ = _data(EMOTIONS, seed=9)
    np.testing.assert_allclose(model.predict_proba(x), estimator.predict_proba(x)[:, model._order], rtol=0, atol=1e-12)


def test_batch_uses_one_blas_thread_and_restores_the_count():
    from threadpoolctl import threadpool_info

    model = EmotionModel(_estimator("voting"), FeatureConfig())
    x, _ = _data(EMOTIONS, seed=2)
    before = [lib["num_threads"] for lib in threadpool_info()]
    batch = model.predict_proba(x)
    assert [lib["num_threads"] for lib in threadpool_info()] == before
    np.testing.assert_allclose(batch, np.array([model.predict_proba(row) for row in x]), rtol=0, atol=1e-12)


def test_bad_inputs_fail_as_scikit_learn_does(tiny_model):
    assert _compiled(tiny_model)
    with pytest.raises(ValueError, match="features"):
        tiny_model.predict_proba(np.zeros(N_FEATURES - 1))
    row = np.zeros(N_FEATURES)
    row[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        tiny_model.predict_proba(row)


def test_other_estimators_predict_themselves_but_are_not_saved(tmp_path):
    """An estimator of another shape is not compiled: it predicts in memory, but a model file holds arrays only."""
    estimator = _fit(_scaled(_mlp(), _NegateTransformer()))
    model = EmotionModel(estimator, FeatureConfig())
    assert not _compiled(model)
    x, _ = _data(EMOTIONS, seed=4)
    np.testing.assert_array_equal(model.predict_proba(x), estimator.predict_proba(x)[:, model._order])
    with pytest.raises(ModelError, match="not saved: a model file holds a network's arrays"):
        model.save(tmp_path / "custom.npz")
    assert not (tmp_path / "custom.npz").exists()


class _NegateTransformer:
    """A transformer ser-live does not compile (a stand-in for any custom step)."""

    def fit(self, x, y=None):
        return self

    def transform(self, x):
        return -np.asarray(x)


def test_a_compilation_that_differs_is_not_saved(monkeypatch, tmp_path):
    estimator = _estimator("single")
    # As if a scikit-learn version computed relu networks otherwise than ser-live's copy of them.
    monkeypatch.setitem(inference_mod._HIDDEN_ACTIVATIONS, "relu", inference_mod._identity)
    model = EmotionModel(estimator, FeatureConfig())
    assert not _compiled(model)  # it predicts with the estimator instead
    x, _ = _data(EMOTIONS, seed=6)
    np.testing.assert_array_equal(model.predict_proba(x), estimator.predict_proba(x)[:, model._order])
    with pytest.raises(ModelError, match="not saved: the compiled forward pass differs"):
        model.save(tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


# -- the model file -----------------------------------------------------------------------------------
def test_model_file_round_trips_as_arrays_and_a_manifest(tiny_fitted_model, tmp_path):
    tiny_model = tiny_fitted_model
    bundle = read_bundle(tiny_model.path)
    assert bundle["format_version"] == MODEL_FORMAT_VERSION == 3 and "estimator" not in bundle
    network = bundle["inference"]["networks"][0]
    assert all(type(a) is np.ndarray for a in network["coefs"] + network["intercepts"])
    x, _ = _data(EMOTIONS, seed=8)
    reference = tiny_model.estimator.predict_proba(x)[:, tiny_model._order]
    np.testing.assert_allclose(tiny_model.predict_proba(x), reference, rtol=0, atol=1e-12)
    again = tmp_path / "again.npz"
    tiny_model.save(again)
    loaded = EmotionModel.load(again)
    # The same arrays through the same code: storage must not change a bit.
    np.testing.assert_array_equal(loaded.predict_proba(x), tiny_model.predict_proba(x))
    assert (loaded.classes, loaded.extractor, loaded.metadata) == (tiny_model.classes, tiny_model.extractor,
                                                                       tiny_model.metadata)
    # The scikit-learn estimator was a training artefact: a loaded model's estimator is its forward pass, from which
    # a model with other settings can be made (and saved) as from any estimator.
    assert type(loaded.estimator) is inference_mod.ForwardPass
    assert list(loaded.estimator.classes_) == list(tiny_model.estimator.classes_)
    other = EmotionModel(loaded.estimator, loaded.extractor, window_s=1.5, hop_s=0.5)
    other.save(tmp_path / "other.npz")
    np.testing.assert_array_equal(EmotionModel.load(tmp_path / "other.npz").predict_proba(x), loaded.predict_proba(x))
    # The file is the arrays and a small manifest, nothing more.
    weights = sum(a.nbytes for _, a in inference_mod.inference_arrays(bundle["inference"]))
    assert again.stat().st_size < 1.1 * weights + 20_000


def _format_1(model: EmotionModel) -> dict:
    """The bundle ser-live wrote before format 2: the estimator objects themselves."""
    bundle = model.to_bundle()
    bundle["format_version"] = 1
    bundle["estimator"] = model.estimator
    del bundle["inference"]
    if model.adaptation is not None:
        bundle["adaptation"]["estimator"] = model.adaptation.estimator
        del bundle["adaptation"]["inference"]
    return bundle


def _with_adaptation(tiny_model: EmotionModel) -> EmotionModel:
    rng = np.random.default_rng(0)
    prior = SpeakerPrior(rng.normal(0, 1, N_FEATURES), rng.uniform(0.5, 2, N_FEATURES), half_s=4.0)
    adaptation = ModelAdaptation(_estimator("voting"), prior, inputs="normalised")
    return EmotionModel(tiny_model.estimator, tiny_model.extractor, adaptation=adaptation,
                        metadata={"note": "test"})


def test_a_pickled_model_is_refused_and_the_converter_keeps_its_predictions(tiny_fitted_model, tmp_path):
    """Formats 1 and 2 were pickles: refused in one line that names the way out, which gives the same model."""
    import joblib

    model = _with_adaptation(tiny_fitted_model)
    old = tmp_path / "old.joblib"
    joblib.dump(_format_1(model), old, compress=3)
    with pytest.raises(ModelError) as info:
        EmotionModel.load(old)
    assert "is a pickle" in str(info.value) and "scripts/convert_model.py" in str(info.value)
    new = tmp_path / "new.npz"
    proc = subprocess.run([sys.executable, "scripts/convert_model.py", str(old), str(new)], capture_output=True,
                          text=True, cwd=str(REPO), timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded = EmotionModel.load(new)
    assert _compiled(loaded) and loaded.adaptation._classifier.forward is not None
    x, _ = _data(EMOTIONS, seed=3)
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x), rtol=0, atol=1e-12)
    normalizer = SpeakerNormalizer(model.adaptation.prior, hop_s=0.5)
    for row in x[:10]:
        normalizer.update(row)
    np.testing.assert_allclose(loaded.predict_proba_adapted(x, normalizer), model.predict_proba_adapted(x, normalizer),
                               rtol=0, atol=1e-12)


def _damage(bundle: dict, kind: str) -> dict:
    inference = bundle["inference"]
    network = inference["networks"][0]
    if kind == "weights-shape":
        network["coefs"][1] = network["coefs"][1][:, :-1]
    elif kind == "weights-nan":
        network["coefs"][0] = network["coefs"][0].copy()
        network["coefs"][0][2, 3] = np.nan
    elif kind == "bias-missing":
        network["intercepts"] = network["intercepts"][:1]
    elif kind == "scaler-length":
        inference["steps"][0]["mean"] = inference["steps"][0]["mean"][:-2]
    elif kind == "activation":
        network["activation"] = "softplus"
    elif kind == "classes":
        inference["classes"] = inference["classes"][:-1]
    elif kind == "weights-text":
        network["coefs"][0] = "weights"
    elif kind == "no-networks":
        inference["networks"] = []
    elif kind == "missing-key":
        del inference["steps"]
    elif kind == "not-a-dict":
        bundle["inference"] = [1, 2]
    elif kind == "network-not-a-dict":
        inference["networks"] = ["relu"]
    elif kind == "no-inference":
        del bundle["inference"]
    else:
        raise AssertionError(kind)
    return bundle


DAMAGE = ["weights-shape", "weights-nan", "bias-missing", "scaler-length", "activation", "classes", "weights-text",
          "no-networks", "missing-key", "not-a-dict", "network-not-a-dict", "no-inference"]


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_inference_entry_is_refused(kind, tiny_model_path, tmp_path):
    path = tmp_path / f"{kind}.npz"
    write_bundle(path, _damage(read_bundle(tiny_model_path), kind))
    with pytest.raises(ModelError) as info:
        EmotionModel.load(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_damaged_adaptive_inference_entry_is_refused(tiny_model, tmp_path):
    bundle = _with_adaptation(tiny_model).to_bundle()
    bundle["adaptation"]["inference"]["networks"][1]["coefs"][0] = np.zeros((3, 3))
    write_bundle(tmp_path / "bad.npz", bundle)
    with pytest.raises(ModelError, match="malformed speaker-adaptive variant.*compiled network is damaged"):
        EmotionModel.load(tmp_path / "bad.npz")


_NO_SKLEARN_SCRIPT = """
import json, sys
import numpy as np
from ser_live.model import emotion_model as model_mod
from ser_live.model.speaker import SpeakerNormalizer

model = model_mod.EmotionModel.load(sys.argv[1])
x = np.random.default_rng(0).normal(0, 1, (12, len(model.adaptation.prior.mean)))
normalizer = SpeakerNormalizer(model.adaptation.prior, hop_s=model.hop_s)
for row in x:
    normalizer.update(row)
probs = [model.predict_proba(x[0]).tolist(), model.predict_proba(x).tolist(),
         model.predict_proba_adapted(x, normalizer).tolist()]
loaded = sorted(m for m in sys.modules if m == "sklearn" or m.startswith("sklearn."))
unsafe = sorted(m for m in ("pickle", "joblib", "sklearn") if m in sys.modules)
print(json.dumps({"sklearn": loaded, "unsafe": unsafe, "probs": probs}))
"""


def test_loading_and_predicting_do_not_import_scikit_learn(tiny_model, tmp_path):
    model = _with_adaptation(tiny_model)
    model.save(tmp_path / "adaptive.npz")
    proc = subprocess.run([sys.executable, "-c", _NO_SKLEARN_SCRIPT, str(tmp_path / "adaptive.npz")],
                          capture_output=True, text=True, cwd=str(REPO), timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["sklearn"] == []
    # Nothing that can run code from a file is even imported (numpy's own loader never imports pickle
    # with allow_pickle=False... but the standard library may have: only ours are checked).
    assert "joblib" not in result["unsafe"] and "sklearn" not in result["unsafe"]
    x = np.random.default_rng(0).normal(0, 1, (12, N_FEATURES))
    normalizer = SpeakerNormalizer(model.adaptation.prior, hop_s=model.hop_s)
    for row in x:
        normalizer.update(row)
    expected = [model.predict_proba(x[0]), model.predict_proba(x), model.predict_proba_adapted(x, normalizer)]
    for got, want in zip(result["probs"], expected):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_the_live_gate_is_built_with_the_settings_the_model_was_trained_with(tiny_fitted_model, tmp_path):
    from ser_live.engine.monitor import Monitor
    from ser_live.errors import FeatureConfigError

    model = EmotionModel(tiny_fitted_model.estimator, tiny_fitted_model.extractor, gate_params={"snr_db": 6.0})
    model.save(tmp_path / "gate.npz")
    loaded = EmotionModel.load(tmp_path / "gate.npz")
    assert loaded.gate_params == {"snr_db": 6.0}
    assert loaded.make_gate().snr_db == Monitor(loaded).analyzer.gate.snr_db == 6.0
    assert Monitor(tiny_fitted_model).analyzer.gate.snr_db != 6.0  # the default it would otherwise have been
    bundle = read_bundle(tmp_path / "gate.npz")
    write_bundle(tmp_path / "other-gate.npz", {**bundle, "gate": {**bundle["gate"], "version": 99}})
    with pytest.raises(FeatureConfigError, match="speech gate version 99.*retrain"):
        EmotionModel.load(tmp_path / "other-gate.npz")
    write_bundle(tmp_path / "no-gate.npz", {k: v for k, v in bundle.items() if k != "gate"})
    with pytest.raises(ModelError, match="does not record its speech gate settings"):
        EmotionModel.load(tmp_path / "no-gate.npz")
    with pytest.raises(ModelError, match="speech gate settings do not fit"):
        EmotionModel(tiny_fitted_model.estimator, tiny_fitted_model.extractor, gate_params={"loudness": 3})


def test_a_models_temperature_tempers_every_probability_it_gives_and_travels_in_its_file(tiny_fitted_model, tmp_path):
    from ser_live.model.emotion_model import apply_temperature
    from ser_live.model.speaker import SpeakerNormalizer

    x = np.random.default_rng(0).normal(size=(20, tiny_fitted_model.extractor.dim))
    plain = tiny_fitted_model.predict_proba(x)
    assert apply_temperature(plain, 1.0) is plain
    softer, sharper = apply_temperature(plain, 3.0), apply_temperature(plain, 0.3)
    np.testing.assert_allclose(softer.sum(axis=1), 1.0, atol=1e-12)
    assert np.array_equal(softer.argmax(axis=1), plain.argmax(axis=1))  # tempering never changes the answer
    assert np.all(softer.max(axis=1) <= plain.max(axis=1) + 1e-12) and np.all(sharper.max(axis=1) >= plain.max(axis=1))
    tempered = EmotionModel(tiny_fitted_model.estimator, tiny_fitted_model.extractor, temperature=3.0)
    tempered.save(tmp_path / "t.npz")
    loaded = EmotionModel.load(tmp_path / "t.npz")
    assert loaded.temperature == 3.0
    np.testing.assert_allclose(loaded.predict_proba(x), softer, atol=1e-9)
    variant = _with_adaptation(tiny_fitted_model)  # the adaptive variant's probabilities are tempered too
    both = EmotionModel(variant.estimator, variant.extractor, adaptation=variant.adaptation, temperature=3.0)
    normalizer = SpeakerNormalizer(variant.adaptation.prior, hop_s=0.5)
    for row in x:
        normalizer.update(row)
    adapted, untempered = (m.predict_proba_adapted(x, normalizer) for m in (both, variant))
    np.testing.assert_allclose(adapted.sum(axis=1), 1.0, atol=1e-9)
    assert adapted.max(axis=1).mean() < untempered.max(axis=1).mean()
    bundle = read_bundle(tmp_path / "t.npz")
    assert EmotionModel.from_bundle({k: v for k, v in bundle.items() if k != "temperature"}).temperature == 1.0
    for bad in (0.0, -1.0, float("nan"), "2", 1e6):
        with pytest.raises(ModelError, match="temperature"):
            EmotionModel.from_bundle({**bundle, "temperature": bad})
