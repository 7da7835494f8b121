"""The desktop monitor: a PyQt6 + pyqtgraph window over the same :class:`~ser_live.pipeline.Monitor` as the console.

``ser-live`` (with a display) calls :func:`run_gui` with its parsed arguments. Importing this
package does not import Qt; :func:`run_gui` does.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import traceback

__all__ = ["run_gui"]


def _load(args: argparse.Namespace):
    """The model and the settings from the arguments, or None and the reason (shown in the window)."""
    from ..cli import _monitor_settings, load_model_from_args
    from ..errors import SerLiveError
    from .runner import Settings

    try:
        model = load_model_from_args(args)
    except SerLiveError as exc:
        return None, None, str(exc)
    try:
        settings = Settings(**_monitor_settings(args, model))
    except SerLiveError as exc:
        return model, None, f"{exc}; using the model's window and hop instead"
    return model, settings, None


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


def run_gui(args: argparse.Namespace) -> int:
    """Open the monitor window and run until it is closed; returns the exit status.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``ser-live`` arguments (``input``, ``device``, ``model``, ``trust_model``,
        ``window``, ``hop``, ``smooth``, ``record``). A model or settings problem opens the window
        with the message; only a failure to start Qt itself returns non-zero.
    """
    problem = display_problem()
    if problem is not None:
        from ..cli import _err, _run_console

        _err(f"cannot open the window ({problem}): showing the console monitor instead (ser-live --print)")
        return _run_console(args)

    from PyQt6 import QtCore, QtGui, QtWidgets

    from .window import MainWindow, apply_theme, icon_path

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([sys.argv[0] if sys.argv else "ser-live"])
    app.setApplicationName("ser-live")
    app.setDesktopFileName("ser-live")
    app.setWindowIcon(QtGui.QIcon(str(icon_path())))
    apply_theme(app)
    model, settings, problem = _load(args)
    window = MainWindow(
        model,
        settings,
        model_error=problem if model is None else None,
        device=args.device,
        record_path=args.record,
        realtime=True,
    )
    available = window.screen().availableGeometry()  # a small laptop screen gets a smaller window
    window.resize(min(window.width(), available.width()), min(window.height(), available.height()))
    if model is not None and problem:  # bad --window/--hop: said next to the settings and in the banner
        window.settings_note.setText(problem)
        window.banner.show_message(problem, "info")
    window.show()
    speaker = profile = None
    if window.runner is not None:  # speaker adaptation and --profile, as in the console
        from ..cli import _speaker_from_args
        from ..errors import SerLiveError

        try:
            speaker, profile, window.runner.adapt = _speaker_from_args(args, model, window.runner.settings.hop_s)
            window.runner.speaker = speaker
        except SerLiveError as exc:
            window.runner.adapt = False
            window.banner.show_message(str(exc), "info")
        window._refresh_controls()
    if model is not None:
        if args.input:
            window.open_file(args.input)
        else:
            window.start_microphone()

    # PyQt aborts the process on an exception escaping a slot; show it instead and keep running.
    def report(exc_type, exc, tb) -> None:
        if getattr(args, "debug", False):
            traceback.print_exception(exc_type, exc, tb)
        sys.stderr.write(f"ser-live: unexpected error: {exc_type.__name__}: {exc}\n")
        window.banner.show_message(
            f"Unexpected error: {exc_type.__name__}: {exc}. The session is autosaved; please report this.", "error"
        )

    previous_hook, sys.excepthook = sys.excepthook, report
    # Ctrl-C in the terminal closes the window cleanly (the session file is closed, not cut).
    previous = {s: signal.signal(s, lambda *_: window.close()) for s in (signal.SIGINT, signal.SIGTERM)}
    wake = QtCore.QTimer()
    wake.timeout.connect(lambda: None)  # lets the Python signal handlers run while Qt waits
    wake.start(200)
    quiet = contextlib.ExitStack()
    try:
        if not getattr(args, "debug", False):
            # PortAudio/ALSA (and Qt) print C-level chatter on device loss; the window reports it itself.
            from ..capture import native_stderr_silenced

            quiet.enter_context(native_stderr_silenced())
        status = app.exec()
    finally:
        quiet.close()
        window.shutdown()
        if window.runner is not None and profile is not None:
            from ..cli import _save_profile

            _save_profile(window.runner.speaker, profile)
        # Delete the widgets here, on the GUI thread: left to Python's cyclic GC they could be freed
        # from whichever thread happens to trigger a collection, which crashes Qt.
        window.deleteLater()
        QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete.value)
        sys.excepthook = previous_hook
        for s, handler in previous.items():
            signal.signal(s, handler)
    return int(status)
