"""The compiled forward pass: same probabilities as scikit-learn, format-2 files, no scikit-learn at run time."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pytest
from conftest import REPO

from ser_live import inference as inference_mod
from ser_live import model as model_mod
from ser_live.adapt import SpeakerNormalizer, SpeakerPrior
from ser_live.errors import ModelError
from ser_live.features import FeatureConfig, feature_names
from ser_live.model import EMOTIONS, MODEL_FORMAT_VERSION, EmotionModel, ModelAdaptation
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


def test_other_estimators_predict_themselves_and_round_trip(tmp_path):
    """An estimator of another shape is not compiled; its file loads it eagerly and it still predicts."""
    estimator = _fit(_scaled(_mlp(), _NegateTransformer()))
    model = EmotionModel(estimator, FeatureConfig())
    assert not _compiled(model)
    model.save(tmp_path / "custom.joblib")
    assert joblib.load(tmp_path / "custom.joblib")["inference"] is None
    loaded = EmotionModel.load(tmp_path / "custom.joblib", trust=True)
    x, _ = _data(EMOTIONS, seed=4)
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))


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
        model.save(tmp_path / "m.joblib")
    assert not (tmp_path / "m.joblib").exists()


# -- the model file -----------------------------------------------------------------------------------
def test_format_2_file_round_trips(tiny_model, tmp_path):
    bundle = joblib.load(tiny_model.path)
    assert bundle["format_version"] == MODEL_FORMAT_VERSION == 2
    assert isinstance(bundle["estimator"], bytes)
    network = bundle["inference"]["networks"][0]
    assert all(type(a) is np.ndarray for a in network["coefs"] + network["intercepts"])
    x, _ = _data(EMOTIONS, seed=8)
    reference = tiny_model.estimator.predict_proba(x)[:, tiny_model._order]
    np.testing.assert_allclose(tiny_model.predict_proba(x), reference, rtol=0, atol=1e-12)
    # The estimator comes back whole (its weights are the inference entry's arrays, stored once)...
    again = tmp_path / "again.joblib"
    tiny_model.save(again)
    loaded = EmotionModel.load(again, trust=True)
    np.testing.assert_array_equal(loaded.predict_proba(x), tiny_model.predict_proba(x))
    np.testing.assert_array_equal(loaded.estimator.predict_proba(x), tiny_model.estimator.predict_proba(x))
    assert (loaded.classes, loaded.feature_config, loaded.metadata) == (tiny_model.classes, tiny_model.feature_config,
                                                                       tiny_model.metadata)
    # ...and the file is not twice the size of one that stores the pipeline alone.
    pipeline_only = tmp_path / "pipeline.joblib"
    joblib.dump(tiny_model.estimator, pipeline_only, compress=3)
    assert again.stat().st_size < 1.3 * pipeline_only.stat().st_size


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
    return EmotionModel(tiny_model.estimator, tiny_model.feature_config, adaptation=adaptation,
                        metadata={"note": "test"})


def test_format_1_file_still_loads(tiny_model, tmp_path):
    model = _with_adaptation(tiny_model)
    joblib.dump(_format_1(model), tmp_path / "v1.joblib")
    loaded = EmotionModel.load(tmp_path / "v1.joblib", trust=True)
    assert _compiled(loaded) and loaded.adaptation._classifier.forward is not None
    x, _ = _data(EMOTIONS, seed=3)
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x), rtol=0, atol=1e-12)
    normalizer = SpeakerNormalizer(model.adaptation.prior, hop_s=0.5)
    for row in x[:10]:
        normalizer.update(row)
    np.testing.assert_allclose(loaded.predict_proba_adapted(x, normalizer), model.predict_proba_adapted(x, normalizer),
                               rtol=0, atol=1e-12)
    loaded.save(tmp_path / "v2.joblib")  # re-saving converts it
    assert joblib.load(tmp_path / "v2.joblib")["format_version"] == 2


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
    elif kind == "estimator-not-bytes":
        bundle["estimator"] = {"weights": 1}
    else:
        raise AssertionError(kind)
    return bundle


DAMAGE = ["weights-shape", "weights-nan", "bias-missing", "scaler-length", "activation", "classes", "weights-text",
          "no-networks", "missing-key", "not-a-dict", "network-not-a-dict", "estimator-not-bytes"]


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_inference_entry_is_refused(kind, tiny_model_path, tmp_path):
    path = tmp_path / f"{kind}.joblib"
    joblib.dump(_damage(joblib.load(tiny_model_path), kind), path)
    with pytest.raises(ModelError) as info:
        EmotionModel.load(path, trust=True)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_damaged_adaptive_inference_entry_is_refused(tiny_model, tmp_path):
    bundle = _with_adaptation(tiny_model).to_bundle()
    bundle["adaptation"]["inference"]["networks"][1]["coefs"][0] = np.zeros((3, 3))
    joblib.dump(bundle, tmp_path / "bad.joblib")
    with pytest.raises(ModelError, match="malformed speaker-adaptive variant.*compiled network is damaged"):
        EmotionModel.load(tmp_path / "bad.joblib", trust=True)


def test_damaged_pickled_estimator_fails_clearly_when_first_needed(tiny_model_path, tmp_path):
    bundle = joblib.load(tiny_model_path)
    bundle["estimator"] = bundle["estimator"][: len(bundle["estimator"]) // 2]
    joblib.dump(bundle, tmp_path / "half.joblib")
    model = EmotionModel.load(tmp_path / "half.joblib", trust=True)  # predictions do not need it
    assert model.predict_proba(np.zeros(N_FEATURES)).shape == (len(model.classes),)
    with pytest.raises(ModelError, match="estimator cannot be unpickled"):
        model.estimator  # noqa: B018


_NO_SKLEARN_SCRIPT = """
import json, sys
import numpy as np
from ser_live import model as model_mod, shipped
from ser_live.adapt import SpeakerNormalizer

