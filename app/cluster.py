"""The Dask cluster that sweeps, seed sweeps and sharded regressions run on.

Without ``--scheduler`` a :class:`~dask.distributed.LocalCluster` on this machine: one worker
process per core (or ``--workers``), one task at a time each, since every task here (a
training, a simulation, a place and route) keeps a core busy by itself. With ``--scheduler
ADDRESS`` the tasks go to a running cluster (``dask scheduler`` on one machine, ``dask worker
ADDRESS --nthreads 1`` on each of the others; ``DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION=1.0``
beside the scheduler hands a worker its next task only when it is free, as the local cluster
does). Its workers need a2q installed and the sweep's or the
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
    import dask

    n = workers or os.cpu_count() or 1
    # A worker takes its next task when it finishes one, not before: a task queued behind a
    # 15-minute place and route would wait for it while another worker idles.
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}), \
            LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                         dashboard_address=":0", silence_logs=logging.CRITICAL) as cluster, \
            Client(cluster) as client:
        yield client


def describe(client) -> str:
    """``N workers at ADDRESS``, for progress lines."""
    info = client.scheduler_info()
    return f"{len(info.get('workers', {}))} Dask workers at {client.scheduler.address}"
