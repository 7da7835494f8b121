"""scripts/train.py: clear one-line errors for bad input, and a complete run on a tiny generated corpus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, tone, write_wav

SCRIPT = REPO / "scripts" / "train.py"


def _run(*args: str, cache: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    if cache is not None:
        env["SER_LIVE_FEATURE_CACHE"] = str(cache)
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=str(REPO), env=env)


def test_missing_data_directory_is_one_clear_line(tmp_path: Path) -> None:
    result = _run("--data", str(tmp_path / "nope"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"error: data directory {tmp_path / 'nope'} does not exist or is "
                                                  "not a directory"]


def test_directory_without_corpus_files_is_one_clear_line(tmp_path: Path) -> None:
    write_wav(tmp_path / "holiday.wav", tone(150.0, 0.5))
    result = _run("--data", str(tmp_path), "--out", str(tmp_path / "out"), "--no-progress")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: no recordings of a known corpus")


def test_bad_arguments_are_rejected(tmp_path: Path) -> None:
    result = _run("--data", str(tmp_path), "--out", str(tmp_path), "--jobs", "0")
    assert result.returncode == 2 and "error: --jobs" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_tiny_corpus_end_to_end(tmp_path: Path) -> None:
    from ser_live.model import EmotionModel

    data = tmp_path / "emovo"
    emotions = ["neu", "gio", "tri", "rab", "pau", "dis", "sor"]
    for s, speaker in enumerate(["f1", "f2", "f3", "m1", "m2", "m3"]):
        (data / speaker).mkdir(parents=True)
        for e, code in enumerate(emotions):
            y = tone(110.0 + 25.0 * e + 4 * s, 2.2, vibrato_hz=1.0 + e, seed=10 * s + e)
            y[:3200] *= 0.001
            write_wav(data / speaker / f"{code}-{speaker}-b1.wav", y)
    out = tmp_path / "models"
    result = _run("--data", str(data), "--out", str(out), "--no-progress", "--jobs", "2", cache=tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "speaker-independent utterance UAR" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["corpora"] == ["emovo"]
    assert metrics["summary"]["protocol"].startswith("speaker-independent")
    for name in ("ser-live-default.joblib", "MODEL_CARD.md", "confusion_matrix.png", "per_class_recall.png",
                 "class_counts.png", "class_counts.csv", "training_loss.png"):
        assert (out / name).stat().st_size > 0, name
    model = EmotionModel.load(out / "ser-live-default.joblib", trust=True)
    assert model.metadata["corpora"] == ["emovo"]
    assert model.metadata["evaluation"]["ours"]["utterance"]["overall"]["uar"] == metrics["summary"]["ours"][
        "utterance"]["overall"]["uar"]
    card = (out / "MODEL_CARD.md").read_text()
    assert "Costantini" in card and "CC BY-NC-SA 4.0" in card
