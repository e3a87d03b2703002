# SPDX-License-Identifier: GPL-2.0-only
"""Allocation filters of mm/memblock.c 7.3: should_skip_region() and choose_memblock_flags().

* KHO scratch-only: every allocation (array doubling included) is confined to
  MEMBLOCK_KHO_SCRATCH memory, with no fallback; memblock_free_all() ends it.
* mirror (``kernelcore=mirror`` only): node+mirror -> any+mirror -> node -> any,
  with ``Could not allocate %pap bytes of mirrored memory``.
* movable_node: HOTPLUG memory is skipped.
* NOMAP and DRIVER_MANAGED memory is never allocated from; a free range never
  spans two memory regions.
* 7.3 memblock_alloc_hugetlb(): size-aligned, RSRV_KERN|RSRV_HUGETLB, never
  mirror, never overlapping kho_scratch[] (window narrowing, both directions),
  any-node fallback that resets the window.
"""

from __future__ import annotations

import pytest
from _harness import NUMA_NO_NODE, PAGE, RSRV_KERN, B, new_mb, regs

from kho_replay.replay.errors import ReplayError
from kho_replay.replay.flags import Flag
from kho_replay.replay.ops import Alloc, KhoScratchOnly, Phase

K, M = 1 << 10, 1 << 20
DIRS = pytest.mark.parametrize("bottom_up", [False, True], ids=["top_down", "bottom_up"])
SCRATCH = int(Flag.MEMBLOCK_KHO_SCRATCH)
MIRROR = int(Flag.MEMBLOCK_MIRROR)
HUGETLB = int(Flag.MEMBLOCK_RSRV_HUGETLB)


def _alloc(mb, size=4 * K, align=PAGE, api="memblock_alloc", **kw):
    return mb.alloc(Alloc(api, size, align=align, **kw))


# ================================================================ KHO scratch-only

def _kho(bottom_up=False):
    mb = new_mb(bottom_up=bottom_up, resize=True)
    mb.add(B, 64 * M)
    mb.setclr_flag(mb.memory, B + 16 * M, 16 * M, True, Flag.MEMBLOCK_KHO_SCRATCH)
    mb.run([KhoScratchOnly(True)])
    return mb


@DIRS
@pytest.mark.parametrize(
    "api", ["memblock_alloc", "memblock_phys_alloc", "memblock_alloc_raw", "memblock_alloc_low"]
)
def test_scratch_only_confines_allocations(api, bottom_up):
    mb = _kho(bottom_up)
    got = _alloc(mb, api=api)
    assert got == (B + 16 * M if bottom_up else B + 32 * M - 4 * K)


@DIRS
def test_scratch_only_has_no_fallback(bottom_up):
    mb = _kho(bottom_up)
    mb.reserve(B + 16 * M, 16 * M)
    assert _alloc(mb) is None
    assert _alloc(mb, api="memblock_alloc_try_nid", nid=0) is None
    assert _alloc(mb, api="memblock_phys_alloc_range", min_addr=0, max_addr=2**64 - 1) is None
    assert regs(mb.reserved) == [(B + 16 * M, 16 * M)]


def test_scratch_only_ignores_mirror():
    mb = _kho()
    mb.mirrored_kernelcore = True
    mb.mark_mirror(B + 48 * M, 16 * M)
    assert mb.system_has_some_mirror
    assert _alloc(mb) == B + 32 * M - 4 * K
    assert not [m for m in mb.messages if "mirrored" in m.text]


@DIRS
def test_scratch_only_doubling_inside_scratch(bottom_up):
    mb = _kho(bottom_up)
    for i in range(129):
        mb.reserve(B + 40 * M + i * 8 * K, 4 * K)
    (d,) = mb.doublings
    assert d.base >= B + 16 * M and d.base + d.alloc_size <= B + 32 * M
    assert d.base == (B + 16 * M if bottom_up else B + 32 * M - 8 * K)


def test_scratch_only_doubling_fails_when_scratch_full():
    mb = _kho()
    mb.reserve(B + 16 * M, 16 * M)
    for i in range(127):
        mb.reserve(B + 40 * M + i * 8 * K, 4 * K)
    assert mb.reserved.cnt == 128
    assert mb.reserve(B + 60 * M, 4 * K) is False
    assert [m.text for m in mb.messages if m.level == "err"] == [
        "memblock: Failed to double reserved array from 128 to 256 entries !"
    ]


