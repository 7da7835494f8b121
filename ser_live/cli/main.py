"""Command line: ``ser-live`` opens the window, ``--print`` the console monitor, ``--classify`` batch mode.

This module parses and checks the options, then hands a :class:`~ser_live.app.session.SessionConfig` to one
front-end: the window (:mod:`ser_live.gui`) or the console (:mod:`ser_live.cli.console`). Every failure a
user can cause ends with one line on stderr naming the problem and the fix and a non-zero exit status
(2 for options, 1 for everything else); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

from ..app.session import SMOOTHING
from ..errors import ConfigError, SerLiveError
from .console import PROG, say

__all__ = ["main", "build_parser", "check_mode_options"]


class _OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (exit 2), like every other ser-live error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message} (see '{PROG} --help')\n")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def _smoothing(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if value not in SMOOTHING:
        raise argparse.ArgumentTypeError(f"must be {SMOOTHING.describe()}, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used by the GUI for its defaults)."""
    from .. import __version__

    p = _OneLineErrorParser(
        prog=PROG,
        description="Real-time speech emotion monitor. With no options it opens the monitor window "
        "(or the console monitor when there is no display).",
    )
    mode = p.add_argument_group("mode")
    mode.add_argument("--print", dest="print_mode", action="store_true", help="console monitor: one line per hop")
    mode.add_argument(
        "--classify", nargs="+", metavar="PATH", help="classify files and folders (recursively), one result per file"
    )
    mode.add_argument("--list-devices", action="store_true", help="list audio input devices and exit")
    mode.add_argument("--review", metavar="SESSION",
                      help="review a kept session (its CSV; its audio if kept): the whole timeline, playback")
    src = p.add_argument_group("input")
    src.add_argument(
        "--input", metavar="FILE", help="analyse an audio file instead of the microphone (WAV, FLAC, OGG, ...)"
    )
    src.add_argument("--realtime", action="store_true", help="with --input: play the file at real-time pace")
    src.add_argument("--device", metavar="INDEX|NAME", help="input device: index or case-insensitive name fragment")
    ana = p.add_argument_group("analysis")
    ana.add_argument("--model", metavar="NAME|PATH",
                     help="'light' (the shipped handcrafted-feature model: fast, for slow machines and big batches) "
                          "or a model file (default: the shipped speech-encoder model)")
    ana.add_argument(
        "--window", type=_positive_float, metavar="S", help="analysis window in seconds (default: the model's)"
    )
    ana.add_argument("--hop", type=_positive_float, metavar="S", help="seconds between analyses (default: the model's)")
    ana.add_argument("--smooth", type=_smoothing, default=0.0, metavar="A",
                     help="exponential smoothing of probabilities across hops, 0 (off) to <1 (default 0)")
    spk = p.add_argument_group(
        "speaker adaptation (off by default: learning a voice from all speech learnt a held mood as the voice; "
        "see the README's \"Speaker adaptation\")")
    learn = spk.add_mutually_exclusive_group()
    learn.add_argument("--adapt", action="store_true",
                       help="keep learning your neutral voice from the windows the model already hears as "
                            "neutral; assumes you speak neutrally some of the time")
    learn.add_argument("--no-adapt", action="store_true", help="the plain model, no learnt voice (the default)")
    spk.add_argument("--calibrate", type=_positive_float, metavar="S",
                     help="first read a shown passage in your everyday voice for S seconds of speech (20 is "
                          "enough); that neutral voice is then the reference, frozen unless --adapt")
    spk.add_argument("--profile", metavar="NAME",
                     help="use the voice learnt under this name and save it on exit (kept in the user data "
                          "directory); calibrate once with --calibrate S --profile NAME")
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="JSON lines instead of text")
    out.add_argument("--record", metavar="CSV", help="also write every hop to this CSV file as it happens")
    out.add_argument("--record-audio", action="store_true",
                     help="with --record FILE.csv: also keep the audio heard, as FILE.wav beside it (16-bit, 16 kHz)")
    out.add_argument("--export", metavar="FILE",
                     help="with --review: write the review to FILE (.png, .svg or .pdf) and exit (no display needed)")
    out.add_argument("--lsl", nargs="?", const="ser-live", metavar="NAME",
                     help="publish the predictions as a Lab Streaming Layer stream (type Emotion; name: NAME, "
                          "default ser-live; pip install 'ser-live[lsl]')")
    out.add_argument(
        "--workers", type=int, default=0, metavar="N", help="--classify: worker processes (default: all cores)"
    )
    out.add_argument("--out", metavar="FILE",
                     help="--classify: write results to FILE (CSV, or JSON lines for .jsonl) as they come; "
                          "run the same command again to resume")
    out.add_argument("--scheduler", metavar="ADDRESS",
                     help="--classify on a Dask cluster: tcp://HOST:8786, or local:N worker processes here "
                          "(pip install 'ser-live[cluster]')")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


#: Options by the modes they apply to; giving one to a mode it does not apply to is an error, never ignored.
_LIVE_ONLY = ("input", "realtime", "device", "window", "hop", "smooth", "adapt", "no_adapt", "profile", "calibrate",
              "record", "record_audio", "lsl")
_MODE_OPTIONS: dict[str, frozenset[str]] = {
    "classify": frozenset({"classify", "model", "json", "workers", "out", "scheduler", "debug"}),
    "list_devices": frozenset({"list_devices", "debug"}),
    "review": frozenset({"review", "export", "debug"}),
    "live": frozenset({"print_mode", "model", "json", "debug", *_LIVE_ONLY}),
}


