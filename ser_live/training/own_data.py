"""A user's own labelled recordings: a folder of one sub-folder per class, or a CSV/TSV list, read and checked.

Two layouts are read (see the README, "Your own recordings, your own classes"):

- a **folder** with one sub-folder per class (``DATA/calm/*.wav``); a folder per speaker under each class
  (``DATA/calm/anna/*.wav``) names the speakers, or ``speaker_pattern`` takes them from the file names;
- a **CSV or TSV file** whose rows are ``path,label[,speaker]`` (a header row naming the columns is optional;
  paths are relative to the file's folder).

Speakers decide whether the evaluation can be speaker-independent, so :class:`Dataset` says whether every
recording has one. :func:`label_problems` and :func:`dataset_problems` list what must be fixed before training
means anything (labels that look like one class written two ways, too few recordings or speakers in a class);
recordings that cannot be read are not problems but are listed and skipped (:attr:`Dataset.unreadable`).
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..audio.files import AUDIO_EXTENSIONS, audio_info
from ..errors import AudioFileError, SerLiveError
from ..model.emotion_model import usable_class_name
from .corpora import Utterance

__all__ = ["Dataset", "DatasetError", "MIN_RECORDINGS_PER_CLASS", "read_dataset", "read_folder", "read_table",
           "label_problems", "dataset_problems", "similar_labels", "UNKNOWN_SPEAKER"]

#: Fewer recordings than this in a class is refused: five folds need one per fold, and a class learnt from fewer
#: is a guess about those recordings, not about the class.
MIN_RECORDINGS_PER_CLASS = 5

#: Speaker id prefix of a recording whose speaker is not known (each such recording counts as its own speaker).
UNKNOWN_SPEAKER = "?"

#: Column names a CSV/TSV header may use.
_COLUMNS = {"path": ("path", "file", "filename", "file_path", "audio"), "label": ("label", "class", "emotion"),
            "speaker": ("speaker", "speaker_id", "spk")}


class DatasetError(SerLiveError):
    """The data cannot be trained on; ``problems`` holds one line per thing to fix, ``unreadable`` the recordings
    that would have been left out, with the reason."""

    def __init__(self, problems: Sequence[str], unreadable: Sequence[tuple[Path, str]] = ()) -> None:
        self.problems = list(problems)
        self.unreadable = list(unreadable)  # the recordings that would have been left out
        super().__init__("; ".join(self.problems))


@dataclasses.dataclass
class Dataset:
    """Labelled recordings of a user's own data.

    Attributes
    ----------
    name : str
        What the reports call the data (the folder's or the list's name).
    utterances : list of Utterance
        The readable recordings; ``corpus`` is ``name``, an unknown speaker is ``"?<n>"``.
    unreadable : list of (Path, str)
        Recordings skipped, with the reason (missing, damaged, not audio).
    speakers_known : bool
        Whether every recording has a speaker; without them no evaluation can keep voices apart.
    """

    name: str
    utterances: list[Utterance]
    unreadable: list[tuple[Path, str]]
    speakers_known: bool

    @property
    def classes(self) -> list[str]:
        """The labels, sorted."""
        return sorted({u.label for u in self.utterances})


def read_dataset(source: str | os.PathLike[str], *, speaker_pattern: str | None = None,
                 allow_similar_labels: bool = False) -> Dataset:
    """Read a folder of class folders or a CSV/TSV list (by what ``source`` is) and check it.

    Parameters
    ----------
    source : path-like
    speaker_pattern : str, optional
        For a folder: a regular expression with a ``speaker`` group, matched at the start of each file name
        that is not in a speaker folder.
    allow_similar_labels : bool
        Train even when two labels look like one class written two ways.

    Raises
    ------
    DatasetError
        If ``source`` does not exist or a list cannot be parsed, or with every problem of its labels and classes
        (:func:`label_problems`, :func:`dataset_problems`). Unreadable recordings are not an error: they are
        listed in :attr:`Dataset.unreadable` and left out.
    """
    source = Path(source)
    if source.is_dir():
        return _dataset(source.name, read_folder(source, speaker_pattern=speaker_pattern), allow_similar_labels)
    if source.is_file():
        return _dataset(source.stem, read_table(source), allow_similar_labels)
    raise DatasetError([f"{source} does not exist; give a folder of class folders or a CSV/TSV of path,label"])


def read_folder(root: Path, *, speaker_pattern: str | None = None) -> list[tuple[Path, str, str | None]]:
    """``(path, label, speaker or None)`` of a folder with one sub-folder per class: the speaker is the folder under
    the class, else ``speaker_pattern``'s ``speaker`` group matched at the start of the file name (e.g.
    ``(?P<speaker>[^_]+)_``), else unknown."""
    pattern = _compile_speaker_pattern(speaker_pattern)
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DatasetError([f"{root} has no class folders: put each class's recordings in a folder named after "
                            "the class (or give a CSV/TSV of path,label[,speaker])"])
    rows: list[tuple[Path, str, str | None]] = []
    for class_dir in class_dirs:
        for path in _audio_files(class_dir):
            inner = path.relative_to(class_dir).parts
            speaker = inner[0] if len(inner) > 1 else _speaker_from_name(path, pattern)
            rows.append((path, class_dir.name, speaker))
    return rows


def _compile_speaker_pattern(speaker_pattern: str | None) -> re.Pattern[str] | None:
    if speaker_pattern is None:
        return None
    try:
        pattern = re.compile(speaker_pattern)
    except re.error as exc:
        raise DatasetError([f"--speaker-pattern {speaker_pattern!r} is not a regular expression ({exc})"]) from None
    if "speaker" not in pattern.groupindex:
        raise DatasetError([f"--speaker-pattern {speaker_pattern!r} needs a group named speaker, "
                            "e.g. '(?P<speaker>[^_]+)_'"])
    return pattern


def _speaker_from_name(path: Path, pattern: re.Pattern[str] | None) -> str | None:
    match = pattern.match(path.name) if pattern is not None else None
    return match.group("speaker") if match and match.group("speaker") else None


def _audio_files(folder: Path) -> list[Path]:
    found = []
    for directory, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(directory) / n for n in sorted(names)
                  if Path(n).suffix.lower() in AUDIO_EXTENSIONS and not n.startswith(".")]
    return found


def read_table(path: Path) -> list[tuple[Path, str, str | None]]:
    """``(path, label, speaker or None)`` of a CSV or TSV of ``path,label[,speaker]`` (tab-separated for ``.tsv``,
    else sniffed among ``,`` ``;`` and tab)."""
    delimiter, lines = _table_lines(path)
    columns = _header(lines[0][1])
    if columns is not None:
        lines = lines[1:]
    columns = columns or {"path": 0, "label": 1, "speaker": 2}
    rows = [_table_row(row, columns, path.parent) for _, row in lines]
    problems = [f"{path}, line {number}: expected path{delimiter}label[{delimiter}speaker], got "
                f"{delimiter.join(row)!r}" for (number, row), parsed in zip(lines, rows) if parsed is None]
    if problems:
        raise DatasetError(problems)
    return [row for row in rows if row is not None]


def _table_lines(path: Path) -> tuple[str, list[tuple[int, list[str]]]]:
    """The delimiter of a list and its non-empty rows, numbered as the lines of the file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError([f"{path} cannot be read as a text list of recordings ({exc})"]) from None
    delimiter = "\t" if path.suffix.lower() == ".tsv" else _sniff_delimiter(text)
    lines = [(n, row) for n, row in enumerate(csv.reader(text.splitlines(), delimiter=delimiter), 1)
             if any(cell.strip() for cell in row)]
    if not lines:
        raise DatasetError([f"{path} lists no recordings"])
    return delimiter, lines