def test_free_all_ends_scratch_only():
    mb = _kho()
    assert _alloc(mb) == B + 32 * M - 4 * K
    mb.run([Phase("free_all")])
    assert mb.kho_scratch_only is False
    assert _alloc(mb) == B + 64 * M - 4 * K


def test_scratch_only_off_op():
    mb = _kho()
    mb.run([KhoScratchOnly(False)])
    assert _alloc(mb) == B + 64 * M - 4 * K


# ================================================================ mirror

def _two_nodes():
    mb = new_mb(resize=True)
    mb.add_node(B, 32 * M, 0)
    mb.add_node(B + 32 * M, 32 * M, 1)
    return mb


def test_mark_mirror_is_noop_without_mirrored_kernelcore():
    mb = _two_nodes()
    assert mb.mark_mirror(B, 16 * M)
    assert all(r.flags == 0 for r in mb.memory)
    assert not mb.system_has_some_mirror
    assert _alloc(mb) == B + 64 * M - 4 * K


def test_mark_mirror_splits_and_sets_flag():
    mb = _two_nodes()
    mb.mirrored_kernelcore = True
    mb.mark_mirror(B + 32 * M, 8 * M)
    assert [(r.base - B, r.size, r.flags, r.nid) for r in mb.memory] == [
        (0, 32 * M, 0, 0), (32 * M, 8 * M, MIRROR, 1), (40 * M, 24 * M, 0, 1)
    ]
    assert mb.system_has_some_mirror


def test_mirror_fallback_order():
    """node+mirror -> any+mirror -> node -> any (alloc_range_nid with choose_memblock_flags())."""
    mb = _two_nodes()
    mb.mirrored_kernelcore = True
    mb.mark_mirror(B + 32 * M, 8 * M)  # mirror only on node 1
    # 1) node 0 has no mirror: any node with mirror wins over node 0 without
    got = _alloc(mb, api="memblock_alloc_try_nid", nid=0)
    assert got == B + 40 * M - 4 * K
    assert mb.reserved.search(got).nid == NUMA_NO_NODE  # memblock_reserve_kern() of the fallback
    assert not [m for m in mb.messages if "mirrored" in m.text]
    # 2) mirror used up: node 0 without mirror, after the warning
    mb.reserve(B + 32 * M, 8 * M)
    got = _alloc(mb, api="memblock_alloc_try_nid", nid=0)
    assert got == B + 32 * M - 4 * K
    assert mb.reserved.search(got).nid == 0
    assert [m.text for m in mb.messages if m.level == "warn" and "mirrored" in m.text] == [
        "Could not allocate 0x0000000000001000 bytes of mirrored memory"
    ]
    # 3) node 0 full as well: any node without mirror
    mb.reserve(B, 32 * M - 4 * K)
    got = _alloc(mb, api="memblock_alloc_try_nid", nid=0)
    assert got == B + 64 * M - 4 * K
    assert mb.reserved.search(got).nid == NUMA_NO_NODE


def test_mirror_exact_nid_skips_any_node_steps():
    mb = _two_nodes()
    mb.mirrored_kernelcore = True
    mb.mark_mirror(B + 32 * M, 8 * M)
    got = _alloc(mb, api="memblock_alloc_exact_nid_raw", nid=0)
    assert got == B + 32 * M - 4 * K  # node 0 without mirror, never node 1's mirror
    assert any("mirrored" in m.text for m in mb.messages)


def test_mirror_doubling_above_pending_range():
    """memblock_find_in_range() with MIRROR, above the pending range: the mirror's top."""
    mb = _two_nodes()
    mb.mirrored_kernelcore = True
    mb.mark_mirror(B + 56 * M, 4 * M)
    for i in range(129):
        mb.reserve(B + 40 * M + i * 8 * K, 4 * K)
    assert mb.doublings[0].base == B + 60 * M - 8 * K
    assert not any("mirrored" in m.text for m in mb.messages)


def test_mirror_doubling_retries_without_mirror_before_looking_below():
    """The mirror lies only below the pending range: memblock_find_in_range() drops MIRROR
    (with the warning) and retries *the same* range above it, so the array lands in
    non-mirrored memory above rather than in the mirror below."""
    mb = _two_nodes()
    mb.mirrored_kernelcore = True
    mb.mark_mirror(B + 8 * M, 8 * M)
    for i in range(129):
        mb.reserve(B + 40 * M + i * 8 * K, 4 * K)
    assert mb.doublings[0].base == B + 64 * M - 8 * K
    assert [m.text for m in mb.messages if "mirrored" in m.text] == [
        "Could not allocate 0x0000000000002000 bytes of mirrored memory"
    ]


