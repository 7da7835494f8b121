"""Process set-up shared by the front-ends and batch workers: one BLAS thread, ending with the parent."""

from __future__ import annotations

import contextlib
import signal
import sys

__all__ = ["one_blas_thread", "die_with_parent", "end_with_parent"]


def one_blas_thread() -> None:
    """One BLAS thread in this process (and the workers it forks, which already fill the cores)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it, BLAS keeps its default
        return
    import numpy  # noqa: F401 - loads OpenBLAS: threadpoolctl limits only the libraries already loaded

    threadpool_limits(limits=1, user_api="blas")


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
