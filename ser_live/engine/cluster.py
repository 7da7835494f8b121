"""The Dask engine of batch scoring: files classified on a distributed cluster's workers, results back in order.

Optional (``pip install 'ser-live[cluster]'``). Each worker process loads the model once (:class:`ModelPlugin`);
workers read the files from paths they share with the client, and only the client writes results. A worker that
dies has its files run again elsewhere; a file whose worker died twice is a failed result, never the end of the
batch. ``local:N`` starts a cluster of N worker processes on this machine, on the loopback interface only.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import BatchError
from .batch_worker import FileResult, ModelSpec, classify_paths

__all__ = ["connect", "DaskEngine", "ModelPlugin", "CONNECT_TIMEOUT_S"]

#: How long to wait for a scheduler before saying it cannot be reached.
CONNECT_TIMEOUT_S = 5.0
#: Files per task: a task costs the scheduler and the client about 10 ms here, as much as a short file with the
#: light model, so files travel in small groups (a group whose worker died twice is retried file by file).
FILES_PER_TASK = 32
_LOCAL = "local:"

try:
    from distributed import WorkerPlugin
except ImportError:  # pragma: no cover - connect() says which extra to install
    WorkerPlugin = object  # type: ignore[misc,assignment]


class ModelPlugin(WorkerPlugin):
    """Loads the model once in each worker process as it joins, with one BLAS thread (its one task thread fills
    the core); workers of a local cluster also end with the process that started them."""

    name = "ser-live-model"

    def __init__(self, spec: ModelSpec, *, die_with_parent: bool = False) -> None:
        self.spec = spec
        self.die_with_parent = die_with_parent

    def setup(self, worker: Any) -> None:
        from ..process import start_worker

        start_worker(with_parent=self.die_with_parent)
        self.spec.load()


def connect(scheduler: str, spec: ModelSpec) -> DaskEngine:
    """A :class:`DaskEngine` on the scheduler at ``scheduler`` (``tcp://host:port``) or on ``local:N`` workers.

    Raises :class:`~ser_live.errors.BatchError` in one line when Dask is not installed, ``local:N`` is malformed,
    or the scheduler does not answer within :data:`CONNECT_TIMEOUT_S`.
    """
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise BatchError("--scheduler needs Dask: pip install 'ser-live[cluster]'") from exc
    cluster = None
    if scheduler.startswith(_LOCAL):
        n_workers = _local_workers(scheduler)
        logging.getLogger("distributed").setLevel(logging.CRITICAL)  # a restarted worker is the engine's business
        # The scheduler runs in this process: a file whose worker died twice fails instead of killing more workers.
        with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None, silence_logs=logging.CRITICAL)
    try:
        client = Client(cluster if cluster is not None else scheduler, timeout=CONNECT_TIMEOUT_S,
                        set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        if cluster is not None:
            cluster.close()
        raise BatchError(f"cannot reach the Dask scheduler at {scheduler} ({_reason(exc)})") from exc
    client.register_plugin(ModelPlugin(spec, die_with_parent=cluster is not None))
    return DaskEngine(client, spec, cluster=cluster)


def _local_workers(scheduler: str) -> int:
    text = scheduler[len(_LOCAL):]
    if not text.isdigit() or int(text) < 1:
        raise BatchError(f"--scheduler {scheduler}: give local:N with N worker processes, at least 1 (local:2)")
    return int(text)


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _groups(paths: Iterable[str], size: int) -> Iterator[list[str]]:
    group: list[str] = []
    for path in paths:
        group.append(path)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


class DaskEngine:
    """Files classified on a Dask cluster's workers; results in the order of the files.

    Files go in groups of :data:`FILES_PER_TASK`, two groups per worker thread ahead, so the listing is read lazily
    and the client's memory stays flat.
    """

    def __init__(self, client: Any, spec: ModelSpec, *, cluster: Any = None) -> None:
        self.client = client
        self.spec = spec
        self.cluster = cluster

    def _tasks_in_flight(self) -> int:
        """Two tasks per worker thread (one running, one waiting), at least four: the listing is read lazily."""
        threads = sum(w.get("nthreads", 1) for w in self.client.scheduler_info()["workers"].values())
        return max(4, 2 * threads)

    def map(self, paths: Iterable[str], *, files_per_task: int = FILES_PER_TASK) -> Iterator[FileResult]:
        """Classify ``paths`` on the cluster; one :class:`FileResult` each, in order."""
        window = self._tasks_in_flight()
        in_flight: collections.deque = collections.deque()
        for group in _groups(paths, files_per_task):
            in_flight.append((group, self.client.submit(classify_paths, group, self.spec, pure=False)))
            if len(in_flight) >= window:
                yield from self._results(*in_flight.popleft())
        while in_flight:
            yield from self._results(*in_flight.popleft())

    def _results(self, group: list[str], future: Any) -> list[FileResult]:
        from distributed import KilledWorker

        try:
            return future.result()
        except KilledWorker:
            if len(group) > 1:  # find the file that kills workers: the others are classified
                return [result for path in group for result in self._results([path], self._submit_one(path))]
            return [FileResult(group[0], None, "the worker classifying it died twice; classified nowhere")]
        except Exception as exc:
            if self.client.status not in ("running", "connecting"):
                raise BatchError(f"lost the Dask scheduler ({_reason(exc)}); run the same command again "
                                 "with --out to resume") from exc
            return [FileResult(path, None, f"the cluster could not classify it ({_reason(exc)})") for path in group]
        finally:
            future.release()

    def _submit_one(self, path: str) -> Any:
        return self.client.submit(classify_paths, [path], self.spec, pure=False)

    def close(self, *, now: bool = False) -> None:
        """Disconnect (and stop a local cluster); safe to call twice."""
        client, self.client = self.client, None
        if client is not None:
            client.close(timeout=2 if now else 10)
        cluster, self.cluster = self.cluster, None
        if cluster is not None:
            cluster.close(timeout=2 if now else 10)
