# SPDX-License-Identifier: GPL-2.0-only
"""``memblock_double_array()`` past 128 regions (mm/memblock.c 7.3, lines 415-520).

* the new array is found with ``memblock_find_in_range()``: same direction and
  current_limit as allocations, NUMA_NO_NODE, PAGE_SIZE alignment,
  PAGE_ALIGN(2 * max * 24) bytes (8 KiB for 256 entries, 12 KiB for 512, 24 KiB
  for 1024);
* for ``reserved`` it searches ``[pending_end, current_limit)`` first, then
  ``[0, min(pending_start, current_limit))``; ``memory`` ignores the pending range;
* the old *dynamic* array is freed before the new one is reserved with
  ``memblock_reserve_kern()`` (nid -1, RSRV_KERN) in 7.x, plain
  ``memblock_reserve()`` (nid MAX_NUMNODES, flags 0) in 6.1;
* before ``memblock_allow_resize()``: panic in 7.x, -ENOMEM (the operation is
  silently lost) in 6.1.
"""

from __future__ import annotations

import pytest
from _harness import MAX_NUMNODES, NUMA_NO_NODE, PAGE, RSRV_KERN, B, new_mb, regs

from kho_replay.replay.errors import KernelPanic
from kho_replay.replay.flags import Flag
from kho_replay.replay.ops import Alloc, AllowResize, Reserve

K, M = 1 << 10, 1 << 20
MEM = 2 * M
LOW = B + 64 * K  # first of the 128 spread reservations


def _fill(mb, n=128, base=LOW, step=8 * K, size=4 * K):
    for i in range(n):
        assert mb.reserve(base + i * step, size)


def _region_at(mb, addr):
    r = mb.reserved.search(addr)
    assert r is not None
    return r


@pytest.mark.parametrize(
    ("bottom_up", "pending", "want"),
    [
        # above the pending range first: top-down takes the top of what is above it ...
        (False, B + 1536 * K, B + MEM - 8 * K),
        # ... bottom-up the *lowest block above it*, not the lowest free block overall
        (True, B + 1536 * K, B + 1536 * K + 4 * K),
        # nothing above (pending range at the top of memory): below it
        (False, B + MEM - 4 * K, B + MEM - 4 * K - 8 * K),
        (True, B + MEM - 4 * K, B),
    ],
    ids=["top_down_above", "bottom_up_above", "top_down_below", "bottom_up_below"],
)
def test_new_reserved_array_placement(bottom_up, pending, want):
    mb = new_mb(bottom_up=bottom_up, resize=True)
    mb.add(B, MEM)
    _fill(mb)
    assert mb.reserved.cnt == 128 and not mb.doublings
    assert mb.reserve(pending, 4 * K)
    (d,) = mb.doublings
    assert (d.name, d.new_max, d.base, d.alloc_size) == ("reserved", 256, want, 8 * K)
    arr = _region_at(mb, want)
    assert (arr.base, arr.size, arr.flags, arr.nid) == (want, 8 * K, RSRV_KERN, NUMA_NO_NODE)
    pend = _region_at(mb, pending)
    assert (pend.base, pend.size, pend.flags) == (pending, 4 * K, 0)
    assert mb.reserved.cnt == 130
    assert mb.reserved.total_size == 129 * 4 * K + 8 * K


def test_doubling_debug_line_uses_new_size_not_alloc_size():
    mb = new_mb(resize=True)
    mb.add(B, MEM)
    _fill(mb)
    mb.reserve(B + 1536 * K, 4 * K)
    addr = mb.doublings[0].base
    dbg = [m.text for m in mb.messages if m.level == "dbg"]
    # "%pa-%pa" with end = addr + new_size - 1, new_size = 256 * 24 = 0x1800
    assert f"memblock: reserved is doubled to 256 at [{addr:#018x}-{addr + 0x17FF:#018x}]" in dbg


