# SPDX-License-Identifier: GPL-2.0-only
"""One ``struct memblock_type``: a sorted table of regions with the kernel's semantics.

The kernel keeps ``memory`` and ``reserved`` as flat arrays and scans them from
index 0; a boot with 10^5 reservations makes that quadratic.  We keep the
region bases in a :class:`sortedcontainers.SortedList` (regions themselves in
a dict by base), so one operation costs O(log n), while reproducing every
observable effect of the array: the order of splits and merges, ``cnt``
(including the pre-6.x "dummy entry" convention for an empty table),
``total_size`` and the capacity ``max``, which decides when the engine must
double the array (doubling allocates memory, so it moves later placements).

The kernel's algorithms are index based (``memblock_merge_regions(type,
start_rgn, end_rgn)``); ours name the same regions by their base, which is
the same thing on a sorted, disjoint table.  Navigation uses the SortedList's
chunk lists directly (``_lists``/``_maxes``, stable since sortedcontainers 2.0)
because its positional API maintains an index tree that costs more than the
whole operation.

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
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sortedcontainers import SortedList

from .errors import ReplayError
from .ops import MAX_PHYS_ADDR, Region

__all__ = ["ArrayPlace", "DoubleFn", "RegionTable", "cap_size"]

PHYS_ADDR_MAX = MAX_PHYS_ADDR
MASK = MAX_PHYS_ADDR

#: ``memblock_double_array(type, new_area_start, new_area_size) -> ok``.
DoubleFn = Callable[["RegionTable", int, int], bool]
#: Receives the text of a WARN the kernel would print.
WarnFn = Callable[[str], None]

# How many gaps the allocator walks one by one before it switches to the
# size-bucketed index; most requests fit in the first few.
_LINEAR_GAPS = 8


#: Alignments whose capacity is indexed: the length (1) and the page (4096).  A
#: gap's capacity for alignment a is the largest a-aligned block it holds,
#: ``end - round_up(start, a)``; a request (size, align) fits a gap inside the
#: window exactly when that capacity is >= size.
_CAP_ALIGNS = (1, 4096)


def _cap(gs: int, ge: int, a: int) -> int:
    """``ge - round_up(gs, a)``, or 0 when no a-aligned byte is inside."""
    ru = ((((gs - 1) & MASK) | (a - 1)) + 1) & MASK
    return ge - ru if ru < ge else 0


def _bmin(key: int) -> int:
    """Smallest capacity in bucket *key* (a bucket holds bit length *key*: [2^(k-1), 2^k))."""
    return (1 << key) >> 1


def cap_size(base: int, size: int) -> int:
    """``memblock_cap_size()``: shrink *size* so ``base + size`` does not pass PHYS_ADDR_MAX."""
    return min(size, PHYS_ADDR_MAX - base)


# ---------------------------------------------------------------- navigation
# Neighbour lookups on a SortedList of ints without its positional index.


def _floor(sl: SortedList, x: int) -> int | None:
    """Largest key <= x."""
    maxes = sl._maxes
    i = bisect_right(maxes, x)
    if i < len(maxes):
        lst = sl._lists[i]
        j = bisect_right(lst, x)
        if j:
            return lst[j - 1]
    return maxes[i - 1] if i else None


def _lower(sl: SortedList, x: int) -> int | None:
    """Largest key < x."""
    maxes = sl._maxes
    i = bisect_left(maxes, x)
    if i < len(maxes):
        lst = sl._lists[i]
        j = bisect_left(lst, x)
        if j:
            return lst[j - 1]
    return maxes[i - 1] if i else None


def _ceil(sl: SortedList, x: int) -> int | None:
    """Smallest key >= x."""
    maxes = sl._maxes
    i = bisect_left(maxes, x)
    if i == len(maxes):
        return None
    lst = sl._lists[i]
    return lst[bisect_left(lst, x)]


def _higher(sl: SortedList, x: int) -> int | None:
    """Smallest key > x."""
    maxes = sl._maxes
    i = bisect_right(maxes, x)
    if i == len(maxes):
        return None
    lst = sl._lists[i]
    return lst[bisect_right(lst, x)]


def _ascending(sl: SortedList, x: int) -> Iterator[int]:
    """Keys >= x, ascending (do not mutate *sl* while iterating)."""
    maxes, lists = sl._maxes, sl._lists
    i = bisect_left(maxes, x)
    if i == len(maxes):
        return
    lst = lists[i]
    for j in range(bisect_left(lst, x), len(lst)):
        yield lst[j]
    for k in range(i + 1, len(lists)):
        yield from lists[k]


def _descending(sl: SortedList, x: int) -> Iterator[int]:
    """Keys < x, descending (do not mutate *sl* while iterating)."""
    maxes, lists = sl._maxes, sl._lists
    i = bisect_left(maxes, x)
    if i < len(maxes):
        lst = lists[i]
        for j in range(bisect_left(lst, x) - 1, -1, -1):
            yield lst[j]
    for k in range(min(i, len(lists)) - 1, -1, -1):
        yield from reversed(lists[k])


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
    :param ranged_merge: merge only around the touched range (>= v6.5).
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
        #: Bytes memblock_trim_memory() shaved off without touching total_size.
        self.trim_slack = 0
        self._keys = SortedList()
        self._rm: dict[int, Region] = {}
        self._track = track_gaps
        # Set when trim/cap left neighbours unmerged; a pre-6.5 full merge may join them.
        self._maybe_unmerged = False
        self._gaps: dict[int, int] = {}
        # One {bit length of capacity: gap starts} per alignment of _CAP_ALIGNS.
        self._buckets: tuple[dict[int, SortedList], ...] = tuple({} for _ in _CAP_ALIGNS)
        if track_gaps:
            self._gap_add(0, PHYS_ADDR_MAX)

    # ------------------------------------------------------------------ views

    @property
    def cnt(self) -> int:
        """``type->cnt`` as the kernel reads it."""
        n = len(self._rm)
        return n if n else self.empty_cnt

    def __len__(self) -> int:
        return len(self._rm)

    def __iter__(self) -> Iterator[Region]:
        rm = self._rm
        for lst in self._keys._lists:
            for k in lst:
                yield rm[k]

    def __getitem__(self, idx: int) -> Region:
        return self._rm[self._keys[idx]]

    def rank(self, addr: int) -> int:
        """How many regions start below *addr*: the kernel's insertion index for a region at *addr*."""
        return self._keys.bisect_left(addr)

    def regions(self) -> list[Region]:
        """All regions in address order."""
        return list(self)

    def iter_below(self, addr: int) -> Iterator[Region]:
        """Regions with ``base < addr``, descending (no mutation while iterating)."""
        rm = self._rm
        for k in _descending(self._keys, addr):
            yield rm[k]

    def iter_from(self, addr: int) -> Iterator[Region]:
        """Regions that end above *addr*, ascending (no mutation while iterating)."""
        rm = self._rm
        first = self._first_overlap(addr)
        if first is None:
            return
        for k in _ascending(self._keys, first):
            yield rm[k]

    def _first_overlap(self, base: int) -> int | None:
        """Base of the first region that ends above *base*."""
        k = _floor(self._keys, base)
        if k is not None and self._rm[k].end > base:
            return k
        return _higher(self._keys, base) if k is not None else _ceil(self._keys, base)

    def search(self, addr: int) -> Region | None:
        """``memblock_search()``: the region containing *addr*, if any."""
        k = _floor(self._keys, addr)
        if k is not None:
            r = self._rm[k]
            if addr < r.end:
                return r
        return None

    def overlaps(self, base: int, size: int) -> bool:
        """``memblock_overlaps_region()``."""
        size = cap_size(base, size)
        k = self._first_overlap(base)
        return size > 0 and k is not None and k < base + size

    # ------------------------------------------------------------- primitives

    def _note_cnt(self) -> None:
        n = len(self._rm)
        if n > self.max:
            raise ReplayError(f"memblock_insert_region: {self.name} array full (cnt {n})")
        if n > self.peak_cnt:
            self.peak_cnt = n

    def insert_region(self, base: int, size: int, nid: int, flags: int) -> None:
        """``memblock_insert_region()``: one more slot; the caller made room."""
        self._rm[base] = Region(base, size, int(flags), nid if self.numa else 0)
        self._keys.add(base)
        self.total_size += size
        self._note_cnt()

    def _delete(self, base: int) -> Region:
        r = self._rm.pop(base)
        self._keys.remove(base)
        self.total_size -= r.size
        return r

    def _split(self, r: Region, at: int) -> None:
        # Same slots, one more region: cnt and capacity change, total_size does not.
        self._rm[r.base] = r._replace(size=at - r.base)
        self._rm[at] = r._replace(base=at, size=r.end - at)
        self._keys.add(at)
        self._note_cnt()

    # -------------------------------------------------------------- merge

    def merge_regions(self, first: int | None, last: int | None) -> None:
        """``memblock_merge_regions()`` over the regions from the one before *first*
        to the one after *last* (bases of the first and last touched regions).

        Before v6.5 the kernel scanned the whole array; on a minimal table the
        result is the same, except after trim/cap, which may leave pairs unmerged.
        """
        if not self._rm:
            return
        keys, rm = self._keys, self._rm
        if not self.ranged_merge and self._maybe_unmerged:
            first, last = keys[0], keys[-1]
            self._maybe_unmerged = False
        if first is None or last is None:
            # merge_regions(type, 0, 0) merges nothing.
            return
        x = _lower(keys, first)
        if x is None:
            x = first
        while x <= last:
            y = _higher(keys, x)
            if y is None:
                return
            this, nxt = rm[x], rm[y]
            if this.end != nxt.base or this.nid != nxt.nid or this.flags != nxt.flags:
                if this.end > nxt.base:
                    raise ReplayError(f"memblock_merge_regions: {self.name} regions overlap at {nxt.base:#x}")
                x = y
                continue
            rm[x] = this._replace(size=this.size + nxt.size)
            del rm[y]
            keys.remove(y)
            if x == last:
                # end_rgn dropped to this index: the kernel's loop stops here.
                return
            if y == last:
                last = x

    # ------------------------------------------------------------ add_range

    def _walk_new(self, base: int, end: int) -> tuple[list[tuple[int, int]], list[Region]]:
        """The uncovered pieces of ``[base, end)`` as the kernel's loop finds them, and
        the regions it would WARN about (those overlapped above a piece)."""
        pieces: list[tuple[int, int]] = []
        above: list[Region] = []
        start = self._first_overlap(base)
        if start is not None and start < end:
            rm = self._rm
            for k in _ascending(self._keys, start):
                if k >= end:
                    break
                r = rm[k]
                if k > base:
                    above.append(r)
                    pieces.append((base, k))
                rend = r.base + r.size
                base = rend if rend < end else end
        if base < end:
            pieces.append((base, end))
        return pieces, above

    def _warn_mismatch(self, warn: WarnFn, r: Region, nid: int, flags: int) -> None:
        span = f"[{r.base:#018x}-{r.end - 1:#018x}]"
        if self.numa and nid != r.nid:
            warn(f"WARNING: memblock_add_range: {self.name} nid {nid} != region nid {r.nid} at {span}")
        if flags and flags != r.flags:
            warn(f"WARNING: memblock_add_range: {self.name} flags {flags:#x} != region flags {r.flags:#x} at {span}")

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
        if not self._rm:
            if self.total_size and warn is not None:
                # WARN_ON(type->cnt != 0 || type->total_size): trim_memory() left bytes behind
                warn(f"WARNING: memblock_add_range: {self.name} total_size {self.total_size:#x} in an empty array")
            # The empty-array path sets total_size outright: trimmed bytes are forgotten.
            self.total_size = 0
            self.trim_slack = 0
            if self._track:
                self._gaps_cover([(base, end)])
            self.insert_region(base, size, nid, flags)
            return True
        pieces, above = self._walk_new(base, end)
        if self.cnt * 2 + 1 > self.max:
            # The counting pass (it WARNs too); no room for the worst case.
            self._warn_all(warn, above, nid, flags)
            if not pieces:
                return True
            doubled = False
            while self.cnt + len(pieces) > self.max:
                if double is None or not double(self, base, size):
                    return False
                doubled = True
            if doubled:
                pieces, above = self._walk_new(base, end)
        self._warn_all(warn, above, nid, flags)
        if not pieces:
            return True
        if self._track:
            self._gaps_cover(pieces)
        for b, e in pieces:
            self.insert_region(b, e - b, nid, flags)
        self.merge_regions(pieces[0][0], pieces[-1][0])
        return True

    def _warn_all(self, warn: WarnFn | None, above: list[Region], nid: int, flags: int) -> None:
        if warn is not None:
            for r in above:
                self._warn_mismatch(warn, r, nid, flags)

    # ------------------------------------------------------------ isolate

    def isolate_range(self, base: int, size: int, *, double: DoubleFn | None) -> list[int] | None:
        """``memblock_isolate_range()``: split regions at *base* and ``base + size``.

        :return: bases of the regions now fully inside (the kernel's
            ``[start_rgn, end_rgn)``), or None where it returns ``-ENOMEM``.
        """
        size = cap_size(base, size)
        if not size:
            return []
        end = base + size
        # "we'll create at most two more regions": grows even when nothing splits.
        while self.cnt + 2 > self.max:
            if double is None or not double(self, base, size):
                return None
        start = self._first_overlap(base)
        if start is None or start >= end:
            return []
        rm = self._rm
        inside = []
        for k in _ascending(self._keys, start):
            if k >= end:
                break
            inside.append(k)
        # Only the first region can cross base and only the last can cross end.
        r = rm[inside[0]]
        if r.base < base:
            self._split(r, base)
            inside[0] = base
        r = rm[inside[-1]]
        if r.end > end:
            self._split(r, end)
        return inside

    def remove_range(self, base: int, size: int, *, double: DoubleFn | None) -> bool:
        """``memblock_remove_range()``: isolate, then drop the regions inside."""
        inside = self.isolate_range(base, size, double=double)
        if inside is None:
            return False
        if inside:
            if self._track:
                self._gaps_uncover(inside[0], inside[-1])
            for k in inside:
                self._delete(k)
        return True

    def setclr_flag(self, base: int, size: int, set_: bool, flag: int, *, double: DoubleFn | None) -> bool:
        """``memblock_setclr_flag()``: isolate, set or clear *flag*, merge."""
        inside = self.isolate_range(base, size, double=double)
        if inside is None:
            return False
        rm = self._rm
        flag = int(flag)
        for k in inside:
            r = rm[k]
            rm[k] = r._replace(flags=(r.flags | flag) if set_ else (r.flags & ~flag))
        self.merge_regions(inside[0] if inside else None, inside[-1] if inside else None)
        return True

    def set_node(self, base: int, size: int, nid: int, *, double: DoubleFn | None) -> bool:
        """``memblock_set_node()`` on this table (a no-op without CONFIG_NUMA)."""
        if not self.numa:
            return True
        inside = self.isolate_range(base, size, double=double)
        if inside is None:
            return False
        rm = self._rm
        for k in inside:
            rm[k] = rm[k]._replace(nid=nid)
        self.merge_regions(inside[0] if inside else None, inside[-1] if inside else None)
        return True

    def trim(self, align: int) -> None:
        """``memblock_trim_memory()``: round every region in to *align*.

        Shrinking leaves ``total_size`` untouched, as the kernel does (only a
        removal subtracts); and it does not merge.
        """
        for r in self.regions():
            start = ((((r.base - 1) & MASK) | (align - 1)) + 1) & MASK
            end = r.end & ~(align - 1) & MASK
            if start == r.base and end == r.end:
                continue
            if start < end:
                del self._rm[r.base]
                self._keys.remove(r.base)
                self._rm[start] = r._replace(base=start, size=end - start)
                self._keys.add(start)
                self.trim_slack += r.size - (end - start)
            else:
                self._delete(r.base)
            self._maybe_unmerged = True
        if self._track:
            self._gaps_rebuild()

    def remove_unless(self, keep: Callable[[Region], bool], below: int | None, above: int | None) -> None:
        """Remove the regions that *keep* rejects among those with base < *below*
        and those with base > *above* (the loops of ``memblock_cap_memory_range()``;
        None for *above* means every region)."""
        for r in self.regions():
            if (above is None or r.base > above or (below is not None and r.base < below)) and not keep(r):
                self._delete(r.base)
        self._maybe_unmerged = True
        if self._track:
            self._gaps_rebuild()

    # ------------------------------------------------------------- gap index

    def _gap_add(self, gs: int, ge: int) -> None:
        self._gaps[gs] = ge
        self._bucket_add(gs, ge)

    def _gap_del(self, gs: int) -> None:
        ge = self._gaps.pop(gs)
        self._bucket_del(gs, ge)

    @staticmethod
    def _bucket_put(index: dict[int, SortedList], key: int, gs: int) -> None:
        lst = index.get(key)
        if lst is None:
            lst = index[key] = SortedList()
        lst.add(gs)

    def _bucket_add(self, gs: int, ge: int) -> None:
        for index, a in zip(self._buckets, _CAP_ALIGNS, strict=True):
            c = _cap(gs, ge, a)
            if c:
                self._bucket_put(index, c.bit_length(), gs)

    def _bucket_del(self, gs: int, ge: int) -> None:
        for index, a in zip(self._buckets, _CAP_ALIGNS, strict=True):
            c = _cap(gs, ge, a)
            if c:
                index[c.bit_length()].remove(gs)

    def _gap_start_before(self, addr: int) -> int:
        """Start of the gap that holds *addr* (which must be free)."""
        k = _lower(self._keys, addr)
        return self._rm[k].end if k is not None else 0

    def _gap_resize(self, gs: int, old_ge: int, new_ge: int) -> None:
        # The gap keeps its start: only its end, and maybe its buckets, change.
        self._gaps[gs] = new_ge
        for index, a in zip(self._buckets, _CAP_ALIGNS, strict=True):
            oc, nc = _cap(gs, old_ge, a), _cap(gs, new_ge, a)
            if oc.bit_length() == nc.bit_length():
                continue
            if oc:
                index[oc.bit_length()].remove(gs)
            if nc:
                self._bucket_put(index, nc.bit_length(), gs)

    def _gaps_cover(self, pieces: list[tuple[int, int]]) -> None:
        """Account for *pieces* becoming reserved (call before inserting them).

        Each piece lies inside one gap, which splits into what is left below
        and above it.
        """
        gaps = self._gaps
        for pb, pe in pieces:
            gs = self._gap_start_before(pb)
            ge = gaps[gs]
            if gs < pb:
                self._gap_resize(gs, ge, pb)
            else:
                self._gap_del(gs)
            if pe < ge:
                self._gap_add(pe, ge)

    def _gaps_uncover(self, first: int, last: int) -> None:
        """Account for the regions *first* .. *last* being removed (call before).

        The gaps among and around them become one.
        """
        rm, gaps = self._rm, self._gaps
        lo = self._gap_start_before(first)
        nxt = _higher(self._keys, last)
        hi = nxt if nxt is not None else PHYS_ADDR_MAX
        if lo in gaps:
            self._gap_del(lo)
        for k in _ascending(self._keys, first):
            if k > last:
                break
            e = rm[k].end
            if e in gaps:
                self._gap_del(e)
        self._gap_add(lo, hi)

    def _gaps_rebuild(self) -> None:
        self._gaps = {}
        self._buckets = tuple({} for _ in _CAP_ALIGNS)
        for gs, ge in self.gaps():
            self._gap_add(gs, ge)

    def gaps(self) -> list[tuple[int, int]]:
        """The non-empty free gaps ``[start, end)`` between regions, ascending."""
        out, pos = [], 0
        for r in self:
            if r.base > pos:
                out.append((pos, r.base))
            pos = r.end
        if pos < PHYS_ADDR_MAX:
            out.append((pos, PHYS_ADDR_MAX))
        return out

    def _iter_gaps_down(self, we: int) -> Iterator[tuple[int, int]]:
        """Gaps with start < we, descending, read off the regions: one per region
        passed, empty (start == end) where two regions touch without merging."""
        rm, keys = self._rm, self._keys
        hi = _ceil(keys, we)
        if hi is None:
            hi = PHYS_ADDR_MAX
        for k in _descending(keys, we):
            r = rm[k]
            e = r.base + r.size
            if e < we:
                yield e, hi
            hi = k
        if hi > 0:
            yield 0, hi

    def fit_top_down(self, ws: int, we: int, size: int, align: int) -> int | None:
        """Highest ``round_down(e - size, align)`` over gaps clamped to ``[ws, we)`` that fits.

        Walks gaps from the top of the window down, as ``__next_mem_range_rev()``
        does, but past the first few it skips gaps smaller than *size* through
        the size buckets.
        """
        amask = ~(align - 1) & MASK
        for steps, (gs, ge) in enumerate(self._iter_gaps_down(we), 1):
            if ge <= ws:
                return None
            s = gs if gs > ws else ws
            e = ge if ge < we else we
            if e - s >= size and e > s:
                c = (e - size) & amask
                if c >= s:
                    return c
            if steps == _LINEAR_GAPS:
                # gs was examined; the buckets take over below it.
                return self._fit_buckets(ws, we, size, align, gs - 1, top_down=True)
        return None

    def _iter_gaps_up(self, ws: int) -> Iterator[tuple[int, int]]:
        """Gaps that end above ws, ascending, read off the regions (empty ones included)."""
        rm, keys = self._rm, self._keys
        k = _floor(keys, ws)
        if k is None:
            lo, nxt = 0, _ceil(keys, ws)
        else:
            r = rm[k]
            lo, nxt = r.base + r.size, _higher(keys, k)
        if nxt is not None:
            for k in _ascending(keys, nxt):
                yield lo, k
                r = rm[k]
                lo = r.base + r.size
        if lo < PHYS_ADDR_MAX:
            yield lo, PHYS_ADDR_MAX

    def fit_bottom_up(self, ws: int, we: int, size: int, align: int) -> int | None:
        """Lowest ``round_up(s, align)`` over gaps clamped to ``[ws, we)`` that fits."""
        am1 = align - 1
        for steps, (gs, ge) in enumerate(self._iter_gaps_up(ws), 1):
            if gs >= we:
                return None
            if ge <= ws:
                continue
            s = gs if gs > ws else ws
            e = ge if ge < we else we
            if e > s:
                c = ((((s - 1) & MASK) | am1) + 1) & MASK
                if c < e and e - c >= size:
                    return c
            if steps >= _LINEAR_GAPS:
                return self._fit_buckets(ws, we, size, align, gs + 1, top_down=False)
        return None

    def _fits(self, gs: int, ws: int, we: int, size: int, align: int, top_down: bool) -> int | None:
        """The kernel's candidate in gap *gs* clamped to the window, or None."""
        ge = self._gaps[gs]
        s = gs if gs > ws else ws
        e = ge if ge < we else we
        if e <= s:
            return None
        if top_down:
            if e - s < size:
                return None
            c = (e - size) & ~(align - 1) & MASK
            return c if c >= s else None
        c = ((((s - 1) & MASK) | (align - 1)) + 1) & MASK
        return c if c < e and e - c >= size else None

    def _fit_buckets(self, ws: int, we: int, size: int, align: int, bound: int, top_down: bool) -> int | None:
        """Continue a search past *bound* (inclusive) using the size buckets.

        Gaps shorter than *size* cannot fit and are never visited.  With a
        power-of-two *align*, a gap of at least ``size + align - 1`` bytes that
        lies inside the window surely fits, so one lookup per such bucket finds
        the best sure candidate; only the in-between buckets are walked, and
        only as far as that candidate.  The gap straddling the window's lower
        (top-down) or upper (bottom-up) edge is checked last, exactly.
        """
        if align & (align - 1) or align == 0:
            return self._fit_buckets_heap(ws, we, size, align, bound, top_down)
        gaps = self._gaps
        # Index by the largest indexed alignment a* <= align: capacity for align
        # is at most cap(a*) and at least cap(a*) - (align - a*).
        i = max(k for k, a in enumerate(_CAP_ALIGNS) if a <= align)
        buckets = self._buckets[i]
        minb = size.bit_length()
        need = size + align - _CAP_ALIGNS[i]
        sure_b = need.bit_length()
        if _bmin(sure_b) < need:
            sure_b += 1
        best: int | None = None
        for b, lst in buckets.items():
            if b < sure_b or not lst:
                continue
            if top_down:
                gs = _floor(lst, bound)
                if gs is not None and gs >= ws and (best is None or gs > best):
                    best = gs
            else:
                gs = _ceil(lst, bound)
                if gs is not None and gaps[gs] <= we and (best is None or gs < best):
                    best = gs
        found = best
        for b in sorted(k for k in buckets if minb <= k < sure_b):
            lst = buckets[b]
            if not lst:
                continue
            if top_down:
                for gs in _descending(lst, bound + 1):
                    if gs < ws or (found is not None and gs <= found):
                        break
                    if self._fits(gs, ws, we, size, align, True) is not None:
                        found = gs
                        break
            else:
                for gs in _ascending(lst, bound):
                    if gs >= we or (found is not None and gs >= found):
                        break
                    if self._fits(gs, ws, we, size, align, False) is not None:
                        found = gs
                        break
        if found is not None:
            return self._fits(found, ws, we, size, align, top_down)
        if top_down:
            # The gap that holds ws (it starts below it) is the last one to try.
            gs = self._gap_start_before(ws) if self.search(ws) is None else None
            if gs is not None and gs < ws and gs <= bound and gaps[gs] - gs >= size:
                return self._fits(gs, ws, we, size, align, True)
            return None
        # Bottom-up: the gap that runs past we is the last one to try.
        if we < PHYS_ADDR_MAX and self.search(we - 1) is None:
            gs = self._gap_start_before(we - 1)
            if gs >= bound and gs < we < gaps[gs] and gaps[gs] - gs >= size:
                return self._fits(gs, ws, we, size, align, False)
        return None

    def _fit_buckets_heap(self, ws: int, we: int, size: int, align: int, bound: int, top_down: bool) -> int | None:
        # Any alignment: merge the buckets' gaps in address order and try each.
        gaps = self._gaps
        iters = []
        minb = size.bit_length()
        for b, lst in self._buckets[0].items():
            if b >= minb and lst:
                iters.append(_descending(lst, bound + 1) if top_down else _ascending(lst, bound))
        merged = heapq.merge(*iters, reverse=True) if top_down else heapq.merge(*iters)
        for gs in merged:
            if (top_down and gaps[gs] <= ws) or (not top_down and gs >= we):
                return None
            c = self._fits(gs, ws, we, size, align, top_down)
            if c is not None:
                return c
        return None

    # --------------------------------------------------------------- checks

    def check(self) -> None:
        """Raise ReplayError unless sorted, disjoint, and ``total_size`` is exact (tests)."""
        total = 0
        prev: Region | None = None
        if list(self._keys) != sorted(self._rm):
            raise ReplayError(f"{self.name}: key list out of date")
        for r in self:
            if r.size <= 0:
                raise ReplayError(f"{self.name}: empty region at {r.base:#x}")
            if prev is not None and prev.end > r.base:
                raise ReplayError(f"{self.name}: overlap at {r.base:#x}")
            total += r.size
            prev = r
        if total + self.trim_slack != self.total_size:
            raise ReplayError(f"{self.name}: total_size {self.total_size:#x} != sum {total:#x}")
        if self._track:
            if sorted(self._gaps.items()) != self.gaps():
                raise ReplayError(f"{self.name}: gap index out of date")
            for index, a in zip(self._buckets, _CAP_ALIGNS, strict=True):
                want = {gs: _cap(gs, ge, a) for gs, ge in self._gaps.items() if _cap(gs, ge, a)}
                for gs, c in want.items():
                    if gs not in index.get(c.bit_length(), ()):
                        raise ReplayError(f"{self.name}: gap {gs:#x} missing from its align-{a} bucket")
                if sum(len(lst) for lst in index.values()) != len(want):
                    raise ReplayError(f"{self.name}: stale gaps in align-{a} buckets")
