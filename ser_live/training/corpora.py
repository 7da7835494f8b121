"""Corpus readers: recognise emotional-speech files by their corpus's documented naming and map their labels.

Each reader turns one file path into an :class:`Utterance` (path, product label, speaker, corpus)
or says it does not recognise it. :func:`scan_corpora` walks directories, gives every audio file to
the readers in turn and counts what nobody recognised instead of failing, so a stray README or a
song file in a download does not stop training.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..model.emotion_model import display_order, usable_class_name

__all__ = [
    "AUDIO_SUFFIXES",
    "Utterance",
    "ScanResult",
    "CorpusReader",
    "RavdessReader",
    "EmovoReader",
    "AsedReader",
    "NemoReader",
    "TessReader",
    "CremaDReader",
    "SaveeReader",
    "EmoDBReader",
    "READERS",
    "identify",
    "scan_corpora",
]

#: What the scan reads (nEMO and TESS come as Ogg Opus in ../shared/data; libsndfile reads them like any other).
AUDIO_SUFFIXES: frozenset[str] = frozenset({".wav", ".flac", ".ogg", ".opus"})


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One labelled recording.

    Parameters
    ----------
    path : Path
        The audio file.
    label : str
        Class label: one of :data:`ser_live.model.emotion_model.EMOTIONS` for the corpora ser-live knows, any
        usable class name (:func:`~ser_live.model.emotion_model.usable_class_name`) for a user's own data.
    speaker : str
        Speaker id prefixed by the corpus (``"ravdess:07"``) so ids never collide across corpora.
    corpus : str
        Corpus name (``"ravdess"``, ``"emovo"``, ...).
    """

    path: Path
    label: str
    speaker: str
    corpus: str

    def __post_init__(self) -> None:
        if not usable_class_name(self.label):
            raise ValueError(f"label {self.label!r} is not a usable class name (printable, no commas or quotes, "
                             "no spaces at its ends)")


class CorpusReader:
    """Base reader: a corpus name, a file-name pattern and a label map.

    Subclasses set ``corpus``, ``pattern`` (matched against the file stem, case-sensitive unless the
    pattern says otherwise) and ``labels`` (corpus code -> product label, ``None`` for emotions the
    product does not have), and implement :meth:`_fields` when the match needs more than the named
    groups ``emotion`` and ``speaker``.
    """

    corpus: str = ""
    pattern: re.Pattern[str] = re.compile(r"(?!)")
    labels: dict[str, str | None] = {}

    def _fields(self, match: re.Match[str], path: Path) -> tuple[str, str] | None:
        """(emotion code, speaker) from a match, or ``None`` if the file is not a usable one."""
        return match.group("emotion"), match.group("speaker")

    def read(self, path: Path) -> Utterance | str | None:
        """Recognise one file.

        Returns
        -------
        Utterance, str or None
            The utterance; a reason string when the name matches this corpus but the file is not
            usable (e.g. an emotion the product lacks); ``None`` when the name is not this corpus's.
        """
        match = self.pattern.fullmatch(path.stem)
        if match is None:
            return None
        fields = self._fields(match, path)
        if fields is None:
            return f"{self.corpus}: not a speech recording"
        code, speaker = fields
        if code not in self.labels:
            return f"{self.corpus}: unknown emotion code {code!r}"
        label = self.labels[code]
        if label is None:
            return f"{self.corpus}: emotion {code!r} has no product label"
        return Utterance(path=path, label=label, speaker=f"{self.corpus}:{speaker}", corpus=self.corpus)


class RavdessReader(CorpusReader):
    """RAVDESS (Livingstone & Russo 2018): ``MM-VC-EE-II-SS-RR-AA``; audio-only speech is ``03-01``.

    Calm (02) folds into neutral: the product has no calm class and the two sound alike.
    """

    corpus = "ravdess"
    pattern = re.compile(r"(?P<modality>0[1-3])-(?P<channel>0[12])-(?P<emotion>0[1-8])-(?P<intensity>0[12])"
                         r"-(?P<statement>0[12])-(?P<repetition>0[12])-(?P<speaker>\d\d)")
    labels = {"01": "neutral", "02": "neutral", "03": "happy", "04": "sad", "05": "angry", "06": "fearful",
              "07": "disgust", "08": "surprised"}

    def _fields(self, match: re.Match[str], path: Path) -> tuple[str, str] | None:
        # Video files (01, 02) hold no usable audio stream here, and song (channel 02) is not speech.
        if match.group("modality") != "03" or match.group("channel") != "01":
            return None
        return match.group("emotion"), match.group("speaker")


