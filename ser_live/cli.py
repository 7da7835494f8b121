"""Command line: ``ser-live`` opens the window, ``--print`` the console monitor, ``--classify`` batch mode.

Every failure a user can cause ends with one line on stderr naming the problem and the fix and a
non-zero exit status; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from .errors import SerLiveError

__all__ = ["main", "build_parser"]

PROG = "ser-live"


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
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used by the GUI for its defaults)."""
    from . import __version__

    p = argparse.ArgumentParser(
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
        "--trust-model",
        action="store_true",
        help="allow a model file other than the shipped one; model files can run code when loaded",
    )
    ana.add_argument(
        "--window", type=_positive_float, metavar="S", help="analysis window in seconds (default: the model's)"
    )
    ana.add_argument("--hop", type=_positive_float, metavar="S", help="seconds between analyses (default: the model's)")
    ana.add_argument("--smooth", type=_smoothing, default=0.0, metavar="A",
                     help="exponential smoothing of probabilities across hops, 0 (off) to <1 (default 0)")
    spk = p.add_argument_group("speaker adaptation (on by default when the model supports it)")
    spk.add_argument("--no-adapt", action="store_true", help="do not learn the speaker's voice; the plain model")
    spk.add_argument("--profile", metavar="NAME",
                     help="load the speaker's learnt statistics at start and save them on exit "
                          "(kept in the user data directory)")
    spk.add_argument("--calibrate", type=_positive_float, metavar="S",
                     help="first learn S seconds of speech (speak naturally), then show emotions")
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="JSON lines instead of text")
    out.add_argument("--record", metavar="CSV", help="also write every hop to this CSV file as it happens")
    out.add_argument(
        "--workers", type=int, default=0, metavar="N", help="--classify: worker processes (default: all cores)"
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def _err(message: str) -> None:
    sys.stderr.write(f"{PROG}: {message}\n")
    sys.stderr.flush()


def load_model_from_args(args: argparse.Namespace):
    """The model named by ``--model``/``--trust-model``, or the shipped default."""
    from .model import EmotionModel

    return EmotionModel.load(args.model, trust=args.trust_model)


def _monitor_settings(args: argparse.Namespace, model) -> dict[str, Any]:
    window_s = args.window if args.window is not None else model.window_s
    hop_s = args.hop if args.hop is not None else model.hop_s
    if hop_s > window_s:
        raise SerLiveError(f"--hop ({hop_s:g} s) must not be longer than the window ({window_s:g} s)")
    if window_s > 8.0:
        raise SerLiveError(f"--window {window_s:g} s is too long; at most 8 s")
    return {"window_s": window_s, "hop_s": hop_s, "smoothing": args.smooth}


def _speaker_from_args(args: argparse.Namespace, model, hop_s: float):
    """The speaker normaliser to start from (a loaded ``--profile``), its file, and whether to adapt.

    A damaged or incompatible profile is one warning line; the session starts fresh and overwrites it on exit.
    """
    import warnings

    from .adapt import SpeakerNormalizer, profile_path

    # getattr: the GUI may be started with a namespace made before these options existed.
    no_adapt, name = getattr(args, "no_adapt", False), getattr(args, "profile", None)
    adapt = not no_adapt and model.adaptation is not None
    if not adapt:
        if getattr(args, "calibrate", None):
            raise SerLiveError("--calibrate needs speaker adaptation: drop --no-adapt, or use a model that has it"
                               if no_adapt else "--calibrate: this model cannot adapt to the speaker")
        if name and not no_adapt:
            _err("warning: this model cannot adapt to the speaker; --profile is ignored")
        return None, None, False
    speaker = SpeakerNormalizer(model.adaptation.prior, hop_s=hop_s)
    path = None
    if name:
        try:
            path = profile_path(name)
        except ValueError as exc:
            raise SerLiveError(f"--profile: {exc}") from None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loaded = speaker.load(path, feature_version=_feature_version())
        for warning in caught:
            _err(f"warning: {warning.message}; starting afresh")
        if loaded:
            _err(f"speaker profile '{name}': {speaker.heard_s:.0f} s of speech already learnt")
    return speaker, path, True


def _feature_version() -> int:
    from .features import FEATURE_VERSION

    return FEATURE_VERSION


def _save_profile(speaker, path) -> None:
    if speaker is None or path is None:
        return
    try:
        speaker.save(path, feature_version=_feature_version())
    except OSError as exc:
        _err(f"warning: could not save the speaker profile {path} ({exc.strerror or exc})")


def _adaptation_summary(monitor) -> str:
    if not monitor.adapting:
        return ""
    return (f"; speaker learnt from {monitor.adapted_s:.0f} s of speech "
            f"(own statistics weigh {monitor.adaptation_weight:.0%})")


class _Calibration:
    """Holds predictions back until the speaker has been heard for ``seconds`` of speech, printing progress."""

    def __init__(self, monitor, seconds: float, consumer) -> None:
        self.monitor, self.consumer = monitor, consumer
        self.target_s = monitor.adapted_s + seconds
        self.seconds = seconds
        self.done = False
        self._shown = -1

    def __call__(self, prediction) -> None:
        if self.done:
            self.consumer(prediction)
            return
        learnt = self.seconds - max(0.0, self.target_s - self.monitor.adapted_s)
        if learnt >= self.seconds:
            self.done = True
            _err(f"calibration done: learnt {self.seconds:g} s of speech; monitoring")
        elif int(learnt) // 5 != self._shown:  # a line every 5 s of speech, not one per hop
            self._shown = int(learnt) // 5
            _err(f"calibrating: {learnt:.0f} of {self.seconds:g} s of speech heard; speak naturally")


def _list_devices() -> int:
    from .capture import list_input_devices

    devices = list_input_devices()
    if not devices:
        _err("no input devices found; plug in a microphone or use --input FILE")
        return 1
    print(f"{'index':>5}  {'channels':>8}  {'rate_hz':>7}  name")
    for d in devices:
        mark = "  (default)" if d.is_default else ""
        print(f"{d.index:>5}  {d.channels:>8}  {d.default_sample_rate_hz:>7.0f}  {d.name} [{d.host_api}]{mark}")
    return 0


def _run_console(args: argparse.Namespace) -> int:
    from .output import CsvRecorder, JsonPrinter, TextPrinter, format_summary
    from .pipeline import Monitor

    model = load_model_from_args(args)
    settings = _monitor_settings(args, model)
    speaker, profile, adapt = _speaker_from_args(args, model, settings["hop_s"])
    monitor = Monitor(model, **settings, on_status=_err, adapt=adapt, speaker=speaker)
    if args.json:
        printer = JsonPrinter(sys.stdout)
    else:
        printer = TextPrinter(sys.stdout, model.classes, repeat_header_every=40 if sys.stdout.isatty() else None)
    recorder = None

    interrupted = []

    def _stop(signum, frame):
        interrupted.append(signum)
        monitor.request_stop()

    previous = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    quiet = contextlib.ExitStack()
    try:
        if not args.input and not args.debug:
            from .capture import native_stderr_silenced

            quiet.enter_context(native_stderr_silenced())
        # Open the source before printing anything, so a bad file or device is the only line shown.
        if args.input:
            from .audio import audio_info

            audio_info(args.input)
            source = args.input
        else:
            monitor.listen(args.device)
            source = f"microphone '{monitor.device_name}'"
        _err(f"listening to {source}; window {monitor.window_s:g} s, hop {monitor.hop_s:g} s; Ctrl-C to stop")
        if not args.json:
            _err(printer.legend())
            print(printer.header(), flush=True)
        # Added while the worker may already run: harmless, the first window is a hop away.
        monitor.add_callback(_Calibration(monitor, args.calibrate, printer) if args.calibrate else printer)
        if args.record:
            recorder = CsvRecorder(args.record, model.classes)
            monitor.add_callback(recorder)
        if args.input:
            monitor.run_file(args.input, realtime=args.realtime)
        else:
            while not monitor.wait(0.25):
                if monitor.error is not None:
                    raise monitor.error
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        monitor.stop()
        quiet.close()
        if recorder is not None:
            recorder.close()
        _save_profile(speaker, profile)
    summary = format_summary(monitor.summary) + _adaptation_summary(monitor)
    if args.json:
        _err(summary)
    else:
        if interrupted and sys.stdout.isatty():
            print()  # the terminal echoed ^C at the start of the line
        print(summary, flush=True)
    return 0


_worker_model = None


def _one_blas_thread() -> None:
    """One BLAS thread in this process (and the workers it forks, which already fill the cores)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it, BLAS keeps its default
        return
    threadpool_limits(limits=1, user_api="blas")


def _classify_init(model_path: str | None, trust: bool) -> None:
    """Worker start-up where workers are spawned (not forked): load the model once per worker."""
    global _worker_model
    from ._malloc import keep_large_blocks_on_heap
    from .model import EmotionModel

    keep_large_blocks_on_heap()
    _one_blas_thread()
    _worker_model = EmotionModel.load(model_path, trust=trust)


def _classify_one(path: str):
    from .pipeline import classify_file

    try:
        return path, classify_file(path, model=_worker_model), None
    except SerLiveError as exc:
        return path, None, str(exc)
    except Exception as exc:  # one bad file must not stop the batch
        return path, None, f"{type(exc).__name__}: {exc}"


def _run_classify(args: argparse.Namespace) -> int:
    import json

    from .audio import find_audio_files
    from .output import clip_json, format_clip

    model = load_model_from_args(args)  # fail early, once, on a bad model
    files = [str(p) for p in find_audio_files(args.classify)]
    if not files:
        _err("no audio files found in " + ", ".join(args.classify))
        return 1
    workers = args.workers if args.workers > 0 else (os.cpu_count() or 1)
    workers = max(1, min(workers, len(files)))
    global _worker_model
    _worker_model = model
    if workers == 1:
        results = map(_classify_one, files)
        pool = None
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        if sys.platform.startswith("linux"):
            # Forked workers inherit the model already loaded (and checked) here, and main()'s one BLAS thread.
            pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("fork"))
        else:
            pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_classify_init,
                                       initargs=(args.model, args.trust_model))
        results = pool.map(_classify_one, files, chunksize=max(1, min(16, len(files) // (4 * workers))))
    failed = 0
    try:
        for path, result, error in results:
            failed += error is not None
            line = json.dumps(clip_json(path, result, error)) if args.json else format_clip(path, result, error)
            print(line, flush=True)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if failed:
        _err(f"{failed} of {len(files)} files could not be classified")
    return 1 if failed else 0


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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ser-live`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from ._malloc import keep_large_blocks_on_heap

    keep_large_blocks_on_heap()
    # One BLAS thread everywhere: a second thread made the encoder's 2 s window 35 instead of 51 ms, but
    # OpenBLAS's threads spin between calls, and the listening monitor cost 38 % of a core with two.
    _one_blas_thread()
    if args.workers < 0:
        parser.error("--workers must be 0 (all cores) or more")
    if args.realtime and not args.input:
        parser.error("--realtime goes with --input FILE")
    try:
        if args.list_devices:
            return _list_devices()
        if args.classify:
            return _run_classify(args)
        if not args.print_mode and not args.json:
            reason = _gui_available()
            if reason is None:
                from .gui import run_gui

                return run_gui(args)
            _err(f"{reason}: showing the console monitor instead (ser-live --print)")
        return _run_console(args)
    except SerLiveError as exc:
        if args.debug:
            traceback.print_exc()
        _err(f"error: {exc}")
        return 1
    except BrokenPipeError:
        # The reader of our output went away (e.g. '| head'); that is not an error.
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep interpreter shutdown quiet
        except OSError:
            pass
        return 0
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        _err(f"unexpected error: {type(exc).__name__}: {exc} (run with --debug for details, and please report it)")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
