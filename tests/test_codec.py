"""Codecs in the augmentation: Opus at a low bit rate and a narrow-band phone line (ser_live.dsp.codec)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from ser_live.dsp.codec import opus_round_trip, telephone_line, through_codec
from ser_live.training.augment import Augmenter

SR = 16000
REPO = Path(__file__).resolve().parents[1]


def _signal() -> np.ndarray:
    t = np.arange(2 * SR) / SR
    return (0.3 * np.sin(2 * np.pi * 1000 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
            + 0.1 * np.sin(2 * np.pi * 100 * t) + 0.1 * np.sin(2 * np.pi * 5000 * t)).astype(np.float32)


def _level(y: np.ndarray, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(y))
    freqs = np.fft.rfftfreq(y.shape[0], 1 / SR)
    return float(spectrum[np.abs(freqs - hz) < 10].max())


def test_the_phone_line_keeps_300_to_3400_hz_only():
    y = _signal()
    line = telephone_line(y, sample_rate_hz=SR)
    assert line.shape == y.shape and line.dtype == np.float32
    assert _level(line, 1000) > 0.7 * _level(y, 1000)  # inside the band
    assert _level(line, 5000) < 0.01 * _level(y, 5000)  # above the 8 kHz line's band
    assert _level(line, 100) < 0.2 * _level(y, 100)  # below 300 Hz
    assert np.unique(np.round(np.abs(line[::7]), 6)).size > 50  # mu-law keeps detail at low levels


@pytest.mark.parametrize("kbps", [8.0, 32.0])
def test_opus_round_trip_keeps_the_length_and_the_bit_rate_sets_how_much_is_lost(kbps):
    y = _signal()
    decoded = opus_round_trip(y, sample_rate_hz=SR, bitrate_kbps=kbps)
    assert decoded.shape == y.shape and decoded.dtype == np.float32
    assert _level(decoded, 1000) == pytest.approx(_level(y, 1000), rel=0.2)
    error = {k: np.mean((opus_round_trip(y, sample_rate_hz=SR, bitrate_kbps=k)[1000:] - y[1000:]) ** 2)
             for k in (8.0, 32.0)}
    assert error[8.0] > error[32.0]


def test_an_unknown_codec_is_refused():
    with pytest.raises(ValueError, match="codec must be one of"):
        through_codec(_signal(), "mp3", sample_rate_hz=SR)


def test_the_augmenter_passes_a_share_of_copies_through_a_codec_and_keeps_old_copies_as_they_were():
    plain = Augmenter(n_copies=2)
    assert "codec_share" not in plain.to_dict()  # cache keys of copies made before codecs are unchanged
    assert tuple(dataclasses.replace(plain, codec_share=0.5).to_dict()["codecs"]) == ("opus", "telephone")
    y = _signal()
    only_codec = Augmenter(room_share=0.0, noises=(), gain_db=(0.0, 0.0), pitch_semitones=(0.0, 0.0),
                           tempo=(1.0, 1.0), codec_share=1.0, codecs=("telephone",))
    out = only_codec(y, sample_rate_hz=SR, rng=only_codec.rng("file", 1))
    np.testing.assert_allclose(out, telephone_line(y, sample_rate_hz=SR), atol=1e-6)
    without = dataclasses.replace(only_codec, codec_share=0.0)
    np.testing.assert_allclose(without(y, sample_rate_hz=SR, rng=without.rng("file", 1)), y, atol=1e-6)
    # The codec is drawn after everything else: a shipped augmenter's copy is the same with codecs off.
    a = plain(y, sample_rate_hz=SR, rng=plain.rng("file", 1))
    b = dataclasses.replace(plain, codec_share=0.0)(y, sample_rate_hz=SR, rng=plain.rng("file", 1))
    np.testing.assert_array_equal(a, b)


def test_the_default_model_card_says_which_copies_passed_through_a_codec():
    """The shipped default trains with codec copies (models/model_selection.md), and its card says so."""
    from ser_live.training.recipe import ENCODER_CONFIG

    card = (REPO / "models" / "MODEL_CARD.md").read_text()
    share = ENCODER_CONFIG.augmenter.codec_share
    assert share > 0
    assert (f"2 augmented copies per training recording, {share:.0%} of them then through a codec "
            "(opus or telephone)") in card
