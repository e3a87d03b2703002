# SPDX-License-Identifier: GPL-2.0-only
"""Shared prefixes: a cold boot walked to an op, copied and continued on a what-if, is the what-if's replay."""

from __future__ import annotations

import pytest

from kho_replay.replay.kho.boot import Boot, execute, first_difference, new_boot
from kho_replay.replay.ops import Trace
from kho_replay.replay.strategies import get
from kho_replay.replay.whatif import move_image, sweep
from kho_replay.replay.whatif.params import apply_sets
from kho_replay.replay.whatif.sweep import prefix_boot

from .conftest import A72, B72, log

#: (trace, strategy, --set values, --image-at)
CASES = [
    (A72, "merged", (), 0x141000000),  # where the 7.3 A boot's image sat
    (A72, "baseline", (), 0x141000000),
    (B72, "merged", (("hugepages", "1"),), None),  # drops the second gigantic request
    (B72, "baseline", (("hugepages", "1"),), 0x141000000),
    (B72, "merged", (("kho_scratch", "50%"),), None),  # same ops, another kho_reserve_scratch()
    (B72, "baseline", (("hugepages", "4"),), None),  # more pages than the trace logged: synthesized
]


def _tables(b: Boot) -> tuple[object, ...]:
    mb = b.mb
    return (list(mb.memory), list(mb.reserved), mb.messages, mb.doublings, mb.stats, mb.kho_scratch_only)


def _what_if(t: Trace, sets: tuple[tuple[str, str], ...], image: int | None) -> Trace:
    t = apply_sets(t, sets)
    return t if image is None else move_image(t, image)


@pytest.mark.parametrize(("name", "strategy", "sets", "image"), CASES)
def test_resumed_replay_is_the_replay_from_scratch(name: str, strategy: str,
                                                    sets: tuple[tuple[str, str], ...], image: int | None) -> None:
    base = log(name)
    t = _what_if(base, sets, image)
    k = first_difference(base.ops, t.ops)
    prefix = prefix_boot(base, strategy, [t])
    assert 0 < prefix.at <= k  # something is shared, nothing past the first changed op
    walked = prefix.at
    b = prefix.fork(t)
    assert b is not None and b.at == walked
    b.walk()
    resumed = b.finish()
    ref = new_boot(t, get(strategy), kernel=None, arch=None, kexec=False)
    out = ref.run()
    assert resumed == out
    assert _tables(b) == _tables(ref)
    assert b.messages == ref.messages and b.requests == ref.requests
    # the prefix itself is untouched by the point it was copied for
    assert prefix.at == walked and prefix.trace is base


def test_prefix_stops_at_a_moved_image_and_before_a_changed_hugetlb_loop() -> None:
    t = log(B72)
    moved = move_image(t, 0x141000000)
    assert prefix_boot(t, "merged", [moved]).at == first_difference(t.ops, moved.ops)
    fewer = apply_sets(t, (("hugepages", "1"),))
    p = prefix_boot(t, "merged", [fewer])
    # the hugetlb loop ends earlier on the what-if: the prefix stops before either end
    assert p.at <= min(p.bp.hugetlb_end, p.fork(t).bp.hugetlb_end)  # type: ignore[union-attr]
    assert p.at > p.bp.early - 1


def test_fork_copies_the_state() -> None:
    t = log(A72)
    p = new_boot(t, get("merged"), kernel=None, arch=None, kexec=False)
    p.begin()
    p.walk(20)
    before = _tables(p)
    b = p.fork()
    assert b is not None
    b.walk()
    b.finish()
    assert _tables(p) == before and p.at == 20
    assert b.finish() == execute(t, get("merged"), kernel=None, arch=None, kexec=False).outcome


def test_cold_sweep_same_rows_for_jobs_1_2_and_a_dask_local_cluster() -> None:
    t = log(B72)
    kw = {"strategies": ["baseline", "merged"], "kaslr": 5, "seed": 3, "sets": {"hugepages": ["1", "2", "4"]}}
    one = sweep(t, jobs=1, **kw)
    assert len(one.rows) == 3 * 5 * 2
    assert sweep(t, jobs=2, **kw).rows == one.rows
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        assert sweep(t, scheduler=cluster.scheduler_address, **kw).rows == one.rows
    for r in one.rows[::7]:
        sets = tuple(tuple(s.split("=", 1)) for s in r.params.split())
        o = execute(_what_if(t, sets, r.image_at), get(r.strategy), kernel=None, arch=None, kexec=False).outcome
        assert (r.scratch_reserved, r.lowmem, r.global_, r.gigantic_addrs, r.gigantic_requested, r.max_threads) == (
            o.scratch.enabled, o.scratch.lowmem, o.scratch.global_, tuple(o.gigantic.addrs), o.gigantic.requested,
            o.max_threads)