class EmovoReader(CorpusReader):
    """EMOVO (Costantini et al. 2014): ``EMO-SPK-SENT`` with Italian emotion codes, speakers f1–f3, m1–m3."""

    corpus = "emovo"
    pattern = re.compile(r"(?P<emotion>[a-z]{3})-(?P<speaker>[fm]\d)-(?P<sentence>[a-z]\d+)")
    labels = {"neu": "neutral", "gio": "happy", "tri": "sad", "rab": "angry", "pau": "fearful", "dis": "disgust",
              "sor": "surprised"}


class TessReader(CorpusReader):
    """TESS (Toronto emotional speech set): ``OAF_word_emotion`` / ``YAF_word_emotion``; ``ps`` is pleasant surprise."""

    corpus = "tess"
    pattern = re.compile(r"(?P<speaker>OAF|YAF)_(?P<word>[A-Za-z]+)_(?P<emotion>[A-Za-z]+)", re.IGNORECASE)
    labels = {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry", "fear": "fearful",
              "disgust": "disgust", "ps": "surprised", "pleasant_surprise": "surprised", "surprise": "surprised"}

    def _fields(self, match: re.Match[str], path: Path) -> tuple[str, str] | None:
        return match.group("emotion").lower(), match.group("speaker").upper()


class CremaDReader(CorpusReader):
    """CREMA-D: ``ActorID_Sentence_Emotion_Level`` such as ``1001_DFA_ANG_XX`` (actors 1001–1091)."""

    corpus = "crema-d"
    pattern = re.compile(r"(?P<speaker>1\d{3})_(?P<sentence>[A-Z]{3})_(?P<emotion>[A-Z]{3})_(?P<level>[A-Z]{1,2})")
    labels = {"NEU": "neutral", "HAP": "happy", "SAD": "sad", "ANG": "angry", "FEA": "fearful", "DIS": "disgust"}


class SaveeReader(CorpusReader):
    """SAVEE: ``DC/a01`` in the original layout (speaker = folder) or ``DC_a01`` in the Kaggle bundle.

    Emotion prefixes: a anger, d disgust, f fear, h happiness, n neutral, sa sadness, su surprise.
    """

    corpus = "savee"
    pattern = re.compile(r"(?:(?P<speaker>DC|JE|JK|KL)_)?(?P<emotion>a|d|f|h|n|sa|su)(?P<number>\d\d)")
    labels = {"a": "angry", "d": "disgust", "f": "fearful", "h": "happy", "n": "neutral", "sa": "sad",
              "su": "surprised"}
    _speakers = frozenset({"DC", "JE", "JK", "KL"})

    def _fields(self, match: re.Match[str], path: Path) -> tuple[str, str] | None:
        speaker = match.group("speaker") or path.parent.name
        if speaker not in self._speakers:
            return None
        return match.group("emotion"), speaker

    def read(self, path: Path) -> Utterance | str | None:
        # A bare "a01" is only SAVEE inside a speaker folder; elsewhere it is nobody's naming.
        match = self.pattern.fullmatch(path.stem)
        if match is not None and match.group("speaker") is None and path.parent.name not in self._speakers:
            return None
        return super().read(path)


class EmoDBReader(CorpusReader):
    """Berlin EmoDB: ``03a01Fa`` = speaker 03, text a01, emotion letter (German), version.

    W anger (Wut), L boredom (Langeweile, no product label), E disgust (Ekel), A fear (Angst),
    F happiness (Freude), T sadness (Trauer), N neutral.
    """

    corpus = "emodb"
    pattern = re.compile(r"(?P<speaker>\d\d)(?P<text>[ab]\d\d)(?P<emotion>[WLEAFTN])(?P<version>[a-z])")
    labels = {"W": "angry", "L": None, "E": "disgust", "A": "fearful", "F": "happy", "T": "sad", "N": "neutral"}


