"""Speaker adaptation: running statistics, blend schedule, profiles."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ser_live.model.speaker import RunningStats, SpeakerNormalizer, SpeakerPrior, profile_path


def _prior(n=5, half_s=20.0):
    return SpeakerPrior(mean=np.arange(n, dtype=float), std=np.full(n, 2.0), half_s=half_s)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(2, 40), st.integers(1, 6)), elements=st.floats(-1e3, 1e3)))
def test_running_stats_match_batch(x):
    stats = RunningStats(x.shape[1])
    for row in x:
        stats.update(row)
    assert stats.count == x.shape[0]
    np.testing.assert_allclose(stats.mean, x.mean(axis=0), rtol=1e-9, atol=1e-7)
    np.testing.assert_allclose(stats.variance, x.var(axis=0), rtol=1e-6, atol=1e-6)


def test_running_stats_skip_non_finite_vectors():
    stats = RunningStats(2)
    stats.update(np.array([1.0, 2.0]))
    stats.update(np.array([np.nan, 2.0]))
    assert stats.count == 1
    np.testing.assert_array_equal(stats.mean, [1.0, 2.0])


def test_blend_weight_follows_documented_schedule():
    norm = SpeakerNormalizer(_prior(half_s=20.0), hop_s=0.5)
    assert norm.weight == 0.0
    for _ in range(40):  # 40 speech windows x 0.5 s = 20 s of speech = the half-way point
        norm.update(np.ones(5) * 100.0)
    assert norm.learnt_s == pytest.approx(20.0)
    assert norm.weight == pytest.approx(0.5)
    for _ in range(120):  # 80 s in all: 80 / (80 + 20)
        norm.update(np.ones(5) * 100.0)
    assert norm.weight == pytest.approx(0.8)


def test_transform_moves_from_prior_to_speaker():
    prior = _prior()
    norm = SpeakerNormalizer(prior, hop_s=0.5)
    x = np.full(5, 10.0)
    np.testing.assert_allclose(norm.transform(x), (x - prior.mean) / prior.std)  # nothing learnt yet
    rng = np.random.default_rng(0)
    speaker = rng.normal(50.0, 3.0, size=(4000, 5))
    for row in speaker:
        norm.update(row)
    z = norm.transform(speaker)
    # After 2000 s of speech the speaker's own statistics dominate (weight 0.99).
    assert np.all(np.abs(z.mean(axis=0)) < 0.2)
    assert np.all(np.abs(z.std(axis=0) - 1.0) < 0.1)


def test_profile_round_trip(tmp_path):
    norm = SpeakerNormalizer(_prior(), hop_s=0.5)
    rng = np.random.default_rng(1)
    for row in rng.normal(size=(30, 5)):
        norm.update(row)
    path = tmp_path / "p" / "alice.json"
    norm.save(path, profile_key="handcrafted-4")
    again = SpeakerNormalizer(_prior(), hop_s=0.5)
    assert again.load(path, profile_key="handcrafted-4")
    assert again.stats.count == 30
    np.testing.assert_allclose(again.mean_std()[0], norm.mean_std()[0])
    np.testing.assert_allclose(again.mean_std()[1], norm.mean_std()[1])


def _profile(feature_version="handcrafted-4", count=1, mean=(0,) * 5, m2=(0,) * 5):
    stats = {"count": count, "mean": list(mean), "m2": list(m2)}
    return json.dumps({"profile_version": 1, "feature_version": feature_version, "stats": stats})


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        _profile(count=2, mean=[1, 2], m2=[0, 0]),
        _profile(feature_version="whisper-encoder-1"),
        _profile(m2=[-1] * 5),
        json.dumps([1, 2, 3]),
    ],
    ids=["not-json", "wrong-length", "other-feature-version", "negative-variance", "not-an-object"],
)
def test_damaged_profile_is_ignored_with_a_warning(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_text(content)
    norm = SpeakerNormalizer(_prior(), hop_s=0.5)
    with pytest.warns(UserWarning, match="ignoring speaker profile"):
        assert not norm.load(path, profile_key="handcrafted-4")
    assert norm.stats.count == 0


def test_profile_names_are_plain_words(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert profile_path("alice").name == "alice.json"
    with pytest.raises(ValueError):
        profile_path("../etc/passwd")
