"""Error types: every failure a user can cause or meet, each with a message that names the fix."""

from __future__ import annotations

__all__ = [
    "SerLiveError",
    "AudioFileError",
    "DeviceError",
    "ModelError",
    "FeatureConfigError",
    "SessionFileError",
    "ConfigError",
    "BatchError",
    "AudioFileWarning",
]


class SerLiveError(Exception):
    """Base class: the message is one line, fit to print to a user as it is."""


class AudioFileError(SerLiveError):
    """An audio file is missing, unreadable or holds no usable audio."""


class DeviceError(SerLiveError):
    """No usable input device, or the device failed while capturing."""


class ModelError(SerLiveError):
    """A model file is missing, damaged or incompatible with this ser-live."""


class FeatureConfigError(ModelError):
    """A model's feature configuration does not match the feature code."""


class SessionFileError(SerLiveError, OSError):
    """A session file (``--record``, the GUI's CSV) cannot be created or written.

    Also an :class:`OSError`, so code that guards file writes catches it as one.
    """

    def __str__(self) -> str:
        return str(self.strerror)


class ConfigError(SerLiveError, ValueError):
    """Options that are out of range, do not apply to the chosen mode, or contradict each other."""


class BatchError(SerLiveError):
    """A batch cannot go on: its results file belongs to something else, or its cluster cannot be reached."""


class AudioFileWarning(UserWarning):
    """An audio file was read, but not all of it was what it claimed (e.g. shorter than its header says)."""
