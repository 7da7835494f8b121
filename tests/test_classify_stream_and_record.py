"""--classify streams files (flat memory, same result as the whole array); --record never clobbers or dies raw."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO, run_cli, voice_with_pauses, write_wav

from ser_live.engine.monitor import classify_file, classify_signal

SR = 16000


@pytest.mark.parametrize("seconds", [0.1, 0.5, 3.3, 27.25])
def test_classify_file_equals_classifying_the_whole_array(tmp_path, tiny_model, seconds):
    y = voice_with_pauses(seconds)
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
    block = (voice_with_pauses(4.0) * 32767).astype(np.int16)
    with sf.SoundFile(str(path), "w", samplerate=SR, channels=1, subtype="PCM_16") as f:
        for _ in range(2 * 3600 // 4):
            f.write(block)
    file_bytes = path.stat().st_size
    proc = subprocess.Popen(
        [sys.executable, "-m", "ser_live", "--classify", str(path), "--workers", "1", "--model", str(tiny_model_path)],
        cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    child = psutil.Process(proc.pid)
    peak = samples = 0
    try:
        # Watch the whole run (it may well finish in under 20 s): reading the file whole would show in any
        # sample, since the samples as float32 alone would take twice the file's size.
        deadline = time.monotonic() + 300.0
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                peak = max(peak, child.memory_info().rss)
                samples += 1
            except psutil.NoSuchProcess:
                break
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    assert samples >= 20, "the run ended before its memory could be watched"
    # Whole-file reading holds the samples as float32: twice the 16-bit file's size.
    assert peak < file_bytes, f"peak RSS {peak / 2**20:.0f} MB for a {file_bytes / 2**20:.0f} MB file"


def _voice_file(tmp_path):
    return write_wav(tmp_path / "voice.wav", voice_with_pauses(4.0))


def test_record_refuses_to_overwrite_an_earlier_session(tmp_path, tiny_model_path):
    record = tmp_path / "session.csv"
    record.write_text("t_s,speech\n1.0,1\n")
    proc = run_cli("--print", "--input", str(_voice_file(tmp_path)), "--record", str(record),
                   "--model", str(tiny_model_path))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"ser-live: error: session file {record} already exists; choose another name (nothing was overwritten)"
    )
    assert record.read_text() == "t_s,speech\n1.0,1\n"
    assert "Traceback" not in proc.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/dev/full is Linux's always-full device")
def test_record_on_a_full_disk_is_one_clear_line(tmp_path, tiny_model_path):
    proc = run_cli("--print", "--json", "--input", str(_voice_file(tmp_path)), "--record", "/dev/full",
                   "--model", str(tiny_model_path))
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert errors == ["ser-live: error: cannot write session file /dev/full: No space left on device"]
    assert "Traceback" not in proc.stderr
    # What was printed before the failure is intact JSON.
    for line in proc.stdout.splitlines():
        json.loads(line)
