# SPDX-License-Identifier: GPL-2.0-only
"""KHO boot details: synthesized scratch for kernels without KHO, preserved sets, cost proxies."""

from __future__ import annotations

from kho_replay.replay.flags import Flag
from kho_replay.replay.kho.boot import execute, plan, run_cold, run_kexec
from kho_replay.replay.kho.classify import classify
from kho_replay.replay.kho.preserve import PreservedSet, parse_preserve
from kho_replay.replay.kho.scenarios import trace_b_mirror
from kho_replay.replay.kho.scratch import ScratchArea
from kho_replay.replay.ops import Context, DebugfsTable, Region, Trace
from kho_replay.replay.strategies import get

from .conftest import C, log


def test_kernel_without_kho_gets_scratch_synthesized_before_free_all():
    t = trace_b_mirror()
    t = Trace(Context(cmdline="hugepagesz=1G hugepages=2"), t.ops)   # no kho= on the command line
    assert not run_cold(t, "merged").scratch.enabled
    o = run_cold(t, "merged", kho=True)
    assert o.scratch.enabled and [a[0] for a in o.scratch.areas] == ["lowmem", "global", "node0"]
    bp = plan(t.ops, [classify(op.caller) for op in t.ops])
    assert t.ops[bp.kho_init].name == "kho_memory_init"


def test_mirror_of_b_by_hand():
    # 48 MiB image + 64 MiB swiotlb below 4 GiB; + 2 GiB pages + 144 MiB vmemmap + 2 MiB percpu (1 MiB freed).
    o = run_cold(trace_b_mirror(), "baseline")
    k_low, k_all = 112 << 20, (112 << 20) + (2 << 30) + (145 << 20)
    assert (o.scratch.k_low, o.scratch.k_all) == (k_low, k_all)
    assert o.scratch.lowmem == 224 << 20
    # 2 x 2305 MiB - 224 MiB = 4386 MiB, rounded up to 4 MiB.
    assert o.scratch.global_ == 4388 << 20
    assert o.scratch.failed == "global"        # free above 4 GiB is one block of < 3 GiB


def test_percpu_tail_free_follows_the_chunk():
    # Baseline's KHO boot (scratch of the merged first kernel) puts percpu inside scratch: the
    # recorded 1 MiB tail free must follow the chunk, not punch a hole at the old address.
    t = trace_b_mirror()
    cold, _ = execute(t, get("merged"), kernel=None, arch=None, kexec=False)
    areas = tuple(ScratchArea(n, b, s) for n, b, s in cold.scratch.areas)
    k, mb = execute(t, get("baseline"), kernel=None, arch=None, kexec=True, areas=areas,
                    preserved=PreservedSet("none", ()))
    old = (7 << 30) - (146 << 20)
    pcpu = next(r for r in k.requests if r.caller and r.caller.startswith("pcpu_embed_first_chunk"))
    assert pcpu.scratch_only and pcpu.addr is not None and pcpu.addr != old
    assert mb.reserved.search(pcpu.addr) is not None           # the head stays
    assert mb.reserved.search(pcpu.addr + (1 << 20)) is None   # the tail went back
    assert mb.reserved.search(old) is None                     # nothing happened at the old place


def test_debugfs_preserved_set():
    kern, noinit = int(Flag.MEMBLOCK_RSRV_KERN), int(Flag.MEMBLOCK_RSRV_NOINIT)
    table = DebugfsTable(at=0, name="reserved", regions=(
        Region(0x1000000, 0x2000000, kern, 0),                 # kernel
        Region(0x40000000, 0x40000000, kern | noinit, 0),      # gigantic tail: kernel's own
        Region(0x80000000, 0x200000, noinit, -1),              # preserved folio run
    ))
    p = parse_preserve("debugfs", trace=Trace(Context(source="dbg"), (), (table,)))
    assert p.blocks == ((0x80000000, 0x200000),)


def test_cost_proxies_order_the_designs():
    t = log(C, 1)
    cost = {s: run_kexec(t, s, preserve="memfd:16M:4K")[1].cost
            for s in ("baseline", "reserve-early", "inverted-ext", "merged")}
    # 4096 scattered 4 KiB folios: reserving them before hugetlb makes every later search pay (R2);
    # coarse 1 GiB runs (R4) keep reserved[] small; merged pays the digest of every key.
    assert cost["reserve-early"].regions_scanned > cost["baseline"].regions_scanned
    assert cost["inverted-ext"].regions_scanned * 100 < cost["baseline"].regions_scanned
    assert cost["merged"].digest_keys == 4096 and cost["baseline"].digest_keys == 0


def test_scratch_left_phases_in_boot_order():
    _, k = run_kexec(log(C, 1), "baseline")
    assert [p for p, _ in k.scratch_left] == ["setup_arch", "hugetlb", "memmap", "percpu", "kho_memory_init"]
    left = [b for _, b in k.scratch_left]
    assert left == sorted(left, reverse=True)      # baseline only ever takes scratch away
    assert left[0] - left[1] >= 2 << 30            # both gigantic pages came out of scratch


def test_mm_core_init_early_starts_at_hugetlb_cma():
    from kho_replay.replay.ops import parse_script

    ops = parse_script("""
add 0x0 8G nid=0
alloc memblock_alloc size=4K align=4K caller=setup_arch+0x1/0x2
alloc memblock_alloc_range_nid size=1G align=1G nid=0 exact caller=hugetlb_cma_reserve+0x1/0x2
phase hugetlb_bootmem_begin
alloc memblock_alloc_try_nid_raw size=1G align=1G nid=0 caller=alloc_bootmem+0x53/0x130
phase hugetlb_bootmem_end
phase free_all
""")
    t = Trace(Context(cmdline="hugetlb_cma=1G"), ops)
    from kho_replay.replay.kho.boot import classify_ops

    bp = plan(t.ops, classify_ops(t))
    assert (bp.populate, bp.early, bp.hugetlb_end, bp.kho_init) == (1, 2, 5, 6)
