"""Test conditions made from clean recordings (rooms, noises, short replies) and the robustness measure over them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_same_features, tone, voice_with_pauses, write_wav

from ser_live.training import extract as extract_mod
from ser_live.training.conditions import (
    NOISE_KINDS,
    RoomNoise,
    ShortReply,
    active_speech_power,
    loudest_segment,
    mix_at_snr,
    noise_of_kind,
    reverberate,
    room_impulse_responses,
)
from ser_live.training.corpora import scan_corpora
from ser_live.training.estimator import ModelParams
from ser_live.training.evaluate import cross_validate, speaker_folds
from ser_live.training.extract import extract_condition, extract_dataset
from ser_live.training.robustness import babble_talkers, condition_probabilities, robustness_report

SR = 16000
pytest.importorskip("pyroomacoustics", reason="the train extra (pip install -e .[train]) brings pyroomacoustics")


def _band_db(noise: np.ndarray, lo_hz: float, hi_hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(noise)) ** 2
    f = np.fft.rfftfreq(noise.size, 1 / SR)
    return 10 * np.log10(np.mean(spectrum[(f >= lo_hz) & (f < hi_hz)]))


def test_the_snr_is_over_the_active_speech_level_so_pauses_do_not_change_it():
    speech = voice_with_pauses(4.0, seed=1)
    longer = np.concatenate([speech, np.zeros(3 * SR, np.float32)])  # the same talk with a long pause after it
    assert active_speech_power(longer, SR) == pytest.approx(active_speech_power(speech, SR), rel=1e-6)
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(speech.size)
    for snr_db in (20.0, 10.0, 5.0):
        mixed = mix_at_snr(speech, noise, snr_db=snr_db, sample_rate_hz=SR).astype(np.float64)
        added = mixed - speech
        measured = 10 * np.log10(active_speech_power(speech, SR) / np.mean(added ** 2))
        assert measured == pytest.approx(snr_db, abs=0.05)


def test_noises_have_their_colour_and_unit_power():
    rng = np.random.default_rng(0)
    n = 8 * SR
    talkers = [voice_with_pauses(3.0, seed=s) for s in range(3)]
    noises = {k: noise_of_kind(k, n, sample_rate_hz=SR, rng=rng, talkers=talkers) for k in NOISE_KINDS}
    for kind, noise in noises.items():
        assert noise.shape == (n,) and np.std(noise) == pytest.approx(1.0, rel=0.05), kind
    # Pink loses about 10 dB a decade, brown about 20.
    for kind, slope in (("pink", -10.0), ("brown", -20.0)):
        decade = _band_db(noises[kind], 400, 500) - _band_db(noises[kind], 40, 50)
        assert decade == pytest.approx(slope, abs=3.0), (kind, decade)
    # The fan hums at the mains frequency: its 50 or 60 Hz bin stands far above its neighbours.
    fan = noises["fan"]
    peak = max(_band_db(fan, 49.5, 50.5), _band_db(fan, 59.5, 60.5))
    assert peak - _band_db(fan, 70, 90) > 15
    with pytest.raises(ValueError, match="babble needs"):
        noise_of_kind("babble", n, sample_rate_hz=SR, rng=rng)
    with pytest.raises(ValueError, match="unknown noise"):
        noise_of_kind("traffic", n, sample_rate_hz=SR, rng=rng)


def test_rooms_are_reproducible_and_reverberant():
    rirs = room_impulse_responses(3, sample_rate_hz=SR, rt60_s=(0.4, 0.7), seed=5)
    again = room_impulse_responses(3, sample_rate_hz=SR, rt60_s=(0.4, 0.7), seed=5)
    assert len(rirs) == 3 and all(np.array_equal(a, b) for a, b in zip(rirs, again))
    for rir in rirs:
        # Schroeder decay: the energy left 200 ms after the direct sound is well above an anechoic nothing
        # and well below all of it.
        onset = int(np.argmax(np.abs(rir)))
        energy = np.cumsum(rir[onset:][::-1] ** 2)[::-1]
        left_db = 10 * np.log10(energy[int(0.2 * SR)] / energy[0])
        assert -40 < left_db < -3, left_db
    dry = voice_with_pauses(2.0, seed=2).astype(np.float64)
    wet = reverberate(dry, rirs[0])
    assert wet.shape == dry.shape and np.sqrt(np.mean(wet ** 2)) == pytest.approx(np.sqrt(np.mean(dry ** 2)))
    assert np.corrcoef(wet, dry)[0, 1] < 0.95  # the room changed it


def test_a_room_and_noise_condition_is_seeded_by_the_recording():
    condition = RoomNoise(n_rooms=2)
    y = voice_with_pauses(2.0, seed=3)
    talkers = [voice_with_pauses(2.0, seed=s) for s in (10, 11)]
    a = condition(y, sample_rate_hz=SR, file_key="aaaa", talkers=talkers)
    assert np.array_equal(a, condition(y, sample_rate_hz=SR, file_key="aaaa", talkers=talkers))
    assert not np.array_equal(a, condition(y, sample_rate_hz=SR, file_key="bbbb", talkers=talkers))
    assert a.shape == y.shape and np.max(np.abs(a)) <= 0.99
    shares = np.array([condition.snr_of(f"{i:04x}") for i in range(600)])
    for db in condition.snr_db:  # each level on about a third of the recordings
        assert 0.27 < np.mean(shares == db) < 0.40


def test_a_short_reply_is_the_loudest_part():
    quiet = 0.01 * tone(150.0, 3.0, seed=0)
    loud = tone(220.0, 0.8, seed=1)
    y = np.concatenate([quiet, loud, quiet]).astype(np.float32)
    cut = loudest_segment(y, int(0.8 * SR), sample_rate_hz=SR)
    assert cut.size == int(0.8 * SR) and np.array_equal(cut, loud)
    for key in ("a", "b", "c", "d"):
        reply = ShortReply()(y, sample_rate_hz=SR, file_key=key)
        assert 0.6 * SR <= reply.size <= 1.0 * SR
    assert loudest_segment(loud[:100], 1000, sample_rate_hz=SR).size == 100


def _corpus(tmp_path: Path) -> Path:
    """EMOVO names: four speakers, two emotions, two sentences; the 'angry' ones louder and higher."""
    root = tmp_path / "data"
    root.mkdir()
    for s, speaker in enumerate(("f1", "f2", "m1", "m2")):
        for e, emotion in enumerate(("neu", "rab")):
            for sentence in ("b1", "b2"):
                y = voice_with_pauses(3.0, seed=10 * s + 3 * e + int(sentence[1]))
                y = tone(120 + 15 * s + 90 * e, 3.0, vibrato_hz=3.0 + 3 * e, seed=s) * (0.3 + 0.5 * e) + 0.2 * y
                y[:3200] *= 0.001
                write_wav(root / f"{emotion}-{speaker}-{sentence}.wav", y.astype(np.float32))
    return root


@dataclasses.dataclass(frozen=True)
class _Unchanged:
    """A condition that changes nothing: scored under it, every recording must read as in the clean CV."""

    name = "unchanged"
    n_talkers = 0

    def key(self) -> dict:
        return {"name": self.name}

    def __call__(self, y, *, sample_rate_hz, file_key, talkers=()):
        return y


def test_conditions_are_scored_by_the_clean_cross_validations_own_fold_models(tmp_path: Path):
    utterances = scan_corpora([_corpus(tmp_path)]).utterances
    clean = extract_dataset(utterances, cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    folds = speaker_folds(clean.speakers, clean.labels, n_splits=2)
    params = ModelParams(hidden_layer_sizes=(16,), n_seeds=1, max_iter=50)
    cv = cross_validate(clean, folds, params, augmented=False)
    unchanged = extract_condition(utterances, _Unchanged(), cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    assert_same_features(unchanged.X, clean.X)  # computed again under the condition's own cache key
    proba = condition_probabilities(clean, {"unchanged": unchanged}, folds, params)["unchanged"]
    np.testing.assert_allclose(proba, cv.utterance_proba, atol=1e-12)
    # A report of the unchanged condition then equals the clean figure on every subset.
    mask = np.arange(len(clean.utterances)) % 2 == 0
    report = robustness_report(clean, cv.utterance_proba, {"unchanged": proba}, {"half": ("unchanged", mask)},
                               ("neutral", "angry"))
    row = report["half"]["overall"]
    assert row["n"] == mask.sum() and row["uar"] == row["clean_uar"] and row["no_speech_found"] == 0


def test_babble_comes_from_other_speakers_of_the_same_test_fold(tmp_path: Path):
    utterances = scan_corpora([_corpus(tmp_path)]).utterances
    clean = extract_dataset(utterances, cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    folds = speaker_folds(clean.speakers, clean.labels, n_splits=2)
    talkers = babble_talkers(clean, folds, n_talkers=3)
    speaker_of = {str(u.path): u.speaker for u in clean.utterances}
    for _, test in folds:
        test_paths = {str(clean.utterances[i].path) for i in test}
        for i in test:
            path = str(clean.utterances[i].path)
            assert talkers[path] and set(talkers[path]) <= test_paths  # never the training side's voices
            assert all(speaker_of[p] != speaker_of[path] for p in talkers[path])


def test_a_condition_is_cached_and_its_talkers_are_part_of_the_key(tmp_path: Path, monkeypatch):
    utterances = scan_corpora([_corpus(tmp_path)]).utterances[:2]
    condition = RoomNoise(n_rooms=2, noises=("babble",))
    others = [str(u.path) for u in scan_corpora([tmp_path / "data"]).utterances[4:8]]
    first = extract_condition(utterances, condition, talkers={str(u.path): others[:2] for u in utterances},
                              cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    clean = extract_dataset(utterances, cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    assert first.X.shape[1] == clean.X.shape[1] and not np.allclose(first.X[:1], clean.X[:1])

    def boom(*args, **kwargs):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(extract_mod, "window_features", boom)
    again = extract_condition(utterances, condition, talkers={str(u.path): others[:2] for u in utterances},
                              cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    np.testing.assert_array_equal(first.X, again.X)
    with pytest.raises(AssertionError, match="recomputed"):  # other talkers: another entry, computed afresh
        extract_condition(utterances, condition, talkers={str(u.path): others[2:] for u in utterances},
                          cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
