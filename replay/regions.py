# SPDX-License-Identifier: GPL-2.0-only
"""One ``struct memblock_type``: a sorted table of regions with the kernel's semantics.

The kernel keeps ``memory`` and ``reserved`` as flat arrays and scans them from
index 0; a boot with 10^5 reservations makes that quadratic.  We keep the same
regions in a :class:`sortedcontainers.SortedDict` keyed by ``base`` so that one
operation costs O(log n), while reproducing every observable effect of the
array: the order of splits and merges, ``cnt`` (including the pre-6.x "dummy
entry" convention for an empty table), ``total_size`` and the array capacity
``max``, which decides when the engine must double the array (and doubling
allocates memory, so it moves later placements).

Free space of a table is indexed too (``track_gaps``): every maximal gap
between two regions, bucketed by the bit length of its size, so that the
allocator can skip gaps too small for a request without visiting them.

The table does not allocate; growing it is the engine's business.  Operations
that may need room take a ``double`` callback (``memblock_double_array()``) and
return ``False`` when it fails, as the kernel returns ``-ENOMEM``.

>>> t = RegionTable("reserved", max_regions=128)
>>> t.add_range(0x1000, 0x1000, nid=-1, flags=0, double=None)
True
>>> t.add_range(0x2000, 0x1000, nid=-1, flags=0, double=None)  # adjacent, same nid/flags: merged
True
>>> [(hex(r.base), hex(r.size)) for r in t], t.cnt, hex(t.total_size)
([('0x1000', '0x2000')], 1, '0x2000')
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sortedcontainers import SortedDict, SortedList

from .errors import ReplayError
from .ops import MAX_PHYS_ADDR, Region

__all__ = ["DoubleFn", "ArrayPlace", "RegionTable", "cap_size"]

PHYS_ADDR_MAX = MAX_PHYS_ADDR
MASK = MAX_PHYS_ADDR

#: ``memblock_double_array(type, new_area_start, new_area_size) -> ok``.
DoubleFn = Callable[["RegionTable", int, int], bool]
#: Called with (table, region_before, region_after) when add_range overlaps a region
#: whose nid/flags differ from the request (the kernel WARNs).
WarnFn = Callable[[str], None]

# How many gaps the allocator walks one by one before it switches to the
# size-bucketed index; most requests fit in the first few.
_LINEAR_GAPS = 12


def cap_size(base: int, size: int) -> int:
    """``memblock_cap_size()``: shrink *size* so ``base + size`` does not pass PHYS_ADDR_MAX."""
    return min(size, PHYS_ADDR_MAX - base)


@dataclass(slots=True)
class ArrayPlace:
    """Where a table's dynamic array lives after doubling: ``[base, base + alloc_size)``."""

    base: int
    alloc_size: int


