"""The console front-end: the monitor's lines on stdout (``--print``), batch ``--classify`` and ``--list-devices``.

It runs on the application layer (:mod:`ser_live.app.session`) as the window does; it never imports the window.
Messages for the person go to stderr, one line each; results go to stdout.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time

from ..app.runtime import stop_signals_handled
from ..app.session import Session, SessionConfig, open_session
from ..results import Prediction, StatusEvent

__all__ = ["PROG", "say", "warnings_as_lines", "run_console", "run_classify", "list_devices", "print_review"]

PROG = "ser-live"


def say(message: str) -> None:
    """One line for the person on stderr, after the program's name."""
    sys.stderr.write(f"{PROG}: {message}\n")
    sys.stderr.flush()


def warnings_as_lines() -> None:
    """Show Python warnings (a file shorter than its header, ...) as one ``ser-live: warning:`` line each."""
    import warnings

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        say(f"warning: {message}")

    warnings.showwarning = show


def _print_status(event: StatusEvent) -> None:
    """The console's view of a status event: its message, one line on stderr."""
    say(event.message)


def list_devices() -> int:
    """``--list-devices``: print every input device; returns the exit status."""
    from ..app.sources import list_input_devices

    devices = list_input_devices()
    if not devices:
        say("no input devices found; plug in a microphone or use --input FILE")
        return 1
    print(f"{'index':>5}  {'channels':>8}  {'rate_hz':>7}  name")
    for d in devices:
        mark = "  (default)" if d.is_default else ""
        print(f"{d.index:>5}  {d.channels:>8}  {d.default_sample_rate_hz:>7.0f}  {d.name} [{d.host_api}]{mark}")
    return 0


def _adaptation_summary(session: Session) -> str:
    return f"; {session.adaptation_line()}" if session.can_adapt else ""


def run_console(config: SessionConfig, *, json_lines: bool = False, debug: bool = False) -> int:
    """The console monitor (``ser-live --print``): one line per hop on stdout until Ctrl-C or the file's end.

    Parameters
    ----------
    config : SessionConfig
    json_lines : bool
        JSON lines instead of text.
    debug : bool
        Let native libraries write to stderr (they are silenced otherwise).

    Returns
    -------
    int
        The exit status. A :class:`~ser_live.errors.SerLiveError` is raised for the caller to report.
    """
    from ..app.outputs import format_summary

    session = open_session(config, on_status=_print_status)
    printer = _printer(session, json_lines)
    consumers = [printer] + ([session.recorder] if session.recorder is not None else [])

    def deliver(prediction: Prediction) -> None:
        for consumer in consumers:
            consumer(prediction)

    # Predictions start a hop after listening starts, so the header below is printed first.
    monitor = session.monitor(on_prediction=deliver)

    interrupted = []

    def _stop(signum, frame):
        interrupted.append(signum)
        monitor.request_stop()

    # A closed terminal (SIGHUP) ends the session like Ctrl-C: the summary, the record and the profile are kept.
    quiet = contextlib.ExitStack()
    quiet.enter_context(stop_signals_handled(_stop))
    try:
        if not debug:  # PortAudio/ALSA on the microphone, libmpg123 on MP3 files print their own chatter
            from ..app.sources import native_stderr_silenced

            quiet.enter_context(native_stderr_silenced())
        _listen(config, monitor, printer, json_lines)
    finally:
        quiet.close()  # the previous signal handlers again, native chatter back
        monitor.stop()
        session.close()
    summary = format_summary(monitor.summary) + _adaptation_summary(session)
    if json_lines:
        say(summary)
    else:
        if interrupted and sys.stdout.isatty():
            print()  # the terminal echoed ^C at the start of the line
        print(summary, flush=True)
    return 0


def _printer(session: Session, json_lines: bool):
    """The console's writer of predictions: JSON lines, or text with the header repeated on a terminal."""
    from ..app.outputs import JsonPrinter, TextPrinter

    if json_lines:
        return JsonPrinter(sys.stdout)
    repeat = 40 if sys.stdout.isatty() else None
    return TextPrinter(sys.stdout, session.model.classes, repeat_header_every=repeat)


def _listen(config: SessionConfig, monitor, printer, json_lines: bool) -> None:
    """Open the source, say what is heard, then analyse to the file's end or until stopped."""
    # Open the source before printing anything, so a bad file or device is the only line shown.
    if config.input_path:
        from ..app.sources import check_audio_file

        check_audio_file(config.input_path)
        source = config.input_path
    else:
        monitor.listen(config.device)
        source = f"microphone '{monitor.device_name}'"
    runs_on = monitor.model.extractor.runs_on
    say(f"listening to {source}; window {monitor.window_s:g} s, hop {monitor.hop_s:g} s; "
        + (f"{runs_on}; " if runs_on else "") + "Ctrl-C to stop")
    if not json_lines:
        for line in printer.legend(width=80 - len(f"{PROG}: ")):  # an 80-column terminal
            say(line)
        print(printer.header(), flush=True)
    if config.input_path:
        monitor.run_file(config.input_path, realtime=config.realtime)
        return
    while not monitor.wait(0.25):
        if monitor.error is not None:
            raise monitor.error