def _table_row(row: list[str], columns: dict[str, int], folder: Path) -> tuple[Path, str, str | None] | None:
    """``(path, label, speaker or None)`` of one row of a list, or ``None`` if it lacks the path or the label."""
    if len(row) <= max(columns["path"], columns["label"]):
        return None
    speaker = row[columns["speaker"]].strip() if columns.get("speaker", len(row)) < len(row) else ""
    return folder / row[columns["path"]].strip(), row[columns["label"]], speaker or None


def _sniff_delimiter(text: str) -> str:
    try:
        return csv.Sniffer().sniff(text[:4096], delimiters=",;\t").delimiter
    except csv.Error:
        return ","


def _header(row: list[str]) -> dict[str, int] | None:
    """Column name -> index when ``row`` is a header naming at least the path and label columns."""
    names = [cell.strip().lower() for cell in row]
    found = {key: next(i for i, n in enumerate(names) if n in aliases)
             for key, aliases in _COLUMNS.items() if any(n in aliases for n in names)}
    return found if {"path", "label"} <= set(found) else None


def _dataset(name: str, rows: list[tuple[Path, str, str | None]], allow_similar_labels: bool) -> Dataset:
    """Check ``(path, label, speaker or None)`` rows and make the dataset of the readable ones.

    Raises
    ------
    DatasetError
        With every problem of the labels, the speakers and the classes (:func:`label_problems`,
        :func:`dataset_problems`), and the recordings left out as unreadable.
    """
    readable, unreadable = _readable(rows)
    speakers_known = all(speaker is not None for _, _, speaker in readable)
    problems = label_problems([label for _, label, _ in readable], allow_similar_labels=allow_similar_labels)
    problems += _speaker_problems(readable)
    problems += dataset_problems([label for _, label, _ in readable],
                                 [speaker or "" for _, _, speaker in readable] if speakers_known else None)
    if problems:
        raise DatasetError(problems, unreadable)
    utterances = [Utterance(path=path, label=label, corpus=name,
                            speaker=f"{name}:{speaker if speaker is not None else f'{UNKNOWN_SPEAKER}{index}'}")
                  for index, (path, label, speaker) in enumerate(readable)]
    return Dataset(name=name, utterances=utterances, unreadable=unreadable, speakers_known=speakers_known)


