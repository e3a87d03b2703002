# SPDX-License-Identifier: GPL-2.0-only
"""tools/testing/memblock/tests/basic_api.c, on the model.

Each test states the kernel test's set-up and expectations (the region
constants are the kernel test's own absolute values; ``B`` stands for
``dummy_physical_memory_base()``).  The 7.x harness conventions apply:
``memblock_add()`` records nid MAX_NUMNODES (16), ``memblock_reserve()``
nid -1 with flags 0, an empty table has cnt 0.
"""

from __future__ import annotations

import pytest
from _harness import (
    HOTPLUG,
    MAX_NUMNODES,
    MEM_SIZE,
    NUMA_NO_NODE,
    PAGE,
    PHYS_ADDR_MAX,
    REGION_SIZE,
    RSRV_KERN,
    SMP,
    B,
    new_mb,
    regs,
)

K, M, G = 1 << 10, 1 << 20, 1 << 30
INIT_REGIONS = 128
NEW_ARRAY = (INIT_REGIONS * 2 * REGION_SIZE + PAGE - 1) // PAGE * PAGE  # PAGE_ALIGN(256 * 24) = 8 KiB


def test_initialization():
    mb = new_mb()
    assert mb.memory.cnt == 0 and mb.reserved.cnt == 0
    assert mb.memory.max == INIT_REGIONS and mb.reserved.max == INIT_REGIONS
    assert mb.memory.name == "memory" and mb.reserved.name == "reserved"
    assert mb.bottom_up is False
    assert mb.current_limit == PHYS_ADDR_MAX
    assert NEW_ARRAY == 8 * K


# ------------------------------------------------------------------ add / reserve
# The same geometry checks run against memblock_add() (memory) and memblock_reserve() (reserved).

def _do(mb, kind, base, size):
    if kind == "add":
        return mb.add(base, size)
    return mb.reserve(base, size)


def _table(mb, kind):
    return mb.memory if kind == "add" else mb.reserved


# (name, [regions to add in order], expected regions) -- basic_api.c's constants
ADD_CASES = {
    "add": [
        ("simple", [(G, 4 * M)], [(G, 4 * M)]),
        ("disjoint", [(G, 8 * K), (G + 16 * K, 8 * K)], [(G, 8 * K), (G + 16 * K, 8 * K)]),
        ("overlap_top", [(512 * M, G), (256 * M, 512 * M)], [(256 * M, 256 * M + G)]),
        ("overlap_bottom", [(128 * M, 512 * M), (256 * M, G)], [(128 * M, 128 * M + G)]),
        ("within", [(8 * M, 32 * M), (16 * M, M)], [(8 * M, 32 * M)]),
        ("twice", [(16 * K, 2 * M), (16 * K, 2 * M)], [(16 * K, 2 * M)]),
        ("between", [(G, 8 * K), (G + 16 * K, 8 * K), (G + 8 * K, 8 * K)], [(G, 24 * K)]),
        ("near_max", [(PHYS_ADDR_MAX - M, 2 * M)], [(PHYS_ADDR_MAX - M, M)]),
    ],
    "reserve": [
        ("simple", [(2 * G, 128 * M)], [(2 * G, 128 * M)]),
        ("disjoint", [(256 * M, 16 * M), (512 * M, 512 * M)], [(256 * M, 16 * M), (512 * M, 512 * M)]),
        ("overlap_top", [(G, G), (128 * M, G)], [(128 * M, G - 128 * M + G)]),
        ("overlap_bottom", [(2 * K, 128 * K), (128 * K, 128 * K)], [(2 * K, 254 * K)]),
        ("within", [(M, 8 * M), (2 * M, 64 * K)], [(M, 8 * M)]),
        ("twice", [(16 * K, 2 * M), (16 * K, 2 * M)], [(16 * K, 2 * M)]),
        ("between", [(G, 8 * K), (G + 16 * K, 8 * K), (G + 8 * K, 8 * K)], [(G, 24 * K)]),
        ("near_max", [(PHYS_ADDR_MAX - M, 2 * M)], [(PHYS_ADDR_MAX - M, M)]),
    ],
}


