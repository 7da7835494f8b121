"""The Lab Streaming Layer outlet: an inlet in the test receives what ``--print --json`` prints, stamped at the audio.

LSL stays on this machine: an ``lsl_api.cfg`` with ``ResolveScope = machine`` and IPv6 off, named by ``LSLAPICFG``
for this process (set before liblsl loads) and the ``ser-live`` processes it starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from conftest import OWN_CLASSES, REPO, voice_with_pauses, write_wav

pylsl = pytest.importorskip("pylsl", reason="--lsl needs pylsl ('make test' installs the lsl extra)")

CONFIG = Path(__file__).with_name("data") / "lsl_api.cfg"


@pytest.fixture(scope="module", autouse=True)
def machine_only_lsl():
    """Every LSL process of these tests resolves on this machine only (liblsl reads the file when it first needs it)."""
    previous = os.environ.get("LSLAPICFG")
    os.environ["LSLAPICFG"] = str(CONFIG)
    yield
    if previous is None:
        os.environ.pop("LSLAPICFG", None)
    else:
        os.environ["LSLAPICFG"] = previous


def test_the_config_keeps_lsl_on_this_machine():
    text = CONFIG.read_text()
    assert "ResolveScope = machine" in text and "IPv6 = disable" in text


def _json_lines(path: Path) -> list[dict]:
    proc = subprocess.run([sys.executable, "-m", "ser_live", "--print", "--json", "--input", str(path),
                           "--model", "light", "--no-adapt"], cwd=str(REPO), capture_output=True, text=True,
                          timeout=120, check=True)
    return [json.loads(line) for line in proc.stdout.splitlines()]


def _channel_labels(info) -> list[str]:
    """The labels in a stream's description, in channel order."""
    channel = info.desc().child("channels").first_child()
    labels = []
    while not channel.empty():
        labels.append(channel.child_value("label"))
        channel = channel.next_sibling()
    return labels


def test_an_inlet_records_the_printed_predictions_stamped_one_hop_apart(tmp_path):
    path = write_wav(tmp_path / "talk.wav", voice_with_pauses(8.0, seed=3))
    printed = _json_lines(path)
    name = f"ser-live-test-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen([sys.executable, "-m", "ser_live", "--print", "--json", "--input", str(path), "--realtime",
                             "--model", "light", "--no-adapt", "--lsl", name], cwd=str(REPO),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        streams = pylsl.resolve_byprop("name", name, timeout=30)
        assert streams, "the stream was never found on this machine"
        inlet = pylsl.StreamInlet(streams[0])
        info = inlet.info(timeout=5)
        samples, stamps, received_at = [], [], []
        while proc.poll() is None or inlet.samples_available():
            sample, stamp = inlet.pull_sample(timeout=0.5)
            if sample is not None:
                samples.append(sample)
                stamps.append(stamp)
                received_at.append(pylsl.local_clock())
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    classes = list(printed[0]["probs"] or next(p["probs"] for p in printed if p["probs"]))
    assert info.type() == "Emotion" and _channel_labels(info) == [*classes, "speech", "level_db"]
    assert info.nominal_srate() == pytest.approx(2.0)  # one sample per 0.5 s hop
    # The inlet joined a little after the start (and the last sample may still be in flight when the process
    # ends): what it got is a run of consecutive lines of what --print --json printed.
    assert len(samples) >= len(printed) - 5

    def row(want: dict) -> list[float]:
        return [(want["probs"] or {}).get(c, 0.0) for c in classes] + [float(want["speech"]), want["level_db"]]

    def matches(got: list[float], want: dict) -> bool:
        # JSON rounds probabilities to 4 decimals and the level to 1; the stream is float32.
        expected = row(want)
        return bool(np.all(np.abs(np.array(got[:-1]) - expected[:-1]) <= 5e-5 + 1e-6)
                    and abs(got[-1] - expected[-1]) <= 0.05 + 1e-4)

    starts = [i for i in range(len(printed) - len(samples) + 1)
              if all(matches(g, w) for g, w in zip(samples, printed[i:]))]
    assert starts, "the inlet's samples are not a run of the printed lines"
    tail = printed[starts[0]: starts[0] + len(samples)]
    # Stamped at the end of each window's audio: spaced as the windows are, and before the sample was sent.
    np.testing.assert_allclose(np.diff(stamps), np.diff([p["t"] for p in tail]), atol=2e-3)
    lag_s = np.array(received_at) - np.array(stamps)
    assert np.all(lag_s > -0.05) and np.median(lag_s) < 0.5, lag_s


def test_a_model_of_its_own_classes_streams_one_channel_per_class(own_model, tmp_path):
    path = write_wav(tmp_path / "talk.wav", voice_with_pauses(4.0, seed=5))
    name = f"ser-live-test-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen([sys.executable, "-m", "ser_live", "--print", "--input", str(path), "--realtime",
                             "--model", str(own_model), "--lsl", name], cwd=str(REPO),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        streams = pylsl.resolve_byprop("name", name, timeout=30)
        assert streams, "the stream was never found on this machine"
        labels = _channel_labels(pylsl.StreamInlet(streams[0]).info(timeout=5))
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert sorted(labels[:-2]) == sorted(OWN_CLASSES) and labels[-2:] == ["speech", "level_db"]


def test_lsl_without_pylsl_says_which_extra_to_install(tmp_path):
    path = write_wav(tmp_path / "talk.wav", voice_with_pauses(2.0))
    blocker = tmp_path / "site"
    blocker.mkdir()
    (blocker / "pylsl.py").write_text("raise ImportError('pylsl is not installed here')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), str(REPO)])}
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "ser_live", "--print", "--input", str(path), "--model", "light",
                           "--lsl"], cwd=str(REPO), capture_output=True, text=True, timeout=60, env=env)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and lines == ["ser-live: error: --lsl needs pylsl: pip install 'ser-live[lsl]'"], (
        proc.stderr)
    assert time.monotonic() - started < 30


def test_lsl_does_not_apply_to_classify(tmp_path):
    path = write_wav(tmp_path / "talk.wav", voice_with_pauses(2.0))
    proc = subprocess.run([sys.executable, "-m", "ser_live", "--classify", str(path), "--lsl"], cwd=str(REPO),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--lsl does not apply to --classify" in proc.stderr
