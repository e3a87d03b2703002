# SPDX-License-Identifier: GPL-2.0-only
"""map_points gives the serial answer, in input order, on a pool and on a Dask LocalCluster."""

import pytest

from kho_replay.replay.errors import KhoReplayError
from kho_replay.replay.parallel import map_points


def _square_minus(x: int) -> int:
    return x * x - 7


def test_pool_matches_serial() -> None:
    items = list(range(-50, 50))
    serial = map_points(_square_minus, items, jobs=1)
    assert serial == [x * x - 7 for x in items]
    seen: list[int] = []
    assert map_points(_square_minus, items, jobs=2, progress=seen.append) == serial
    assert seen[-1] == len(items)


def test_dask_local_cluster_matches_serial() -> None:
    distributed = pytest.importorskip("distributed")
    items = list(range(30))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        got = map_points(_square_minus, items, scheduler=cluster.scheduler_address)
        seen: list[int] = []  # the command line always asks for progress (its bar)
        assert map_points(_square_minus, items, scheduler=cluster.scheduler_address, progress=seen.append) == got
    assert got == map_points(_square_minus, items, jobs=1)
    assert seen == list(range(1, len(items) + 1))


def test_unreachable_scheduler_is_one_error() -> None:
    pytest.importorskip("distributed")
    with pytest.raises(KhoReplayError, match="cannot reach Dask scheduler"):
        map_points(_square_minus, [1], scheduler="tcp://127.0.0.1:1", connect_timeout=1)