@pytest.mark.parametrize(
    ("kind", "name", "ops", "want"),
    [(kind, *case) for kind, cases in ADD_CASES.items() for case in cases],
    ids=[f"{kind}-{case[0]}" for kind, cases in ADD_CASES.items() for case in cases],
)
def test_add_reserve_geometry(kind, name, ops, want):
    mb = new_mb()
    for base, size in ops:
        assert _do(mb, kind, base, size)
    t = _table(mb, kind)
    assert regs(t) == want
    assert t.cnt == len(want)
    assert t.total_size == sum(s for _, s in want)
    t.check()


def test_add_records_max_numnodes_and_no_flags():
    mb = new_mb()
    mb.add(G, 4 * M)
    (r,) = mb.memory
    assert r.nid == MAX_NUMNODES and r.flags == 0


def test_reserve_records_numa_no_node_and_no_flags():
    mb = new_mb()
    mb.reserve(2 * G, 128 * M)
    (r,) = mb.reserved
    assert r.nid == NUMA_NO_NODE and r.flags == 0


def test_add_node_simple():
    mb = new_mb()
    mb.add_node(M, 16 * M, 1, HOTPLUG)
    assert regs(mb.memory) == [(M, 16 * M)]
    (r,) = mb.memory
    assert r.nid == 1 and r.flags == HOTPLUG
    assert mb.memory.cnt == 1 and mb.memory.total_size == 16 * M


def test_add_many_doubles_memory_array():
    """memblock_add_many_check: the 129th region doubles memory.regions; the new
    array is taken from the first (8 KiB) memory region and reserved."""
    mb = new_mb(resize=True)
    base = B
    mb.add(base, NEW_ARRAY)
    base += NEW_ARRAY + 64
    for i in range(INIT_REGIONS):
        mb.add(base, 64)
        base += 128
        assert mb.memory.cnt == i + 2
        assert mb.memory.total_size == NEW_ARRAY + (i + 1) * 64
    assert mb.memory.max == 2 * INIT_REGIONS
    assert mb.reserved.cnt == 1
    assert mb.reserved.total_size == NEW_ARRAY
    # the only 8 KiB hole in memory is the first region; reserve_kern() records it
    (arr,) = mb.reserved
    assert (arr.base, arr.size, arr.flags, arr.nid) == (B, NEW_ARRAY, RSRV_KERN, NUMA_NO_NODE)
    mb.add(16 * K, 16 * K)
    assert mb.memory[0].base == 16 * K and mb.memory[0].size == 16 * K
    assert mb.memory.cnt == INIT_REGIONS + 2
    assert mb.memory.total_size == INIT_REGIONS * 64 + NEW_ARRAY + 16 * K
    assert mb.memory.max == 2 * INIT_REGIONS


def test_reserve_many_doubles_reserved_array():
    """memblock_reserve_many_check."""
    mb = new_mb(resize=True)
    mb.add(B, MEM_SIZE)
    base = 128 * K
    for i in range(INIT_REGIONS):
        mb.reserve(base, MEM_SIZE)
        assert mb.reserved.cnt == i + 1
        assert mb.reserved.total_size == (i + 1) * MEM_SIZE
        base += 2 * MEM_SIZE
    mb.reserve(base, MEM_SIZE)
    assert mb.reserved.cnt == INIT_REGIONS + 2
    assert mb.reserved.total_size == (INIT_REGIONS + 1) * MEM_SIZE + NEW_ARRAY
    assert mb.reserved.max == 2 * INIT_REGIONS
    # top-down, above the pending range first: the top of the only memory
    arr = mb.reserved.search(B + MEM_SIZE - 1)
    assert arr is not None and (arr.base, arr.size) == (B + MEM_SIZE - NEW_ARRAY, NEW_ARRAY)
    mb.reserve(16 * K, 16 * K)
    assert mb.reserved[0].base == 16 * K and mb.reserved[0].size == 16 * K
    assert mb.reserved.cnt == INIT_REGIONS + 3
    assert mb.reserved.total_size == (INIT_REGIONS + 1) * MEM_SIZE + NEW_ARRAY + 16 * K


def _memory_base(i):
    return 128 * K + 2 * MEM_SIZE * i