class RegionTable:
    """A ``struct memblock_type`` (``memory``, ``reserved`` or ``physmem``).

    :param name: the kernel's name for it, used in messages.
    :param max_regions: the initial capacity (``INIT_MEMBLOCK_REGIONS`` etc).
    :param empty_cnt: what ``cnt`` reads when the table is empty (1 before the
        switch away from the dummy entry, 0 after).
    :param numa: whether regions carry a node id (CONFIG_NUMA).
    :param track_gaps: maintain the free-gap index used by the allocator.
    """

    def __init__(
        self,
        name: str,
        max_regions: int,
        *,
        empty_cnt: int = 0,
        numa: bool = True,
        track_gaps: bool = False,
        ranged_merge: bool = True,
    ) -> None:
        self.name = name
        self.max = max_regions
        self.total_size = 0
        self.empty_cnt = empty_cnt
        self.numa = numa
        self.ranged_merge = ranged_merge
        #: None while the static init array is in use.
        self.array: ArrayPlace | None = None
        self.peak_cnt = 0
        self._r: SortedDict = SortedDict()
        self._track = track_gaps
        # Set when trim/cap left neighbours unmerged; a pre-6.5 full merge may join them.
        self._maybe_unmerged = False
        # Bytes memblock_trim_memory() shaved off without touching total_size.
        self.trim_slack = 0
        if track_gaps:
            self._gaps: SortedDict = SortedDict({0: PHYS_ADDR_MAX})
            self._buckets: dict[int, SortedList] = {}
            self._bucket_add(0, PHYS_ADDR_MAX)

    # ------------------------------------------------------------------ views

    @property
    def cnt(self) -> int:
        """``type->cnt`` as the kernel reads it."""
        n = len(self._r)
        return n if n else self.empty_cnt

    def __len__(self) -> int:
        return len(self._r)

    def __iter__(self) -> Iterator[Region]:
        return iter(self._r.values())

    def __getitem__(self, idx: int) -> Region:
        return self._r.peekitem(idx)[1]

    def regions(self) -> list[Region]:
        """All regions in address order."""
        return list(self._r.values())

    def index_of(self, base: int) -> int:
        """Index of the first region whose base is >= *base*."""
        return self._r.bisect_left(base)

    def first_overlap(self, base: int) -> int:
        """Index of the first region that ends above *base*."""
        i = self._r.bisect_right(base) - 1
        if i >= 0 and self._r.peekitem(i)[1].end > base:
            return i
        return i + 1

    def search(self, addr: int) -> Region | None:
        """``memblock_search()``: the region containing *addr*, if any."""
        i = self._r.bisect_right(addr) - 1
        if i >= 0:
            r = self._r.peekitem(i)[1]
            if r.base <= addr < r.end:
                return r
        return None

    def overlaps(self, base: int, size: int) -> bool:
        """``memblock_overlaps_region()``."""
        size = cap_size(base, size)
        i = self.first_overlap(base)
        return i < len(self._r) and self._r.peekitem(i)[1].base < base + size and size > 0

    # ------------------------------------------------------------- primitives

    def _nid(self, nid: int) -> int:
        # Without CONFIG_NUMA every region reads as node 0.
        return nid if self.numa else 0

    def _put(self, r: Region) -> None:
        self._r[r.base] = r

    def insert_region(self, base: int, size: int, nid: int, flags: int) -> None:
        """``memblock_insert_region()``: one more slot; the caller made room."""
        if len(self._r) >= self.max:
            raise ReplayError(f"memblock_insert_region: {self.name} array full (cnt {len(self._r)})")
        self._r[base] = Region(base, size, flags, self._nid(nid))
        self.total_size += size
        if len(self._r) > self.peak_cnt:
            self.peak_cnt = len(self._r)

    def remove_region(self, idx: int) -> None:
        """``memblock_remove_region()``."""
        _, r = self._r.popitem(idx)
        self.total_size -= r.size

    # -------------------------------------------------------------- merge

    def _mergeable(self, a: Region, b: Region) -> bool:
        return a.end == b.base and a.nid == b.nid and a.flags == b.flags

    def merge_regions(self, start_rgn: int, end_rgn: int) -> None:
        """``memblock_merge_regions()``: merge neighbours in ``[start_rgn - 1, end_rgn)``.

        Before v6.5 the kernel scanned the whole array; on a minimal table the
        result is the same, except after trim/cap which may leave pairs unmerged.
        """
        if not self.ranged_merge and self._maybe_unmerged:
            start_rgn, end_rgn = 0, len(self._r)
            self._maybe_unmerged = False
        i = start_rgn - 1 if start_rgn else 0
        end_rgn = min(end_rgn, len(self._r) - 1)
        d = self._r
        while i < end_rgn:
            this = d.peekitem(i)[1]
            nxt = d.peekitem(i + 1)[1]
            if not self._mergeable(this, nxt):
                if this.end > nxt.base:
                    raise ReplayError(f"memblock_merge_regions: {self.name} regions overlap at {nxt.base:#x}")
                i += 1
                continue
            d[this.base] = this._replace(size=this.size + nxt.size)
            del d[nxt.base]
            end_rgn -= 1

    # ------------------------------------------------------------ add_range

    def _walk_new(self, base: int, end: int, nid: int, flags: int, warn: WarnFn | None) -> list[tuple[int, int]]:
        """The uncovered pieces of ``[base, end)``, as the kernel's loop finds them."""
        pieces: list[tuple[int, int]] = []
        d = self._r
        i = self.first_overlap(base)
        n = len(d)
        while i < n:
            r = d.peekitem(i)[1]
            if r.base >= end:
                break
            if r.base > base:
                # The kernel WARNs only here: an overlapped region above a gap it fills.
                if warn is not None:
                    if self.numa and nid != r.nid:
                        warn(f"WARNING: memblock_add_range: {self.name} nid {nid} != region nid {r.nid} "
                             f"at [{r.base:#018x}-{r.end - 1:#018x}]")
                    if flags and flags != r.flags:
                        warn(f"WARNING: memblock_add_range: {self.name} flags {flags:#x} != region flags "
                             f"{r.flags:#x} at [{r.base:#018x}-{r.end - 1:#018x}]")
                pieces.append((base, r.base))
            base = min(r.end, end)
            i += 1
        if base < end:
            pieces.append((base, end))
        return pieces

    def add_range(
        self,
        base: int,
        size: int,
        *,
        nid: int,
        flags: int,
        double: DoubleFn | None,
        warn: WarnFn | None = None,
    ) -> bool:
        """``memblock_add_range()``: add ``[base, base + size)``; only the uncovered
        parts get *nid*/*flags*, overlaps keep what they had.

        :return: False where the kernel returns ``-ENOMEM`` (doubling failed).
        """
        size = cap_size(base, size)
        if not size:
            return True
        end = base + size
        if not self._r:
            if self.total_size and warn is not None:
                # WARN_ON(type->cnt != 0 || type->total_size): trim_memory() left bytes behind
                warn(f"WARNING: memblock_add_range: {self.name} total_size {self.total_size:#x} in an empty array")
            self._r[base] = Region(base, size, flags, self._nid(nid))
            self.total_size = size
            self.trim_slack = 0  # total_size is reset, the trimmed bytes are forgotten
            self.peak_cnt = max(self.peak_cnt, 1)
            if self._track:
                self._gaps_refresh(base, end)
            return True
        # Room for the worst case (cnt + 1 new regions): no counting pass needed.
        if self.cnt * 2 + 1 > self.max:
            nr_new = len(self._walk_new(base, end, nid, flags, warn))
            if not nr_new:
                return True
            while self.cnt + nr_new > self.max:
                if double is None or not double(self, base, size):
                    return False
        pieces = self._walk_new(base, end, nid, flags, warn)
        if not pieces:
            return True
        for b, e in pieces:
            self.insert_region(b, e - b, nid, flags)
        start_rgn = self._r.bisect_left(pieces[0][0])
        end_rgn = self._r.bisect_left(pieces[-1][0]) + 1
        self.merge_regions(start_rgn, end_rgn)
        if self._track:
            self._gaps_refresh(base, end)
        return True

    # ------------------------------------------------------------ isolate

    def isolate_range(self, base: int, size: int, *, double: DoubleFn | None) -> tuple[int, int] | None:
        """``memblock_isolate_range()``: split regions at *base* and ``base + size``.

        :return: ``(start_rgn, end_rgn)``, the index range of regions now fully
            inside, or None where the kernel returns ``-ENOMEM``.
        """
        size = cap_size(base, size)
        if not size:
            return (0, 0)
        end = base + size
        # "we'll create at most two more regions": grows even when nothing splits.
        while self.cnt + 2 > self.max:
            if double is None or not double(self, base, size):
                return None
        d = self._r
        start_rgn = end_rgn = 0
        idx = self.first_overlap(base)
        while idx < len(d):
            r = d.peekitem(idx)[1]
            if r.base >= end:
                break
            if r.end <= base:
                idx += 1
                continue
            if r.base < base:
                # Intersects from below: split, go on with the upper part.
                del d[r.base]
                d[base] = r._replace(base=base, size=r.end - base)
                d[r.base] = r._replace(size=base - r.base)
                self._note_cnt()
            elif r.end > end:
                # Intersects from above: split, re-examine the lower part.
                del d[r.base]
                d[end] = r._replace(base=end, size=r.end - end)
                d[r.base] = r._replace(size=end - r.base)
                self._note_cnt()
                continue
            else:
                if not end_rgn:
                    start_rgn = idx
                end_rgn = idx + 1
            idx += 1
        return (start_rgn, end_rgn)

    def _note_cnt(self) -> None:
        if len(self._r) > self.max:
            raise ReplayError(f"memblock_insert_region: {self.name} array full (cnt {len(self._r)})")
        if len(self._r) > self.peak_cnt:
            self.peak_cnt = len(self._r)

    def remove_range(self, base: int, size: int, *, double: DoubleFn | None) -> bool:
        """``memblock_remove_range()``: isolate, then drop the regions inside."""
        rng = self.isolate_range(base, size, double=double)
        if rng is None:
            return False
        start_rgn, end_rgn = rng
        for i in range(end_rgn - 1, start_rgn - 1, -1):
            self.remove_region(i)
        if self._track and end_rgn > start_rgn:
            size = cap_size(base, size)
            self._gaps_refresh(base, base + size)
        return True

    def setclr_flag(self, base: int, size: int, set_: bool, flag: int, *, double: DoubleFn | None) -> bool:
        """``memblock_setclr_flag()``: isolate, set or clear *flag*, merge."""
        rng = self.isolate_range(base, size, double=double)
        if rng is None:
            return False
        start_rgn, end_rgn = rng
        d = self._r
        for i in range(start_rgn, end_rgn):
            r = d.peekitem(i)[1]
            d[r.base] = r._replace(flags=(r.flags | flag) if set_ else (r.flags & ~flag))
        self.merge_regions(start_rgn, end_rgn)
        return True

    def set_node(self, base: int, size: int, nid: int, *, double: DoubleFn | None) -> bool:
        """``memblock_set_node()`` on this table (a no-op without CONFIG_NUMA)."""
        if not self.numa:
            return True
        rng = self.isolate_range(base, size, double=double)
        if rng is None:
            return False
        start_rgn, end_rgn = rng
        d = self._r
        for i in range(start_rgn, end_rgn):
            r = d.peekitem(i)[1]
            d[r.base] = r._replace(nid=nid)
        self.merge_regions(start_rgn, end_rgn)
        return True

    def trim(self, align: int) -> None:
        """``memblock_trim_memory()``: round every region in to *align*.

        Shrinking leaves ``total_size`` untouched, as the kernel does (only a
        removal subtracts); and it does not merge.
        """
        d = self._r
        i = 0
        while i < len(d):
            r = d.peekitem(i)[1]
            start = ((((r.base - 1) & MASK) | (align - 1)) + 1) & MASK
            end = r.end & ~(align - 1) & MASK
            if start == r.base and end == r.end:
                i += 1
                continue
            if start < end:
                del d[r.base]
                d[start] = r._replace(base=start, size=end - start)
                self.trim_slack += r.size - (end - start)
                i += 1
            else:
                self.remove_region(i)
            self._maybe_unmerged = True
        if self._track:
            self._gaps_rebuild()

    def remove_unless(self, keep: Callable[[Region], bool], lo: int, hi: int) -> None:
        """Remove regions with index in ``[lo, hi)`` that *keep* rejects, highest first
        (the loops of ``memblock_cap_memory_range()``)."""
        for i in range(hi - 1, lo - 1, -1):
            if not keep(self._r.peekitem(i)[1]):
                self.remove_region(i)
        self._maybe_unmerged = True
        if self._track:
            self._gaps_rebuild()

    # ------------------------------------------------------------- gap index

    def _bucket_add(self, gs: int, ge: int) -> None:
        b = (ge - gs).bit_length()
        lst = self._buckets.get(b)
        if lst is None:
            lst = self._buckets[b] = SortedList()
        lst.add(gs)

    def _bucket_del(self, gs: int, ge: int) -> None:
        self._buckets[(ge - gs).bit_length()].remove(gs)

    def _gaps_refresh(self, lo: int, hi: int) -> None:
        """Recompute the gaps touching ``[lo, hi]`` after coverage changed only there."""
        g = self._gaps
        lo_new, hi_new = lo, hi
        j = g.bisect_right(hi) - 1
        while j >= 0:
            gs, ge = g.peekitem(j)
            if ge < lo:
                break
            lo_new = min(lo_new, gs)
            hi_new = max(hi_new, ge)
            self._bucket_del(gs, ge)
            del g[gs]
            j -= 1
        d = self._r
        pos = lo_new
        i = self.first_overlap(lo_new)
        while i < len(d) and pos < hi_new:
            r = d.peekitem(i)[1]
            if r.base >= hi_new:
                break
            if r.base > pos:
                g[pos] = r.base
                self._bucket_add(pos, r.base)
            pos = max(pos, r.end)
            i += 1
        if pos < hi_new:
            g[pos] = hi_new
            self._bucket_add(pos, hi_new)

    def _gaps_rebuild(self) -> None:
        self._gaps = SortedDict()
        self._buckets = {}
        pos = 0
        for r in self._r.values():
            if r.base > pos:
                self._gaps[pos] = r.base
                self._bucket_add(pos, r.base)
            pos = r.end
        if pos < PHYS_ADDR_MAX:
            self._gaps[pos] = PHYS_ADDR_MAX
            self._bucket_add(pos, PHYS_ADDR_MAX)

    def gaps(self) -> list[tuple[int, int]]:
        """The free gaps ``[start, end)`` between regions (non-empty ones), ascending."""
        if self._track:
            return list(self._gaps.items())
        out, pos = [], 0
        for r in self._r.values():
            if r.base > pos:
                out.append((pos, r.base))
            pos = r.end
        if pos < PHYS_ADDR_MAX:
            out.append((pos, PHYS_ADDR_MAX))
        return out

    def fit_top_down(self, ws: int, we: int, size: int, align: int) -> int | None:
        """Highest ``round_down(e - size, align)`` over gaps clamped to ``[ws, we)`` that fits.

        Walks gaps from the top of the window down, as ``__next_mem_range_rev()``
        does, but skips gaps smaller than *size* through the size buckets.
        """
        g = self._gaps
        amask = ~(align - 1) & MASK
        j = g.bisect_left(we) - 1
        steps = 0
        while j >= 0:
            gs, ge = g.peekitem(j)
            if ge <= ws:
                return None
            s = gs if gs > ws else ws
            e = ge if ge < we else we
            if e - s >= size:
                c = (e - size) & amask
                if c >= s:
                    return c
            j -= 1
            steps += 1
            if steps == _LINEAR_GAPS and j >= 0:
                return self._fit_top_down_buckets(ws, we, size, amask, g.peekitem(j)[0])
        return None

    def _fit_top_down_buckets(self, ws: int, we: int, size: int, amask: int, upper: int) -> int | None:
        g = self._gaps
        heap: list[tuple[int, int, SortedList]] = []
        minb = size.bit_length()
        for b, lst in self._buckets.items():
            if b < minb:
                continue
            k = lst.bisect_right(upper) - 1
            if k >= 0:
                heap.append((-lst[k], k, lst))
        heapq.heapify(heap)
        while heap:
            neg, k, lst = heapq.heappop(heap)
            gs = -neg
            ge = g[gs]
            if ge <= ws:
                return None
            s = gs if gs > ws else ws
            e = ge if ge < we else we
            if e - s >= size:
                c = (e - size) & amask
                if c >= s:
                    return c
            if k > 0:
                heapq.heappush(heap, (-lst[k - 1], k - 1, lst))
        return None

    def fit_bottom_up(self, ws: int, we: int, size: int, align: int) -> int | None:
        """Lowest ``round_up(s, align)`` over gaps clamped to ``[ws, we)`` that fits."""
        g = self._gaps
        am1 = align - 1
        j = g.bisect_right(ws) - 1
        if j < 0 or g.peekitem(j)[1] <= ws:
            j += 1
        n = len(g)
        steps = 0
        while j < n:
            gs, ge = g.peekitem(j)
            if gs >= we:
                return None
            s = gs if gs > ws else ws
            e = ge if ge < we else we
            c = ((((s - 1) & MASK) | am1) + 1) & MASK
            if c < e and e - c >= size:
                return c
            j += 1
            steps += 1
            if steps == _LINEAR_GAPS and j < n:
                return self._fit_bottom_up_buckets(ws, we, size, am1, g.peekitem(j)[0])
        return None

    def _fit_bottom_up_buckets(self, ws: int, we: int, size: int, am1: int, lower: int) -> int | None:
        g = self._gaps
        heap: list[tuple[int, int, SortedList]] = []
        minb = size.bit_length()
        for b, lst in self._buckets.items():
            if b < minb:
                continue
            k = lst.bisect_left(lower)
            if k < len(lst):
                heap.append((lst[k], k, lst))
        heapq.heapify(heap)
        while heap:
            gs, k, lst = heapq.heappop(heap)
            if gs >= we:
                return None
            ge = g[gs]
            s = gs if gs > ws else ws
            e = ge if ge < we else we
            c = ((((s - 1) & MASK) | am1) + 1) & MASK
            if c < e and e - c >= size:
                return c
            if k + 1 < len(lst):
                heapq.heappush(heap, (lst[k + 1], k + 1, lst))
        return None

    # --------------------------------------------------------------- checks

    def check(self) -> None:
        """Raise ReplayError unless sorted, disjoint, and ``total_size`` is exact (tests)."""
        total = 0
        prev: Region | None = None
        for r in self._r.values():
            if r.size <= 0:
                raise ReplayError(f"{self.name}: empty region at {r.base:#x}")
            if prev is not None and prev.end > r.base:
                raise ReplayError(f"{self.name}: overlap at {r.base:#x}")
            total += r.size
            prev = r
        if total + self.trim_slack != self.total_size:
            raise ReplayError(f"{self.name}: total_size {self.total_size:#x} != sum {total:#x}")
        if self._track:
            want = self.gaps()
            self._track = False
            have = self.gaps()
            self._track = True
            if want != have:
                raise ReplayError(f"{self.name}: gap index out of date")
            for gs, ge in want:
                if gs not in self._buckets.get((ge - gs).bit_length(), ()):
                    raise ReplayError(f"{self.name}: gap {gs:#x} missing from its bucket")
