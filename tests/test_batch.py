"""Batch scoring at scale: results that survive (--out, resume), progress on a terminal, the Dask engine."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, child_pids, process_alive, run_cli, tone, write_wav

from ser_live.engine.batch import FileResult, ResultLedger, classify_batch, iter_audio_files
from ser_live.errors import BatchError

SR = 16000


def model_args(path: Path) -> list[str]:
    return ["--model", str(path)]


def make_clips(folder: Path, n: int, *, seconds: float = 2.0) -> list[Path]:
    """``n`` voice-like clips of different pitches (their results differ), in nested folders."""
    paths = []
    for i in range(n):
        path = folder / f"part{i % 3}" / f"clip{i:04d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        paths.append(write_wav(path, tone(110.0 + 7.0 * i, seconds, vibrato_hz=1.0 + i % 5, seed=i)))
    return paths


def linked_clips(folder: Path, n: int, *, seconds: float = 3.0) -> Path:
    """``n`` hard links to one clip: a big archive in no time and no space."""
    folder.mkdir(parents=True, exist_ok=True)
    first = write_wav(folder / "clip00000.wav", tone(150.0, seconds, vibrato_hz=3.0))
    for i in range(1, n):
        os.link(first, folder / f"clip{i:05d}.wav")
    return folder


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _check_row(row: dict[str, str], classes: tuple[str, ...]) -> None:
    """A CSV row of a classified file: probabilities that sum to one, the file's size and modification time."""
    probs = [float(row[f"p_{c}"]) for c in classes]
    assert sum(probs) == pytest.approx(1.0, abs=1e-3) and row["emotion"] in classes
    info = os.stat(row["path"])
    assert (int(row["size_bytes"]), int(row["mtime_ns"])) == (info.st_size, info.st_mtime_ns)


# -- --out and resuming ----------------------------------------------------------------------------------------
def test_out_writes_every_file_once_and_a_rerun_classifies_nothing_again(tmp_path, tiny_model_path, tiny_model):
    clips = make_clips(tmp_path / "clips", 6)
    (tmp_path / "clips" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    out = tmp_path / "results.csv"
    first = run_cli("--classify", str(tmp_path / "clips"), "--out", str(out), "--workers", "2",
                    *model_args(tiny_model_path))
    assert first.returncode == 1 and first.stdout == ""  # the results are in the file
    assert "classified 7 files" in first.stderr and "1 of 7 files could not be classified" in first.stderr
    rows = csv_rows(out)
    assert sorted(r["path"] for r in rows) == sorted([*map(str, clips), str(tmp_path / "clips" / "broken.wav")])
    good = [r for r in rows if not r["error"]]
    assert len(good) == 6
    for row in good:
        _check_row(row, tiny_model.classes)
    again = run_cli("--classify", str(tmp_path / "clips"), "--out", str(out), *model_args(tiny_model_path))
    assert "classified 1 files" in again.stderr and "6 already in" in again.stderr  # only the failure again
    assert csv_rows(out)[: len(good)] == good and len(csv_rows(out)) == 7  # written once each, failure replaced


def test_resume_takes_changed_files_again_and_drops_a_row_cut_short(tmp_path, tiny_model_path):
    clips = make_clips(tmp_path / "clips", 4)
    out = tmp_path / "results.jsonl"
    args = ["--classify", str(tmp_path / "clips"), "--out", str(out), *model_args(tiny_model_path)]
    assert run_cli(*args).returncode == 0
    lines = out.read_text().splitlines(keepends=True)
    assert len(lines) == 4 and all(json.loads(line)["error"] is None for line in lines)
    out.write_text("".join(lines[:3]) + lines[3][:25])  # a crash in the middle of the last row
    write_wav(clips[0], tone(300.0, 1.0))  # and the first file changed since
    resumed = run_cli(*args)
    assert resumed.returncode == 0 and "classified 2 files" in resumed.stderr and "2 already in" in resumed.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["path"] for r in rows) == sorted(map(str, clips))
    changed = next(r for r in rows if r["path"] == str(clips[0]))
    assert changed["duration_s"] == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize(("content", "fragment"), [
    ("name,score\nalice,3\n", "is not a results file of this model's --classify"),
    ('{"path": "a.wav", "x": 1}\n', "line 1 is not a ser-live --classify result"),
])
def test_a_file_of_another_program_is_refused_and_left_alone(tmp_path, tiny_model_path, content, fragment):
    clip = make_clips(tmp_path / "clips", 1)[0]
    out = tmp_path / ("theirs.jsonl" if content.startswith("{") else "theirs.csv")
    out.write_text(content)
    proc = run_cli("--classify", str(clip), "--out", str(out), *model_args(tiny_model_path))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and fragment in lines[0] and "Traceback" not in proc.stderr
    assert out.read_text() == content


