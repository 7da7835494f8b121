"""The desktop monitor: a PyQt6 + pyqtgraph window over the same engine as the console, through the app layer.

``ser-live`` (with a display) calls :func:`run_gui` with the :class:`~ser_live.app.session.SessionConfig` of its
options, the same one the console runs on. Importing this package does not import Qt; :func:`run_gui` does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import traceback

from ..app.runtime import stop_signals_handled
from ..app.session import Session, SessionConfig, open_session
from ..errors import ConfigError, ModelError, SerLiveError, SessionFileError
from ..results import StatusEvent

__all__ = ["run_gui", "run_review", "display_problem"]


def _open(config: SessionConfig, on_status) -> tuple[Session | None, str | None]:
    """The session of ``config``, or None and the reason (shown in the window, which opens anyway).

    Settings that do not fit the model fall back to the model's own, and the reason is returned beside
    the session; so does a session file that cannot be created (the session then runs without it).
    """
    try:
        return open_session(config, on_status=on_status), None
    except ModelError as exc:
        return None, str(exc)
    except ConfigError as exc:
        fallback = dataclasses.replace(config, window_s=None, hop_s=None, calibrate_s=None)
        problem = f"{exc}; using the model's window and hop instead" if fallback != config else str(exc)
    except SessionFileError as exc:
        fallback, problem = dataclasses.replace(config, record_path=None, record_audio=False), str(exc)
    try:
        return open_session(fallback, on_status=on_status), problem
    except SerLiveError as exc:
        return None, str(exc)


def display_problem() -> str | None:
    """Why Qt could not reach the X display named by ``$DISPLAY`` (None when it can, or when not X11).

    Qt aborts the whole process when its platform plugin cannot connect, so the X server is
    probed first: the local socket for ``:N``, TCP port 6000+N for ``host:N`` (e.g. SSH forwarding).
    """
    import os
    import re
    import socket

    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM", "xcb") not in ("", "xcb"):
        return None
    if os.environ.get("WAYLAND_DISPLAY") and not os.environ.get("DISPLAY"):
        return None
    display = os.environ.get("DISPLAY", "")
    match = re.fullmatch(r"(?P<host>[^:]*):(?P<number>\d+)(\.\d+)?", display)
    if match is None:
        return f"DISPLAY={display!r} is not an X display name" if display else "DISPLAY is not set"
    host, number = match.group("host"), int(match.group("number"))
    if host in ("", "unix"):
        path = f"/tmp/.X11-unix/X{number}"
        targets = [(socket.AF_UNIX, path), (socket.AF_UNIX, "\0" + path)]
    else:
        targets = [(socket.AF_INET, (host, 6000 + number))]
    for family, address in targets:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.settimeout(2.0)
                probe.connect(address)
                return None
        except OSError:
            continue
    return f"no X server answers on DISPLAY={display}"


def run_gui(config: SessionConfig, *, debug: bool = False) -> int:
    """Open the monitor window on a session and run until it is closed; returns the exit status.

    Parameters
    ----------
    config : SessionConfig
        The same configuration the console runs on (model, input, device, settings, adaptation,
        profile, calibration, session file). A model or settings problem opens the window with the
        message; only a failure to start Qt itself returns non-zero.
    debug : bool
        Print tracebacks of unexpected errors, and let native libraries write to stderr.
    """
    from PyQt6 import QtCore

    app = _application(desktop_file=True)
    early: list[StatusEvent] = []  # what the session reports before the window exists (a loaded profile)
    session, problem = _open(config, early.append)
    window = _main_window(config, session, problem, early)
    # PyQt aborts the process on an exception escaping a slot; show it instead and keep running.
    previous_hook, sys.excepthook = sys.excepthook, _error_reporter(window, debug)
    try:
        status = _exec(app, window, debug)
    finally:
        window.shutdown()
        if session is not None:
            session.on_status = lambda event: sys.stderr.write(f"ser-live: {event.message}\n")
            session.close()
        # Delete the widgets here, on the GUI thread: left to Python's cyclic GC they could be freed
        # from whichever thread happens to trigger a collection, which crashes Qt.
        window.deleteLater()
        QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete.value)
        sys.excepthook = previous_hook
    return int(status)


def _application(*, desktop_file: bool = False):
    """The Qt application (made once), named, with the icon and the theme."""
    from PyQt6 import QtGui, QtWidgets

    from .window import apply_theme, icon_path

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([sys.argv[0] if sys.argv else "ser-live"])
    app.setApplicationName("ser-live")
    if desktop_file:
        app.setDesktopFileName("ser-live")
    app.setWindowIcon(QtGui.QIcon(str(icon_path())))
    apply_theme(app)
    return app


def _main_window(config: SessionConfig, session: Session | None, problem: str | None, early: list[StatusEvent]):
    """The monitor window on the session, shown, its source started (a problem said in its banner)."""
    from .window import MainWindow

    window = MainWindow(session, model_error=problem if session is None else None, realtime=True,
                        input_path=config.input_path, device=config.device)
    if session is not None:
        session.on_status = window.show_status  # from now on, straight to the window (on the GUI thread)
    for event in early:
        window.show_status(event)
    available = window.screen().availableGeometry()  # a small laptop screen gets a smaller window
    window.resize(min(window.width(), available.width()), min(window.height(), available.height()))
    if session is not None and problem:  # bad --window/--hop or session file: said in the banner
        window.settings_note.setText(problem)
        window.banner.show_message(problem, "info")
    window.show()
    if session is not None:
        if config.input_path:
            window.open_file(config.input_path)
        else:
            window.start_microphone()
    return window


def _error_reporter(window, debug: bool):
    """An excepthook that shows an unexpected error in the window (and on stderr) instead of ending the program."""

    def report(exc_type, exc, tb) -> None:
        if debug:
            traceback.print_exception(exc_type, exc, tb)
        sys.stderr.write(f"ser-live: unexpected error: {exc_type.__name__}: {exc}\n")
        window.banner.show_message(
            f"Unexpected error: {exc_type.__name__}: {exc}. The session is autosaved; please report this.", "error"
        )

    return report


def _exec(app, window, debug: bool) -> int:
    """Qt's event loop until the window closes. Ctrl-C in the terminal, SIGTERM, or the terminal closing (SIGHUP)
    close the window cleanly: the session file is closed, not cut, and the learnt voice is saved."""
    from PyQt6 import QtCore

    with contextlib.ExitStack() as quiet:
        quiet.enter_context(stop_signals_handled(lambda *_: window.close()))
        wake = QtCore.QTimer()
        wake.timeout.connect(lambda: None)  # lets the Python signal handlers run while Qt waits
        wake.start(200)
        if not debug:
            # PortAudio/ALSA (and Qt) print C-level chatter on device loss; the window reports it itself.
            from ..app.sources import native_stderr_silenced

            quiet.enter_context(native_stderr_silenced())
        return int(app.exec())


def run_review(recording, *, export: str | None = None, debug: bool = False) -> int:
    """Open the review window on a kept session (:class:`ser_live.app.review.SessionRecording`) until it is closed.

    With ``export`` the window is drawn off screen, written to that file (PNG, SVG or PDF) and closed: no display
    is needed. Returns the exit status.
    """
    import os

    if export is not None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # nothing to show: draw without a display
    from PyQt6 import QtCore

    from .review_window import ReviewWindow

    app = _application()
    quiet = contextlib.ExitStack()
    if not debug:  # Qt's platform chatter ("does not support propagateSizeHints()") is no news for the person
        from ..app.sources import native_stderr_silenced

        quiet.enter_context(native_stderr_silenced())
    window = ReviewWindow(recording)
    window.show()
    try:
        if export is not None:
            written = window.export(export)
            sys.stderr.write(f"ser-live: wrote {written}\n")
            return 0
        wake = QtCore.QTimer()
        wake.timeout.connect(lambda: None)  # lets the Python signal handlers run while Qt waits
        wake.start(200)
        with stop_signals_handled(lambda *_: window.close()):
            return int(app.exec())
    finally:
        quiet.close()
        window.close()
        window.deleteLater()
        QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete.value)
