"""Process set-up, one place for it: BLAS threads, worker start-up, ending with the parent, and stop signals."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["STOP_SIGNALS", "one_blas_thread", "blas_threads", "start_worker", "die_with_parent", "end_with_parent",
           "stop_signals_handled"]

#: What ends a session cleanly: Ctrl-C, SIGTERM, and a closed terminal (SIGHUP, where there is one).
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM) + (
    (signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ())


def one_blas_thread() -> None:
    """One BLAS thread in this process (and the workers it forks, which already fill the cores)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it, BLAS keeps its default
        return
    import numpy  # noqa: F401 - loads OpenBLAS: threadpoolctl limits only the libraries already loaded

    threadpool_limits(limits=1, user_api="blas")


@contextlib.contextmanager
def blas_threads(n: int = 1) -> Iterator[None]:
    """At most ``n`` BLAS threads meanwhile (training's fits and predictions: small matrices, shared cores)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n, user_api="blas"):
        yield


def start_worker(*, with_parent: bool = True) -> None:
    """A worker process's start-up, for every pool (batch scoring, Dask workers, training's extraction): the
    parent's allocator setting, one BLAS thread (the workers already fill the cores), and, ``with_parent``, ending
    with the parent (:func:`die_with_parent`)."""
    from .heap import keep_large_blocks_on_heap

    if with_parent:
        die_with_parent()
    keep_large_blocks_on_heap()
    one_blas_thread()


def die_with_parent() -> None:
    """In a worker: end when the parent ends (even if it is killed), and leave Ctrl-C to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
    end_with_parent()


def end_with_parent() -> None:
    """Have the kernel send this process SIGTERM when its parent ends (Linux; elsewhere nothing), so a worker or a
    helper server started by a process that was killed is not left behind."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            pr_set_pdeathsig = 1
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@contextlib.contextmanager
def stop_signals_handled(handler: Callable[[int, Any], Any]) -> Iterator[None]:
    """Run ``handler(signum, frame)`` on any of :data:`STOP_SIGNALS` meanwhile; the previous handlers after."""
    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
