# SPDX-License-Identifier: GPL-2.0-only
"""Accounting (mm/memblock.c 7.3 lines 1907-1963, kernel/fork.c set_max_threads()),
add_range WARNs, and what differs in older kernel eras.
"""

from __future__ import annotations

import pytest
from _harness import ANYWHERE, MAX_NUMNODES, NUMA_NO_NODE, PAGE, RSRV_KERN, B, new_mb, regs

from kho_replay.replay.errors import KhoReplayError
from kho_replay.replay.ops import Alloc
from kho_replay.replay.profile import profile_for

K, M = 1 << 10, 1 << 20
MAX_THREADS = 0x3FFFFFFF


def _acct():
    """64 MiB on two nodes; four reservations of different nid/flags."""
    mb = new_mb()
    mb.add_node(B, 32 * M, 0)
    mb.add_node(B + 32 * M, 32 * M, 1)
    mb.reserve_range(B, 1 * M, 0, RSRV_KERN)            # r1: kern, nid 0
    mb.reserve(B + 2 * M, 1 * M)                          # r2: firmware, nid -1, flags 0
    mb.reserve_range(B + 4 * M, 2 * M, 1, RSRV_KERN)    # r3: kern, nid 1
    mb.reserve_kern(B + 8 * M, 1 * M)                     # r4: kern, nid -1
    return mb


