"""What a front-end may listen to: the input devices, audio files, and the native libraries' chatter kept quiet.

Thin functions over :mod:`ser_live.audio`, so the console and the window reach capture and files only through the
app layer; each imports capture when called, so a front-end's start-up stays light. :data:`AUDIO_EXTENSIONS`: the
endings taken from folders and offered by the window's file dialog.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from ..audio.files import AUDIO_EXTENSIONS

if TYPE_CHECKING:
    from ..audio.capture import InputDevice

__all__ = ["AUDIO_EXTENSIONS", "list_input_devices", "choose_input_device", "native_stderr_silenced",
           "check_audio_file"]

def list_input_devices() -> list[InputDevice]:
    """Every input device PortAudio sees (an empty list when there is none)."""
    from ..audio import capture

    return capture.list_input_devices()


def choose_input_device(devices: Sequence[InputDevice], spec: int | str | None) -> InputDevice:
    """The device ``--device`` (or the window's preselection) means, among ``devices`` (see
    :func:`ser_live.audio.capture.choose_input_device`)."""
    from ..audio import capture

    return capture.choose_input_device(devices, spec)


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Silence what C libraries (PortAudio, ALSA, Qt's platform plugin, libmpg123) print meanwhile."""
    from ..audio import capture

    with capture.native_stderr_silenced():
        yield


def check_audio_file(path: str | os.PathLike[str]) -> None:
    """Raise :class:`~ser_live.errors.AudioFileError`, with the file's own one-line reason, unless it is audio."""
    from ..audio.files import audio_info

    audio_info(path)