def _option_name(parser: argparse.ArgumentParser, dest: str) -> str:
    for action in parser._actions:  # noqa: SLF001 - argparse offers no public way from dest to flag
        if action.dest == dest and action.option_strings:
            return action.option_strings[-1]
    return dest


def check_mode_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse options that do not apply to the chosen mode (``--classify``, ``--list-devices`` or live).

    Raises
    ------
    ConfigError
        Naming the option and the mode, e.g. "--window does not apply to --classify".
    """
    mode = _mode_of(args)
    given = [dest for dest, value in vars(args).items() if value != parser.get_default(dest)]
    for dest in given:
        if dest not in _MODE_OPTIONS[mode]:
            where = f"does not apply to --{mode.replace('_', '-')}" if mode != "live" else _only_for(dest)
            raise ConfigError(f"{_option_name(parser, dest)} {where}")
    _check_batch_options(args)


def _mode_of(args: argparse.Namespace) -> str:
    """``classify``, ``list_devices``, ``review`` or ``live``; two modes at once are an error."""
    modes = [m for m in ("classify", "list_devices", "review") if getattr(args, m)]
    if len(modes) > 1:
        raise ConfigError(" and ".join(f"--{m.replace('_', '-')}" for m in modes) + " are different modes; give one")
    return modes[0] if modes else "live"


def _only_for(dest: str) -> str:
    """Where a mode-only option goes, said for a live session that was given it."""
    modes = [m for m in ("classify", "review") if dest in _MODE_OPTIONS[m]]
    return "only applies to " + " or ".join(f"--{m}" for m in modes)


def _check_batch_options(args: argparse.Namespace) -> None:
    """``--workers``, ``--out`` and ``--scheduler``: in range, not empty, not both engines at once."""
    if args.workers < 0:
        raise ConfigError("--workers must be 0 (all cores) or more")
    if args.workers and args.scheduler:
        raise ConfigError("--workers sizes the local pool; with --scheduler the cluster's workers do the work")
    for dest in ("out", "scheduler"):
        if getattr(args, dest) is not None and not getattr(args, dest).strip():
            raise ConfigError(f"--{dest} needs a value")


def _gui_available() -> str | None:
    """None when the window can open, else the reason it cannot."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM")):
        if sys.platform.startswith("linux"):
            return "no display found"
    try:
        import pyqtgraph  # noqa: F401
        from PyQt6 import QtWidgets  # noqa: F401
    except ImportError:
        return "the window needs PyQt6 and pyqtgraph ('pip install ser-live[gui]')"
    except Exception as exc:  # a broken Qt install must not stop the console monitor
        return f"Qt cannot start ({exc})"
    return None


def _review(path: str, *, export: str | None, debug: bool) -> int:
    """``--review``: the review window (or, with ``--export``, its picture); without a display, its summary."""
    from ..app.review import load_session
    from .console import print_review

    recording = load_session(path)
    if export is None:
        reason = _gui_available()
        if reason is None:
            from ..gui import display_problem

            reason = display_problem()
        if reason is not None:
            say(f"{reason}: the review view needs a display; here is the session's summary")
            return print_review(recording)
    for problem in recording.problems:  # also in the window's banner; here for the terminal and scripts
        say(f"warning: {problem}")
    from ..gui import run_review

    status = run_review(recording, export=export, debug=debug)
    return status or (1 if recording.problems else 0)


def _run_mode(args: argparse.Namespace, config: Any) -> int:
    """Run the mode the options chose: devices, review, batch, the window, or the console monitor."""
    from .console import list_devices, run_classify, run_console

    if args.list_devices:
        return list_devices()
    if args.review:
        return _review(args.review, export=args.export, debug=args.debug)
    if args.classify:
        return run_classify(args.classify, model_name=args.model, json_lines=args.json, workers=args.workers,
                            scheduler=args.scheduler, out=args.out, debug=args.debug)
    if not args.print_mode and not args.json:
        reason = _gui_available()
        if reason is None:
            from ..gui import display_problem

            problem = display_problem()
            if problem is None:
                from ..gui import run_gui

                return run_gui(config, debug=args.debug)
            reason = f"cannot open the window ({problem})"
        say(f"{reason}: showing the console monitor instead (ser-live --print)")
    return run_console(config, json_lines=args.json, debug=args.debug)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ser-live`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from ..app.runtime import prepare_process
    from ..app.session import SessionConfig
    from .console import warnings_as_lines

    prepare_process()
    if not args.debug:
        warnings_as_lines()
    try:
        check_mode_options(parser, args)
        config = None if (args.classify or args.list_devices or args.review) else SessionConfig.from_args(args)
    except ConfigError as exc:
        parser.error(str(exc))
    try:
        return _run_mode(args, config)
    except BaseException as exc:  # noqa: BLE001 - every ending is one line and an exit status (_exit_status)
        return _exit_status(exc, debug=args.debug)


def _exit_status(exc: BaseException, *, debug: bool) -> int:
    """What the command says and returns when ``exc`` ended it: one line on stderr, never a traceback (unless
    ``debug``)."""
    if isinstance(exc, BrokenPipeError):
        # The reader of our output went away (e.g. '| head'); that is not an error.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep interpreter shutdown quiet
        return 0
    if isinstance(exc, KeyboardInterrupt):
        return 0
    if not isinstance(exc, Exception):  # SystemExit and the like: as they were meant
        raise exc
    if debug:
        traceback.print_exception(type(exc), exc, exc.__traceback__)
    if isinstance(exc, SerLiveError):
        say(f"error: {exc}")
    else:
        say(f"unexpected error: {type(exc).__name__}: {exc} (run with --debug for details, and please report it)")
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
