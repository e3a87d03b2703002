# SPDX-License-Identifier: GPL-2.0-only
"""tools/testing/memblock/tests/alloc_api.c and alloc_helpers_api.c, on the model.

Every group runs top-down and bottom-up, for ``memblock_alloc`` and
``memblock_alloc_raw`` (same placement; raw only skips zeroing).  Memory is
``setup_memblock()``: ``[B, B + 32K)``; ``E`` is ``memblock_end_of_DRAM()``.
Neighbours that the kernel test expects to merge with an allocation are
reserved with ``memblock_reserve_kern()`` (nid -1, RSRV_KERN), exactly like the
allocation itself.
"""

from __future__ import annotations

import pytest
from _harness import MEM_SIZE, NUMA_NO_NODE, RSRV_KERN, SMP, B, new_mb, regs, setup_memblock

from kho_replay.replay.ops import Alloc

E = B + MEM_SIZE
DIRS = pytest.mark.parametrize("bottom_up", [False, True], ids=["top_down", "bottom_up"])
APIS = pytest.mark.parametrize("api", ["memblock_alloc", "memblock_alloc_raw"])


def _alloc(mb, api, size, align):
    return mb.alloc(Alloc(api, size, align=align))


def _check(mb, want):
    assert regs(mb.reserved) == want
    assert mb.reserved.cnt == len(want)
    assert mb.reserved.total_size == sum(s for _, s in want)
    mb.reserved.check()


# ----------------------------------------------------------- direction-specific groups

@APIS
@DIRS
def test_simple(api, bottom_up):
    mb = setup_memblock(bottom_up=bottom_up)
    got = _alloc(mb, api, 2, SMP)
    want = B if bottom_up else E - SMP
    assert got == want
    _check(mb, [(want, 2)])
    (r,) = mb.reserved
    assert (r.flags, r.nid) == (RSRV_KERN, NUMA_NO_NODE)


@APIS
@DIRS
def test_disjoint(api, bottom_up):
    mb = setup_memblock(bottom_up=bottom_up)
    if bottom_up:
        r1 = (B + 2, 2)
        want = B + 2 * SMP
    else:
        r1 = (E - 2, 2)
        want = E - 2 * SMP
    mb.reserve(*r1)
    assert _alloc(mb, api, 16, 2 * SMP) == want
    _check(mb, sorted([r1, (want, 16)]))


@APIS
@DIRS
def test_before(api, bottom_up):
    mb = setup_memblock(bottom_up=bottom_up)
    if bottom_up:
        mb.reserve_kern(B + 512, 128)
        assert _alloc(mb, api, 512, SMP) == B
        _check(mb, [(B, 640)])
    else:
        mb.reserve_kern(E - (SMP + 512), SMP)
        assert _alloc(mb, api, 512, SMP) == E - 512
        _check(mb, [(E - (SMP + 512), SMP + 512)])


@APIS
@DIRS
def test_after(api, bottom_up):
    mb = setup_memblock(bottom_up=bottom_up)
    if bottom_up:
        r1 = (B + SMP, 64)
        mb.reserve_kern(*r1)
        assert _alloc(mb, api, 512, SMP) == r1[0] + 64
        _check(mb, [(r1[0], 64 + 512)])
    else:
        r1 = (E - SMP, 8)
        mb.reserve_kern(*r1)
        assert _alloc(mb, api, 512, SMP) == r1[0] - 512
        _check(mb, [(r1[0] - 512, 512 + 8)])


@APIS
@DIRS
def test_second_fit(api, bottom_up):
    mb = setup_memblock(bottom_up=bottom_up)
    if bottom_up:
        r1, r2 = (B, 512), (B + 1024, 256)
        mb.reserve_kern(*r1)
        mb.reserve_kern(*r2)
        assert _alloc(mb, api, 1024, SMP) == r2[0] + r2[1]
        _check(mb, [r1, (r2[0], r2[1] + 1024)])
    else:
        r1 = (E - 512, 512)
        r2 = (r1[0] - 512, 256)
        mb.reserve_kern(*r1)
        mb.reserve_kern(*r2)
        assert _alloc(mb, api, 1024, SMP) == r2[0] - 1024
        _check(mb, [(r2[0] - 1024, r2[1] + 1024), r1])


# ----------------------------------------------------------- generic groups (both dirs)

