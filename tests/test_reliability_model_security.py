"""Model files are code: only the shipped model (by SHA-256) loads untrusted; bad files fail clearly."""

from __future__ import annotations

import pathlib

import joblib
import numpy as np
import pytest
from conftest import REPO, run_cli, tone, write_wav

from ser_live import model as model_mod
from ser_live import shipped as shipped_hashes
from ser_live.errors import FeatureConfigError, ModelError, UntrustedModelError
from ser_live.model import DEFAULT_MODEL_NAME, SHIPPED_MODELS, EmotionModel, file_sha256


class _RunsCodeWhenLoaded:
    """Unpickling this touches a file: what any pickle can do, with worse payloads."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


@pytest.fixture
def hostile_model(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "hostile.joblib"
    joblib.dump({"format": "ser-live-model", "estimator": _RunsCodeWhenLoaded(marker)}, path)
    return path, marker


@pytest.fixture
def no_env_trust(monkeypatch):
    monkeypatch.delenv(model_mod.TRUST_ENV_VAR, raising=False)


def test_untrusted_file_is_refused_before_any_of_it_runs(hostile_model, no_env_trust):
    path, marker = hostile_model
    with pytest.raises(UntrustedModelError) as info:
        EmotionModel.load(path)
    message = str(info.value)
    assert "can run code" in message and "--trust-model" in message and model_mod.TRUST_ENV_VAR in message
    assert not marker.exists()
    # The risk is real: trusting the file runs its code (and the bundle is then rejected).
    with pytest.raises(ModelError):
        EmotionModel.load(path, trust=True)
    assert marker.exists()


def test_other_models_need_trust(tiny_model_path, no_env_trust):
    with pytest.raises(UntrustedModelError):
        EmotionModel.load(tiny_model_path)
    assert EmotionModel.load(tiny_model_path, trust=True).classes


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_environment_variable_trusts(tiny_model_path, monkeypatch, value):
    monkeypatch.setenv(model_mod.TRUST_ENV_VAR, value)
    assert EmotionModel.load(tiny_model_path).classes


@pytest.mark.parametrize("value", ["0", "false", "no", ""])
def test_environment_variable_off_does_not_trust(tiny_model_path, monkeypatch, value):
    monkeypatch.setenv(model_mod.TRUST_ENV_VAR, value)
    with pytest.raises(UntrustedModelError):
        EmotionModel.load(tiny_model_path)


def test_unclear_environment_value_is_an_error_not_a_guess(tiny_model_path, monkeypatch):
    monkeypatch.setenv(model_mod.TRUST_ENV_VAR, "maybe")
    with pytest.raises(ModelError, match="not understood"):
        EmotionModel.load(tiny_model_path)


def test_recorded_hash_loads_without_trust(tiny_model_path, monkeypatch, no_env_trust):
    digest = file_sha256(tiny_model_path)
    monkeypatch.setattr(shipped_hashes, "SHIPPED_MODEL_SHA256", (digest.upper(),))
    assert EmotionModel.load(tiny_model_path).classes


def test_modified_shipped_model_is_refused(tiny_model_path, tmp_path, monkeypatch, no_env_trust):
    shipped = tmp_path / DEFAULT_MODEL_NAME
    shipped.write_bytes(tiny_model_path.read_bytes())
    monkeypatch.setattr(model_mod, "_model_dirs", lambda: [tmp_path])
    monkeypatch.setattr(shipped_hashes, "SHIPPED_MODEL_SHA256", (file_sha256(shipped),))
    assert EmotionModel.load().path == shipped
    with shipped.open("ab") as fh:  # one appended byte is enough to break the recorded hash
        fh.write(b"\0")
    with pytest.raises(ModelError, match="has been modified"):
        EmotionModel.load()


def test_shipped_location_without_a_recorded_hash_says_so(tiny_model_path, tmp_path, monkeypatch, no_env_trust):
    (tmp_path / DEFAULT_MODEL_NAME).write_bytes(tiny_model_path.read_bytes())
    monkeypatch.setattr(model_mod, "_model_dirs", lambda: [tmp_path])
    monkeypatch.setattr(shipped_hashes, "SHIPPED_MODEL_SHA256", ())
    with pytest.raises(ModelError, match="no SHA-256 is recorded"):
        EmotionModel.load()


def test_hash_and_unpickle_read_the_same_bytes(tiny_model_path, hostile_model, monkeypatch, no_env_trust):
    """Swapping the file after the hash check must not get the swapped file unpickled."""
    path, marker = hostile_model
    monkeypatch.setattr(shipped_hashes, "SHIPPED_MODEL_SHA256", (file_sha256(tiny_model_path),))
    good, bad = tiny_model_path.read_bytes(), path.read_bytes()
    target = path.parent / "swapped.joblib"
    target.write_bytes(good)
    real_sha256 = model_mod.hashlib.sha256

    def sha256_then_swap(*args):
        digest = real_sha256(*args)
        target.write_bytes(bad)  # an attacker replaces the file right after it was hashed
        return digest

    monkeypatch.setattr(model_mod.hashlib, "sha256", sha256_then_swap)
    assert EmotionModel.load(target).classes
    assert not marker.exists()


def test_pickled_estimator_inside_a_model_is_covered_by_the_hash(tiny_model_path, tmp_path, monkeypatch,
                                                                   no_env_trust):
    """The estimator is unpickled late (format 2), but its bytes are checked with the rest of the file."""
    import pickle

    marker = tmp_path / "code-ran"
    bundle = joblib.load(tiny_model_path)
    bundle["estimator"] = pickle.dumps(_RunsCodeWhenLoaded(marker))
    path = tmp_path / "inner.joblib"
    joblib.dump(bundle, path)
    monkeypatch.setattr(shipped_hashes, "SHIPPED_MODEL_SHA256", (file_sha256(tiny_model_path),))
    with pytest.raises(UntrustedModelError):
        EmotionModel.load(path)
    assert not marker.exists()


def test_late_unpickling_uses_the_checked_bytes_not_the_file(tiny_model_path, hostile_model, tmp_path, monkeypatch,
                                                            no_env_trust):
    """Replacing the file after loading must not get anything else unpickled when the estimator is asked for."""
    hostile_path, marker = hostile_model
    target = tmp_path / "checked.joblib"
    target.write_bytes(tiny_model_path.read_bytes())
    monkeypatch.setattr(shipped_hashes, "SHIPPED_MODEL_SHA256", (file_sha256(target),))
    model = EmotionModel.load(target)
    target.write_bytes(hostile_path.read_bytes())
    assert type(model.estimator).__name__ == "Pipeline"
    assert not marker.exists()


def _bundle(tiny_model_path):
    return joblib.load(tiny_model_path)


def _damaged(kind: str, tiny_model_path: pathlib.Path, tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / f"{kind}.joblib"
    data = tiny_model_path.read_bytes()
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "corrupted":
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 64]) + data[middle + 64 :])
    elif kind == "random-bytes":
        path.write_bytes(np.random.default_rng(0).bytes(5000))
    elif kind == "text":
        path.write_text("this is not a model\n")
    elif kind == "not-ser-live":
        joblib.dump({"weights": [1, 2, 3]}, path)
    elif kind == "bare-estimator":
        joblib.dump(_bundle(tiny_model_path)["estimator"], path)
    elif kind == "no-predict-proba":
        joblib.dump({**_bundle(tiny_model_path), "estimator": "an estimator"}, path)
    elif kind == "format-version":
        joblib.dump({**_bundle(tiny_model_path), "format_version": 99}, path)
    elif kind == "feature-version":
        bundle = _bundle(tiny_model_path)
        joblib.dump({**bundle, "extractor": {**bundle["extractor"], "version": 99}}, path)
    elif kind == "feature-config":
        bundle = _bundle(tiny_model_path)
        extractor = bundle["extractor"]
        joblib.dump({**bundle, "extractor": {**extractor, "config": {**extractor["config"], "n_mfcc": 7}}}, path)
    elif kind == "bad-settings":
        joblib.dump({**_bundle(tiny_model_path), "hop_s": "half a second"}, path)
    elif kind == "inference":  # the weights ser-live runs: one layer cut short
        bundle = _bundle(tiny_model_path)
        network = bundle["inference"]["networks"][0]
        network["coefs"][0] = network["coefs"][0][:-1]
        joblib.dump(bundle, path)
    elif kind == "folder":
        path.mkdir()
    elif kind != "missing":
        raise AssertionError(kind)
    return path


DAMAGE = [
    "empty", "truncated", "corrupted", "random-bytes", "text", "not-ser-live", "bare-estimator", "no-predict-proba",
    "format-version", "feature-version", "feature-config", "bad-settings", "inference", "folder", "missing",
]


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_or_foreign_model_gives_a_clear_error(kind, tiny_model_path, tmp_path):
    path = _damaged(kind, tiny_model_path, tmp_path)
    with pytest.raises(ModelError) as info:
        EmotionModel.load(path, trust=True)  # even a trusted file must fail with a clear message
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    if kind in ("feature-version", "feature-config"):
        assert isinstance(info.value, FeatureConfigError) and "feature" in message


@pytest.mark.parametrize("kind", ["untrusted", "truncated", "feature-version", "not-ser-live", "inference"])
def test_cli_model_errors_are_one_line_and_exit_1(kind, tiny_model_path, tmp_path):
    wav = write_wav(tmp_path / "speech.wav", tone(150.0, 1.0))
    if kind == "untrusted":
        args = ["--model", str(tiny_model_path)]
    else:
        args = ["--model", str(_damaged(kind, tiny_model_path, tmp_path)), "--trust-model"]
    proc = run_cli(*args, "--classify", str(wav), env={model_mod.TRUST_ENV_VAR: ""})
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ser-live: error:"), proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("name", list(SHIPPED_MODELS))
def test_shipped_model_is_recorded_and_loads_untrusted(no_env_trust, name):
    shipped = REPO / "models" / SHIPPED_MODELS[name]
    assert shipped.is_file(), f"{shipped} is not trained (scripts/train.py --ship makes it)"
    assert file_sha256(shipped) in {h.lower() for h in shipped_hashes.SHIPPED_MODEL_SHA256}
    model = EmotionModel.load(None if name == "default" else name)
    assert model.path == shipped.resolve() or model.path.resolve() == shipped.resolve()


def test_unknown_model_name_lists_the_shipped_ones(no_env_trust, tmp_path):
    path = write_wav(tmp_path / "v.wav", tone(150.0, 1.0))
    proc = run_cli("--print", "--input", str(path), "--model", "heavy")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "ser-live: error: model file heavy does not exist; check the path given to --model (or name a shipped "
        "model: default, light)"]