def test_results_of_another_model_are_refused(tmp_path, tiny_model_path):
    clip = make_clips(tmp_path / "clips", 1)[0]
    out = tmp_path / "results.csv"
    assert run_cli("--classify", str(clip), "--out", str(out), "--model", "light").returncode == 0
    before = out.read_text()
    proc = run_cli("--classify", str(clip), "--out", str(out), *model_args(tiny_model_path))
    assert proc.returncode == 1 and "holds results of another model (ser-live-light.npz@" in proc.stderr
    assert out.read_text() == before


def test_the_ledger_writes_a_row_as_each_file_finishes(tmp_path, tiny_model):
    clips = make_clips(tmp_path / "clips", 3)
    out = tmp_path / "results.csv"
    batch = classify_batch([tmp_path / "clips"], model=str(tiny_model.path), workers=1, out=out)
    seen = []
    for item in batch:
        seen.append(item.path)
        assert [r["path"] for r in csv_rows(out)] == seen  # on disk before the next file starts
    assert sorted(seen) == sorted(map(str, clips)) and batch.totals.done == 3 and batch.totals.failed == 0


# -- SIGKILL in the middle, then the same command again ---------------------------------------------------------
def _wait_for_lines(path: Path, proc: subprocess.Popen, n: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and path.read_text().count("\n") >= n:
            return
        time.sleep(0.02)


def _still_alive(pids: list[int], *, within_s: float) -> list[int]:
    """The processes still running after waiting up to ``within_s`` for them to end."""
    deadline = time.monotonic() + within_s
    while any(process_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return [p for p in pids if process_alive(p)]


@pytest.mark.parametrize("engine", [["--workers", "2"], ["--scheduler", "local:2"]], ids=["local-pool", "dask"])
def test_a_batch_killed_in_the_middle_resumes_and_every_file_appears_once(tmp_path, engine):
    folder = linked_clips(tmp_path / "archive", 1500)
    out = tmp_path / "results.csv"
    command = [sys.executable, "-m", "ser_live", "--classify", str(folder), "--model", "light", "--out", str(out),
               *engine]
    proc = subprocess.Popen(command, cwd=str(REPO), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_for_lines(out, proc, 21)  # the header and 20 results
    workers = child_pids(proc.pid, recursive=True)
    assert proc.poll() is None, "the batch ended before it could be killed: " + proc.stderr.read().decode()
    proc.kill()
    proc.wait(timeout=10)
    proc.stderr.close()
    written = len(csv_rows(out))
    assert 20 <= written < 1500
    assert not _still_alive(workers, within_s=20), "workers outlived the killed batch"
    again = subprocess.run(command, cwd=str(REPO), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"{written} already in" in again.stderr or f"{written - 1} already in" in again.stderr  # a torn row
    paths = [r["path"] for r in csv_rows(out)]
    assert len(paths) == 1500 and len(set(paths)) == 1500


# -- the Dask engine ---------------------------------------------------------------------------------------------
def test_a_local_dask_cluster_gives_exactly_the_local_pools_results(tmp_path, tiny_model_path):
    make_clips(tmp_path / "clips", 12)
    (tmp_path / "clips" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    runs = [run_cli("--classify", str(tmp_path / "clips"), "--json", *engine, *model_args(tiny_model_path))
            for engine in (["--workers", "2"], ["--scheduler", "local:2"])]
    assert [r.returncode for r in runs] == [1, 1]
    pool, dask = ([json.loads(line) for line in r.stdout.splitlines()] for r in runs)
    assert len(pool) == 13 and pool == dask
    assert "classified 13 files" in runs[1].stderr and len(runs[1].stderr.strip().splitlines()) == 1


def test_a_worker_killed_mid_batch_has_its_files_classified_elsewhere(tmp_path, tiny_model_path):
    clips = make_clips(tmp_path / "clips", 40, seconds=3.0)
    batch = classify_batch([tmp_path / "clips"], model=str(tiny_model_path),
                           scheduler="local:2")
    pids = batch.engine.client.run(os.getpid)
    assert len(pids) == 2
    results: list[FileResult] = []
    for item in batch:
        results.append(item)
        if len(results) == 3:
            os.kill(next(iter(pids.values())), signal.SIGKILL)
    assert sorted(r.path for r in results) == sorted(map(str, clips))
    assert [r.error for r in results] == [None] * 40
    expected = classify_batch([tmp_path / "clips"], model=str(tiny_model_path), workers=1)
    assert [(r.path, r.result) for r in results] == [(r.path, r.result) for r in expected]


def test_a_scheduler_that_does_not_answer_is_one_line_within_seconds(tmp_path):
    clip = make_clips(tmp_path / "clips", 1)[0]
    started = time.monotonic()
    proc = run_cli("--classify", str(clip), "--model", "light", "--scheduler", "tcp://127.0.0.1:9")
    assert time.monotonic() - started < 20
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("ser-live: error: cannot reach the Dask scheduler at tcp://127.0.0.1:9")


@pytest.mark.parametrize(("args", "message"), [
    (["--scheduler", "local:0"], "give local:N with N worker processes, at least 1"),
    (["--scheduler", "local:2", "--workers", "2"], "--workers sizes the local pool"),
    (["--out", " "], "--out needs a value"),
])
def test_scheduler_options_that_cannot_work_are_one_line(tmp_path, args, message):
    clip = make_clips(tmp_path / "clips", 1)[0]
    proc = run_cli("--classify", str(clip), "--model", "light", *args)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode in (1, 2) and len(lines) == 1 and message in lines[0], proc.stderr


def test_without_dask_the_scheduler_says_which_extra_to_install(monkeypatch):
    from ser_live.engine.batch import ModelSpec
    from ser_live.engine.cluster import connect

    monkeypatch.setitem(sys.modules, "distributed", None)  # as if it were not installed
    with pytest.raises(BatchError, match=r"pip install 'ser-live\[cluster\]'"):
        connect("local:1", ModelSpec("light"))


# -- progress ----------------------------------------------------------------------------------------------------
def test_a_terminal_gets_a_progress_bar_with_files_audio_hours_and_rate(tmp_path, tiny_model_path):
    make_clips(tmp_path / "clips", 40)  # long enough for the bar to redraw (tqdm: at most every 0.1 s)
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a terminal 120 columns wide
    proc = subprocess.Popen([sys.executable, "-m", "ser_live", "--classify", str(tmp_path / "clips"),
                             "--out", str(tmp_path / "r.csv"), *model_args(tiny_model_path)],
                            cwd=str(REPO), stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert proc.wait(timeout=60) == 0
    text = shown.decode(errors="replace")
    assert "/40 [" in text and "file/s" in text and "h audio" in text and "audio-s/s" in text, text
    assert "classified 40 files" in text


# -- memory stays flat however many files ------------------------------------------------------------------------
#: Peak traced memory of a batch over each folder given (classification itself stubbed out), measured in a fresh
#: process: tracemalloc's peak counts every thread's allocations, and threads other tests of this session left
#: behind (a pool's manager, a monitor) would add theirs to whichever measurement they overlap.
_PEAK_OF_BATCHES = """
import json, sys, tracemalloc
from ser_live.engine import batch as batch_module

batch_module.classify_path = lambda path, spec: batch_module.FileResult(path, None, "not classified")
peaks = []
for folder in sys.argv[1:]:
    tracemalloc.start()
    n = sum(1 for _ in batch_module.classify_batch([folder], model="light", workers=1))
    peaks.append((tracemalloc.get_traced_memory()[1], n))
    tracemalloc.stop()
print(json.dumps(peaks))
"""


def _archive(root: Path, n_folders: int, per_folder: int = 100) -> Path:
    """An archive of ``n_folders`` folders of ``per_folder`` clips each (hard links to one clip)."""
    first = linked_clips(root / "f0000", per_folder, seconds=0.1) / "clip00000.wav"
    for k in range(1, n_folders):
        folder = root / f"f{k:04d}"
        folder.mkdir()
        for i in range(per_folder):
            os.link(first, folder / f"clip{i:05d}.wav")
    return root


def test_the_listing_streams_so_memory_does_not_grow_with_the_number_of_files(tmp_path):
    """20 times the files in 20 times the folders: the walk holds one folder's names at a time, never the list."""
    peaks = []
    for name, n_folders in (("small", 10), ("large", 200)):  # each in a process of its own: the same one-off costs
        proc = subprocess.run([sys.executable, "-c", _PEAK_OF_BATCHES, str(_archive(tmp_path / name, n_folders))],
                              capture_output=True, text=True, cwd=str(REPO), timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        peaks += json.loads(proc.stdout)
    small, large = peaks
    assert small[1] == 1000 and large[1] == 20000
    # Holding the 19,000 more paths at once would take 3 MB and more (a folder's listing costs about 170 bytes a name
    # here); what grows (about 50 bytes a file, measured: 0.93 MB) stays under half of that.
    assert large[0] - small[0] < 19000 * 100, (small, large)


def test_the_walk_goes_folder_by_folder_in_name_order(tmp_path):
    for name in ("b/2.wav", "b/1.flac", "a.wav", "c/d/3.ogg", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in iter_audio_files([tmp_path])]
    assert found == ["a.wav", "b/1.flac", "b/2.wav", "c/d/3.ogg"]
    assert next(iter_audio_files([tmp_path / "notes.txt"])) == tmp_path / "notes.txt"  # named: taken as it is


def test_a_ledger_row_round_trips_through_csv_and_json_lines(tmp_path, tiny_model):
    from ser_live.engine.monitor import classify_signal

    clip = make_clips(tmp_path, 1)[0]
    result = classify_signal(np.asarray(tone(150.0, 2.0)), sample_rate_hz=SR, model=tiny_model)
    for name in ("r.csv", "r.jsonl"):
        ledger = ResultLedger(tmp_path / name, classes=tiny_model.classes, model_id="m@1")
        ledger.started(str(clip))
        ledger.write(FileResult(str(clip), result))
        ledger.close()
        again = ResultLedger(tmp_path / name, classes=tiny_model.classes, model_id="m@1")
        assert again.is_done(clip) and not again.is_done(tmp_path / "never-classified.wav")
        again.close()