@pytest.mark.parametrize("skip", [0, 1, 63, 127, 128])
def test_reserve_all_locations(skip):
    """memblock_reserve_all_locations_check: the doubling reserve may be any of the 129."""
    mb = new_mb(resize=True)
    mb.add(B, MEM_SIZE)
    for i in range(INIT_REGIONS + 1):
        if i == skip:
            continue
        mb.reserve(_memory_base(i), MEM_SIZE)
        n = i + 1 if i < skip else i
        assert mb.reserved.cnt == n
        assert mb.reserved.total_size == n * MEM_SIZE
    mb.reserve(_memory_base(skip), MEM_SIZE)
    assert mb.reserved.cnt == INIT_REGIONS + 2
    assert mb.reserved.total_size == (INIT_REGIONS + 1) * MEM_SIZE + NEW_ARRAY
    assert mb.reserved.max == 2 * INIT_REGIONS
    mb.reserve(16 * K, 16 * K)
    assert regs(mb.reserved)[0] == (16 * K, 16 * K)
    assert mb.reserved.cnt == INIT_REGIONS + 3


@pytest.mark.parametrize("bottom_up", [False, True], ids=["top_down", "bottom_up"])
@pytest.mark.parametrize("skip", [1, 2, 64, 128, 129])
def test_reserve_many_may_conflict(skip, bottom_up):
    """memblock_reserve_many_may_conflict_check: the only free memory besides the
    range being reserved is the first bank, so the new array must go there
    (the kernel test is top-down: the array ends at the bank's end; bottom-up
    it starts at the bank's base)."""
    offset = B
    mb = new_mb(resize=True, bottom_up=bottom_up)

    def base_of(i):
        return offset + 2 * MEM_SIZE * i

    mb.add(base_of(0), MEM_SIZE)
    mb.add(base_of(skip), MEM_SIZE)
    for i in range(1, INIT_REGIONS + 2):
        if i == skip:
            continue
        mb.reserve(base_of(i), MEM_SIZE)
        n = i if i < skip else i - 1
        assert mb.reserved.cnt == n
        assert mb.reserved.total_size == n * MEM_SIZE
    mb.reserve(base_of(skip), MEM_SIZE)
    assert mb.reserved.cnt == INIT_REGIONS + 2
    assert mb.reserved.total_size == (INIT_REGIONS + 1) * MEM_SIZE + NEW_ARRAY
    assert mb.reserved.max == 2 * INIT_REGIONS
    r0 = mb.reserved[0]
    assert r0.size == NEW_ARRAY
    if bottom_up:
        assert r0.base == base_of(0)
    else:
        assert r0.base + r0.size == base_of(0) + MEM_SIZE
    mb.reserve(16 * K, 16 * K)
    assert regs(mb.reserved)[0] == (16 * K, 16 * K)
    assert mb.reserved.cnt == INIT_REGIONS + 3
    assert mb.reserved.total_size == (INIT_REGIONS + 1) * MEM_SIZE + NEW_ARRAY + 16 * K


# ------------------------------------------------------------------ remove / free
# (name, regions present, range removed, expected) -- basic_api.c's constants