class _Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def run_classify(paths: list[str], *, model_name: str | None = None, json_lines: bool = False, workers: int = 0,
                 scheduler: str | None = None, out: str | None = None, debug: bool = False) -> int:
    """``--classify``: one result per audio file, on stdout or in ``out``, with progress and a closing summary.

    Parameters
    ----------
    paths : list of str
        Files and folders (searched recursively).
    model_name : str, optional
        ``--model``; the shipped default when omitted.
    json_lines : bool
        JSON lines instead of tab-separated text on stdout.
    workers : int
        Local worker processes; 0 means one per core.
    scheduler : str, optional
        ``--scheduler``: a Dask scheduler's address or ``local:N``.
    out : str, optional
        ``--out``: the results file (resumed when it exists); nothing goes to stdout then.
    debug : bool
        Let native libraries (libmpg123 on MP3 files) write to stderr; they are silenced otherwise.

    Returns
    -------
    int
        0 when every file was classified, 1 when some could not be, 128 + the signal's number when
        the batch was interrupted (Ctrl-C, SIGTERM, SIGHUP): the workers end with it.
    """
    from ..app.scoring import classify_batch

    started = time.monotonic()
    quiet = contextlib.ExitStack()
    if not debug:
        from ..app.sources import native_stderr_silenced

        quiet.enter_context(native_stderr_silenced())  # the workers inherit it
    with quiet:
        batch = classify_batch(paths, model=model_name, workers=workers,
                               scheduler=scheduler, out=out)
        totals = batch.totals
        if totals.to_classify + totals.skipped + totals.unreadable == 0:
            batch.close()
            say("no audio files found in " + ", ".join(paths))
            return 1
        status = _drive(batch, json_lines=json_lines, to_stdout=out is None)
    if status:
        say(f"interrupted by {signal.Signals(status).name}: classified {totals.done - totals.unreadable} of "
            f"{totals.to_classify} files; the rest were not classified"
            + (f" (run the same command again to resume: {out} has every result so far)" if out else ""))
        return 128 + status
    say(_batch_summary(totals, time.monotonic() - started, out))
    return 1 if totals.failed else 0


def _drive(batch, *, json_lines: bool, to_stdout: bool) -> int:
    """Run the batch to its end; 0, or the number of the signal that interrupted it."""
    import json

    from ..app.outputs import clip_header, clip_json, format_clip

    def interrupt(signum, frame):
        raise _Interrupted(signum)

    progress = _progress_bar(batch.totals)
    try:
        with stop_signals_handled(interrupt):
            if to_stdout and not json_lines:
                print(clip_header(), flush=True)
            for item in batch:
                progress.update(item)
                if to_stdout:
                    print(json.dumps(clip_json(item.path, item.result, item.error)) if json_lines
                          else format_clip(item.path, item.result, item.error), flush=True)
    except _Interrupted as stop:
        batch.close(now=True)  # the workers end now, not after their queue
        return stop.signum
    finally:
        progress.close()
        batch.close()
    return 0


class _Progress:
    """A tqdm bar on stderr (files, audio hours, rate, ETA) when stderr is a terminal; nothing otherwise."""

    def __init__(self, totals) -> None:
        from tqdm import tqdm

        self.totals = totals
        self.bar = tqdm(total=totals.to_classify + totals.unreadable, unit="file", file=sys.stderr,
                        dynamic_ncols=True, leave=False)
        self._started = time.monotonic()

    def update(self, item) -> None:
        elapsed_s = max(time.monotonic() - self._started, 1e-9)
        self.bar.set_postfix_str(f"{self.totals.audio_s / 3600:.2f} h audio, "
                                 f"{self.totals.audio_s / elapsed_s:.0f} audio-s/s", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


class _NoProgress:
    def update(self, item) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(totals) -> _Progress | _NoProgress:
    return _Progress(totals) if sys.stderr.isatty() else _NoProgress()


def _batch_summary(totals, wall_s: float, out: str | None) -> str:
    """The closing line: files, audio hours, rate, failures, wall time, what a resume skipped."""
    files = totals.done - totals.unreadable
    parts = [f"classified {files} files ({totals.audio_s / 3600:.2f} h of audio) in {wall_s:.1f} s"
             f" ({totals.audio_s / max(wall_s, 1e-9):.0f} audio-s/s)"]
    if totals.skipped:
        parts.append(f"{totals.skipped} already in {out}")
    if totals.failed:
        what = "files" if not totals.unreadable else "files and folders"
        parts.append(f"{totals.failed} of {totals.done} {what} could not be classified")
    return "; ".join(parts)


def print_review(recording) -> int:
    """``--review`` without a display: the session's summary on stdout, each problem one line on stderr.

    Returns 1 when something could not be read as it should (whatever could be read is summarised), else 0.
    """
    from ..app.review import format_review_summary

    print(format_review_summary(recording), flush=True)
    for problem in recording.problems:
        say(f"warning: {problem}")
    return 1 if recording.problems else 0