@pytest.mark.parametrize(
    ("limit", "nid", "want"),
    [
        (ANYWHERE, NUMA_NO_NODE, 4 * M),       # all RSRV_KERN, flags-0 r2 excluded
        (ANYWHERE, MAX_NUMNODES, 4 * M),       # any invalid nid means all nodes
        (ANYWHERE, 0, 1 * M),                  # exact nid match on the reserved region
        (ANYWHERE, 1, 2 * M),
        (ANYWHERE, 2, 0),
        (B + 5 * M, NUMA_NO_NODE, 2 * M),      # r3 crosses the limit: counts limit - base
        (B + 5 * M, 1, 1 * M),
        (B + 4 * M, NUMA_NO_NODE, 1 * M),      # r3 starts at the limit: counts 0
        (B + 8 * M - 1, NUMA_NO_NODE, 3 * M),  # stops before r4 (base > limit)
        (B - 1, NUMA_NO_NODE, 0),
        (B + M // 2, 0, M // 2),
    ],
)
def test_reserved_kern_size(limit, nid, want):
    assert _acct().reserved_kern_size(limit, nid) == want


def test_reserved_kern_size_after_patchwork_reserve():
    """add_range only fills gaps: reserve() over a reserve_kern() keeps the middle RSRV_KERN."""
    mb = new_mb()
    mb.reserve_kern(B + M, M)
    mb.reserve(B, 4 * M)
    assert [(r.base - B, r.size, r.flags) for r in mb.reserved] == [(0, M, 0), (M, M, RSRV_KERN), (2 * M, 2 * M, 0)]
    assert mb.reserved_kern_size() == M
    assert mb.reserved.total_size == 4 * M


def test_reserved_hugetlb_size():
    mb = new_mb()
    mb.add_node(B, 64 * M, 0)
    mb.alloc(Alloc("memblock_alloc_hugetlb", 2 * M, nid=0))
    mb.alloc(Alloc("memblock_alloc", 4 * K, align=PAGE))
    assert mb.reserved_hugetlb_size() == 2 * M
    assert mb.reserved_hugetlb_size(ANYWHERE, 0) == 2 * M
    assert mb.reserved_hugetlb_size(ANYWHERE, 1) == 0
    assert mb.reserved_kern_size() == 2 * M + 4 * K  # gigantic pages stay RSRV_KERN


def test_estimated_nr_free_pages_subtracts_rsrv_kern_only():
    mb = _acct()
    assert mb.estimated_nr_free_pages() == (64 * M - 4 * M) // PAGE


def test_estimated_nr_free_pages_6_12_subtracts_all_reserved():
    mb = new_mb("6.12")
    mb.add(B, 64 * M)
    mb.reserve(B + 2 * M, M)
    mb.alloc(Alloc("memblock_alloc", 4 * K, align=PAGE))
    assert mb.estimated_nr_free_pages() == (64 * M - M - 4 * K) // PAGE


def test_estimated_nr_free_pages_6_12_underflow():
    """Reservations outside memory larger than memory: u64 wrap (the soft-reserved/CXL bug)."""
    mb = new_mb("6.12")
    mb.add(B, 4 * M)
    mb.reserve(B + 1024 * M, 8 * M)
    assert mb.estimated_nr_free_pages() == ((4 * M - 8 * M) % 2**64) // PAGE
    assert mb.max_threads() == MAX_THREADS  # fls64(nr_pages) + fls64(PAGE_SIZE) > 64


def test_estimated_nr_free_pages_7_3_ignores_non_kern():
    mb = new_mb()
    mb.add(B, 4 * M)
    mb.reserve(B + 1024 * M, 8 * M)  # flags 0: not subtracted since the Nov 2025 fix
    assert mb.estimated_nr_free_pages() == 4 * M // PAGE


@pytest.mark.parametrize(
    ("nr_pages", "want"),
    [
        (0, 20),
        (640, 20),              # 640 / 32 = 20
        (671, 20),
        (672, 21),
        (15360, 480),           # 60 MiB
        (1 << 20, 1 << 15),     # 4 GiB -> 32768 threads
        (1 << 40, MAX_THREADS),
        (1 << 52, MAX_THREADS),  # fls64 + 13 > 64
    ],
)
def test_max_threads(nr_pages, want):
    """set_max_threads(): nr_pages * 4K / (16K * 8) = nr_pages / 32, clamped to [20, FUTEX_TID_MASK]."""
    assert new_mb().max_threads(nr_pages) == want


def test_max_threads_from_final_state():
    mb = _acct()
    assert mb.max_threads() == ((64 * M - 4 * M) // PAGE) // 32


# ------------------------------------------------------------------ add_range WARNs

def _warns(mb):
    return [m.text for m in mb.messages if m.level == "warn"]


def test_warn_nid_mismatch_reserve_over_node_allocation():
    mb = new_mb()
    mb.add_node(B, 64 * M, 0)
    got = mb.alloc(Alloc("memblock_alloc_node", 4 * K, align=PAGE, nid=0))
    assert mb.reserved[0].nid == 0
    mb.reserve(got - 4 * K, 16 * K)  # nid -1 over a nid-0 region that lies above the gap
    w = _warns(mb)
    assert len(w) == 1 and "nid -1 != region nid 0" in w[0]
    # the overlapped part keeps its nid/flags
    assert [(r.base - got, r.nid, r.flags) for r in mb.reserved] == [
        (-4 * K, -1, 0), (0, 0, RSRV_KERN), (4 * K, -1, 0)
    ]


def test_warn_flags_mismatch():
    mb = new_mb()
    mb.reserve(B + M, M)
    mb.reserve_kern(B, 4 * M)
    w = _warns(mb)
    assert len(w) == 1 and "flags 0x20 != region flags 0x0" in w[0]
    assert [(r.base - B, r.flags) for r in mb.reserved] == [(0, RSRV_KERN), (M, 0), (2 * M, RSRV_KERN)]


def test_no_warn_for_flags_none_or_region_below_base():
    mb = new_mb()
    mb.reserve_kern(B + M, M)
    mb.reserve(B, 4 * M)          # flags NONE: no flags WARN, same nid -1
    mb.reserve_kern(B + 3 * M, 2 * M)  # overlaps a region starting below base: not checked
    assert _warns(mb) == []


def test_warn_memory_nid():
    mb = new_mb()
    mb.add_node(B + M, M, 0)
    mb.add_node(B, 4 * M, 1)
    assert any("nid 1 != region nid 0" in w for w in _warns(mb))
    assert [(r.base - B, r.nid) for r in mb.memory] == [(0, 1), (M, 0), (2 * M, 1)]


def test_max_numnodes_allocation_nid_7_3():
    """7.x: an invalid nid (MAX_NUMNODES) just means any node, and is recorded as given."""
    mb = new_mb()
    mb.add(B, 64 * M)
    got = mb.alloc(Alloc("memblock_alloc_try_nid", 4 * K, align=PAGE, nid=MAX_NUMNODES))
    assert got == B + 64 * M - 4 * K
    assert mb.reserved[0].nid == MAX_NUMNODES
    assert _warns(mb) == []


def test_max_numnodes_deprecated_warn_6_1():
    mb = new_mb("6.1")
    mb.add(B, 64 * M)
    got = mb.alloc(Alloc("memblock_alloc_try_nid", 4 * K, align=PAGE, nid=MAX_NUMNODES))
    assert got == B + 64 * M - 4 * K
    assert "Usage of MAX_NUMNODES is deprecated. Use NUMA_NO_NODE instead" in _warns(mb)


def test_align_zero_uses_smp_cache_bytes():
    mb = new_mb()
    mb.add(B, 64 * K)
    got = mb.alloc(Alloc("memblock_alloc", 40, align=0))
    assert got == B + 64 * K - 64  # round_down(end - 40, 32)
    assert any("SMP_CACHE_BYTES (32)" in w for w in _warns(mb))


# ------------------------------------------------------------------ old eras

def test_6_1_reserve_and_alloc_record_max_numnodes_flags_0():
    mb = new_mb("6.1")
    mb.add(B, 64 * M)
    mb.reserve(B + 64 * M - 8 * K, 4 * K)
    got = mb.alloc(Alloc("memblock_alloc_node", 4 * K, align=PAGE, nid=0))
    # same nid (MAX_NUMNODES) and flags (0): the allocation merges with the firmware reservation
    assert got == B + 64 * M - 4 * K
    assert [(r.base, r.size, r.flags, r.nid) for r in mb.reserved] == [(B + 64 * M - 8 * K, 8 * K, 0, MAX_NUMNODES)]


def test_7_3_allocation_does_not_merge_with_plain_reserve():
    mb = new_mb()
    mb.add(B, 64 * M)
    mb.reserve(B + 64 * M - 8 * K, 4 * K)
    mb.alloc(Alloc("memblock_alloc", 4 * K, align=PAGE))
    assert mb.reserved.cnt == 2


def test_6_1_empty_table_cnt_1_and_dummy_dump_line():
    mb = new_mb("6.1")
    mb.reserve(B, 4 * K)
    mb.phys_free(B, 4 * K)
    assert mb.reserved.cnt == 1 and mb.reserved.total_size == 0 and regs(mb.reserved) == []
    dump = mb.dump_all()
    assert " reserved.cnt  = 0x1" in dump
    i = dump.index(" reserved.cnt  = 0x1")
    assert dump[i + 1] == " reserved[0x0]\t[0x0000000000000000-0xffffffffffffffff], 0x0000000000000000 bytes flags: 0x0"


def test_7_3_empty_table_dump():
    mb = new_mb()
    dump = mb.dump_all()
    assert dump[-2:] == [" memory.cnt  = 0x0", " reserved.cnt  = 0x0"]


def test_dump_on_node_rules():
    """7.x prints 'on node' for valid nids only; 6.1 for every nid but MAX_NUMNODES."""
    for kernel, want in (("7.3", ["on node 0", "", ""]), ("6.1", ["on node 0", "on node -1", ""])):
        mb = new_mb(kernel)
        mb.add_node(B, M, 0)
        mb.reserve_range(B, 4 * K, NUMA_NO_NODE, 0)
        mb.reserve_range(B + 8 * K, 4 * K, MAX_NUMNODES, 0)
        lines = [ln for ln in mb.dump_all() if "bytes" in ln]
        assert len(lines) == 3
        for ln, w in zip(lines, want, strict=True):
            if w:
                assert f"bytes {w} flags" in ln
            else:
                assert "on node" not in ln


def test_dump_region_line_format():
    mb = new_mb()
    mb.add_node(B, M, 0)
    mb.reserve_kern(B, 4 * K)
    assert mb.dump_all() == [
        "MEMBLOCK configuration:",
        " memory size = 0x0000000000100000 reserved size = 0x0000000000001000",
        " memory.cnt  = 0x1",
        " memory[0x0]\t[0x0000000040000000-0x00000000400fffff], 0x0000000000100000 bytes on node 0 flags: 0x0",
        " reserved.cnt  = 0x1",
        " reserved[0x0]\t[0x0000000040000000-0x0000000040000fff], 0x0000000000001000 bytes flags: 0x20",
    ]


@pytest.mark.parametrize("kernel", ["5.4", "5.10"])
def test_bottom_up_above_kernel_end(kernel):
    """Before 2dcb39645441 (v5.11): bottom-up starts at kernel_end ..."""
    mb = new_mb(kernel, bottom_up=True)
    mb.add(B, 64 * M)
    mb.kernel_end = B + 16 * M
    assert mb.alloc(Alloc("memblock_alloc", 4 * K, align=PAGE)) == B + 16 * M


@pytest.mark.parametrize("kernel", ["5.4", "5.10"])
def test_bottom_up_kernel_end_falls_back_top_down(kernel):
    """... and falls back to a top-down search of the whole range, with a WARN."""
    mb = new_mb(kernel, bottom_up=True)
    mb.add(B, 64 * M)
    mb.kernel_end = B + 16 * M
    mb.reserve(B + 16 * M, 48 * M)
    got = mb.alloc(Alloc("memblock_alloc", 4 * K, align=PAGE))
    assert got == B + 16 * M - 4 * K
    assert "memblock: bottom-up allocation failed, memory hotremove may be affected" in _warns(mb)


@pytest.mark.parametrize("kernel", ["5.4", "5.10"])
def test_bottom_up_end_below_kernel_end_is_top_down(kernel):
    mb = new_mb(kernel, bottom_up=True)
    mb.add(B, 64 * M)
    mb.kernel_end = B + 16 * M
    got = mb.alloc(Alloc("memblock_alloc_try_nid", 4 * K, align=PAGE, max_addr=B + 8 * M, nid=-1))
    assert got == B + 8 * M - 4 * K
    assert _warns(mb) == []


@pytest.mark.parametrize("kernel", ["5.15", "6.1", "7.3"])
def test_bottom_up_from_bottom_since_5_11(kernel):
    mb = new_mb(kernel, bottom_up=True)
    mb.add(B, 64 * M)
    mb.kernel_end = B + 16 * M
    assert mb.alloc(Alloc("memblock_alloc", 4 * K, align=PAGE)) == B


@pytest.mark.parametrize(
    ("release", "name"),
    [("7.3.4", "7.3"), ("7.2.13", "7.2"), ("6.1.0-56-amd64", "6.1"), ("6.3", "6.1"), ("5.4.0", "5.4"),
     ("8.0", "7.3"), ("6.19", "6.12")],
)
def test_profile_for(release, name):
    assert profile_for(release).name == name


def test_profile_too_old():
    with pytest.raises(KhoReplayError, match="older than every profile"):
        profile_for("4.19")


def test_max_numnodes_warn_is_once_6_1():
    """6.1 memblock_alloc_range_nid(): WARN_ONCE(nid == MAX_NUMNODES, ...) prints once per boot."""
    mb = new_mb("6.1")
    mb.add(B, 64 * M)
    for _ in range(3):
        mb.alloc(Alloc("memblock_alloc_try_nid", 4 * K, align=PAGE, nid=MAX_NUMNODES))
    assert _warns(mb).count("Usage of MAX_NUMNODES is deprecated. Use NUMA_NO_NODE instead") == 1
    assert mb.reserved.total_size == 12 * K


def test_alloc_or_panic_message_names_calling_function():
    """memblock_alloc_or_panic() passes __func__ of its caller: "%s: Failed to allocate %pap bytes"."""
    from kho_replay.replay.errors import KernelPanic

    mb = new_mb()
    mb.add(B, 64 * K)
    op = Alloc("memblock_alloc_or_panic", M, align=PAGE, caller="setup_log_buf+0x1a/0x2b0")
    with pytest.raises(KernelPanic) as e:
        mb.alloc(op)
    assert e.value.message == "setup_log_buf: Failed to allocate 0x0000000000100000 bytes"
