# SPDX-License-Identifier: GPL-2.0-only
"""Shared prefixes: a cold boot walked to an op, copied and continued on a what-if, is the what-if's replay;
with --kexec, so is the KHO boot after it, forked from its own prefix with the point's handover."""

from __future__ import annotations

import pytest

from kho_replay.replay.kho.boot import (
    Boot,
    Replayed,
    execute,
    first_difference,
    handover,
    new_boot,
    plain_kexec,
    replay_kexec,
)
from kho_replay.replay.ops import Trace
from kho_replay.replay.strategies import get
from kho_replay.replay.whatif import move_image, sweep
from kho_replay.replay.whatif.params import apply_sets
from kho_replay.replay.whatif.sweep import points, prefix_boot, run_point

from .conftest import A72, B72, B73, IMAGE73, log

#: (trace, strategy, --set values, --image-at)
CASES = [
    (A72, "merged", (), 0x141000000),  # where the 7.3 A boot's image sat
    (A72, "baseline", (), 0x141000000),
    (B72, "merged", (("hugepages", "1"),), None),  # drops the second gigantic request
    (B72, "baseline", (("hugepages", "1"),), 0x141000000),
    (B72, "merged", (("kho_scratch", "50%"),), None),  # same ops, another kho_reserve_scratch()
    (B72, "baseline", (("hugepages", "4"),), None),  # more pages than the trace logged: synthesized
    (B73, "merged", (("hugetlb_cma", "2G"),), None),  # hugetlb_cma_reserve() replaces the gigantic pages
    (B73, "baseline", (("hugetlb_cma", "1G"), ("hugetlb_cma_only", "1")), None),  # pages carved from the area
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


#: (trace, strategy, --set values, --image-at, --preserve) for KHO boots
KEXEC_CASES = [
    (B72, "merged", (("kho_scratch", "150%"),), None, "hugetlb"),  # only kho_reserve_scratch() differs
    (B72, "baseline", (("kho_scratch", "1G,1G,1G"),), None, "hugetlb"),  # 7.2 baseline: scratch now fits
    (B72, "ext-scratch", (("hugepages", "1"),), 0x141000000, "hugetlb"),
    (B72, "preserve-hugetlb", (("hugepages", "4"),), None, "memfd:64M"),
    (B73, "merged", (("kho_scratch", "50%"),), None, "log"),  # the real second kernel's preserved set
    (B73, "baseline", (), IMAGE73[B73] - 0x40000000, "hugetlb"),
    (A72, "merged", (("kho", "off"),), None, "hugetlb"),  # no scratch: a plain kexec after it
    (B73, "merged", (("hugetlb_cma", "1G"),), None, "hugetlb"),  # a CMA area in both kernels
]


def _second(name: str, preserve: str) -> Trace | None:
    return log(name, kernel=2) if preserve == "log" else None


@pytest.mark.parametrize(("name", "strategy", "sets", "image", "preserve"), KEXEC_CASES)
def test_resumed_kexec_is_the_kexec_from_scratch(name: str, strategy: str, sets: tuple[tuple[str, str], ...],
                                                 image: int | None, preserve: str) -> None:
    base = log(name)
    second = _second(name, preserve)
    t = _what_if(base, sets, image)
    s = get(strategy)
    cold_prefix = prefix_boot(base, strategy, [t])
    kho_prefix = prefix_boot(base, strategy, [t], kexec=True)
    assert kho_prefix.kexec and 0 < kho_prefix.at == min(cold_prefix.at, kho_prefix.first_hook())
    b = cold_prefix.fork(t)
    assert b is not None
    b.walk()
    cold = Replayed(b.finish(), b.mb)
    inputs = handover(cold, s, preserve=preserve, second=second)
    # from scratch: the two boots replay_kexec() runs, kept for their tables and messages
    ref1 = new_boot(t, s, kernel=None, arch=None, kexec=False)
    ref_cold = Replayed(ref1.run(), ref1.mb)
    assert cold.outcome == ref_cold.outcome and _tables(b) == _tables(ref1)
    assert b.messages == ref1.messages and b.requests == ref1.requests
    ref_inputs = handover(ref_cold, s, preserve=preserve, second=second)
    assert inputs == ref_inputs
    public = replay_kexec(t, s, preserve=preserve, second=second)
    assert public[0].outcome == cold.outcome
    if inputs is None:
        assert not cold.outcome.scratch.enabled
        assert plain_kexec(cold).outcome == public[1].outcome
        return
    k = kho_prefix.fork(t, b.current_tables(), **inputs)
    assert k is not None and k.at == kho_prefix.at and k.areas == inputs["areas"]
    k.walk()
    kx = k.finish()
    ref2 = new_boot(t, s, kernel=None, arch=None, kexec=True, **inputs)
    assert kx == ref2.run() == public[1].outcome
    assert kx.kho_boot and kx.scratch.areas == cold.outcome.scratch.areas
    assert _tables(k) == _tables(ref2)
    assert k.messages == ref2.messages and k.requests == ref2.requests
    # the prefix was not handed this point's inputs
    assert kho_prefix.areas == () and kho_prefix.preserved is None and kho_prefix.trace is base


def test_kho_boot_takes_its_inputs_only_before_its_first_decision_point() -> None:
    t = log(B72)
    s = get("merged")
    ref1 = new_boot(t, s, kernel=None, arch=None, kexec=False)
    inputs = handover(Replayed(ref1.run(), ref1.mb), s)
    assert inputs is not None
    p = new_boot(t, s, kernel=None, arch=None, kexec=True)
    p.begin()
    hook = p.first_hook()
    assert hook == p.bp.populate > 0  # kho_populate(), before the first allocation
    p.walk(hook)
    assert p.fork(**inputs) is not None
    p.walk(hook + 1)  # kho_populate() ran with no scratch at all
    assert p.fork(**inputs) is None
    assert p.fork() is not None  # the same boot, as it is, can still be copied


def test_kexec_sweep_shares_the_prefix_and_gives_the_rows_from_scratch_on_a_pool_and_a_dask_local_cluster() -> None:
    t = log(B72)
    kw = {"strategies": ["baseline", "merged", "ext-scratch"], "kexec": True,
          "sets": {"kho_scratch": ["50%", "150%", "1G,1G,1G"], "hugepages": ["1", "2"]}}
    grid = points(t, strategies=kw["strategies"], sets=kw["sets"])
    ref = tuple(r for p in grid for r in run_point(t, True, "hugetlb", p))
    one = sweep(t, jobs=1, **kw)
    assert one.rows == ref and len(ref) == 3 * 2 * 3 * 2
    assert {r.boot for r in ref} == {"cold", "kexec"} and any(r.scratch_reserved for r in ref)
    assert sweep(t, jobs=2, **kw).rows == ref
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        assert sweep(t, scheduler=cluster.scheduler_address, **kw).rows == ref


def test_kexec_kaslr_sweep_with_the_real_second_kernel_is_the_replay_from_scratch() -> None:
    t = log(B73)
    second = log(B73, kernel=2)
    kw = {"strategies": ["baseline", "merged"], "kaslr": 4, "seed": 5, "kexec": True, "preserve": "log",
          "second": second}
    grid = points(t, strategies=kw["strategies"], kaslr=4, seed=5)
    ref = tuple(r for p in grid for r in run_point(t, True, "log", p, second))
    assert len({p.image_at for p in grid}) == 4 and len(ref) == 4 * 2 * 2
    assert sweep(t, jobs=2, **kw).rows == ref
