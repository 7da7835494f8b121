"""The benchmark script runs end to end (a smoke run: no thresholds, its figures mean nothing)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO


def _assert_every_part(name: str, r: dict) -> None:
    """One model's results: every window length timed, every part run (none skipped), the window's phases, the
    batch engines."""
    for window in ("1s", "2s", "3s"):
        timing = r["window_compute"][window]["ours_ms"]
        assert timing["n"] == 20 and 0 < timing["median"] <= timing["p95"]
    # Without a real microphone path or display these parts would say 'skipped'; CI has both.
    for part in ("latency", "startup", "steady", "classify", "cluster"):
        assert "skipped" not in r[part], (name, r[part])
    assert r["steady"]["print"]["peak_rss_mb"] > 0
    _assert_window_phases(r["steady"]["gui"])
    assert r["classify"]["2_workers"]["files_per_s"] > 0
    engines = r["cluster"]["engines"]
    assert sorted(engines) == ["Dask local:1", "Dask local:2", "local pool, 2 workers"]
    assert all(e["audio_s_per_s"] > 0 for e in engines.values())


def _assert_window_phases(gui: dict) -> None:
    """The window after the speech: nobody speaking, then unmapped as a window manager minimises it."""
    assert gui["windows_unmapped"] >= 1, gui
    phases = ("silent", "minimised_silent", "minimised_speech")
    assert all(gui[phase]["cpu_pct_of_one_core"] > 0 for phase in phases), gui


def _assert_runtimes_and_listing(results: dict, stdout: str) -> None:
    """The encoder's two runtimes side by side (only the default model has a choice), the CPU's instructions, and
    the cluster client's memory on the light model's archives."""
    runtimes = results["models"]["default"]["encoder_runtimes"]
    assert runtimes["numpy"]["n"] == runtimes["onnxruntime"]["n"] == 10 and runtimes["ratio_numpy_over_onnxruntime"] > 0
    assert runtimes["max_difference_over_spread"] < 1e-2 and "encoder_runtimes" not in results["models"]["light"]
    assert "numpy/onnxruntime = " in stdout and "vector instructions" in stdout
    listing = results["models"]["light"]["cluster"]["listing"]
    assert len(listing) == 2 and all(m["client_peak_rss_mb"] > 0 for m in listing.values())


@pytest.mark.slow
def test_bench_smoke_run_produces_every_section(tmp_path):
    model = REPO / "models" / "ser-live-default.npz"
    if not model.exists():
        pytest.skip("the shipped model models/ser-live-default.npz is not built yet")
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench.py"), "--smoke", "--out", str(out)],
        capture_output=True, text=True, timeout=900, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results["smoke"] is True
    # Both shipped models, each with every part, in one run.
    assert sorted(results["models"]) == ["default", "light"]
    assert results["models"]["default"]["extractor"] == "whisper-encoder"
    assert results["models"]["light"]["extractor"] == "handcrafted"
    for name, r in results["models"].items():
        _assert_every_part(name, r)
    _assert_runtimes_and_listing(results, proc.stdout)
    assert proc.stdout.count("| measure |") == 2
