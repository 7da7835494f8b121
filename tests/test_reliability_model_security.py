"""Model files are data: loading one runs no code, so any file loads without a trust list; bad files fail clearly."""

from __future__ import annotations

import pathlib
import pickle
import subprocess
import sys
import zipfile

import joblib
import numpy as np
import pytest
from conftest import REPO, run_cli, tone, write_wav

from ser_live.errors import FeatureConfigError, ModelError
from ser_live.model.emotion_model import SHIPPED_MODELS, EmotionModel
from ser_live.model.file_format import read_bundle, write_bundle


class _RunsCodeWhenLoaded:
    """Unpickling this touches a file: what any pickle can do, with worse payloads."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_a_pickle_given_as_a_model_is_refused_in_one_line_and_never_runs(tmp_path):
    """A pickle renamed to a model file (what a model file was before format 3): refused, its code never run."""
    marker = tmp_path / "code-ran"
    for name, dump in (("hostile.npz", lambda obj, p: joblib.dump(obj, p, compress=3)),
                       ("plain-pickle.npz", lambda obj, p: p.write_bytes(pickle.dumps(obj)))):
        path = tmp_path / name
        dump({"format": "ser-live-model", "estimator": _RunsCodeWhenLoaded(marker)}, path)
        with pytest.raises(ModelError) as info:
            EmotionModel.load(path)
        message = str(info.value)
        assert "\n" not in message and "is a pickle" in message and "no longer loads pickles" in message, message
    assert not marker.exists()
    # The risk is real: unpickling the same file runs its code.
    joblib.load(tmp_path / "hostile.npz")
    assert marker.exists()


def test_an_object_array_inside_a_model_file_is_refused_without_unpickling(tiny_model_path, tmp_path):
    """numpy stores an object array as a pickle: the reader refuses it rather than unpickle it."""
    marker = tmp_path / "code-ran"
    path = tmp_path / "object-array.npz"
    path.write_bytes(tiny_model_path.read_bytes())
    with zipfile.ZipFile(path, "a") as archive, archive.open("evil.npy", "w") as member:
        np.lib.format.write_array(member, np.array([_RunsCodeWhenLoaded(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(ModelError, match="not a ser-live model"):
        EmotionModel.load(path)
    assert not marker.exists()


def test_any_model_file_loads_without_a_flag(tiny_model_path, tmp_path):
    """A model a user trained is used as it is: by the API, and by the command with --model and nothing else."""
    assert EmotionModel.load(tiny_model_path).classes
    wav = write_wav(tmp_path / "speech.wav", tone(150.0, 2.0, vibrato_hz=3.0))
    proc = run_cli("--classify", str(wav), "--model", str(tiny_model_path))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.splitlines()[1].startswith(f"{wav}\t")


def test_no_module_imports_pickle_or_joblib_to_load_and_predict(tiny_model_path):
    code = ("import sys; from ser_live.model.emotion_model import EmotionModel; import numpy as np; "
            f"m = EmotionModel.load({str(tiny_model_path)!r}); m.predict_proba(np.zeros(m.extractor.dim)); "
            "print(sorted(n for n in ('joblib', 'sklearn') if n in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(REPO), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_no_run_time_module_imports_pickle_or_joblib():
    """Only training (which fits scikit-learn estimators in joblib's worker pool) may import them."""
    import ast

    offenders = []
    for path in sorted(p for p in (REPO / "ser_live").rglob("*.py") if "training" not in p.parts):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] in ("pickle", "joblib")]
    assert offenders == []


def _bundle(tiny_model_path):
    return read_bundle(tiny_model_path)


def _damaged(kind: str, tiny_model_path: pathlib.Path, tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / f"{kind}.npz"
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
        write_bundle(path, {"weights": np.arange(3.0)})
    elif kind == "foreign-npz":
        np.savez(path, weights=np.arange(3.0))
    elif kind == "pickle":
        joblib.dump({"weights": [1, 2, 3]}, path)
    elif kind == "old-format":
        write_bundle(path, {**_bundle(tiny_model_path), "format_version": 2})
    elif kind == "format-version":
        write_bundle(path, {**_bundle(tiny_model_path), "format_version": 99})
    elif kind == "feature-version":
        bundle = _bundle(tiny_model_path)
        write_bundle(path, {**bundle, "extractor": {**bundle["extractor"], "version": 99}})
    elif kind == "feature-config":
        bundle = _bundle(tiny_model_path)
        extractor = bundle["extractor"]
        write_bundle(path, {**bundle, "extractor": {**extractor, "config": {**extractor["config"], "n_mfcc": 7}}})
    elif kind == "bad-settings":
        write_bundle(path, {**_bundle(tiny_model_path), "hop_s": "half a second"})
    elif kind == "inference":  # the weights ser-live runs: one layer cut short
        bundle = _bundle(tiny_model_path)
        network = bundle["inference"]["networks"][0]
        network["coefs"][0] = network["coefs"][0][:-1]
        write_bundle(path, bundle)
    elif kind == "weights-swapped":  # an array replaced behind the manifest's back
        with zipfile.ZipFile(tiny_model_path) as source, zipfile.ZipFile(path, "w") as target:
            for info in source.infolist():
                data = source.read(info)
                if "coefs" in info.filename:
                    array = np.lib.format.read_array(__import__("io").BytesIO(data))
                    buffer = __import__("io").BytesIO()
                    np.lib.format.write_array(buffer, array * 1.01)
                    data = buffer.getvalue()
                target.writestr(info, data)
    elif kind == "zip-bomb":
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("manifest.npy", bytes(1 << 30) + b"x")
    elif kind == "folder":
        path.mkdir()
    elif kind != "missing":
        raise AssertionError(kind)
    return path


DAMAGE = [
    "empty", "truncated", "corrupted", "random-bytes", "text", "not-ser-live", "foreign-npz", "pickle", "old-format",
    "format-version", "feature-version", "feature-config", "bad-settings", "inference", "weights-swapped", "zip-bomb",
    "folder", "missing",
]


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_or_foreign_model_gives_a_clear_error(kind, tiny_model_path, tmp_path):
    path = _damaged(kind, tiny_model_path, tmp_path)
    with pytest.raises(ModelError) as info:
        EmotionModel.load(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    if kind in ("feature-version", "feature-config"):
        assert isinstance(info.value, FeatureConfigError) and "feature" in message


@pytest.mark.parametrize("kind", ["pickle", "truncated", "feature-version", "not-ser-live", "inference"])
def test_cli_model_errors_are_one_line_and_exit_1(kind, tiny_model_path, tmp_path):
    wav = write_wav(tmp_path / "speech.wav", tone(150.0, 1.0))
    proc = run_cli("--model", str(_damaged(kind, tiny_model_path, tmp_path)), "--classify", str(wav))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ser-live: error:"), proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("name", list(SHIPPED_MODELS))
def test_shipped_model_loads_by_name(name):
    shipped = REPO / "models" / SHIPPED_MODELS[name]
    assert shipped.is_file(), f"{shipped} is not trained (make train makes it)"
    model = EmotionModel.load(None if name == "default" else name)
    assert model.path == shipped.resolve() or model.path.resolve() == shipped.resolve()


def test_unknown_model_name_lists_the_shipped_ones(tmp_path):
    path = write_wav(tmp_path / "v.wav", tone(150.0, 1.0))
    proc = run_cli("--print", "--input", str(path), "--model", "heavy")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "ser-live: error: model file heavy does not exist; check the path given to --model (or name a shipped "
        "model: default, light)"]
