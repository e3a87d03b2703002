# SPDX-License-Identifier: GPL-2.0-only
"""Free-range iteration exactly as ``__next_mem_range()`` / ``__next_mem_range_rev()`` walk it.

The engine's allocator uses the gap index of :class:`~.regions.RegionTable`
for speed; these generators are the literal model of the kernel's two-table
walk, used where the fast path cannot be exact (size-0 requests, whose result
depends on the zero-length ranges the walk yields where two reserved regions
touch without merging) and by the tests that prove the fast path equal to it.

A free range is the intersection of one ``memory`` region that the caller does
not skip with one gap between ``reserved`` regions (gap ``j`` runs from the end
of ``reserved[j-1]``, or 0, to the base of ``reserved[j]``, or PHYS_ADDR_MAX).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ..ops import MAX_PHYS_ADDR, Region
from .regions import RegionTable

__all__ = ["find_range_literal", "for_each_free_mem_range", "for_each_free_mem_range_reverse"]

SkipFn = Callable[[Region], bool]
MASK = MAX_PHYS_ADDR


def _gap(res: RegionTable, j: int) -> tuple[int, int]:
    start = res[j - 1].end if j else 0
    end = res[j].base if j < len(res) else MAX_PHYS_ADDR
    return start, end


def for_each_free_mem_range(mem: RegionTable, res: RegionTable, skip: SkipFn) -> Iterator[tuple[int, int, int]]:
    """Ascending free ranges ``(start, end, nid)``; models ``for_each_free_mem_range()``."""
    a, b = 0, 0
    na, nb = len(mem), len(res)
    while a < na:
        m = mem[a]
        if skip(m):
            a += 1
            continue
        advanced = False
        while b < nb + 1:
            gs, ge = _gap(res, b)
            if gs >= m.end:
                break
            if m.base < ge:
                s, e = max(m.base, gs), min(m.end, ge)
                # The region that ends first advances, as the kernel's walk does.
                if m.end <= ge:
                    a += 1
                else:
                    b += 1
                advanced = True
                yield s, e, m.nid
                break
            b += 1
        if not advanced:
            a += 1


def for_each_free_mem_range_reverse(
    mem: RegionTable, res: RegionTable, skip: SkipFn
) -> Iterator[tuple[int, int, int]]:
    """Descending free ranges; models ``for_each_free_mem_range_reverse()``."""
    a, b = len(mem) - 1, len(res)
    while a >= 0:
        m = mem[a]
        if skip(m):
            a -= 1
            continue
        advanced = False
        while b >= 0:
            gs, ge = _gap(res, b)
            if ge <= m.base:
                break
            if m.end > gs:
                s, e = max(m.base, gs), min(m.end, ge)
                if m.base >= gs:
                    a -= 1
                else:
                    b -= 1
                advanced = True
                yield s, e, m.nid
                break
            b -= 1
        if not advanced:
            a -= 1


def find_range_literal(
    mem: RegionTable, res: RegionTable, skip: SkipFn, start: int, end: int, size: int, align: int, bottom_up: bool
) -> int | None:
    """``__memblock_find_range_{bottom_up,top_down}()`` over the literal walk.

    *start* and *end* are already clamped as ``memblock_find_in_range_node()``
    does (end pumped to current_limit, start at least PAGE_SIZE).  Returns
    None where the kernel returns 0 (including a candidate that wrapped to 0).
    """
    if bottom_up:
        for s, e, _ in for_each_free_mem_range(mem, res, skip):
            s, e = min(max(s, start), end), min(max(e, start), end)
            cand = ((((s - 1) & MASK) | (align - 1)) + 1) & MASK
            if cand < e and e - cand >= size:
                return cand or None
        return None
    for s, e, _ in for_each_free_mem_range_reverse(mem, res, skip):
        s, e = min(max(s, start), end), min(max(e, start), end)
        if e < size:
            continue
        cand = (e - size) & ~(align - 1) & MASK
        if cand >= s:
            return cand or None
    return None