REMOVE_CASES = [
    ("simple", [(2 * K, 4 * K), (128 * K, 4 * M)], (2 * K, 4 * K), [(128 * K, 4 * M)]),
    ("absent", [(512 * K, 4 * M)], (64 * M, G), [(512 * K, 4 * M)]),
    ("overlap_top", [(32 * M, 32 * M)], (16 * M, 32 * M), [(48 * M, 16 * M)]),
    ("overlap_bottom", [(2 * M, 64 * M)], (32 * M, 256 * M), [(2 * M, 30 * M)]),
    ("within", [(M, 32 * M)], (16 * M, M), [(M, 15 * M), (17 * M, 16 * M)]),
    ("only_region", [(2 * K, 4 * K)], (2 * K, 4 * K), []),
    ("near_max", [(PHYS_ADDR_MAX - 2 * M, 2 * M)], (PHYS_ADDR_MAX - M, 2 * M),
     [(PHYS_ADDR_MAX - 2 * M, 2 * M - (PHYS_ADDR_MAX - (PHYS_ADDR_MAX - M)))]),
    ("overlap_two", [(16 * M, 32 * M), (64 * M, 64 * M)], (32 * M, 64 * M), [(16 * M, 16 * M), (96 * M, 32 * M)]),
]
FREE_CASES = [
    ("simple", [(4 * M, M), (8 * M, M)], (4 * M, M), [(8 * M, M)]),
    ("absent", [(2 * M, 8 * K)], (16 * M, 128 * M), [(2 * M, 8 * K)]),
    ("overlap_top", [(8 * M, 32 * M)], (M, 8 * M), [(9 * M, 31 * M)]),
    ("overlap_bottom", [(8 * M, 32 * M)], (32 * M, 32 * M), [(8 * M, 24 * M)]),
    ("within", [(M, 8 * M)], (4 * M, M), [(M, 3 * M), (5 * M, 4 * M)]),
    ("only_region", [(2 * K, 4 * K)], (2 * K, 4 * K), []),
    ("near_max", [(PHYS_ADDR_MAX - 2 * M, 2 * M)], (PHYS_ADDR_MAX - M, 2 * M),
     [(PHYS_ADDR_MAX - 2 * M, 2 * M - (PHYS_ADDR_MAX - (PHYS_ADDR_MAX - M)))]),
    ("overlap_two", [(16 * M, 32 * M), (64 * M, 64 * M)], (32 * M, 64 * M), [(16 * M, 16 * M), (96 * M, 32 * M)]),
]


@pytest.mark.parametrize(("name", "present", "rng", "want"), REMOVE_CASES, ids=[c[0] for c in REMOVE_CASES])
def test_remove(name, present, rng, want):
    mb = new_mb()
    for b, s in present:
        mb.add(b, s)
    assert mb.remove(*rng)
    assert regs(mb.memory) == want
    assert mb.memory.cnt == len(want)  # only_region: cnt 0 in the 7.x tree
    assert mb.memory.total_size == sum(s for _, s in want)
    mb.memory.check()


@pytest.mark.parametrize(("name", "present", "rng", "want"), FREE_CASES, ids=[c[0] for c in FREE_CASES])
def test_free(name, present, rng, want):
    mb = new_mb()
    for b, s in present:
        mb.reserve(b, s)
    assert mb.phys_free(*rng)
    assert regs(mb.reserved) == want
    assert mb.reserved.cnt == len(want)
    assert mb.reserved.total_size == sum(s for _, s in want)
    mb.reserved.check()


def test_near_max_caps_to_phys_addr_max():
    # memblock_cap_size(): [MAX - 1M, MAX - 1M + 2M) is cut to end at PHYS_ADDR_MAX
    mb = new_mb()
    mb.add(PHYS_ADDR_MAX - M, 2 * M)
    assert mb.memory[0].size == PHYS_ADDR_MAX - (PHYS_ADDR_MAX - M) == M
    mb.add(PHYS_ADDR_MAX - 2 * M, 2 * M)  # fills the gap below, merges
    assert regs(mb.memory) == [(PHYS_ADDR_MAX - 2 * M, 2 * M)]


# ------------------------------------------------------------------ bottom_up

def test_set_bottom_up():
    mb = new_mb()
    mb.set_bottom_up(False)
    assert mb.bottom_up is False
    mb.set_bottom_up(True)
    assert mb.bottom_up is True


# ------------------------------------------------------------------ trim_memory

def test_trim_memory_aligned():
    mb = new_mb()
    mb.add(SMP, SMP * 4)
    mb.trim_memory(SMP)
    assert regs(mb.memory) == [(SMP, SMP * 4)]
    assert mb.memory.cnt == 1


def test_trim_memory_too_small():
    mb = new_mb()
    mb.add(SMP, SMP * 2)
    mb.add(SMP * 4, SMP - 2)
    mb.trim_memory(SMP)
    assert regs(mb.memory) == [(SMP, SMP * 2)]
    assert mb.memory.cnt == 1
    # removal subtracts the removed region's size
    assert mb.memory.total_size == SMP * 2