def test_memory_array_ignores_pending_range():
    """Only reserved.regions avoids the pending range: memory's new array is the lowest
    free page block bottom-up, even if it lies below the region being added."""
    mb = new_mb(bottom_up=True, resize=True)
    mb.add(B, 64 * K)
    for i in range(127):
        mb.add(B + M + i * 8 * K, 4 * K)
    assert mb.memory.cnt == 128
    mb.add(B + 4 * M, 4 * K)
    (d,) = mb.doublings
    assert (d.name, d.base, d.alloc_size) == ("memory", B, 8 * K)
    assert regs(mb.reserved) == [(B, 8 * K)]
    assert mb.memory.cnt == 129 and mb.memory.max == 256


def test_second_doubling_frees_old_array_first():
    """256 -> 512 needs 12 KiB; it is searched while the 8 KiB array is still reserved,
    then the old array is freed (a hole) and the new one reserved."""
    mb = new_mb(resize=True)
    mb.add(B, MEM)
    top = B + MEM
    _fill(mb, n=128, step=4 * K, size=2 * K)
    mb.reserve(B + 1536 * K, 2 * K)
    first = mb.doublings[0]
    assert (first.base, first.alloc_size) == (top - 8 * K, 8 * K)
    # 256 entries: 129 regions + the array; add 126 more spread reservations
    for i in range(126):
        mb.reserve(B + 1540 * K + i * 2 * K, 1 * K)
    assert mb.reserved.max == 256 and mb.reserved.cnt == 256
    mb.reserve(B + 40 * K, 1 * K)
    second = mb.doublings[1]
    assert (second.new_max, second.alloc_size) == (512, 12 * K)
    # top-down, highest 12 KiB block below the first array, which was still reserved
    assert second.base == top - 8 * K - 12 * K
    # the first array is now a hole; the second is reserved RSRV_KERN
    assert mb.reserved.search(top - 8 * K) is None
    arr = _region_at(mb, second.base)
    assert (arr.base, arr.size, arr.flags, arr.nid) == (second.base, 12 * K, RSRV_KERN, NUMA_NO_NODE)
    # and the next top-down allocation reuses the hole
    assert mb.alloc(Alloc("memblock_alloc", 4 * K, align=PAGE)) == top - 4 * K


def test_doubling_sizes_8k_12k_24k():
    mb = new_mb(resize=True)
    mb.add(B, 64 * M)
    for i in range(1000):
        mb.reserve(B + 4 * M + i * 8 * K, 4 * K)
    assert [(d.new_max, d.alloc_size) for d in mb.doublings] == [(256, 8 * K), (512, 12 * K), (1024, 24 * K)]
    assert mb.reserved.max == 1024 and mb.reserved.cnt == 1000 + 1
    mb.reserved.check()


def test_isolate_grows_even_without_split():
    """memblock_isolate_range() doubles whenever cnt + 2 > max, before looking at the range."""
    mb = new_mb(resize=True)
    mb.add(B, MEM)
    _fill(mb, n=127)
    assert mb.reserved.max == 128
    assert mb.phys_free(B + MEM + 16 * M, 4 * K)  # nothing there, nothing to split
    assert mb.reserved.max == 256 and len(mb.doublings) == 1


def test_set_flag_isolate_doubles_memory_array():
    mb = new_mb(resize=True)
    for i in range(127):
        mb.add(B + i * 64 * K, 32 * K)
    mb.setclr_flag(mb.memory, B, 32 * K, True, Flag.MEMBLOCK_NOMAP)
    assert mb.memory.max == 256
    # memory's array ignores the pending range: the top 8 KiB of the highest bank
    arr = mb.doublings[0]
    assert (arr.name, arr.base) == ("memory", B + 126 * 64 * K + 24 * K)
    assert mb.memory[0].flags == Flag.MEMBLOCK_NOMAP and mb.memory.cnt == 127