class AsedReader(CorpusReader):
    """ASED v1, Amharic (Retta et al. 2023): ``xn-yy-aa-gg-bb`` such as ``h3-04-02-01-17``.

    ``x`` is the emotion letter and ``n`` its folder number (n1 neutral, f2 fearful, h3 happy, s4 sad,
    a5 angry), then sentence, repetition, gender (01 female, 02 male) and speaker (01–65).
    """

    corpus = "ased"
    pattern = re.compile(r"(?P<emotion>[nfhsa][1-5])-(?P<sentence>\d\d)-(?P<repetition>\d\d)-(?P<gender>0[12])"
                         r"-(?P<speaker>\d\d)")
    labels = {"n1": "neutral", "f2": "fearful", "h3": "happy", "s4": "sad", "a5": "angry"}


class NemoReader(CorpusReader):
    """nEMO, Polish (Christop 2024): ``SPK_EMOTION_N`` such as ``EB0_anger_1`` (speakers as in its ``data.tsv``).

    Six emotions, in English words: neutral, happiness, sadness, anger, fear and surprised (no disgust).
    """

    corpus = "nemo"
    pattern = re.compile(r"(?P<speaker>[A-Z]{2}\d)_(?P<emotion>[a-z]+)_(?P<sentence>\d+)")
    labels = {"neutral": "neutral", "happiness": "happy", "sadness": "sad", "anger": "angry", "fear": "fearful",
              "surprised": "surprised"}


#: Readers in the order they are tried; the patterns are disjoint, so the order only affects speed.
READERS: tuple[CorpusReader, ...] = (RavdessReader(), EmovoReader(), AsedReader(), NemoReader(), CremaDReader(),
                                     TessReader(), SaveeReader(), EmoDBReader())


def identify(path: str | os.PathLike[str], readers: Sequence[CorpusReader] = READERS) -> Utterance | str:
    """The utterance a file is, or the reason it is skipped."""
    path = Path(path)
    for reader in readers:
        result = reader.read(path)
        if result is not None:
            return result
    return "file name follows no known corpus naming"


@dataclasses.dataclass
class ScanResult:
    """What :func:`scan_corpora` found.

    Attributes
    ----------
    utterances : list of Utterance
        Recognised files, sorted by path.
    skipped : Counter
        Reason -> number of audio files skipped for it.
    """

    utterances: list[Utterance]
    skipped: collections.Counter[str]

    def counts(self) -> dict[str, dict[str, int]]:
        """Corpus -> label -> number of utterances."""
        table: dict[str, dict[str, int]] = {}
        for utt in self.utterances:
            row = table.setdefault(utt.corpus, {})
            row[utt.label] = row.get(utt.label, 0) + 1
        return {corpus: {label: row[label] for label in display_order(sorted(row))} for corpus, row in table.items()}


def scan_corpora(directories: Iterable[str | os.PathLike[str]],
                 readers: Sequence[CorpusReader] = READERS) -> ScanResult:
    """Find every recognised audio file under the given directories.

    Parameters
    ----------
    directories : iterable of path-like
        Corpus roots (any depth; the Kaggle bundle's ``Crema/ Ravdess/ Savee/ Tess/`` works as is).
    readers : sequence of CorpusReader

    Returns
    -------
    ScanResult

    Raises
    ------
    FileNotFoundError
        If a directory does not exist.
    """
    utterances: dict[Path, Utterance] = {}
    skipped: collections.Counter[str] = collections.Counter()
    for directory in directories:
        root = Path(directory)
        if not root.is_dir():
            raise FileNotFoundError(f"data directory {root} does not exist or is not a directory")
        for path in sorted(root.rglob("*")):
            if path.suffix.lower() not in AUDIO_SUFFIXES or not path.is_file():
                continue
            result = identify(path, readers)
            if isinstance(result, Utterance):
                utterances[path.resolve()] = result
            else:
                skipped[result] += 1
    return ScanResult(utterances=sorted(utterances.values(), key=lambda u: str(u.path)), skipped=skipped)
