# SPDX-License-Identifier: GPL-2.0-only
"""Run independent replays in parallel: a process pool on one machine, Dask distributed past it.

Sweeps (many what-ifs of one trace) and fleets (many hosts) are lists of
independent points.  :func:`map_points` runs a picklable function over them and
returns the results in input order, whatever ran where, so output is the same
for ``jobs=1``, a pool of any size and a Dask cluster.  Dask is an optional
extra (``pip install 'kho-replay[dask]'``); nothing here distributes work by hand.

>>> map_points(abs, [-3, 1, -2], jobs=1)
[3, 1, 2]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from .errors import KhoReplayError

__all__ = ["default_jobs", "map_points"]

T = TypeVar("T")
R = TypeVar("R")


def default_jobs() -> int:
    """Every core this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def map_points(
    func: Callable[[T], R],
    items: Iterable[T],
    *,
    jobs: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[int], None] | None = None,
    chunksize: int | None = None,
    connect_timeout: float = 10.0,
) -> list[R]:
    """``[func(x) for x in items]``, in input order, on *jobs* processes or a Dask scheduler.

    *scheduler* is a Dask distributed address (``tcp://host:8786``) or a
    ``distributed.Client``/``LocalCluster`` address; without it *jobs* processes
    of this machine run the points (``jobs=1``: in this process, no pool).
    *progress* is called with the number of points finished so far.

    :raises KhoReplayError: when *scheduler* is given and Dask is not installed.
    """
    points: Sequence[T] = list(items)
    if scheduler is not None:
        return _dask_map(func, points, scheduler, progress, connect_timeout)
    jobs = default_jobs() if jobs is None else max(1, jobs)
    if jobs == 1 or len(points) <= 1:
        out: list[R] = []
        for x in points:
            out.append(func(x))
            if progress:
                progress(len(out))
        return out
    # Large chunks keep pickling overhead small; a few per worker keep them all busy to the end.
    chunk = chunksize or max(1, len(points) // (jobs * 8))
    results: list[R] = []
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for r in pool.map(func, points, chunksize=chunk):
            results.append(r)
            if progress:
                progress(len(results))
    return results


def _dask_map(func: Callable[[T], R], points: Sequence[T], scheduler: str,
              progress: Callable[[int], None] | None, connect_timeout: float) -> list[R]:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise KhoReplayError("--scheduler needs Dask distributed: pip install 'kho-replay[dask]'") from None
    try:
        client = Client(scheduler, set_as_default=False, timeout=connect_timeout)
    except (OSError, TimeoutError) as e:
        raise KhoReplayError(f"cannot reach Dask scheduler {scheduler}: {e}") from None
    try:
        futures = client.map(func, points, pure=False)
        if progress:
            for n, _ in enumerate(as_completed(futures, loop=client.loop), 1):  # the client is not the default
                progress(n)
        return client.gather(futures)
    finally:
        client.close()
