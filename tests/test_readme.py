"""Every code block in the README runs as written, and the README's output tables are the code's.

- ```python blocks run whole, in a folder holding the ``talk.wav`` they read (espeak-ng speech);
- every ``ser-live`` line of a ```sh block runs as the command would (through ``python -m ser_live``),
  with a private PulseAudio server as the microphone and no display (so the window falls back to the
  console, as it says); live monitors are stopped with Ctrl-C after a few seconds and must end cleanly;
  a line that writes its results to a file (``--out``, ``--export``) must write it;
- every ``make`` line of a ```sh block is checked with ``make -n`` (the targets exist and expand): they
  install packages, retrain for minutes or run this very suite, which CI runs anyway.
Blocks without a language (the diagram) are not code.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, espeak, write_wav

from ser_live.audio.files import read_audio

pytest_plugins = ["pulse"]

README = REPO / "README.md"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
#: How long a live monitor (no --input, no --classify) runs before the test presses Ctrl-C.
LIVE_S = 4.0


def blocks(language: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(README.read_text(encoding="utf-8")) if lang == language]


def commands(prefix: str) -> list[str]:
    """The command lines of the sh blocks that start with ``prefix`` (comments stripped)."""
    out = []
    for body in blocks("sh"):
        for line in body.splitlines():
            line = line.split("  #")[0].split(" # ")[0].strip()
            if line.startswith(prefix):
                out.append(line)
    return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A folder with the files the README's examples name: talk.wav, talk.flac, recordings/."""
    folder = tmp_path_factory.mktemp("readme")
    speech = espeak("I really did not expect that, this is wonderful news for all of us.", folder / "speech.wav")
    y = read_audio(speech, sample_rate_hz=16000)
    y = np.concatenate([np.zeros(8000, np.float32), y, np.zeros(8000, np.float32)])
    write_wav(folder / "talk.wav", y)
    write_wav(folder / "talk.flac", y[: 3 * 16000])
    (folder / "recordings").mkdir()
    for name in ("a.wav", "b.wav"):
        write_wav(folder / "recordings" / name, y)
    # A session kept with its audio, for the --review example.
    subprocess.run([sys.executable, "-m", "ser_live", "--print", "--input", "talk.wav", "--model", "light", "--record",
                    "kept.csv", "--record-audio"], cwd=str(folder), capture_output=True, check=True, timeout=120)
    return folder


def test_the_readme_has_the_blocks_this_test_runs():
    assert len(blocks("python")) >= 2 and commands("ser-live") and commands("make ")


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_python_blocks_run_as_written(index, workdir):
    code = blocks("python")[index]
    proc = subprocess.run([sys.executable, "-c", code], cwd=str(workdir), capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, f"README python block {index + 1} failed:\n{code}\n{proc.stderr}"
    assert proc.stdout.strip(), "the block printed nothing"


@pytest.mark.slow
@pytest.mark.parametrize("command", commands("ser-live"))
def test_ser_live_lines_run_as_written(command, workdir, pulse_server, tmp_path):
    argv = shlex.split(command)[1:]
    live = not any(a in argv for a in ("--input", "--classify", "--list-devices", "--review"))
    env = pulse_server.client_env(XDG_DATA_HOME=str(tmp_path / "xdg"))
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        env.pop(name, None)
    cwd = tmp_path / "run"  # a fresh folder: --record session.csv must not find an earlier one
    cwd.mkdir()
    for item in workdir.iterdir():
        (cwd / item.name).symlink_to(item)
    proc = subprocess.Popen([sys.executable, "-m", "ser_live", *argv], cwd=str(cwd), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=LIVE_S if live else 300)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, f"{command}: exit {proc.returncode}\n{err}"
    assert "Traceback" not in err and "error" not in err.lower(), f"{command}:\n{err}"
    written = [argv[i + 1] for i, a in enumerate(argv) if a in ("--out", "--export")]
    if written:  # results go to that file, not stdout
        assert all((cwd / name).stat().st_size > 0 for name in written), command
    else:
        assert out.strip(), f"{command} printed nothing on stdout"


@pytest.mark.parametrize("command", commands("make "))
def test_make_lines_name_real_targets(command):
    proc = subprocess.run(["make", "-n", *shlex.split(command)[1:]], cwd=str(REPO), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, f"{command}: {proc.stderr}"


def test_the_json_tables_are_the_codes():
    from ser_live.sinks.writers import CLIP_JSON_FIELDS, PREDICTION_JSON_FIELDS, fields_markdown

    text = README.read_text(encoding="utf-8")
    for fields in (PREDICTION_JSON_FIELDS, CLIP_JSON_FIELDS):
        assert fields_markdown(fields) in text
