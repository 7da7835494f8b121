"""Bad and unusual audio files for ``--classify`` and ``--input``: each has a defined, tested behaviour.

Defined behaviours:

============================  =================================================================
file                          what ser-live does
============================  =================================================================
missing, empty, text as .wav, one line naming the file and the problem; ``--input`` exits 1,
truncated header              ``--classify`` prints an ERROR line for it and exits 1
truncated data                the audio that is there is analysed (the header's length is not trusted)
8/24-bit, float PCM           same result as 16-bit
stereo, 6 channels            mixed to mono: same result as the mono file
8 kHz, 96 kHz                 resampled to the model's rate: speech found, durations right
0.1 s clip                    ``--classify``: one zero-padded window, a result or "(no speech)";
                              ``--input``: ends cleanly (no window is due), summary says 0.1 s
digital silence               "(no speech)", every window reported as no speech
NaN / inf samples             treated as drop-outs (silence); the rest is analysed normally
DC offset                     removed by the speech gate: speech found in the same windows
full-scale clipping           still analysed: speech found, finite probabilities
============================  =================================================================
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf
import soxr
from conftest import SAMPLE_RATE_HZ as SR
from conftest import run_cli, tone, write_wav

from ser_live.audio.files import read_audio
from ser_live.cli import main as cli
from ser_live.engine.monitor import classify_signal
from ser_live.errors import AudioFileError


def voiced_with_pauses(seed: int = 0) -> np.ndarray:
    """4 s: quiet room, speech-like voice, a pause, voice again (a noise floor to judge against)."""
    rng = np.random.default_rng(seed)
    quiet = lambda s: rng.normal(0, 0.002, int(s * SR)).astype(np.float32)  # noqa: E731
    y = np.concatenate([quiet(0.5), tone(150.0, 1.5, vibrato_hz=3.0), quiet(0.5), tone(180.0, 1.5, vibrato_hz=3.0)])
    return y.astype(np.float32)


ERRORS = {
    "missing": "no such file",
    "empty": "the file is empty",
    "text": "not a readable audio file",
    "truncated-header": "not a readable audio file",
}


def make_files(tmp_path) -> dict[str, object]:
    """Every case of the table above, written into ``tmp_path``."""
    y = voiced_with_pauses()
    d = tmp_path
    files = {"reference": write_wav(d / "reference.wav", y, subtype="PCM_16")}
    files["missing"] = d / "missing.wav"
    (d / "empty.wav").write_bytes(b"")
    files["empty"] = d / "empty.wav"
    (d / "text.wav").write_text("RIFF? no, just a text file with a .wav name\n" * 20)
    files["text"] = d / "text.wav"
    data = files["reference"].read_bytes()
    (d / "truncated-header.wav").write_bytes(data[:30])
    files["truncated-header"] = d / "truncated-header.wav"
    (d / "truncated-data.wav").write_bytes(data[: 44 + 2 * 2 * SR])  # header claims 4 s, 2 s present
    files["truncated-data"] = d / "truncated-data.wav"
    for subtype in ("PCM_U8", "PCM_24", "FLOAT"):
        files[subtype] = write_wav(d / f"{subtype}.wav", y, subtype=subtype)
    files["stereo"] = write_wav(d / "stereo.wav", np.stack([y, y], axis=1))
    files["6ch"] = write_wav(d / "6ch.wav", np.tile(y[:, None], (1, 6)))
    for rate in (8000, 96000):
        files[f"{rate}Hz"] = write_wav(d / f"{rate}Hz.wav", soxr.resample(y, SR, rate), rate)
    files["short"] = write_wav(d / "short.wav", tone(150.0, 0.1))
    files["silence"] = write_wav(d / "silence.wav", np.zeros(3 * SR, np.float32))
    bad = y.copy()
    bad[int(0.2 * SR) : int(0.3 * SR)] = np.nan
    bad[int(2.1 * SR) : int(2.2 * SR)] = np.inf
    bad[int(2.3 * SR)] = -np.inf
    files["nan-inf"] = write_wav(d / "nan-inf.wav", bad, subtype="FLOAT")
    files["dc"] = write_wav(d / "dc.wav", 0.6 * y + 0.35)
    files["clipped"] = write_wav(d / "clipped.wav", np.clip(8.0 * y, -1.0, 1.0))
    return files


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return make_files(tmp_path_factory.mktemp("bad-audio"))


@pytest.fixture(scope="module")
def classified(files, tiny_model_path):
    """One ``--classify --json`` run over every file, as a user would run it."""
    paths = [str(p) for p in files.values()]
    proc = run_cli("--model", str(tiny_model_path), "--classify", *paths, "--json", "--workers", "1")
    assert "Traceback" not in proc.stderr
    by_name = {}
    for line in proc.stdout.splitlines():
        result = json.loads(line)
        name = next(k for k, p in files.items() if str(p) == result["path"])
        by_name[name] = result
    return proc, by_name


def test_classify_reports_every_file_and_fails_only_for_unreadable_ones(files, classified):
    proc, by_name = classified
    assert set(by_name) == set(files)  # one line per file, in spite of the bad ones
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith(f"ser-live: classified {len(files)} files (")
    assert lines[-1].endswith(f"; {len(ERRORS)} of {len(files)} files could not be classified")
    # Files that hold less than their header promises are classified, and said to be short.
    assert all("is shorter than its header says" in line for line in lines[:-1])
    for name, result in by_name.items():
        if name in ERRORS:
            assert ERRORS[name] in result["error"] and str(files[name]) in result["error"]
        else:
            assert result["error"] is None, (name, result)
            if result["probs"] is not None:
                assert all(math.isfinite(p) for p in result["probs"].values())
                assert sum(result["probs"].values()) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("name, prob_atol", [("PCM_24", 0.02), ("FLOAT", 0.02), ("stereo", 1e-3), ("6ch", 1e-3)])
def test_sample_formats_and_channel_counts_give_the_same_result(classified, name, prob_atol):
    _, by_name = classified
    ref, got = by_name["reference"], by_name[name]
    assert ref["emotion"] is not None
    assert got["emotion"] == ref["emotion"]
    assert got["duration_s"] == pytest.approx(ref["duration_s"], abs=1e-3)
    np.testing.assert_allclose(list(got["probs"].values()), list(ref["probs"].values()), atol=prob_atol)


def test_8_bit_file_reads_as_the_same_audio(classified, files):
    # 8-bit audio carries quantisation noise at about -48 dBFS, which the speech gate may hear as a
    # louder room: the samples must match within one 8-bit step and the file must be classified.
    ref = read_audio(files["reference"], sample_rate_hz=SR)
    got = read_audio(files["PCM_U8"], sample_rate_hz=SR)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=1.0 / 128)
    _, by_name = classified
    assert by_name["PCM_U8"]["error"] is None and by_name["PCM_U8"]["duration_s"] == pytest.approx(4.0, abs=1e-3)


@pytest.mark.parametrize("name", ["8000Hz", "96000Hz"])
def test_other_sample_rates_are_resampled(classified, files, name):
    _, by_name = classified
    assert by_name[name]["emotion"] is not None
    assert by_name[name]["duration_s"] == pytest.approx(by_name["reference"]["duration_s"], abs=0.01)
    y = read_audio(files[name], sample_rate_hz=SR)
    assert y.dtype == np.float32 and y.shape[0] == pytest.approx(4 * SR, abs=4)


def test_truncated_data_is_analysed_as_far_as_it_goes(classified):
    _, by_name = classified
    assert by_name["truncated-data"]["duration_s"] == pytest.approx(2.0, abs=0.01)


def test_short_clip_gives_a_result_or_no_speech(classified, files, tiny_model):
    _, by_name = classified
    result = by_name["short"]
    assert result["error"] is None and result["duration_s"] == pytest.approx(0.1, abs=1e-3)
    if result["emotion"] is not None:
        assert result["emotion"] == max(result["probs"], key=result["probs"].get)
    clip = classify_signal(read_audio(files["short"], sample_rate_hz=SR), sample_rate_hz=SR, model=tiny_model)
    assert clip.n_windows == 1  # shorter than a hop: analysed as one zero-padded window


def test_silence_is_no_speech(classified):
    _, by_name = classified
    assert by_name["silence"]["emotion"] is None and by_name["silence"]["probs"] is None


def test_nan_and_inf_samples_are_dropouts(files, classified):
    y = read_audio(files["nan-inf"], sample_rate_hz=SR)
    assert np.all(np.isfinite(y)) and np.all(np.abs(y) <= 1.0)
    assert not np.any(y[int(0.2 * SR) : int(0.3 * SR)])  # the NaN stretch reads as silence
    _, by_name = classified
    assert by_name["nan-inf"]["emotion"] is not None


def test_clipped_file_is_still_analysed(classified):
    _, by_name = classified
    assert by_name["clipped"]["emotion"] is not None


def _run_input(capsys, model_path, path, *extra):
    code = cli.main(["--model", str(model_path), "--input", str(path), "--json", *extra])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


@pytest.mark.parametrize("name", list(ERRORS))
def test_input_unreadable_file_is_one_line_and_exit_1(files, tiny_model_path, capsys, name):
    code, lines, err = _run_input(capsys, tiny_model_path, files[name])
    assert code == 1 and lines == []
    assert err.count("\n") == 1 and err.startswith("ser-live: error: ") and ERRORS[name] in err


def test_input_short_clip_ends_cleanly(files, tiny_model_path, capsys):
    code, lines, err = _run_input(capsys, tiny_model_path, files["short"])
    # No window is due before the first hop, but the file's end is: its one result, as --classify gives.
    assert code == 0 and [line["t"] for line in lines] == [pytest.approx(0.1)]
    assert "ser-live: summary: heard 0.1 s" in err and "error" not in err


def test_input_silence_is_no_speech_in_every_window(files, tiny_model_path, capsys):
    code, lines, _ = _run_input(capsys, tiny_model_path, files["silence"])
    assert code == 0 and len(lines) == 6
    assert not any(line["speech"] for line in lines)


def test_input_dc_offset_finds_speech_in_the_same_windows(files, tiny_model_path, capsys):
    _, ref, _ = _run_input(capsys, tiny_model_path, files["reference"])
    code, got, _ = _run_input(capsys, tiny_model_path, files["dc"])
    assert code == 0 and any(line["speech"] for line in ref)
    assert [line["speech"] for line in got] == [line["speech"] for line in ref]


@pytest.mark.parametrize("name", ["nan-inf", "clipped", "PCM_U8", "6ch", "96000Hz", "truncated-data"])
def test_input_odd_files_stream_with_finite_output(files, tiny_model_path, capsys, name):
    code, lines, err = _run_input(capsys, tiny_model_path, files[name])
    assert code == 0 and lines and "ser-live: summary: heard" in err and "error" not in err
    for line in lines:
        assert line["level_db"] is None or math.isfinite(line["level_db"])
        assert all(math.isfinite(p) for p in (line.get("probs") or {}).values())


def test_read_audio_errors_name_the_file(files):
    for name, reason in ERRORS.items():
        with pytest.raises(AudioFileError, match=reason) as info:
            read_audio(files[name], sample_rate_hz=SR)
        assert str(files[name]) in str(info.value)


def test_a_file_damaged_mid_stream_is_reported_not_raised_raw(tmp_path):
    # FLAC with a corrupted middle: libsndfile fails part-way through the read.
    y = voiced_with_pauses()
    path = tmp_path / "damaged.flac"
    sf.write(str(path), y, SR, format="FLAC")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 2000] = bytes(2000)
    path.write_bytes(bytes(data))
    try:
        got = read_audio(path, sample_rate_hz=SR)
    except AudioFileError as exc:
        assert str(path) in str(exc)
    else:  # libsndfile may resynchronise and carry on: then the audio must still be clean
        assert np.all(np.isfinite(got)) and np.all(np.abs(got) <= 1.0)


@pytest.mark.slow
def test_three_hour_file_streams_with_flat_memory(tmp_path, tiny_model_path):
    import signal
    import subprocess
    import sys

    import psutil
    from conftest import REPO

    path = tmp_path / "three-hours.wav"
    block = (voiced_with_pauses() * 32767).astype(np.int16)  # 4 s, written 2700 times without holding 3 h
    with sf.SoundFile(str(path), "w", samplerate=SR, channels=1, subtype="PCM_16") as f:
        for _ in range(3 * 3600 // 4):
            f.write(block)
    file_bytes = path.stat().st_size
    assert sf.info(str(path)).duration == pytest.approx(3 * 3600)

    proc = subprocess.Popen(
        [sys.executable, "-m", "ser_live", "--input", str(path), "--json", "--model", str(tiny_model_path)],
        cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    child = psutil.Process(proc.pid)
    rss_mb = []
    try:
        for n, line in enumerate(proc.stdout, start=1):
            assert json.loads(line)["t"] == pytest.approx(0.5 * n)
            if n % 20 == 0:
                rss_mb.append(child.memory_info().rss / 2**20)
            if n == 300:  # 150 s of audio in: enough to see whether memory follows the file
                break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    print(f"3-hour file: {file_bytes / 2**20:.0f} MB; child RSS per 10 s of audio (MB): {[round(m) for m in rss_mb]}")
    assert proc.returncode == 0 and "Traceback" not in err and "summary: heard" in err
    # Reading the whole file would need at least twice its size (float32) before the first window.
    assert max(rss_mb) * 2**20 < file_bytes
    assert max(rss_mb) - rss_mb[0] <= 10.0, rss_mb


def test_a_folder_of_opus_files_is_classified_and_a_damaged_one_named(tmp_path, tiny_model_path):
    """Ogg Opus (as nEMO and TESS come, and many phones record) is audio everywhere: a --classify folder, --input."""
    folder = tmp_path / "opus"
    folder.mkdir()
    y = voiced_with_pauses()
    for i in range(3):
        sf.write(folder / f"clip{i}.opus", np.roll(y, i * SR // 4), SR, format="OGG", subtype="OPUS")
    data = (folder / "clip0.opus").read_bytes()
    (folder / "damaged.opus").write_bytes(data[:200])  # the headers and a sliver: not decodable audio
    proc = run_cli("--model", str(tiny_model_path), "--classify", str(folder), "--json", "--workers", "1")
    assert "Traceback" not in proc.stderr and proc.returncode == 1  # one file could not be classified
    results = {json.loads(line)["path"].rsplit("/", 1)[-1]: json.loads(line) for line in proc.stdout.splitlines()}
    assert set(results) == {"clip0.opus", "clip1.opus", "clip2.opus", "damaged.opus"}
    for name in ("clip0.opus", "clip1.opus", "clip2.opus"):
        assert results[name]["error"] is None and results[name]["emotion"] is not None, results[name]
        assert results[name]["duration_s"] == pytest.approx(y.size / SR, abs=0.05)
    assert str(folder / "damaged.opus") in results["damaged.opus"]["error"]
    live = run_cli("--model", str(tiny_model_path), "--print", "--input", str(folder / "clip1.opus"))
    assert live.returncode == 0 and "summary: heard 4.0 s" in live.stdout, live.stderr
