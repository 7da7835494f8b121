"""Speech gate: silence, room noise (quiet, loud, changing), steady tones and a cough are not speech; speech is."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SAMPLE_RATE_HZ as SR
from conftest import espeak, tone

from ser_live.audio.buffer import signal_windows
from ser_live.audio.files import read_audio
from ser_live.dsp.gate import SpeechGate

WINDOW, HOP = 2 * SR, SR // 2


def at_db(y: np.ndarray, level_db: float) -> np.ndarray:
    """``y`` scaled to an RMS level of ``level_db`` dBFS."""
    y = np.asarray(y, dtype=np.float64)
    return (y * 10 ** (level_db / 20) / np.sqrt(np.mean(y**2))).astype(np.float32)


def pink_noise(duration_s: float, level_db: float, seed: int = 0) -> np.ndarray:
    """Pink (1/f) noise from 20 Hz up, the usual model of a room's background."""
    n = int(duration_s * SR)
    spectrum = np.fft.rfft(np.random.default_rng(seed).normal(size=n))
    f = np.fft.rfftfreq(n, 1 / SR)
    spectrum /= np.sqrt(np.maximum(f, 20.0))
    spectrum[f < 20.0] = 0
    return at_db(np.fft.irfft(spectrum, n), level_db)


def harmonic_tone(f0_hz: float, duration_s: float, level_db: float, n_harmonics: int = 3) -> np.ndarray:
    """A perfectly steady harmonic tone: mains hum, a fan, a beep."""
    t = np.arange(int(duration_s * SR)) / SR
    return at_db(sum(np.sin(2 * np.pi * f0_hz * k * t) / k for k in range(1, n_harmonics + 1)), level_db)


def cough(level_db: float, seed: int = 1) -> np.ndarray:
    """A cough-like burst: 0.3 s of broadband noise with a fast attack and decay (peak at ``level_db``)."""
    n = int(0.3 * SR)
    y = np.random.default_rng(seed).normal(size=n) * np.exp(-np.arange(n) / SR / 0.06)
    return (y * 10 ** (level_db / 20) / np.max(np.abs(y))).astype(np.float32)


def gate_run(y: np.ndarray, gate: SpeechGate | None = None) -> list[tuple[float, object]]:
    """The gate's decision for every live window of ``y``: ``(window end in s, decision)``."""
    gate = gate or SpeechGate(sample_rate_hz=SR)
    return [(end / SR, gate(w, end_s=end / SR)) for end, w in signal_windows(y, window_samples=WINDOW, hop_samples=HOP)]


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> np.ndarray:
    """About 5 s of espeak-ng speech at 16 kHz, -20 dBFS RMS, trimmed to where the voice is."""
    path = espeak(
        "The quick brown fox jumps over the lazy dog. I am talking to my computer now.",
        tmp_path_factory.mktemp("gate") / "speech.wav",
    )
    y = read_audio(path, sample_rate_hz=SR)
    loud = np.flatnonzero(np.abs(y) > 0.01 * np.abs(y).max())
    return at_db(y[loud[0] : loud[-1] + 1], -20.0)


# -- what is not speech ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    ["digital silence", "dither", "quiet room", "loud room", "loud room with mains hum", "fan switched on",
     "beep", "60 Hz hum"],
)
def test_no_speech_in_silence_noise_and_steady_tones(name):
    backgrounds = {
        "digital silence": lambda: np.zeros(8 * SR, np.float32),
        "dither": lambda: pink_noise(8, -90),
        "quiet room": lambda: pink_noise(8, -65),
        "loud room": lambda: pink_noise(8, -25),
        "loud room with mains hum": lambda: pink_noise(8, -30) + harmonic_tone(50, 8, -35),
        # The background jumps by 35 dB and stays: the floor must catch up, and the hum must not
        # pass for a voice meanwhile.
        "fan switched on": lambda: np.concatenate(
            [pink_noise(4, -65), pink_noise(20, -35, seed=3) + harmonic_tone(120, 20, -30)]
        ),
        "beep": lambda: pink_noise(6, -60) + harmonic_tone(440, 6, -20, n_harmonics=1),
        "60 Hz hum": lambda: harmonic_tone(60, 6, -30, n_harmonics=4),
    }
    decisions = gate_run(backgrounds[name]())
    speech_at = [t for t, d in decisions if d.speech]
    assert speech_at == [], f"{name}: speech reported at {speech_at}"