def test_trim_memory_unaligned_base():
    mb = new_mb()
    off = 2
    mb.add(SMP, SMP * 2)
    mb.add(SMP * 4 + off, SMP * 2 - off)
    mb.trim_memory(SMP)
    assert regs(mb.memory) == [(SMP, SMP * 2), (SMP * 4 + off + (SMP - off), SMP * 2 - off - (SMP - off))]
    assert mb.memory.cnt == 2
    # memblock_trim_memory() shrinks in place without touching total_size
    assert mb.memory.total_size == SMP * 2 + SMP * 2 - off


def test_trim_memory_unaligned_end():
    mb = new_mb()
    off = 2
    mb.add(SMP, SMP * 2)
    mb.add(SMP * 4, SMP * 2 - off)
    mb.trim_memory(SMP)
    assert regs(mb.memory) == [(SMP, SMP * 2), (SMP * 4, SMP * 2 - off - (SMP - off))]
    assert mb.memory.cnt == 2
    assert mb.memory.total_size == SMP * 4 - off


# ------------------------------------------------------------------ overlaps_region

@pytest.mark.parametrize(
    ("base", "size", "want"),
    [
        (M, M, False),
        (2 * G, M, False),
        (G - M, M, False),
        (G + 4 * M, M, False),
        (G - M, 2 * M, True),
        (G + 2 * M, 2 * M, True),
        (G, 4 * M, True),
        (G - 2 * M, 8 * M, True),
        (G + M, M, True),
    ],
)
def test_overlaps_region(base, size, want):
    mb = new_mb()
    mb.add(G, 4 * M)
    assert mb.memory.overlaps(base, size) is want


# ------------------------------------------------------------------ set_node

def test_set_node():
    """memblock_set_node_check: assigning reserved nids doubles the reserved array
    (isolate grows on cnt + 2 > max) and the loop repeats while max changes."""
    mb = new_mb(resize=True)
    mb.add(B, MEM_SIZE)
    half = mb.phys_mem_size() // 2
    mb.set_node(B, half, mb.memory, 0)
    mb.set_node(B + half, half, mb.memory, 1)
    assert mb.memory.cnt == 2
    assert [(r.base, r.size, r.nid) for r in mb.memory] == [(B, half, 0), (B + half, half, 1)]
    for i in range(125):
        mb.reserve(B + 16 * i, 8)
    mb.reserve(B + half - 8, 16)
    rounds = 0
    while True:
        rounds += 1
        max_reserved = mb.reserved.max
        for r in list(mb.memory):
            mb.set_node(r.base, r.size, mb.reserved, r.nid)
        if max_reserved == mb.reserved.max:
            break
    assert rounds == 2 and mb.reserved.max == 256
    res = list(mb.reserved)
    assert all(0 <= r.nid < MAX_NUMNODES for r in res)
    assert res[-1].nid == 1
    assert all(r.nid == 0 for r in res[:-1])
    # the doubled array: below the pending node-1 range, top-down, page aligned, under the
    # crossing reservation at B+16K-8: round_down(B + 16K - 8 - 8K, 4K) = B + 4K
    arr = mb.reserved.search(B + 4 * K)
    assert arr is not None and (arr.base, arr.size, arr.flags) == (B + 4 * K, NEW_ARRAY, RSRV_KERN)
    assert mb.reserved.cnt == 125 + 2 + 1


def test_trim_slack_survives_until_the_table_empties_then_add_resets_total():
    """memblock_trim_memory() shrinks without touching total_size; removing the shrunk region
    subtracts only its new size, so an empty memory table keeps total_size != 0 (the kernel
    WARNs in memblock_remove_region()); the next memblock_add() into the empty array WARNs
    again and resets total_size to the new region's size (mm/memblock.c 7.3 lines 373, 625)."""
    mb = new_mb()
    mb.add(0x100 + B, 2 * PAGE)
    mb.trim_memory(PAGE)
    assert regs(mb.memory) == [(B + PAGE, PAGE)] and mb.memory.total_size == 2 * PAGE
    mb.remove(B, 16 * PAGE)
    assert mb.memory.cnt == 0 and mb.memory.total_size == PAGE
    mb.add(B, 2 * PAGE)
    assert regs(mb.memory) == [(B, 2 * PAGE)] and mb.memory.total_size == 2 * PAGE
    mb.memory.check()
    assert any("total_size 0x1000 in an empty array" in m.text for m in mb.messages if m.level == "warn")
