"""The tests' private PulseAudio microphone: the ``pulse_server`` fixture over :mod:`ser_live.audio.virtual_microphone`.

Use it (module scope) by adding ``pytest_plugins = ["pulse"]`` to a test module. Tests skip with a reason when
``pulseaudio``/``pactl``/``paplay`` are missing (``make test`` installs them).
"""

from __future__ import annotations

import pytest

from ser_live.audio.virtual_microphone import PulseServer, PulseUnavailable, missing_pulse_tools

__all__ = ["PulseServer", "PulseUnavailable", "pulse_server", "require_pulse_tools"]


def require_pulse_tools() -> None:
    """Skip the calling test when the PulseAudio programs are not installed."""
    missing = missing_pulse_tools()
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (apt packages pulseaudio pulseaudio-utils; 'make test' installs them)")


@pytest.fixture(scope="module")
def pulse_server():
    """A running :class:`PulseServer` shared by the tests of one module."""
    require_pulse_tools()
    server = PulseServer()
    try:
        server.start()
    except PulseUnavailable:
        server.stop()
        raise
    try:
        yield server
    finally:
        server.stop()
