"""Random input: random bytes as audio files and random sample arrays never give a traceback, hang or crash."""

from __future__ import annotations

import math
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ser_live.audio.files import read_audio
from ser_live.engine.monitor import Monitor, classify_signal
from ser_live.errors import AudioFileError

SR = 16000
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


def wav_header(*, fmt: int, channels: int, rate: int, bits: int, data_bytes: int) -> bytes:
    """A RIFF/WAVE header whose fields may be nonsense (what a damaged or hostile file holds)."""
    block_align = channels * max(bits, 8) // 8 & 0xFFFF
    fmt_chunk = struct.pack("<HHIIHH", fmt, channels, rate, rate * block_align & 0xFFFFFFFF, block_align, bits)
    riff_size = (36 + data_bytes) & 0xFFFFFFFF
    return (b"RIFF" + struct.pack("<I", riff_size) + b"WAVEfmt " + struct.pack("<I", 16) + fmt_chunk
            + b"data" + struct.pack("<I", data_bytes & 0xFFFFFFFF))


headers = st.builds(
    wav_header,
    fmt=st.sampled_from([1, 3, 6, 7, 0xFFFE, 0, 2]),
    channels=st.integers(0, 40),
    rate=st.sampled_from([0, 1, 7, 8000, 16000, 44100, 96000, 384000, 2**31 - 1]),
    bits=st.sampled_from([0, 1, 8, 12, 16, 24, 32, 64]),
    data_bytes=st.integers(0, 2**32 - 1),
)
file_bytes = st.one_of(
    st.binary(max_size=2048),
    st.tuples(headers, st.binary(max_size=8192)).map(lambda t: t[0] + t[1]),
    st.tuples(st.sampled_from([b"fLaC", b"OggS", b"FORM", b"ID3", b".snd", b"RIFF"]), st.binary(max_size=2048)).map(
        lambda t: t[0] + t[1]
    ),
)


@pytest.mark.timeout(300)
@FUZZ
@given(data=file_bytes)
def test_random_bytes_as_a_file_read_cleanly_or_fail_clearly(data):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzz.wav"
        path.write_bytes(data)
        try:
            y = read_audio(path, sample_rate_hz=SR)
        except AudioFileError as exc:
            assert str(path) in str(exc) and "\n" not in str(exc)
            return
    assert y.dtype == np.float32 and y.ndim == 1
    assert np.all(np.isfinite(y))


def _arrays():
    """Noise plus NaN/inf/huge values at random places, in odd lengths and several dtypes and shapes."""
    return st.builds(
        _make_array,
        st.integers(0, 2**32 - 1),
        st.integers(0, 40001),
        st.sampled_from(["float32", "float64", "int16", "uint8", "stereo", "6ch"]),
        st.sampled_from(["none", "nan", "inf", "huge", "all-nan", "loud"]),
    )


def _make_array(seed: int, n: int, kind: str, poison: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = rng.normal(0, 0.2, n) * np.sin(np.arange(n) * 2 * np.pi * 150 / SR)
    if poison != "none" and n:
        idx = rng.integers(0, n, size=max(1, n // 50))
        y[idx] = {"nan": np.nan, "inf": np.inf, "huge": 1e300, "all-nan": np.nan, "loud": 50.0}[poison]
        if poison == "all-nan":
            y[:] = np.nan
    if kind == "int16":
        return (np.nan_to_num(np.clip(y, -1, 1)) * 32767).astype(np.int16)
    if kind == "uint8":
        return (np.nan_to_num(np.clip(y, -1, 1)) * 127 + 128).astype(np.uint8)
    if kind in ("stereo", "6ch"):
        return np.tile(y[:, None], (1, 2 if kind == "stereo" else 6))
    with np.errstate(over="ignore"):  # 1e300 becomes inf in float32: one more poison to survive
        return y.astype(kind)


def _assert_clean(prediction_like) -> None:
    probs = prediction_like.probs
    if probs is None:
        assert prediction_like.emotion is None and prediction_like.confidence == 0.0
    else:
        assert all(math.isfinite(p) for p in probs.values()) and sum(probs.values()) == pytest.approx(1.0, abs=1e-6)
        assert prediction_like.emotion == max(probs, key=probs.get)


@pytest.mark.timeout(300)
@FUZZ
@given(y=_arrays(), rate=st.sampled_from([8000, 16000, 22050, 44100, 96000]))
def test_random_arrays_classify(tiny_model, y, rate):
    result = classify_signal(y, sample_rate_hz=rate, model=tiny_model)
    _assert_clean(result)
    assert result.n_windows >= 1 and 0 <= result.n_speech_windows <= result.n_windows


@pytest.mark.timeout(300)
@FUZZ
@given(y=_arrays(), cuts=st.lists(st.integers(0, 40001), max_size=6))
def test_random_arrays_fed_in_random_pieces(tiny_model, y, cuts):
    monitor = Monitor(tiny_model)
    mono = y if y.ndim == 1 else y[:, 0]
    predictions = []
    for piece in np.split(mono, sorted(c for c in cuts if c <= mono.shape[0])):
        predictions += monitor.feed(piece)
    assert len(predictions) == mono.shape[0] // monitor.hop_samples
    for p in predictions:
        _assert_clean(p)
        assert math.isfinite(p.level_db) and p.level_db <= 0.1  # nothing louder than full scale
