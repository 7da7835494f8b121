"""How the process runs the analysis, set by a front-end: the allocator and one BLAS thread; stop signals."""

from __future__ import annotations

from ..process import stop_signals_handled

__all__ = ["prepare_process", "stop_signals_handled"]


def prepare_process() -> None:
    """Keep large array temporaries on the heap and run BLAS on one thread (see :mod:`ser_live.process`).

    One BLAS thread everywhere: a second thread made the encoder's 2 s window 35 instead of 51 ms, but OpenBLAS's
    threads spin between calls, and the listening monitor cost 38 % of a core with two.
    """
    from ..heap import keep_large_blocks_on_heap
    from ..process import one_blas_thread

    keep_large_blocks_on_heap()
    one_blas_thread()