# ================================================================ movable_node / hotplug

@DIRS
@pytest.mark.parametrize("movable", [False, True])
def test_movable_node_skips_hotplug(movable, bottom_up):
    mb = new_mb(bottom_up=bottom_up)
    mb.movable_node = movable
    if bottom_up:
        mb.add_node(B, 32 * M, 0, Flag.MEMBLOCK_HOTPLUG)
        mb.add_node(B + 32 * M, 32 * M, 0)
        want = B + 32 * M if movable else B
    else:
        mb.add_node(B, 32 * M, 0)
        mb.add_node(B + 32 * M, 32 * M, 0, Flag.MEMBLOCK_HOTPLUG)
        want = B + 32 * M - 4 * K if movable else B + 64 * M - 4 * K
    assert _alloc(mb) == want


def test_movable_node_all_hotplug_fails():
    mb = new_mb()
    mb.movable_node = True
    mb.add_node(B, 32 * M, 0, Flag.MEMBLOCK_HOTPLUG)
    assert _alloc(mb) is None


# ================================================================ nomap / driver_managed

@DIRS
@pytest.mark.parametrize("flag", [Flag.MEMBLOCK_NOMAP, Flag.MEMBLOCK_DRIVER_MANAGED])
@pytest.mark.parametrize("via", ["add_node", "mark"])
def test_never_allocated_from(flag, via, bottom_up):
    mb = new_mb(bottom_up=bottom_up)
    bad = (B, 16 * M) if bottom_up else (B + 48 * M, 16 * M)
    if via == "add_node":
        lo, hi = (B + 16 * M, B + 64 * M) if bottom_up else (B, B + 48 * M)
        mb.add_node(lo, hi - lo, 0)
        mb.add_node(*bad, 0, flag)
    else:
        mb.add_node(B, 64 * M, 0)
        mb.setclr_flag(mb.memory, *bad, True, flag)
    got = _alloc(mb, size=2 * M, align=2 * M)
    assert got == (B + 16 * M if bottom_up else B + 46 * M)
    # only the flagged memory left: nothing
    mb.reserve(B, 64 * M)
    mb.phys_free(*bad)
    assert _alloc(mb, size=4 * K) is None


@DIRS
def test_free_range_never_spans_memory_regions(bottom_up):
    mb = new_mb(bottom_up=bottom_up)
    mb.add_node(B, 8 * K, 0)
    mb.add_node(B + 8 * K, 8 * K, 1)  # different nid: two regions, not merged
    assert mb.memory.cnt == 2
    assert _alloc(mb, size=12 * K) is None
    assert _alloc(mb, size=8 * K) == (B if bottom_up else B + 8 * K)


# ================================================================ 7.3 memblock_alloc_hugetlb

def _huge(mb, size=2 * M, nid=NUMA_NO_NODE, exact=False):
    return mb.alloc(Alloc("memblock_alloc_hugetlb", size, nid=nid, exact=exact))


@DIRS
def test_hugetlb_size_alignment(bottom_up):
    mb = new_mb(bottom_up=bottom_up)
    mb.add(B + M, 8 * M)
    got = _huge(mb)
    assert got == (B + 2 * M if bottom_up else B + 6 * M)
    (r,) = mb.reserved
    assert (r.base, r.size, r.flags, r.nid) == (got, 2 * M, RSRV_KERN | HUGETLB, NUMA_NO_NODE)
    assert r.flags == 0xA0


def test_hugetlb_does_not_merge_with_rsrv_kern_neighbour():
    mb = new_mb()
    mb.add(B, 64 * M)
    mb.reserve_kern(B + 62 * M, 2 * M)
    assert _huge(mb) == B + 60 * M
    assert [(r.base - B, r.flags) for r in mb.reserved] == [(60 * M, 0xA0), (62 * M, RSRV_KERN)]
    assert mb.reserved_hugetlb_size() == 2 * M
    assert mb.reserved_kern_size() == 4 * M


def test_hugetlb_never_uses_mirror_preference():
    mb = new_mb()
    mb.mirrored_kernelcore = True
    mb.add(B, 64 * M)
    mb.mark_mirror(B, 16 * M)
    assert _alloc(mb) == B + 16 * M - 4 * K  # normal allocations prefer the mirror
    assert _huge(mb) == B + 62 * M  # the gigantic page does not
    assert sum("mirrored" in m.text for m in mb.messages) == 0


