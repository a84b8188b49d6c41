"""The Dask cluster that sweeps, seed sweeps and sharded regressions run on.

Without ``--scheduler`` a :class:`~dask.distributed.LocalCluster` on this machine: one worker
process per core (or ``--workers``), one task at a time each, since every task here (a
training, a simulation, a place and route) keeps a core busy by itself. With ``--scheduler
ADDRESS`` the tasks go to a running cluster (``dask scheduler`` on one machine, ``dask worker
ADDRESS --nthreads 1`` on each of the others). Its workers need a2q installed and the sweep's or the
regression's folder at the same path (a shared file system): tasks hand each other folders,
not data.
"""

from __future__ import annotations

import contextlib
import logging
import os

from a2q.common.errors import A2QError


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None):
    """A connected :class:`~dask.distributed.Client`: to ``scheduler``, or to a local cluster
    of ``workers`` processes (default: one per core) closed when the block ends."""
    from dask.distributed import Client, LocalCluster

    if workers is not None and workers < 1:
        raise A2QError(f"--workers must be at least 1, got {workers}")
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise A2QError(f"--scheduler {scheduler}: no Dask scheduler answers there ({exc}); "
                           "start one with: dask scheduler") from None
        with client:
            yield client
        return
    n = workers or os.cpu_count() or 1
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.CRITICAL) as cluster, \
            Client(cluster) as client:
        yield client


def describe(client) -> str:
    """``N workers at ADDRESS``, for progress lines."""
    info = client.scheduler_info()
    return f"{len(info.get('workers', {}))} Dask workers at {client.scheduler.address}"


def free_threads(client, in_flight: int) -> int:
    """Worker threads not busy with one of this command's ``in_flight`` tasks."""
    return sum(client.nthreads().values()) - in_flight


def run_as_workers_free(client, calls: list[tuple[str, object, tuple]]):
    """Submit each ``(key, function, args)`` of ``calls`` only when a worker thread is free, in
    order; yield ``(key, future)`` as each finishes. A task Dask places on a busy worker waits
    there behind the running one even when another worker is free (work stealing does not
    move it), and one call here may run for half an hour."""
    from dask.distributed import wait

    queue, running = list(calls), {}
    while queue or running:
        for _ in range(max(0, min(len(queue), free_threads(client, len(running))))):
            key, function, args = queue.pop(0)
            running[client.submit(function, *args, key=key, pure=False)] = key
        if not running:  # no worker yet
            client.wait_for_workers(1)
            continue
        done, _ = wait(list(running), return_when="FIRST_COMPLETED")
        for future in done:
            yield running.pop(future), future
