"""Long sessions: two hours of audio through the real pipeline, with flat memory and one result per hop."""

from __future__ import annotations

import os

import numpy as np
import psutil
import pytest
from conftest import SAMPLE_RATE_HZ as SR
from conftest import tone

from ser_live.engine.monitor import Monitor
from ser_live.sinks.writers import CsvRecorder, TextPrinter

SESSION_S = 2 * 3600
WARM_UP_S = 600
# Each window is analysed in full (gate, and features + model where there is speech); the hop is one
# second (a user setting, --hop 1) rather than 0.5 s so the two hours fit in a few minutes on CI.
HOP_S = 1.0


def conversation_loop(duration_s: float = 30.0) -> np.ndarray:
    """Speech-like turns separated by room noise (about a third of the windows hold speech)."""
    rng = np.random.default_rng(7)
    parts = []
    for i in range(int(duration_s // 6)):
        parts.append(tone(110.0 + 25.0 * i, 2.0, vibrato_hz=2.0 + i, seed=i))
        parts.append(rng.normal(0, 0.003, 4 * SR).astype(np.float32))
    return np.concatenate(parts)


@pytest.mark.slow
def test_two_hour_session_has_flat_memory_and_one_prediction_per_hop(tiny_model, tmp_path):
    loop = conversation_loop()
    block = int(0.1 * SR)  # what a capture callback would hand over
    counts = {"predictions": 0, "speech": 0}

    def count(prediction):
        counts["predictions"] += 1
        counts["speech"] += prediction.speech

    process = psutil.Process()
    rss_mb = {}
    with open(os.devnull, "w") as devnull, CsvRecorder(tmp_path / "soak.csv", tiny_model.classes) as recorder:
        monitor = Monitor(tiny_model, hop_s=HOP_S, on_prediction=count)
        monitor.add_callback(TextPrinter(devnull, tiny_model.classes))
        monitor.add_callback(recorder)
        fed = 0
        while fed < SESSION_S * SR:
            offset = fed % loop.shape[0]
            chunk = loop[offset : offset + block]
            monitor.feed(chunk)
            fed += chunk.shape[0]
            if fed % (600 * SR) == 0:  # every ten minutes of audio
                rss_mb[fed // SR] = process.memory_info().rss / 2**20
    n_hops = SESSION_S // int(HOP_S)
    assert counts["predictions"] == n_hops == monitor.summary.n_windows
    assert counts["speech"] > n_hops // 5  # the model really ran on a good share of the windows
    assert recorder.rows == n_hops
    assert monitor.summary.heard_s == pytest.approx(SESSION_S)
    assert monitor.summary.lost_s == 0 and monitor.summary.skipped_windows == 0
    growth_mb = rss_mb[SESSION_S] - rss_mb[WARM_UP_S]
    print(f"RSS by minute of audio (MB): { {s // 60: round(m, 1) for s, m in rss_mb.items()} }")
    assert growth_mb <= 5.0, rss_mb