@pytest.mark.parametrize(
    ("bottom_up", "scratch", "want"),
    [
        # top-down: B+62M overlaps [60M,63M) -> end=B+62M; B+60M overlaps -> end=B+60M; B+58M
        (False, [(60 * M, 63 * M)], 58 * M),
        # bottom-up: B, B+2M, B+4M overlap [1M,5M) -> start moves past each; B+6M
        (True, [(1 * M, 5 * M)], 6 * M),
        # two separate scratch areas
        (False, [(62 * M, 64 * M), (59 * M, 61 * M)], 56 * M),
        (False, [(62 * M, 64 * M), (59 * M, 60 * M)], 60 * M),
        (True, [(0, 2 * M), (3 * M, 4 * M)], 4 * M),
    ],
)
def test_hugetlb_kho_scratch_overlap_retry(bottom_up, scratch, want):
    mb = new_mb(bottom_up=bottom_up)
    mb.add(B, 64 * M)
    mb.kho_scratch = [(B + s, B + e) for s, e in scratch]
    assert _huge(mb) == B + want


def test_hugetlb_any_node_fallback_resets_window():
    """Node 0 is all scratch: the narrowed window (end = B) is reset to [0, ACCESSIBLE)
    for the any-node retry, which finds node 1's top."""
    mb = new_mb()
    mb.add_node(B, 32 * M, 0)
    mb.add_node(B + 32 * M, 32 * M, 1)
    mb.kho_scratch = [(B, B + 32 * M)]
    got = _huge(mb, nid=0)
    assert got == B + 62 * M
    (r,) = mb.reserved
    assert (r.nid, r.flags) == (NUMA_NO_NODE, 0xA0)


def test_hugetlb_any_node_fallback_bottom_up():
    mb = new_mb(bottom_up=True)
    mb.add_node(B, 32 * M, 0)
    mb.add_node(B + 32 * M, 32 * M, 1)
    mb.kho_scratch = [(B + 32 * M, B + 64 * M)]
    # node 1 is all scratch; the start moved past it, reset for any node: node 0's bottom
    assert _huge(mb, nid=1) == B


def test_hugetlb_exact_nid_has_no_fallback():
    mb = new_mb()
    mb.add_node(B, 32 * M, 0)
    mb.add_node(B + 32 * M, 32 * M, 1)
    mb.kho_scratch = [(B, B + 32 * M)]
    assert _huge(mb, nid=0, exact=True) is None
    assert mb.reserved.cnt == 0
    got = _huge(mb, nid=1, exact=True)
    assert got == B + 62 * M and mb.reserved[0].nid == 1


def test_hugetlb_scratch_only_uses_extended_scratch_not_kho_scratch_array():
    """7.3: extension blocks carry plain KHO_SCRATCH; only kho_scratch[] is avoided."""
    mb = new_mb()
    mb.add(B, 64 * M)
    mb.setclr_flag(mb.memory, B, 32 * M, True, Flag.MEMBLOCK_KHO_SCRATCH)
    mb.kho_scratch = [(B + 16 * M, B + 32 * M)]
    mb.kho_scratch_only = True
    assert _huge(mb) == B + 14 * M


def test_hugetlb_absent_before_7_3():
    mb = new_mb("7.2")
    mb.add(B, 64 * M)
    with pytest.raises(ReplayError, match=r"memblock_alloc_hugetlb\(\) does not exist in 7.2"):
        _huge(mb)


# ================================================================ memblock_free_all()

@pytest.mark.xfail(strict=True, reason="Phase('free_all') only ends scratch-only; 7.3 memblock_free_all() also "
                   "runs memblock_clear_hotplug(0, -1) and memmap_init_reserved_pages() (mm/memblock.c "
                   "free_low_memory_core_early(), lines 2446-2455 and 2400-2425)")
def test_free_all_clears_hotplug_and_sets_reserved_nids():
    mb = new_mb()
    mb.add_node(B, 32 * M, 0, Flag.MEMBLOCK_HOTPLUG)
    mb.add_node(B + 32 * M, 32 * M, 1, Flag.MEMBLOCK_HOTPLUG)
    mb.reserve(B + 30 * M, 4 * M)
    mb.run([Phase("free_all")])
    assert all(not r.flags & Flag.MEMBLOCK_HOTPLUG for r in mb.memory)
    assert [(r.base - B, r.size, r.nid) for r in mb.reserved] == [(30 * M, 2 * M, 0), (32 * M, 2 * M, 1)]
