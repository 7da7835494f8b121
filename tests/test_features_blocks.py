"""Feature blocks added after version 1: spectral-shape dynamics, tilt, voice quality, rhythm, contrast, modulation."""

from __future__ import annotations

import numpy as np
from conftest import tone

from ser_live.features.handcrafted import FeatureConfig, extract_features, feature_names


def _named(y: np.ndarray) -> dict[str, float]:
    return dict(zip(feature_names(), extract_features(y).tolist()))


def test_version_and_names() -> None:
    names = feature_names()
    assert len(names) == len(set(names)) == extract_features(tone(150.0, 2.0)).shape[0]
    for name in ("mel0_shape_std", "alpha_ratio_db_mean", "hammarberg_db_mean", "mel_slope_db_per_band_mean",
                 "jitter_st", "shimmer_db", "hnr_db", "voiced_runs_per_s", "active_run_s", "energy_rel_p90",
                 "contrast0_db_mean",
                 "energy_mod_2_4hz"):
        assert name in names


def test_brighter_voice_has_a_flatter_spectral_tilt() -> None:
    dull = _named(tone(150.0, 2.0, harmonics=4))
    bright = _named(tone(150.0, 2.0, harmonics=40))
    assert bright["alpha_ratio_db_mean"] > dull["alpha_ratio_db_mean"] + 3.0
    assert bright["mel_slope_db_per_band_mean"] > dull["mel_slope_db_per_band_mean"]


def test_choppy_speech_has_more_voiced_runs_than_a_sustained_vowel() -> None:
    sustained = tone(150.0, 2.0)
    choppy = sustained.copy()
    t = np.arange(choppy.size) / 16000
    choppy[np.sin(2 * np.pi * 3.0 * t) < 0] = 0.0  # three 1/6 s syllables per second
    a, b = _named(sustained), _named(choppy)
    assert b["voiced_runs_per_s"] >= 2.5 > a["voiced_runs_per_s"]
    assert b["voiced_run_s"] < a["voiced_run_s"]


def test_unsteady_pitch_raises_jitter() -> None:
    steady = _named(tone(150.0, 2.0))
    shaky = _named(tone(150.0, 2.0, vibrato_hz=12.0))
    assert shaky["jitter_st"] > steady["jitter_st"]


def test_silence_and_noise_give_finite_vectors() -> None:
    rng = np.random.default_rng(0)
    for y in (np.zeros(32000, np.float32), (0.1 * rng.standard_normal(32000)).astype(np.float32)):
        assert np.all(np.isfinite(extract_features(y, FeatureConfig())))


def test_harmonic_voice_has_more_band_contrast_than_breathy_noise() -> None:
    rng = np.random.default_rng(1)
    voiced = tone(150.0, 2.0, harmonics=30)
    breathy = 0.7 * voiced + (0.3 * rng.standard_normal(voiced.size)).astype(np.float32)
    a, b = _named(voiced), _named(breathy)
    assert a["contrast1_db_mean"] > b["contrast1_db_mean"]


def test_loudness_modulation_lands_in_its_band() -> None:
    t = np.arange(32000) / 16000
    y = tone(150.0, 2.0) * (0.55 + 0.45 * np.cos(2 * np.pi * 3.0 * t)).astype(np.float32)
    named = _named(y)
    bands = ["energy_mod_0.5_2hz", "energy_mod_2_4hz", "energy_mod_4_8hz", "energy_mod_8_16hz"]
    assert max(bands, key=named.get) == "energy_mod_2_4hz"
