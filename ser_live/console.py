"""The console front-end: the monitor's lines on stdout (``--print``), batch ``--classify`` and ``--list-devices``.

It runs on the application layer (:mod:`ser_live.app`) as the window does; it never imports the window.
Messages for the person go to stderr, one line each; results go to stdout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

from .app import Session, SessionConfig, open_session
from .errors import SerLiveError
from .results import Prediction, StatusEvent

__all__ = ["PROG", "say", "warnings_as_lines", "run_console", "run_classify", "list_devices", "one_blas_thread"]

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
    from .capture import list_input_devices

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
    if not session.adapting:
        return ""
    return (f"; speaker learnt from {session.learnt_s:.0f} s of speech "
            f"(own statistics weigh {session.adaptation_weight:.0%})")


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
    from .output import JsonPrinter, TextPrinter, format_summary

    session = open_session(config, on_status=_print_status)
    if json_lines:
        printer = JsonPrinter(sys.stdout)
    else:
        repeat = 40 if sys.stdout.isatty() else None
        printer = TextPrinter(sys.stdout, session.model.classes, repeat_header_every=repeat)
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
    stops = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {s: signal.signal(s, _stop) for s in stops}
    quiet = contextlib.ExitStack()
    try:
        if not debug:  # PortAudio/ALSA on the microphone, libmpg123 on MP3 files print their own chatter
            from .capture import native_stderr_silenced

            quiet.enter_context(native_stderr_silenced())
        # Open the source before printing anything, so a bad file or device is the only line shown.
        if config.input_path:
            from .audio import audio_info

            audio_info(config.input_path)
            source = config.input_path
        else:
            monitor.listen(config.device)
            source = f"microphone '{monitor.device_name}'"
        say(f"listening to {source}; window {monitor.window_s:g} s, hop {monitor.hop_s:g} s; Ctrl-C to stop")
        if not json_lines:
            for line in printer.legend(width=80 - len(f"{PROG}: ")):  # an 80-column terminal
                say(line)
            print(printer.header(), flush=True)
        if config.input_path:
            monitor.run_file(config.input_path, realtime=config.realtime)
        else:
            while not monitor.wait(0.25):
                if monitor.error is not None:
                    raise monitor.error
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        monitor.stop()
        quiet.close()
        session.close()
    summary = format_summary(monitor.summary) + _adaptation_summary(session)
    if json_lines:
        say(summary)
    else:
        if interrupted and sys.stdout.isatty():
            print()  # the terminal echoed ^C at the start of the line
        print(summary, flush=True)
    return 0


_worker_model = None


def one_blas_thread() -> None:
    """One BLAS thread in this process (and the workers it forks, which already fill the cores)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it, BLAS keeps its default
        return
    import numpy  # noqa: F401 - loads OpenBLAS: threadpoolctl limits only the libraries already loaded

    threadpool_limits(limits=1, user_api="blas")


def _die_with_parent() -> None:
    """In a worker: end when the parent ends (even if it is killed), and leave Ctrl-C to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            pr_set_pdeathsig = 1
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _classify_init(model_path: str | None, trust: bool) -> None:
    """Worker start-up where workers are spawned (not forked): load the model once per worker."""
    global _worker_model
    from .heap import keep_large_blocks_on_heap
    from .model import EmotionModel

    _die_with_parent()
    keep_large_blocks_on_heap()
    one_blas_thread()
    _worker_model = EmotionModel.load(model_path, trust=trust)


def _classify_one(path: str):
    from .pipeline import classify_file

    try:
        return path, classify_file(path, model=_worker_model), None
    except SerLiveError as exc:
        return path, None, str(exc)
    except Exception as exc:  # one bad file must not stop the batch
        return path, None, f"{type(exc).__name__}: {exc}"


class _Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def run_classify(paths: list[str], *, model_name: str | None = None, trust_model: bool = False,
                 json_lines: bool = False, workers: int = 0, debug: bool = False) -> int:
    """``--classify``: one result line per audio file on stdout, files classified in parallel.

    Parameters
    ----------
    paths : list of str
        Files and folders (searched recursively).
    model_name : str, optional
        ``--model``; the shipped default when omitted.
    trust_model : bool
        ``--trust-model``.
    json_lines : bool
        JSON lines instead of tab-separated text.
    workers : int
        Worker processes; 0 means one per core.
    debug : bool
        Let native libraries (libmpg123 on MP3 files) write to stderr; they are silenced otherwise.

    Returns
    -------
    int
        0 when every file was classified, 1 when some could not be, 128 + the signal's number when
        the batch was interrupted (Ctrl-C, SIGTERM, SIGHUP): the workers end with it.
    """
    import json

    from .audio import find_audio_files
    from .model import EmotionModel
    from .output import clip_header, clip_json, format_clip

    model = EmotionModel.load(model_name, trust=trust_model)  # fail early, once, on a bad model
    unreadable: list = []
    files = [str(p) for p in find_audio_files(paths, unreadable)]
    if not files and not unreadable:
        say("no audio files found in " + ", ".join(paths))
        return 1
    workers = workers if workers > 0 else (os.cpu_count() or 1)
    workers = max(1, min(workers, len(files) or 1))
    global _worker_model
    _worker_model = model

    def interrupt(signum, frame):
        raise _Interrupted(signum)

    handled = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {s: signal.signal(s, interrupt) for s in handled}
    quiet = contextlib.ExitStack()
    if not debug:
        from .capture import native_stderr_silenced

        quiet.enter_context(native_stderr_silenced())  # the workers inherit it
    pool = None
    failed = done = 0

    def emit(path: str, result, error: str | None) -> None:
        line = json.dumps(clip_json(path, result, error)) if json_lines else format_clip(path, result, error)
        print(line, flush=True)

    try:
        if not json_lines:
            print(clip_header(), flush=True)
        for folder, reason in unreadable:
            failed += 1
            emit(str(folder), None, f"cannot read this folder ({reason}); its files were not classified")
        if workers == 1:
            results = map(_classify_one, files)
        else:
            import multiprocessing as mp

            if sys.platform.startswith("linux"):
                # Forked workers inherit the model already loaded (and checked) here, and main()'s one BLAS thread.
                pool = mp.get_context("fork").Pool(workers, initializer=_die_with_parent)
            else:
                pool = mp.get_context("spawn").Pool(workers, initializer=_classify_init,
                                                    initargs=(model_name, trust_model))
            results = pool.imap(_classify_one, files, chunksize=max(1, min(16, len(files) // (4 * workers))))
        for path, result, error in results:
            failed += error is not None
            done += 1
            emit(path, result, error)
    except _Interrupted as stop:
        if pool is not None:
            pool.terminate()  # the workers end now, not after their queue
            pool = None
        name = signal.Signals(stop.signum).name
        say(f"interrupted by {name}: classified {done} of {len(files)} files; the rest were not classified")
        return 128 + stop.signum
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if pool is not None:
            pool.close()
            pool.join()
        quiet.close()
    if failed:
        say(f"{failed} of {len(files) + len(unreadable)} {'files' if not unreadable else 'files and folders'} "
            "could not be classified")
    return 1 if failed else 0