model_dir, digest = sys.argv[1], sys.argv[2]
model_mod._model_dirs = lambda: [model_mod.Path(model_dir)]
shipped.SHIPPED_MODEL_SHA256 = (digest,)
model = model_mod.EmotionModel.load()  # the default path, trusted by its recorded hash
x = np.random.default_rng(0).normal(0, 1, (12, len(model.adaptation.prior.mean)))
normalizer = SpeakerNormalizer(model.adaptation.prior, hop_s=model.hop_s)
for row in x:
    normalizer.update(row)
probs = [model.predict_proba(x[0]).tolist(), model.predict_proba(x).tolist(),
         model.predict_proba_adapted(x, normalizer).tolist()]
loaded = sorted(m for m in sys.modules if m == "sklearn" or m.startswith("sklearn."))
estimator = type(model.estimator).__name__  # asking for the estimator unpickles it
print(json.dumps({"sklearn_before": loaded, "sklearn_after": "sklearn" in sys.modules, "estimator": estimator,
                  "probs": probs}))
"""


def test_loading_and_predicting_do_not_import_scikit_learn(tiny_model, tmp_path):
    model = _with_adaptation(tiny_model)
    digest = model.save(tmp_path / model_mod.DEFAULT_MODEL_NAME)
    proc = subprocess.run([sys.executable, "-c", _NO_SKLEARN_SCRIPT, str(tmp_path), digest], capture_output=True,
                          text=True, cwd=str(REPO), env={**model_mod.os.environ, model_mod.TRUST_ENV_VAR: "0"},
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["sklearn_before"] == []
    assert result["sklearn_after"] and result["estimator"] == "Pipeline"
    x = np.random.default_rng(0).normal(0, 1, (12, N_FEATURES))
    normalizer = SpeakerNormalizer(model.adaptation.prior, hop_s=model.hop_s)
    for row in x:
        normalizer.update(row)
    expected = [model.predict_proba(x[0]), model.predict_proba(x), model.predict_proba_adapted(x, normalizer)]
    for got, want in zip(result["probs"], expected):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