def _readable(rows: list[tuple[Path, str, str | None]]) -> tuple[list[tuple[Path, str, str | None]],
                                                                 list[tuple[Path, str]]]:
    """The rows whose audio file opens, and ``(path, reason)`` of the others."""
    readable, unreadable = [], []
    for path, label, speaker in rows:
        try:
            audio_info(path)
            readable.append((path, label, speaker))
        except AudioFileError as exc:
            unreadable.append((path, str(exc).removeprefix(f"{path}: ")))
    return readable, unreadable


def _speaker_problems(rows: list[tuple[Path, str, str | None]]) -> list[str]:
    """Recordings without a speaker beside recordings with one: no fold could keep their voices apart."""
    unnamed = [path for path, _, speaker in rows if speaker is None]
    if not unnamed or len(unnamed) == len(rows):
        return []
    return [f"{len(unnamed)} recording(s) have no speaker while the others do (e.g. {unnamed[0]}); put them in a "
            "speaker folder (or give their speaker), as no fold can keep unknown voices apart"]


def label_problems(labels: Sequence[str], *, allow_similar_labels: bool = False) -> list[str]:
    """One line per pair of labels that look like one class written two ways (unless ``allow_similar_labels``)
    and per label no output could carry as a class name."""
    counts = collections.Counter(labels)
    pairs = [] if allow_similar_labels else similar_labels(counts)
    problems = [f"labels {a!r} ({counts[a]} recordings) and {b!r} ({counts[b]}) look like one class written two "
                "ways; make them one (or pass --allow-similar-labels if they are different classes)" for a, b in pairs]
    paired = {label for pair in pairs for label in pair}
    problems += [f"label {label!r} cannot be a class name (it must be printable, without commas, quotes or spaces "
                 "at its ends)" for label in sorted(counts) if label not in paired and not usable_class_name(label)]
    return problems


def similar_labels(labels: Iterable[str]) -> list[tuple[str, str]]:
    """Pairs of labels that look like one class written two ways: equal but for case, spaces, ``-`` and ``_``,
    or one edit apart (a letter left out, added, changed or two swapped) when both have four letters or more."""
    names = sorted(set(labels))
    pairs = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if _folded(a) == _folded(b) or (min(len(a), len(b)) >= 4 and _one_edit_apart(a.lower(), b.lower())):
                pairs.append((a, b))
    return pairs


def _folded(label: str) -> str:
    return re.sub(r"[\s_-]+", "", label).casefold()


def _one_edit_apart(a: str, b: str) -> bool:
    """Whether one insertion, deletion, substitution or swap of neighbours turns ``a`` into ``b``."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    start = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    if len(a) != len(b):
        longer, shorter = (a, b) if len(a) > len(b) else (b, a)
        return longer[start + 1:] == shorter[start:]
    swapped = a[start + 1:start + 2] + a[start:start + 1] + a[start + 2:]
    return a[start + 1:] == b[start + 1:] or swapped == b[start:]


def dataset_problems(labels: Sequence[str], speakers: Sequence[str] | None) -> list[str]:
    """What must be fixed before recordings of ``labels`` by ``speakers`` (``None``: not known) can be trained on
    and evaluated, one line each (empty if nothing).

    There must be two classes or more; a class needs :data:`MIN_RECORDINGS_PER_CLASS` recordings and, when
    speakers are known, two speakers or more (from one voice a model learns the voice, and no fold could test the
    class on a voice it has not heard).
    """
    by_class: dict[str, list[str]] = collections.defaultdict(list)
    for label, speaker in zip(labels, speakers if speakers is not None else [""] * len(labels)):
        by_class[label].append(speaker)
    problems = []
    if len(by_class) < 2:
        problems.append(f"a model needs two classes or more; the data has {len(by_class)} "
                        f"({', '.join(by_class) or 'no readable recordings'})")
    for label, members in sorted(by_class.items()):
        if len(members) < MIN_RECORDINGS_PER_CLASS:
            problems.append(f"class {label!r} has {len(members)} usable recording(s); it needs at least "
                            f"{MIN_RECORDINGS_PER_CLASS}")
        if speakers is not None and len(set(members)) == 1:
            problems.append(f"class {label!r} has recordings of one speaker only ({members[0]}); it needs two "
                            "speakers or more, or the model learns that voice instead of the class")
    return problems
