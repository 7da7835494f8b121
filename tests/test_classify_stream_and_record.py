"""--classify streams files (flat memory, same result as the whole array); --record never clobbers or dies raw."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO, run_cli, tone, write_wav

from ser_live.pipeline import classify_file, classify_signal

SR = 16000


def _voice_with_pauses(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    parts = []
    while sum(p.size for p in parts) < seconds * SR:
        parts.append(tone(float(rng.uniform(110, 240)), float(rng.uniform(0.8, 1.6)), vibrato_hz=3.0, seed=len(parts)))
        parts.append(np.zeros(int(rng.uniform(0.3, 0.9) * SR), np.float32))
    return np.concatenate(parts)[: int(seconds * SR)]


@pytest.mark.parametrize("seconds", [0.1, 0.5, 3.3, 27.25])
def test_classify_file_equals_classifying_the_whole_array(tmp_path, tiny_model, seconds):
    y = _voice_with_pauses(seconds)
    path = write_wav(tmp_path / "v.wav", y, subtype="FLOAT")
    streamed = classify_file(path, model=tiny_model, block_s=1.3)  # blocks that straddle hops
    whole = classify_signal(y, sample_rate_hz=SR, model=tiny_model)
    assert streamed.n_windows == whole.n_windows and streamed.n_speech_windows == whole.n_speech_windows
    assert streamed.emotion == whole.emotion
    if whole.probs is not None:
        np.testing.assert_allclose(list(streamed.probs.values()), list(whole.probs.values()), atol=1e-6)
    assert streamed.duration_s == pytest.approx(seconds, abs=1 / SR)


@pytest.mark.slow
def test_classify_streams_a_two_hour_file_with_flat_memory(tmp_path, tiny_model_path):
    import psutil

    path = tmp_path / "two-hours.wav"
    block = (_voice_with_pauses(4.0) * 32767).astype(np.int16)
    with sf.SoundFile(str(path), "w", samplerate=SR, channels=1, subtype="PCM_16") as f:
        for _ in range(2 * 3600 // 4):
            f.write(block)
    file_bytes = path.stat().st_size
    proc = subprocess.Popen(
        [sys.executable, "-m", "ser_live", "--classify", str(path), "--workers", "1", "--model", str(tiny_model_path),
         "--trust-model"], cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    child = psutil.Process(proc.pid)
    peak = 0
    try:
        deadline = time.monotonic() + 20.0  # reading the whole file would happen in the first seconds
        while time.monotonic() < deadline and proc.poll() is None:
            peak = max(peak, child.memory_info().rss)
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read().decode()
    finally:
        proc.kill()
        proc.wait()
    # Whole-file reading holds the samples as float32: twice the 16-bit file's size.
    assert peak < file_bytes, f"peak RSS {peak / 2**20:.0f} MB for a {file_bytes / 2**20:.0f} MB file"


def _voice_file(tmp_path):
    return write_wav(tmp_path / "voice.wav", _voice_with_pauses(4.0))


def test_record_refuses_to_overwrite_an_earlier_session(tmp_path, tiny_model_path):
    record = tmp_path / "session.csv"
    record.write_text("t_s,speech\n1.0,1\n")
    proc = run_cli("--print", "--input", str(_voice_file(tmp_path)), "--record", str(record),
                   "--model", str(tiny_model_path), "--trust-model")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"ser-live: error: session file {record} already exists; choose another name (nothing was overwritten)"
    )
    assert record.read_text() == "t_s,speech\n1.0,1\n"
    assert "Traceback" not in proc.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/dev/full is Linux's always-full device")
def test_record_on_a_full_disk_is_one_clear_line(tmp_path, tiny_model_path):
    proc = run_cli("--print", "--json", "--input", str(_voice_file(tmp_path)), "--record", "/dev/full",
                   "--model", str(tiny_model_path), "--trust-model")
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert errors == ["ser-live: error: cannot write session file /dev/full: No space left on device"]
    assert "Traceback" not in proc.stderr
    # What was printed before the failure is intact JSON.
    for line in proc.stdout.splitlines():
        json.loads(line)
