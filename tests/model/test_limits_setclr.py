# SPDX-License-Identifier: GPL-2.0-only
"""memblock_enforce_memory_limit(), memblock_cap_memory_range(), flag set/clear
and set_node merging (mm/memblock.c 7.3 lines 1978-2050, memblock_setclr_flag())."""

from __future__ import annotations

import pytest
from _harness import NUMA_NO_NODE, B, new_mb, regs

from kho_replay.replay.flags import Flag

K, M = 1 << 10, 1 << 20
NOMAP = int(Flag.MEMBLOCK_NOMAP)
NOINIT = int(Flag.MEMBLOCK_RSRV_NOINIT)


def _two_banks(kernel="7.3"):
    mb = new_mb(kernel)
    mb.add(B, 16 * M)
    mb.add(B + 32 * M, 16 * M)
    mb.reserve(B + 8 * M, M)
    mb.reserve(B + 34 * M, 4 * M)
    mb.reserve(B + 40 * M, M)
    return mb


def test_enforce_memory_limit_cuts_memory_and_reserved():
    mb = _two_banks()
    mb.enforce_memory_limit(20 * M)  # __find_max_addr: 16M in bank 0, then 4M into bank 1
    assert regs(mb.memory) == [(B, 16 * M), (B + 32 * M, 4 * M)]
    assert regs(mb.reserved) == [(B + 8 * M, M), (B + 34 * M, 2 * M)]
    assert mb.memory.total_size == 20 * M


@pytest.mark.parametrize("limit", [0, 32 * M, 64 * M])
def test_enforce_memory_limit_noop(limit):
    """limit 0; limit == total memory (max_addr = end of the last bank); limit > total (PHYS_ADDR_MAX)."""
    mb = _two_banks()
    before = (regs(mb.memory), regs(mb.reserved))
    mb.enforce_memory_limit(limit)
    assert (regs(mb.memory), regs(mb.reserved)) == before


def test_enforce_memory_limit_exact_bank_end():
    mb = _two_banks()
    mb.enforce_memory_limit(16 * M)  # limit <= r->size on bank 0: max_addr = B + 16M
    assert regs(mb.memory) == [(B, 16 * M)]
    assert regs(mb.reserved) == [(B + 8 * M, M)]


def test_cap_memory_range_keeps_nomap_and_truncates_reserved():
    mb = _two_banks()
    mb.setclr_flag(mb.memory, B + 44 * M, 2 * M, True, NOMAP)
    mb.cap_memory_range(B + 4 * M, 32 * M)
    assert [(r.base - B, r.size, r.flags) for r in mb.memory] == [
        (4 * M, 12 * M, 0), (32 * M, 4 * M, 0), (44 * M, 2 * M, NOMAP)
    ]
    assert regs(mb.reserved) == [(B + 8 * M, M), (B + 34 * M, 2 * M)]


def test_cap_memory_range_outside_all_memory_removes_everything_but_nomap():
    mb = _two_banks()
    mb.setclr_flag(mb.memory, B, M, True, NOMAP)
    mb.cap_memory_range(B + 100 * M, M)  # isolate finds nothing: start_rgn = end_rgn = 0
    assert [(r.base, r.flags) for r in mb.memory] == [(B, NOMAP)]
    assert regs(mb.reserved) == []


def test_cap_memory_range_no_memory_warns():
    mb = new_mb()
    mb.cap_memory_range(B, M)
    assert [m.text for m in mb.messages if m.level == "warn"] == [
        "memblock_cap_memory_range: No memory registered yet"
    ]


def test_cap_memory_range_size_zero_is_noop():
    mb = _two_banks()
    mb.cap_memory_range(B, 0)
    assert mb.memory.cnt == 2 and mb.reserved.cnt == 3


def test_cap_leaves_identical_nomap_pieces_unmerged_on_7x_merged_on_6_1():
    """§8 pitfall 12: isolate splits the NOMAP region at base, cap keeps both NOMAP halves and
    never merges; since v6.5 merges are ranged, so they stay split; a pre-6.5 kernel's next
    full-scan merge (any memblock_add) joins them."""
    for kernel, want_cnt in (("7.3", 3), ("6.1", 2)):
        mb = new_mb(kernel)
        mb.add(B, 16 * M)
        mb.setclr_flag(mb.memory, B, 4 * M, True, NOMAP)
        mb.cap_memory_range(B + 2 * M, 8 * M)
        assert [(r.base - B, r.size, r.flags) for r in mb.memory] == [
            (0, 2 * M, NOMAP), (2 * M, 2 * M, NOMAP), (4 * M, 6 * M, 0)
        ]
        mb.add(B + 64 * M, M)
        assert mb.memory.cnt == want_cnt + 1, kernel


def test_mark_clear_nomap_splits_and_remerges():
    mb = new_mb()
    mb.add(B, 16 * M)
    mb.setclr_flag(mb.memory, B + 4 * M, 4 * M, True, NOMAP)
    assert [(r.base - B, r.size, r.flags) for r in mb.memory] == [(0, 4 * M, 0), (4 * M, 4 * M, NOMAP),
                                                                   (8 * M, 8 * M, 0)]
    mb.setclr_flag(mb.memory, B + 4 * M, 4 * M, False, NOMAP)
    assert regs(mb.memory) == [(B, 16 * M)]
    assert mb.memory.total_size == 16 * M


def test_reserved_mark_noinit_splits_and_clear_remerges():
    mb = new_mb()
    mb.reserve(B, 4 * M)
    mb.setclr_flag(mb.reserved, B + M, M, True, NOINIT)
    assert [(r.base - B, r.flags) for r in mb.reserved] == [(0, 0), (M, NOINIT), (2 * M, 0)]
    mb.setclr_flag(mb.reserved, B, 4 * M, False, NOINIT)
    assert regs(mb.reserved) == [(B, 4 * M)]


def test_setclr_on_uncovered_range_changes_nothing():
    mb = new_mb()
    mb.add(B, M)
    mb.setclr_flag(mb.memory, B + 2 * M, M, True, NOMAP)
    assert [(r.base, r.size, r.flags) for r in mb.memory] == [(B, M, 0)]


def test_set_node_splits_then_same_nid_remerges():
    mb = new_mb()
    mb.add_node(B, 16 * M, 0)
    mb.set_node(B + 4 * M, 4 * M, mb.memory, 1)
    assert [(r.base - B, r.nid) for r in mb.memory] == [(0, 0), (4 * M, 1), (8 * M, 0)]
    mb.set_node(B, 16 * M, mb.memory, 0)
    assert [(r.base, r.size, r.nid) for r in mb.memory] == [(B, 16 * M, 0)]


def test_set_node_on_reserved_splits_at_node_boundary():
    """memmap_init_reserved_pages(): a reservation across two nodes is split per node."""
    mb = new_mb()
    mb.add_node(B, 8 * M, 0)
    mb.add_node(B + 8 * M, 8 * M, 1)
    mb.reserve(B + 6 * M, 4 * M)
    assert mb.reserved[0].nid == NUMA_NO_NODE
    for r in list(mb.memory):
        mb.set_node(r.base, r.size, mb.reserved, r.nid)
    assert [(r.base - B, r.size, r.nid) for r in mb.reserved] == [(6 * M, 2 * M, 0), (8 * M, 2 * M, 1)]