@APIS
@DIRS
def test_in_between(api, bottom_up):
    mb = setup_memblock(bottom_up=bottom_up)
    gap, r3 = SMP, 64
    rgn = (MEM_SIZE - (2 * gap + r3)) // 2
    r1 = (E - (gap + rgn), rgn)
    r2 = (B + gap, rgn)
    mb.reserve_kern(*r1)
    mb.reserve_kern(*r2)
    # the only free range that fits is the 64 bytes between them (the two SMP-sized ends don't)
    assert _alloc(mb, api, r3, SMP) == r2[0] + rgn
    _check(mb, [(r1[0] - rgn - r3, 2 * rgn + r3)])


@APIS
@DIRS
def test_small_gaps(api, bottom_up):
    mb = setup_memblock(bottom_up=bottom_up)
    end = B
    while end < E:
        mb.reserve(end + 256, 1024)
        end += 256 + 1024
    before = regs(mb.reserved)
    assert _alloc(mb, api, 1024, SMP) is None
    assert regs(mb.reserved) == before


@APIS
@DIRS
def test_all_reserved(api, bottom_up):
    mb = setup_memblock(bottom_up=bottom_up)
    mb.reserve(B, MEM_SIZE)
    assert _alloc(mb, api, 256, SMP) is None
    _check(mb, [(B, MEM_SIZE)])


@APIS
@DIRS
def test_no_space(api, bottom_up):
    mb = setup_memblock(bottom_up=bottom_up)
    mb.reserve(B, MEM_SIZE - 256)
    assert _alloc(mb, api, 1024, SMP) is None
    _check(mb, [(B, MEM_SIZE - 256)])


@APIS
@DIRS
def test_limited_space(api, bottom_up):
    mb = setup_memblock(bottom_up=bottom_up)
    mb.reserve_kern(B, MEM_SIZE - 256)
    assert _alloc(mb, api, 256, SMP) == E - 256
    _check(mb, [(B, MEM_SIZE)])


@APIS
@DIRS
def test_no_memory(api, bottom_up):
    mb = new_mb(bottom_up=bottom_up)
    assert _alloc(mb, api, 1024, SMP) is None
    assert mb.reserved.cnt == 0 and mb.reserved.total_size == 0 and regs(mb.reserved) == []


@APIS
@DIRS
def test_too_large(api, bottom_up):
    mb = setup_memblock(bottom_up=bottom_up)
    assert _alloc(mb, api, MEM_SIZE + 2, SMP) is None
    assert mb.reserved.cnt == 0 and mb.reserved.total_size == 0


# ----------------------------------------------------------- alloc_helpers_api.c: memblock_alloc_from

def _from(mb, size, align, min_addr):
    return mb.alloc(Alloc("memblock_alloc_from", size, align=align, min_addr=min_addr))


@DIRS
def test_alloc_from_simple(bottom_up):
    mb = setup_memblock(bottom_up=bottom_up)
    min_addr = E - SMP
    assert _from(mb, 16, SMP, min_addr) == min_addr
    _check(mb, [(min_addr, 16)])


@DIRS
def test_alloc_from_misaligned(bottom_up):
    mb = setup_memblock(bottom_up=bottom_up)
    min_addr = E - (SMP * 2 - 1)
    assert _from(mb, 32, SMP, min_addr) == E - SMP
    _check(mb, [(E - SMP, 32)])


@DIRS
def test_alloc_from_high_addr(bottom_up):
    """min_addr too high for the request: memblock_alloc_internal() drops it."""
    mb = setup_memblock(bottom_up=bottom_up)
    min_addr = E - (8 if bottom_up else 16)
    want = B if bottom_up else E - SMP
    assert _from(mb, 32, SMP, min_addr) == want
    _check(mb, [(want, 32)])


def test_alloc_from_top_down_no_space_above():
    mb = setup_memblock()
    min_addr = E - 2 * SMP
    mb.reserve_kern(min_addr, 2)
    assert _from(mb, 64, SMP, min_addr) == min_addr - 64
    _check(mb, [(min_addr - 64, 66)])


def test_alloc_from_bottom_up_no_space_above():
    mb = setup_memblock(bottom_up=True)
    min_addr = B + 128
    r2 = E - min_addr
    mb.reserve(min_addr - SMP, r2)
    assert _from(mb, 64, SMP, min_addr) == B
    _check(mb, [(B, 64), (min_addr - SMP, r2)])


def test_alloc_from_top_down_min_addr_cap():
    mb = setup_memblock()
    mb.reserve_kern(B + 64, MEM_SIZE - 64)
    assert _from(mb, 64, SMP, B - SMP * 3) == B
    _check(mb, [(B, MEM_SIZE)])


def test_alloc_from_bottom_up_min_addr_cap():
    mb = setup_memblock(bottom_up=True)
    assert _from(mb, 64, SMP, B - SMP * 3) == B
    _check(mb, [(B, 64)])
