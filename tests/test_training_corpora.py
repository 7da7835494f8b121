"""Corpus readers: every supported naming convention recognised from tiny generated files, labels mapped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser_live.model.emotion_model import EMOTIONS
from ser_live.training.corpora import Utterance, identify, scan_corpora


def _write(path: Path, sample_rate_hz: int = 44100, seconds: float = 0.3) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".opus":  # Opus takes 8, 12, 16, 24 or 48 kHz
        sample_rate_hz = 16000
    t = np.arange(int(sample_rate_hz * seconds)) / sample_rate_hz
    kind = {"format": "OGG", "subtype": "OPUS"} if path.suffix == ".opus" else {}
    sf.write(path, (0.2 * np.sin(2 * np.pi * 180 * t)).astype(np.float32), sample_rate_hz, **kind)
    return path


@pytest.mark.parametrize(
    ("relative", "corpus", "speaker", "label"),
    [
        ("Actor_07/03-01-01-01-01-01-07.wav", "ravdess", "ravdess:07", "neutral"),
        ("Actor_07/03-01-02-02-01-02-07.wav", "ravdess", "ravdess:07", "neutral"),  # calm folds into neutral
        ("Actor_12/03-01-03-01-02-01-12.wav", "ravdess", "ravdess:12", "happy"),
        ("Actor_12/03-01-04-02-02-02-12.wav", "ravdess", "ravdess:12", "sad"),
        ("Actor_12/03-01-05-01-01-01-12.wav", "ravdess", "ravdess:12", "angry"),
        ("Actor_12/03-01-06-01-01-01-12.wav", "ravdess", "ravdess:12", "fearful"),
        ("Actor_12/03-01-07-01-01-01-12.wav", "ravdess", "ravdess:12", "disgust"),
        ("Actor_12/03-01-08-01-01-01-12.wav", "ravdess", "ravdess:12", "surprised"),
        ("f1/neu-f1-b1.wav", "emovo", "emovo:f1", "neutral"),
        ("m2/gio-m2-l3.wav", "emovo", "emovo:m2", "happy"),
        ("m2/tri-m2-n5.wav", "emovo", "emovo:m2", "sad"),
        ("m2/rab-m2-d2.wav", "emovo", "emovo:m2", "angry"),
        ("m2/pau-m2-b2.wav", "emovo", "emovo:m2", "fearful"),
        ("m2/dis-m2-b2.wav", "emovo", "emovo:m2", "disgust"),
        ("m2/sor-m2-b2.wav", "emovo", "emovo:m2", "surprised"),
        ("OAF_angry/OAF_back_angry.wav", "tess", "tess:OAF", "angry"),
        ("YAF_pleasant_surprised/YAF_dog_ps.wav", "tess", "tess:YAF", "surprised"),
        ("YAF_fear/YAF_dog_fear.wav", "tess", "tess:YAF", "fearful"),
        ("OAF_neutral/OAF_bath_neutral.wav", "tess", "tess:OAF", "neutral"),
        ("AudioWAV/1001_DFA_ANG_XX.wav", "crema-d", "crema-d:1001", "angry"),
        ("AudioWAV/1091_IEO_HAP_HI.wav", "crema-d", "crema-d:1091", "happy"),
        ("AudioWAV/1002_TIE_FEA_LO.wav", "crema-d", "crema-d:1002", "fearful"),
        ("AudioData/DC/a01.wav", "savee", "savee:DC", "angry"),
        ("AudioData/JK/sa03.wav", "savee", "savee:JK", "sad"),
        ("AudioData/KL/su15.wav", "savee", "savee:KL", "surprised"),
        ("wav/03a01Fa.wav", "emodb", "emodb:03", "happy"),
        ("wav/16b10Wb.wav", "emodb", "emodb:16", "angry"),
        ("wav/08a02Ab.wav", "emodb", "emodb:08", "fearful"),
        ("wav/11b03Ea.wav", "emodb", "emodb:11", "disgust"),
        ("wav/13a05Tc.wav", "emodb", "emodb:13", "sad"),
        ("wav/15a07Na.wav", "emodb", "emodb:15", "neutral"),
        ("01Neutral/n1-01-01-01-01.flac", "ased", "ased:01", "neutral"),
        ("02Fearful/f2-03-02-02-40.flac", "ased", "ased:40", "fearful"),
        ("03Happy/h3-12-05-01-07.flac", "ased", "ased:07", "happy"),
        ("04Sad/s4-27-01-02-65.flac", "ased", "ased:65", "sad"),
        ("05Angry/a5-02-03-02-33.flac", "ased", "ased:33", "angry"),
        # nEMO and TESS as ../shared/data holds them: Ogg Opus, a folder per speaker.
        ("nemo/EB0/EB0_neutral_13.opus", "nemo", "nemo:EB0", "neutral"),
        ("nemo/WR0/WR0_happiness_2.opus", "nemo", "nemo:WR0", "happy"),
        ("nemo/IC0/IC0_sadness_40.opus", "nemo", "nemo:IC0", "sad"),
        ("nemo/KD0/KD0_anger_1.opus", "nemo", "nemo:KD0", "angry"),
        ("nemo/MK0/MK0_fear_7.opus", "nemo", "nemo:MK0", "fearful"),
        ("nemo/SM0/SM0_surprised_64.opus", "nemo", "nemo:SM0", "surprised"),
        ("tess/OAF/OAF_bite_neutral.opus", "tess", "tess:OAF", "neutral"),
        ("tess/YAF/YAF_dog_ps.opus", "tess", "tess:YAF", "surprised"),
    ],
)
def test_reader_recognises_its_naming(tmp_path: Path, relative: str, corpus: str, speaker: str, label: str) -> None:
    path = _write(tmp_path / relative)
    result = scan_corpora([tmp_path])
    assert result.skipped == {}
    assert result.utterances == [Utterance(path=path, label=label, speaker=speaker, corpus=corpus)]


def test_kaggle_bundle_layout_reads_all_four(tmp_path: Path) -> None:
    files = {
        "Crema/1001_DFA_ANG_XX.wav": ("crema-d", "angry"),
        "Crema/1001_DFA_NEU_XX.wav": ("crema-d", "neutral"),
        "Ravdess/audio_speech_actors_01-24/Actor_01/03-01-04-01-01-01-01.wav": ("ravdess", "sad"),
        "Savee/DC_a01.wav": ("savee", "angry"),
        "Savee/JE_su02.wav": ("savee", "surprised"),
        "Tess/OAF_disgust/OAF_back_disgust.wav": ("tess", "disgust"),
    }
    for relative in files:
        _write(tmp_path / relative)
    result = scan_corpora([tmp_path])
    found = {str(u.path.relative_to(tmp_path)): (u.corpus, u.label) for u in result.utterances}
    assert found == files
    assert {u.speaker for u in result.utterances if u.corpus == "savee"} == {"savee:DC", "savee:JE"}


def test_unknown_and_unusable_files_are_skipped_and_counted(tmp_path: Path) -> None:
    _write(tmp_path / "Actor_01/03-01-05-01-01-01-01.wav")
    _write(tmp_path / "Actor_01/03-02-05-01-01-01-01.wav")  # song, not speech
    _write(tmp_path / "wav/03a01La.wav")  # EmoDB boredom: no product label
    _write(tmp_path / "misc/recording.wav")
    _write(tmp_path / "misc/a01.wav")  # bare SAVEE-like name outside a speaker folder
    (tmp_path / "misc/notes.txt").write_text("not audio")
    result = scan_corpora([tmp_path])
    assert [u.label for u in result.utterances] == ["angry"]
    assert sum(result.skipped.values()) == 4
    assert result.skipped["ravdess: not a speech recording"] == 1
    assert result.skipped["emodb: emotion 'L' has no product label"] == 1
    assert result.skipped["file name follows no known corpus naming"] == 2


def test_every_product_label_is_reachable_and_nothing_else() -> None:
    from ser_live.training.corpora import READERS

    produced = {label for reader in READERS for label in reader.labels.values() if label is not None}
    assert produced == set(EMOTIONS)


def test_nemo_has_no_disgust_and_says_so(tmp_path: Path) -> None:
    """A code the corpus does not document is skipped with its reason, never guessed."""
    result = scan_corpora([_write(tmp_path / "nemo/EB0/EB0_disgust_1.opus").parent])
    assert result.utterances == [] and result.skipped == {"nemo: unknown emotion code 'disgust'": 1}


def test_speakers_never_collide_across_corpora(tmp_path: Path) -> None:
    # RAVDESS actor 03 and EmoDB speaker 03 are different people.
    a = identify(_write(tmp_path / "r/03-01-05-01-01-01-03.wav"))
    b = identify(_write(tmp_path / "e/03a01Wa.wav"))
    assert isinstance(a, Utterance) and isinstance(b, Utterance)
    assert a.speaker != b.speaker


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        scan_corpora([tmp_path / "nope"])


def test_counts_table(tmp_path: Path) -> None:
    for name in ("neu-f1-b1", "neu-f1-b2", "rab-m1-b1"):
        _write(tmp_path / f"{name}.wav")
    assert scan_corpora([tmp_path]).counts() == {"emovo": {"neutral": 2, "angry": 1}}