@pytest.mark.parametrize("room_db", [-65.0, -30.0])
def test_a_cough_is_not_speech(room_db):
    y = pink_noise(8, room_db)
    y[4 * SR : 4 * SR + int(0.3 * SR)] += cough(room_db + 40 if room_db < -40 else -3.0)
    decisions = gate_run(y)
    assert max(d.level_db for _, d in decisions) > room_db + 3  # the burst is loud in its windows
    assert not any(d.speech for _, d in decisions)


def test_digital_silence_reports_the_floor_level():
    (_, first), *_ = gate_run(np.zeros(SR, np.float32))
    assert first.level_db == pytest.approx(-120.0) and not first.speech


# -- what is speech ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("room_db", "snr_db"), [(-65.0, 45.0), (-35.0, 15.0), (-30.0, 10.0), (-30.0, 5.0)])
def test_speech_is_found_in_quiet_and_noisy_rooms(speech, room_db, snr_db):
    lead_s, tail_s = 5.0, 5.0
    n_speech = speech.shape[0]
    y = pink_noise(lead_s + n_speech / SR + tail_s, room_db, seed=7)
    start = int(lead_s * SR)
    y[start : start + n_speech] += speech * np.float32(10 ** ((room_db + snr_db + 20.0) / 20))
    onset_s, offset_s = lead_s, lead_s + n_speech / SR
    decisions = gate_run(y)
    before = [d.speech for t, d in decisions if t <= onset_s]
    inside = [d.speech for t, d in decisions if t - WINDOW / SR >= onset_s and t <= offset_s]
    after = [d.speech for t, d in decisions if t - WINDOW / SR >= offset_s]
    assert len(before) >= 8 and not any(before)
    assert len(inside) >= 4 and all(inside)
    assert len(after) >= 4 and not any(after)
    # Reaction: the hop after the voice starts already contains enough of it.
    first_speech_t = next(t for t, d in decisions if d.speech)
    assert onset_s < first_speech_t <= onset_s + 2 * HOP / SR


def test_speech_louder_than_the_room_is_measured_as_such(speech):
    decisions = gate_run(np.concatenate([pink_noise(4, -50), speech + pink_noise(speech.shape[0] / SR, -50, 2)]))
    quiet = [d for t, d in decisions if t <= 4.0]
    talking = [d for t, d in decisions if t - 2.0 >= 4.0]
    assert all(d.noise_floor_db < -50 for d in quiet)
    assert all(d.level_db > -25 and d.noise_floor_db < -45 for d in talking)
    assert all(d.voiced_s >= 0.15 and d.modulation_db > 6 for d in talking)


def test_long_monologue_keeps_counting_as_speech(speech):
    # Five sentences back to back: the floor must not climb up to the voice.
    monologue = np.concatenate([speech] * 5)
    y = pink_noise(3 + monologue.shape[0] / SR + 3, -40, seed=5)
    y[3 * SR : 3 * SR + monologue.shape[0]] += monologue
    inside = [d.speech for t, d in gate_run(y) if t - 2.0 >= 3.0 and t <= 3 + monologue.shape[0] / SR]
    assert len(inside) > 30 and all(inside)


def test_synthetic_voiced_signal_of_the_test_suite_counts_as_speech():
    # Other tests feed conftest.tone() to the monitor as a stand-in for a voice.
    decisions = gate_run(np.concatenate([np.zeros(SR, np.float32), tone(150.0, 3.0)]))
    assert [d.speech for t, d in decisions if t >= 2.0] and all(d.speech for t, d in decisions if t >= 2.0)


def test_reset_forgets_the_noise_floor():
    gate = SpeechGate(sample_rate_hz=SR)
    gate_run(pink_noise(8, -40), gate)
    assert -45 < gate.noise_floor_db < -40
    gate.reset()
    assert gate.noise_floor_db is None
    gate_run(pink_noise(8, -70), gate)
    assert -75 < gate.noise_floor_db < -70
