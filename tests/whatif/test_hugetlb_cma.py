# SPDX-License-Identifier: GPL-2.0-only
"""--set hugetlb_cma= / hugetlb_cma_only=: hugetlb_cma_reserve() replayed where each era runs it.

No real boot in the shared traces has hugetlb_cma= on its command line, so the
addresses below are hand-checked against the kernel's rules (mm/hugetlb_cma.c,
mm/cma.c cma_alloc_mem(): bottom-up from 4 GiB, exact node, 1 GiB aligned, then
top-down) and the machines' memory maps (iomem.txt, the logs' node ranges).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from parsers.test_cma_forms import boot  # a synthetic 7.3 boot with something reserved at 4 GiB

from kho_replay.parsers.console import read_console_text
from kho_replay.replay.compare.validate import validate
from kho_replay.replay.errors import KhoReplayError
from kho_replay.replay.flags import Flag
from kho_replay.replay.kho.boot import replay_cold, replay_kexec, run_cold
from kho_replay.replay.kho.classify import Subsystem
from kho_replay.replay.kho.hugetlb_cma import CmaArea, parse_hugetlb_cma
from kho_replay.replay.ops import Trace
from kho_replay.replay.whatif import apply_sets, check_param, sweep
from kho_replay.replay.whatif.params import parse_set
from kho_replay.replay.whatif.sweep import Point, run_point

from .conftest import B72, B73, log

G = 1 << 30
#: x86-64, 8 GiB, one node: RAM 0x100000-0xbffdffff and 0x100000000-0x23fffffff (iomem.txt)
HUGE4 = "x86_64-debian-7.2.13-8G-hugepagesz1G-hugepages4"
#: the same machine with two nodes: node 0 up to 0x13fffffff, node 1 0x140000000-0x23fffffff
NUMA2 = "x86_64-debian-7.2.13-numa2-8G-hugepages1G-pernode"
C72 = "x86_64-kho-7.2.13-C-12G-hugepages1G2-kho_scratch3G"


def test_parse_forms() -> None:
    assert parse_hugetlb_cma("2G", percent=False).size == 2 * G
    per = parse_hugetlb_cma("1:2G,0:1G", percent=False)
    assert per.per_node == ((0, G, False), (1, 2 * G, False)) and per.size == 3 * G
    assert parse_hugetlb_cma("0:50%,1:1G", percent=True).per_node == ((0, 50, True), (1, G, False))
    assert parse_hugetlb_cma("25%", percent=True).percent == 25
    # memparse(): a leading 0 is octal, for a size and for a percentage alike
    assert parse_hugetlb_cma("0:010M,1:010%", percent=True).per_node == ((0, 8 << 20, False), (1, 8, True))
    assert parse_hugetlb_cma("0100M", percent=False).size == 64 << 20
    for bad, pct in (("25%", False), ("101%", True), ("2Q", True), ("0:1G,", True), ("2048:1G", True)):
        with pytest.raises(KhoReplayError):
            parse_hugetlb_cma(bad, percent=pct)
    # a sweep keeps per-node lists whole, like hugepages=
    assert parse_set("hugetlb_cma=0,2G,4G") == ("hugetlb_cma", ["0", "2G", "4G"])
    assert parse_set("hugetlb_cma=0:1G,1:1G;0:2G") == ("hugetlb_cma", ["0:1G,1:1G", "0:2G"])


@pytest.mark.parametrize(("arch", "release", "value", "match"), [
    ("riscv64", "7.2.13", "2G", "isn't supported by riscv64"),
    ("x86_64", "7.2.13", "3G,", "expected SIZE"),
    ("x86_64", "7.2.13", "512M", "must be a multiple of 1024 MiB"),
    ("x86_64", "7.3.4", "0:1G,1:1536M", "node 1 must be a multiple of 1024 MiB"),
    ("x86_64", "7.2.13", "0:50%", r"N% since 7\.3"),
    ("x86_64", "6.6.0", "2G", r"modelled from 7\.0 .* kernel 6\.6\.0 runs it from arch setup code"),
])
def test_refusals_are_one_line(arch: str, release: str, value: str, match: str) -> None:
    with pytest.raises(KhoReplayError, match=match) as e:
        check_param("hugetlb_cma", value, arch=arch, release=release)
    assert "\n" not in str(e.value)


def test_absolute_size_skips_the_boot_gigantic_pages() -> None:
    # hugepages=4 got 4 pages on this boot; with a CMA area they are skipped (hugetlb_hstate_alloc_pages()).
    # Nothing is reserved in [4G, 6G) at mm_core_init_early(): bottom-up from 4 GiB gives 0x100000000.
    t = apply_sets(log(HUGE4), [("hugetlb_cma", "2G")])
    r = replay_cold(t, "baseline")
    o = r.outcome
    assert o.hugetlb_cma == ((0, 0x100000000, 2 * G),)
    assert o.gigantic.allocated == 0
    assert "HugeTLB: hugetlb_cma is enabled, skip boot time allocation" in o.messages
    assert o.messages[:3] == ("hugetlb_cma: reserve 2048 MiB, up to 2048 MiB per node",
                              "cma: Reserved 2048 MiB in 1 range", "hugetlb_cma: reserved 2048 MiB on node 0")
    area = r.model.reserved.search(0x100000000)
    assert area is not None and (area.base, area.size, area.nid) == (0x100000000, 2 * G, 0)
    assert area.flags == Flag.MEMBLOCK_RSRV_KERN  # memblock_alloc_range_nid(): RSRV_KERN, never RSRV_HUGETLB
    # RSRV_KERN grows by the area and shrinks by the four pages that were not allocated
    assert o.rsrv_kern == run_cold(log(HUGE4), "baseline").rsrv_kern + 2 * G - 4 * G
    cma = [q for q in o.requests if q.subsystem is Subsystem.HUGETLB_CMA]
    assert [(q.api, q.addr, q.synthesized) for q in cma] == [("memblock_alloc_range_nid", 0x100000000, True)]


def test_hugetlb_cma_only_carves_pages_from_the_area() -> None:
    # early CMA: cma_reserve_early() bumps from the area's base; 4 asked, the 2 GiB area holds 2.
    t = apply_sets(log(HUGE4), [("hugetlb_cma", "2G"), ("hugetlb_cma_only", "1")])
    r = replay_cold(t, "baseline")
    g = r.outcome.gigantic
    assert (g.requested, g.allocated, g.addrs) == (4, 2, (0x100000000, 0x140000000))
    assert "HugeTLB: allocating 4 of page size 1.00 GiB failed.  Only allocated 2 hugepages." in r.outcome.messages
    # no memblock allocation per page: the head page keeps the area's flags, the tail is NOINIT inside it
    head = r.model.reserved.search(0x140000000)
    tail = r.model.reserved.search(0x140001000)
    assert head is not None and tail is not None
    assert (head.size, head.flags) == (0x1000, Flag.MEMBLOCK_RSRV_KERN)
    assert tail.flags == Flag.MEMBLOCK_RSRV_KERN | Flag.MEMBLOCK_RSRV_NOINIT
    assert r.outcome.rsrv_kern == run_cold(apply_sets(log(HUGE4), [("hugetlb_cma", "2G")]), "baseline").rsrv_kern


def test_split_over_nodes_and_per_node_form() -> None:
    # 2G over two nodes: 1 GiB each, in node order.  Node 0's only 1 GiB block above 4 GiB holds NODE_DATA(0)
    # (0x13ffd4f80), so the bottom-up try fails and the top-down one takes node 0's highest free block below
    # 0xbfee4000 (reserved): 0x40000000.  Node 1: bottom-up from its start, 0x140000000.
    o = run_cold(apply_sets(log(NUMA2), [("hugetlb_cma", "2G")]), "baseline")
    assert o.hugetlb_cma == ((0, 0x40000000, G), (1, 0x140000000, G))
    assert o.messages[0] == "hugetlb_cma: reserve 2048 MiB, up to 1024 MiB per node"
    # node form: only node 1, 2 GiB, bottom-up from node 1's start
    o = run_cold(apply_sets(log(NUMA2), [("hugetlb_cma", "1:2G")]), "baseline")
    assert o.hugetlb_cma == ((1, 0x140000000, 2 * G),)
    assert "hugetlb_cma: reserved 2048 MiB on node 1" in o.messages
    # a node without memory: warned and dropped (mm/hugetlb_cma.c "invalid node")
    o = run_cold(apply_sets(log(NUMA2), [("hugetlb_cma", "3:1G")]), "baseline")
    assert o.hugetlb_cma == () and "hugetlb_cma: invalid node 3 specified" in o.messages
    assert o.gigantic.allocated == run_cold(log(NUMA2), "baseline").gigantic.allocated  # pages not skipped


def test_percent_form_on_7_3_rounds_down_to_the_gigantic_page() -> None:
    t = log(B73)
    phys = replay_cold(t, "merged").model.phys_mem_size()
    assert 8 * G - 2 * G // 1024 < phys < 8 * G  # 8 GiB VM, a few MiB of holes
    # 25% is just under 2 GiB -> 1 GiB; 50% just under 4 GiB -> 3 GiB
    for pct, want in (("25%", G), ("50%", 3 * G)):
        o = run_cold(apply_sets(t, [("hugetlb_cma", pct)]), "merged")
        assert sum(s for _, _, s in o.hugetlb_cma) == want
        assert o.messages[0].startswith(f"hugetlb_cma: reserve {want >> 20} MiB ({pct}), up to")
    o = run_cold(apply_sets(t, [("hugetlb_cma", "0:10%")]), "merged")  # 819 MiB rounds to 0
    assert o.hugetlb_cma == () and any("rounded down to 0" in m and "on node 0" in m for m in o.messages)


@pytest.mark.parametrize("strategy", ["baseline", "merged", "ext-scratch", "scratch-off-early"])
def test_the_area_counts_in_scratch_sizing_in_every_design(strategy: str) -> None:
    # hugetlb_cma areas remain RSRV_KERN in every design (kho-spec Open question 6): the 1 GiB area adds
    # exactly 1 GiB to the RSRV_KERN that sizes scratch, unlike gigantic pages under merged.
    t = apply_sets(log(B73), [("hugepages", "0")])
    base = run_cold(t, strategy).scratch.k_all
    assert run_cold(apply_sets(t, [("hugetlb_cma", "1G")]), strategy).scratch.k_all == base + G


def test_kho_boot_takes_the_area_from_scratch_under_baseline_only() -> None:
    # C: global scratch [0x202400000, 0x2c2400000).  Baseline's KHO boot is scratch-only: the first 1 GiB
    # boundary inside it is 0x240000000.  merged extends scratch over free memory: 0x100000000 again.
    t = apply_sets(log(C72), [("hugetlb_cma", "2G")])
    _, base = replay_kexec(t, "baseline")
    _, merged = replay_kexec(t, "merged")
    assert base.outcome.hugetlb_cma == ((0, 0x240000000, 2 * G),)
    assert merged.outcome.hugetlb_cma == ((0, 0x100000000, 2 * G),)
    assert all(q.scratch_only for q in base.outcome.requests if q.subsystem is Subsystem.HUGETLB_CMA)


def test_sweep_over_sizes_produces_rows() -> None:
    res = sweep(log(HUGE4), strategies=("baseline",), sets={"hugetlb_cma": ["0", "2G", "4G"]}, jobs=1)
    rows = {r.params: r for r in res.rows}
    assert list(rows) == ["hugetlb_cma=0", "hugetlb_cma=2G", "hugetlb_cma=4G"]
    assert [rows[k].hugetlb_cma for k in rows] == [0, 2 * G, 4 * G]
    assert [rows[k].gigantic_allocated for k in rows] == [4, 0, 0]
    # the shared-prefix rows are the one-off replays (the walks part at hugetlb_cma_reserve())
    for r in res.rows:
        (one,) = run_point(log(HUGE4), False, "hugetlb", Point(None, (("hugetlb_cma", r.params.split("=")[1]),),
                                                                  "baseline"))
        assert one == r
    # [4G, 8G) is free at mm_core_init_early(): bottom-up from 4 GiB again
    o = run_cold(apply_sets(log(HUGE4), [("hugetlb_cma", "4G")]), "baseline")
    assert o.hugetlb_cma == ((0, 0x100000000, 4 * G),)


def test_too_big_for_one_range_falls_back_to_several() -> None:
    # 5 GiB: no single free 1 GiB-aligned 5 GiB run -> cma_declare_contiguous_multi() takes the free ranges
    # above 4 GiB with plain memblock_reserve() (flags 0, no node); here [4G, 9G) less what is reserved.
    o = run_cold(apply_sets(log(HUGE4), [("hugetlb_cma", "5G")]), "baseline")
    assert o.hugetlb_cma == () and "cma: Failed to reserve 5120 MiB" in o.messages
    assert "hugetlb_cma: reservation failed: err -12, node 0" in o.messages
    assert o.gigantic.allocated == 4  # nothing reserved: boot-time pages are not skipped


def test_cma_area_reserve_early_bumps_each_range() -> None:
    a = CmaArea(0, [(4 * G, G), (8 * G, 2 * G)])
    assert [a.reserve_early(G) for _ in range(4)] == [4 * G, 8 * G, 9 * G, None]


def _with_cmdline(t: Trace, cmdline: str) -> Trace:
    return replace(t, context=replace(t.context, cmdline=cmdline))


def test_logged_areas_replay_and_set_reproduces_them() -> None:
    # A boot that logged its hugetlb_cma area (the form of real-boot-variants.md §4): validate replays it
    # exactly, the driver adds no second area, and --set of the same value on the boot without the area
    # (its sibling) reserves it at the logged address: something sits at 4 GiB, so the next 1 GiB boundary.
    cma = ("hugetlb_cma: reserve 2048 MiB, up to 2048 MiB per node",
           "__memblock_reserve: [0x0000000140000000-0x00000001bfffffff] nid=0 flags=20 "
           "memblock_alloc_range_nid+0xcf/0x190",
           "cma: Reserved 2048 MiB in 1 range", "hugetlb_cma: reserved 2048 MiB on node 0")
    t = _with_cmdline(read_console_text(boot(*cma), "t.log"), "console=ttyS0 hugetlb_cma=2G")
    assert validate(t).ok
    o = run_cold(t, "baseline")
    assert o.hugetlb_cma == ((0, 0x140000000, 2 * G),)
    sibling = _with_cmdline(read_console_text(boot(), "s.log"), "console=ttyS0")
    assert run_cold(apply_sets(sibling, [("hugetlb_cma", "2G")]), "baseline").hugetlb_cma == o.hugetlb_cma
    # --set on the logged boot itself drops the logged area and reserves the new one
    o4 = run_cold(apply_sets(t, [("hugetlb_cma", "1G")]), "baseline")
    assert o4.hugetlb_cma == ((0, 0x140000000, G),)


def test_hugetlb_cma_0_changes_nothing() -> None:
    t = log(B72)
    a, b = run_cold(apply_sets(t, [("hugetlb_cma", "0")]), "baseline"), run_cold(t, "baseline")
    assert (a.gigantic, a.scratch, a.rsrv_kern, a.messages, a.hugetlb_cma) == (
        b.gigantic, b.scratch, b.rsrv_kern, b.messages, ())


def test_multi_range_fallback_reserves_the_free_ranges_above_4g() -> None:
    # No 3 GiB run: cma_declare_contiguous_multi() lists the free ranges above 4 GiB ([4G, 6G), [8G, 10G)),
    # orders them by base and takes 2 GiB + 1 GiB with plain memblock_reserve() (flags 0, no node).
    from kho_replay.replay.ops import Context, parse_script

    ops = parse_script("""