def test_doubling_respects_current_limit():
    mb = new_mb(resize=True)
    mb.add(B, MEM)
    mb.set_current_limit(B + M)
    _fill(mb, base=B + 1100 * K, step=4 * K, size=2 * K)
    mb.reserve(B + 64 * K, 4 * K)
    # above the pending range, under current_limit: the top of [.., B + 1M)
    assert mb.doublings[0].base == B + M - 8 * K


# ----------------------------------------------------------- before memblock_allow_resize()

def test_cannot_resize_panics_on_7x():
    mb = new_mb()
    mb.add(B, MEM)
    _fill(mb)
    with pytest.raises(KernelPanic, match="memblock: cannot resize reserved array"):
        mb.reserve(B + 1536 * K, 4 * K)


def test_cannot_resize_panic_ends_run():
    mb = new_mb()
    ops = [Reserve(B + i * 8 * K, 4 * K) for i in range(130)]
    res = mb.run(ops)
    assert res.panic == "memblock: cannot resize reserved array"
    assert mb.reserved.cnt == 128


def test_cannot_resize_enomem_silently_on_6_1():
    mb = new_mb("6.1")
    mb.add(B, MEM)
    _fill(mb)
    total = mb.reserved.total_size
    assert mb.reserve(B + 1536 * K, 4 * K) is False
    assert mb.reserved.cnt == 128 and mb.reserved.total_size == total and mb.reserved.max == 128
    assert not mb.doublings
    assert not [m for m in mb.messages if m.level in ("err", "emerg")]
    # and allow_resize lets the same reserve through later
    mb.run([AllowResize(), Reserve(B + 1536 * K, 4 * K)])
    assert mb.reserved.max == 256 and mb.reserved.search(B + 1536 * K) is not None


def test_6_1_doubled_array_reserved_plain():
    """<= 6.15: memblock_reserve(): flags 0, nid MAX_NUMNODES."""
    mb = new_mb("6.1", resize=True)
    mb.add(B, MEM)
    _fill(mb)
    mb.reserve(B + 1536 * K, 4 * K)
    arr = _region_at(mb, mb.doublings[0].base)
    assert (arr.size, arr.flags, arr.nid) == (8 * K, 0, MAX_NUMNODES)


def test_failed_to_double_is_enomem_with_pr_err():
    mb = new_mb(resize=True)
    mb.add(B, 4 * K)  # no room for an 8 KiB array anywhere
    _fill(mb, base=B + M)
    assert mb.reserve(B + 8 * M, 4 * K) is False
    assert mb.reserved.cnt == 128 and mb.reserved.max == 128
    errs = [m.text for m in mb.messages if m.level == "err"]
    assert errs == ["memblock: Failed to double reserved array from 128 to 256 entries !"]


def test_arm64_capacities_and_page_aligned_sizes():
    """arm64: reserved starts at INIT_MEMBLOCK_REGIONS + NR_CPUS + 1 = 641 entries, so the
    first doubling is to 1282 entries, PAGE_ALIGN(1282 * 24) = 32 KiB; memory starts at 1024."""
    from kho_replay.replay.memblock.engine import Memblock

    mb = Memblock.for_kernel("7.3", "arm64")
    assert (mb.memory.max, mb.reserved.max) == (1024, 641)
    mb.allow_resize()
    mb.add(B, 64 * M)
    for i in range(642):
        mb.reserve(B + 8 * M + i * 8 * K, 4 * K)
    (d,) = mb.doublings
    assert (d.new_max, d.alloc_size, d.base) == (1282, 32 * K, B + 64 * M - 32 * K)
    dbg = [m.text for m in mb.messages if m.level == "dbg"]
    # the debug line's end uses new_size = 1282 * 24 = 0x7830, not the page-aligned size
    assert dbg == [f"memblock: reserved is doubled to 1282 at [{d.base:#018x}-{d.base + 0x782F:#018x}]"]