add 0x100000 0xbff00000 nid=0
add 0x100000000 2G nid=0
add 0x200000000 2G nid=0
alloc memblock_alloc size=4K align=4K caller=setup_arch+0x1/0x2
phase mm_core_init_early
phase free_all
""")
    t = Trace(Context(cmdline="hugetlb_cma=3G hugetlb_cma_only=1 hugepagesz=1G hugepages=3", release="7.2.13",
                      arch="x86_64"), ops)
    r = replay_cold(t, "baseline")
    assert r.outcome.hugetlb_cma == ((0, 0x100000000, 2 * G), (0, 0x200000000, G))
    assert "cma: Reserved 3072 MiB in 2 ranges" in r.outcome.messages
    second = r.model.reserved.search(0x200000000)
    assert second is not None and second.size == 0x1000 and second.flags == 0  # head page of an early-CMA page
    assert r.outcome.gigantic.addrs == (0x100000000, 0x140000000, 0x200000000)


def test_kho_boot_fallback_ignores_scratch_only() -> None:
    # 4 GiB cannot fit in C's 3 GiB global scratch: both scratch-only cma_alloc_mem() tries fail, and the
    # multi-range fallback walks for_each_free_mem_range(MEMBLOCK_NONE), which asks for no KHO_SCRATCH:
    # it takes [4G, 8G) (the free memory run below the global area, aligned down) outside every scratch area.
    t = apply_sets(log(C72), [("hugetlb_cma", "4G")])
    _, k = replay_kexec(t, "baseline", preserve="memfd:512M")
    o = k.outcome
    cma = [(q.api, q.addr, q.scratch_only) for q in o.requests if q.subsystem is Subsystem.HUGETLB_CMA]
    assert cma == [("memblock_alloc_range_nid", None, True)] * 2 + [("memblock_reserve", 0x100000000, True)]
    assert o.hugetlb_cma == ((0, 0x100000000, 4 * G),)
    assert not any(a.base < 0x200000000 and a.end > 0x100000000 for a in o.scratch.areas)
