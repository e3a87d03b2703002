# SPDX-License-Identifier: GPL-2.0-only
"""One ``struct memblock_type``: a sorted table of regions with the kernel's semantics.

The kernel keeps ``memory`` and ``reserved`` as flat arrays and scans them from
index 0; a boot with 10^5 reservations makes that quadratic.  We keep the
regions in address order in a list of short *chunks* (parallel lists of
bases, ends, ``(flags, nid)`` and the length of the free gap below each
region), found by bisecting the chunks' first bases.  An insertion or a
removal touches one chunk, so one operation costs O(log n + chunk), while
the table reproduces every observable effect of the kernel's array: the
order of splits and merges, ``cnt`` (including the pre-6.x "dummy entry"
convention for an empty table), ``total_size`` and the capacity ``max``,
which decides when the engine must double the array (doubling allocates
memory, so it moves later placements).

We do not use sortedcontainers' SortedList, which stores the same list of
sorted chunks: the allocator's index must summarise the gaps chunk by chunk,
alongside the regions, and a SortedList's chunks are its own (benchmarks/README.md
gives the figures of each layout tried).

The kernel's algorithms are index based (``memblock_merge_regions(type,
start_rgn, end_rgn)``); ours name the same regions by their base, which is
the same thing on a sorted, disjoint table.

The free gaps are indexed for the allocator.  Each gap has two one-byte
classes, of its length and of the largest aligned power-of-two block it
holds, kept in a bytearray per chunk with each chunk's maxima in one more.
``fit_top_down()``/``fit_bottom_up()`` walk gaps in exactly the kernel's
order, but find the next gap (or chunk) whose class may fit with one
``translate()`` + ``rfind()`` in C, and check only those exactly.  A boot
fragments the top of memory into thousands of holes too small for a big
request; the kernel walks every one, we pass them a chunk at a time.

A class byte is an upper bound of the gap's: a reservation only cuts gaps,
and a cut gap keeps its classes; a gap that grows (a free) gets the top class.
A search that finds a gap too small works its classes out exactly then.  The
search checks every gap it stops at exactly, so a high class costs a look,
never a result; most gaps are never looked at, and neither reserving nor
freeing computes a class.

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

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from ..errors import ReplayError
from ..ops import MAX_PHYS_ADDR, Region

__all__ = ["ArrayPlace", "DoubleFn", "RegionTable", "attribute_copy", "cap_size", "chunk_geometry"]

_T = TypeVar("_T")

PHYS_ADDR_MAX = MAX_PHYS_ADDR
MASK = MAX_PHYS_ADDR

#: ``memblock_double_array(type, new_area_start, new_area_size) -> ok``.
DoubleFn = Callable[["RegionTable", int, int], bool]
#: Receives the text of a WARN the kernel would print.
WarnFn = Callable[[str], None]

# A chunk splits in two above _SPLIT regions; one that falls below _SMALL is
# joined to a neighbour.  Short chunks keep the work inside one cheap.
_SPLIT = 96
_SMALL = 16
# Chunk maxima are read _SPAN at a time when the allocator passes chunks by.
_SPAN = 1024

#: _AT_LEAST[t] translates a class byte to 1 when it is >= t, else to 0, so
#: that ``rfind(1)``/``find(1)`` locate the next gap that may fit, in C.
_AT_LEAST = [bytes(t) + b"\x01" * (256 - t) for t in range(256)]

#: ``(flags, nid)`` of a region: one object, so a merge test is one comparison.
Attr = tuple[int, int]


@contextmanager
def chunk_geometry(split: int, small: int, span: int) -> Iterator[None]:
    """Build and use tables with other chunk sizes inside the ``with`` block.

    Results must not depend on chunking; tests replay with tiny chunks
    (``chunk_geometry(4, 2, 2)``) so that every chunk and span edge is crossed.
    """
    global _SPLIT, _SMALL, _SPAN
    saved = _SPLIT, _SMALL, _SPAN
    _SPLIT, _SMALL, _SPAN = split, small, span
    try:
        yield
    finally:
        _SPLIT, _SMALL, _SPAN = saved


def _last_at_least(b: bytes | bytearray, lo: int, hi: int, t: int) -> int:
    """The largest i in [lo, hi] with ``b[i] >= t``, or -1, read from the top down."""
    tbl = _AT_LEAST[t]
    while hi >= lo:
        s = hi - _SPAN + 1
        if s < lo:
            s = lo
        i = b[s:hi + 1].translate(tbl).rfind(1)
        if i >= 0:
            return s + i
        hi = s - 1
    return -1


def _first_at_least(b: bytes | bytearray, lo: int, hi: int, t: int) -> int:
    """The smallest i in [lo, hi] with ``b[i] >= t``, or -1, read from the bottom up."""
    tbl = _AT_LEAST[t]
    while lo <= hi:
        e = lo + _SPAN
        if e > hi + 1:
            e = hi + 1
        i = b[lo:e].translate(tbl).find(1)
        if i >= 0:
            return lo + i
        lo = e
    return -1


def _q(n: int) -> int:
    """A gap length's class byte: monotone in *n*, one step per power of two below 4 KiB,
    sixteen from 4 KiB (its top four bits after the first), 255 from 124 MiB up.  A gap of length >= size
    has a class >= ``_q(size)``.

    Requests are pages to megabytes: sixteen steps there halve the gaps one class lets
    through that are a little too short (a dense top of memory is full of them), and
    gaps of 124 MiB and more are few.
    """
    k = n.bit_length()
    if k < 13:
        return k
    q = ((k - 12) << 4) | ((n >> (k - 5)) & 15)
    return q if q < 255 else 255


def _c(gs: int, ge: int) -> int:
    """The class byte of a gap's page capacity, ``ge - round_up(gs, 4096)``: a request
    aligned to a multiple of 4096 fits only if its size's class is no larger."""
    ru = (gs + 0xFFF) & ~0xFFF
    return _q(ge - ru) if ru < ge else 0


def _p2(gs: int, ge: int) -> int:
    """The largest k such that a 2^k-aligned 2^k-byte block fits in ``[gs, ge)``; -1 if empty.

    A request for a power-of-two *align* >= its size fits a gap only if this is
    at least ``log2(size)``, exactly so when the size is *align*; the search
    uses it to pass over gaps long enough but wrongly aligned.
    """
    n = ge - gs
    if n <= 0:
        return -1
    k = n.bit_length() - 1
    a = 1 << k
    # Any 2^(k+1) bytes hold an aligned 2^k block, so the answer is k or k - 1.
    return k if ((gs + a - 1) & -a) + a <= ge else k - 1


def _classes(gs: int, ge: int) -> tuple[int, int, int]:
    """The class bytes of gap ``[gs, ge)``: length, 1 + aligned block, page capacity."""
    return _q(ge - gs), _p2(gs, ge) + 1, _c(gs, ge)


def cap_size(base: int, size: int) -> int:
    """``memblock_cap_size()``: shrink *size* so ``base + size`` does not pass PHYS_ADDR_MAX."""
    return min(size, PHYS_ADDR_MAX - base)


@dataclass(slots=True)
class ArrayPlace:
    """Where a table's dynamic array lives after doubling: ``[base, base + alloc_size)``."""

    base: int
    alloc_size: int


def attribute_copy(obj: _T) -> _T:
    """A shallow copy of *obj* made by setting its attributes one by one, in their order.

    ``copy.copy()`` hands the new object a finished ``__dict__``; CPython 3.11 then keeps its attributes
    in that dict instead of inline, and every later attribute access on the copy is slower (a forked
    walk ran 11% slower: benchmarks/fork_copy.py).
    """
    new = object.__new__(type(obj))
    for name, value in obj.__dict__.items():
        setattr(new, name, value)
    return new


class RegionTable:
    """A ``struct memblock_type`` (``memory``, ``reserved`` or ``physmem``).

    :param name: the kernel's name for it, used in messages.
    :param max_regions: the initial capacity (``INIT_MEMBLOCK_REGIONS`` etc).
    :param empty_cnt: what ``cnt`` reads when the table is empty (1 before the
        switch away from the dummy entry, 0 after).
    :param numa: whether regions carry a node id (CONFIG_NUMA).
    :param ranged_merge: merge only around the touched range (>= v6.5).
    """

    def __init__(
        self,
        name: str,
        max_regions: int,
        *,
        empty_cnt: int = 0,
        numa: bool = True,
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
        # Set when trim/cap left neighbours unmerged; a pre-6.5 full merge may join them.
        self._maybe_unmerged = False
        self._rebuild([])

    # ------------------------------------------------------------ storage
    # Chunk c holds regions _B[c][j] .. with ends _E[c][j], attributes _A[c][j]
    # and _G[c][j], the length of the free gap between the previous region's
    # end (or 0) and _B[c][j].  Three bytearrays class each gap for the search
    # (see _classes()): _Q[c][j] its length, _P[c][j] its aligned block, _C[c][j]
    # its page capacity; _qmax[c], _pmax[c] and _cmax[c] are their maxima per
    # chunk.  _mins[c] is _B[c][0].  _rows lists every per-chunk list, _maxima
    # pairs each class with its maxima.

    def copy(self) -> RegionTable:
        """An independent copy of the table, storage and all (a sweep continues one replay many ways)."""
        new = attribute_copy(self)  # the scalars; every container below gets its own copy
        new.array = None if self.array is None else ArrayPlace(self.array.base, self.array.alloc_size)
        new._B, new._E, new._A, new._G = ([c[:] for c in rows] for rows in (self._B, self._E, self._A, self._G))
        new._Q, new._P, new._C = ([bytearray(c) for c in rows] for rows in (self._Q, self._P, self._C))
        new._mins = self._mins[:]
        new._qmax, new._pmax, new._cmax = bytearray(self._qmax), bytearray(self._pmax), bytearray(self._cmax)
        new._rows = (new._B, new._E, new._A, new._G, new._Q, new._P, new._C)
        new._maxima = ((new._Q, new._qmax), (new._P, new._pmax), (new._C, new._cmax))
        new._pref = None if self._pref is None else self._pref[:]
        new._snap = None  # a cache of the listing: rebuilt on demand
        return new

    def _rebuild(self, entries: list[tuple[int, int, Attr]]) -> None:
        """Replace the storage by *entries* ``(base, end, attr)``, ascending and disjoint."""
        self._B: list[list[int]] = []
        self._E: list[list[int]] = []
        self._A: list[list[Attr]] = []
        self._G: list[list[int]] = []
        self._Q: list[bytearray] = []
        self._P: list[bytearray] = []
        self._C: list[bytearray] = []
        self._mins: list[int] = []
        self._qmax = bytearray()
        self._pmax = bytearray()
        self._cmax = bytearray()
        self._rows = (self._B, self._E, self._A, self._G, self._Q, self._P, self._C)
        self._maxima = ((self._Q, self._qmax), (self._P, self._pmax), (self._C, self._cmax))
        self._n = len(entries)
        self._pref: list[int] | None = None
        self._small: int | None = None
        self._snap: tuple[list[int], list[Region]] | None = None
        #: (chunk, index) of the region above the gap fit_*() last chose, for the
        #: reservation that follows; _add_in_gap() checks it before use.
        self._hint: tuple[int, int] | None = None
        prev = 0
        step = _SPLIT // 2
        for i in range(0, len(entries), step):
            part = entries[i:i + step]
            bases = [b for b, _, _ in part]
            ends = [e for _, e, _ in part]
            starts = [prev, *ends[:-1]]
            gaps = [b - pe for b, pe in zip(bases, starts, strict=True)]
            q, p, cap = (bytearray(x) for x in zip(*(_classes(pe, b) for b, pe in zip(bases, starts, strict=True)),
                                                   strict=True))
            prev = ends[-1]
            self._B.append(bases)
            self._E.append(ends)
            self._A.append([a for _, _, a in part])
            self._G.append(gaps)
            self._Q.append(q)
            self._P.append(p)
            self._C.append(cap)
            self._mins.append(bases[0])
            self._qmax.append(max(q))
            self._pmax.append(max(p))
            self._cmax.append(max(cap))

    def _gset(self, c: int, j: int, v: int) -> None:
        """Set the gap below region (c, j) to *v* (its base is already final)."""
        # _classes() and _setcls() written out: this runs for most reservations and frees.
        self._G[c][j] = v
        b = self._B[c][j]
        gs = b - v
        k = v.bit_length()
        if k < 13:
            qv = k
        else:
            qv = ((k - 12) << 4) | ((v >> (k - 5)) & 15)
            if qv > 255:
                qv = 255
        if v:
            a = 1 << (k - 1)
            pv = k if ((gs + a - 1) & -a) + a <= b else k - 1
        else:
            pv = 0
        ru = (gs + 0xFFF) & ~0xFFF
        if ru < b:
            n = b - ru
            k = n.bit_length()
            if k < 13:
                cv = k
            else:
                cv = ((k - 12) << 4) | ((n >> (k - 5)) & 15)
                if cv > 255:
                    cv = 255
        else:
            cv = 0
        row = self._Q[c]
        old = row[j]
        if old != qv:
            row[j] = qv
            mx = self._qmax
            m = mx[c]
            if qv > m:
                mx[c] = qv
            elif old == m and m not in row:
                mx[c] = max(row)
        row = self._P[c]
        old = row[j]
        if old != pv:
            row[j] = pv
            mx = self._pmax
            m = mx[c]
            if pv > m:
                mx[c] = pv
            elif old == m and m not in row:
                mx[c] = max(row)
        row = self._C[c]
        old = row[j]
        if old != cv:
            row[j] = cv
            mx = self._cmax
            m = mx[c]
            if cv > m:
                mx[c] = cv
            elif old == m and m not in row:
                mx[c] = max(row)

    @staticmethod
    def _setcls(row: bytearray, mx: bytearray, c: int, j: int, new: int) -> None:
        """``row[j] = new`` in chunk c, keeping the chunk maximum ``mx[c]`` exact."""
        old = row[j]
        if new != old:
            row[j] = new
            m = mx[c]
            if new > m:
                mx[c] = new
            elif old == m and m not in row:
                # The maximum went away (a memchr() says so faster than a max()).
                mx[c] = max(row)

    def _gmark(self, c: int, j: int, v: int) -> None:
        """Set the gap below region (c, j) to *v*, which may have grown: its classes go to the top,
        upper bounds that the search lowers when it looks (most freed gaps it never looks at)."""
        self._G[c][j] = v
        self._Q[c][j] = self._P[c][j] = self._C[c][j] = 255
        self._qmax[c] = self._pmax[c] = self._cmax[c] = 255

    def _fix_next_gap(self, c: int, j: int, prev_end: int) -> None:
        """The region at (c, j), or the first one after, now has *prev_end* below it."""
        B = self._B
        if j < len(B[c]):
            self._gmark(c, j, B[c][j] - prev_end)
        elif c + 1 < len(B):
            self._gmark(c + 1, 0, B[c + 1][0] - prev_end)

    def _put(self, c: int, j: int, base: int, end: int, attr: Attr, gap: int) -> tuple[int, int]:
        """Insert an entry at (c, j) and return where it ended up (a full chunk splits);
        the caller keeps the next region's gap right."""
        bc = self._B[c]
        bc.insert(j, base)
        self._E[c].insert(j, end)
        self._A[c].insert(j, attr)
        self._G[c].insert(j, gap)
        # Classes 0 for an empty gap, else the top (see _gmark()).
        cls = 255 if gap else 0
        self._Q[c].insert(j, cls)
        self._P[c].insert(j, cls)
        self._C[c].insert(j, cls)
        if not j:
            self._mins[c] = base
        if gap:
            self._qmax[c] = self._pmax[c] = self._cmax[c] = 255
        self._n += 1
        self._pref = None
        if len(bc) > _SPLIT:
            h = len(bc) >> 1
            self._split_chunk(c, h)
            if j >= h:
                return c + 1, j - h
        return c, j

    def _split_chunk(self, c: int, h: int) -> None:
        """Move entries h.. of chunk c into a new chunk c + 1."""
        for rows in self._rows:
            rows.insert(c + 1, rows[c][h:])
            del rows[c][h:]
        self._mins.insert(c + 1, self._B[c + 1][0])
        for rows, mx in self._maxima:
            mx[c] = max(rows[c])
            mx.insert(c + 1, max(rows[c + 1]))

    def _drop(self, c: int, j: int) -> bool:
        """Remove the entry at (c, j) alone (no gap fix-up); True if chunk c went away."""
        # Each row by name, not a loop over _rows: this runs for most frees and merges.
        bc = self._B[c]
        del bc[j]
        del self._E[c][j]
        del self._A[c][j]
        del self._G[c][j]
        q, p, cap = self._Q[c], self._P[c], self._C[c]
        qv, pv, cv = q[j], p[j], cap[j]
        del q[j]
        del p[j]
        del cap[j]
        self._n -= 1
        self._pref = None
        if not bc:
            for rows in (*self._rows, self._mins, self._qmax, self._pmax, self._cmax):
                del rows[c]
            return True
        if not j:
            self._mins[c] = bc[0]
        # A chunk maximum that went with the entry is looked for again.
        if qv == self._qmax[c] and qv not in q:
            self._qmax[c] = max(q)
        if pv == self._pmax[c] and pv not in p:
            self._pmax[c] = max(p)
        if cv == self._cmax[c] and cv not in cap:
            self._cmax[c] = max(cap)
        if len(bc) < _SMALL:
            self._small = bc[0]
        return False

    def _insert(self, base: int, end: int, attr: Attr) -> None:
        """Insert region ``[base, end)`` into a free slot of the table."""
        B = self._B
        if not B:
            self._rebuild([(base, end, attr)])
            return
        c = bisect_right(self._mins, base) - 1
        if c < 0:
            c = 0
        bc = B[c]
        j = bisect_left(bc, base)
        if j:
            prev_end = self._E[c][j - 1]
        elif c:
            prev_end = self._E[c - 1][-1]
        else:
            prev_end = 0
        c, j = self._put(c, j, base, end, attr, base - prev_end)
        # The region above has the new end below it now.
        self._fix_next_gap(c, j + 1, end)

    def _delete_at(self, c: int, j: int) -> None:
        """Remove the region at (c, j); its gap and the one above become one."""
        prev_end = self._B[c][j] - self._G[c][j]
        if self._drop(c, j):
            if c < len(self._B):
                self._gmark(c, 0, self._B[c][0] - prev_end)
        else:
            self._fix_next_gap(c, j, prev_end)

    def _loc(self, base: int) -> tuple[int, int]:
        """Position of the region that starts at *base* (which must exist)."""
        c = bisect_right(self._mins, base) - 1
        return c, bisect_left(self._B[c], base)

    def _floor(self, x: int) -> tuple[int, int] | None:
        """Position of the last region with base <= x."""
        c = bisect_right(self._mins, x) - 1
        if c < 0:
            return None
        return c, bisect_right(self._B[c], x) - 1

    def _next(self, c: int, j: int) -> tuple[int, int] | None:
        if j + 1 < len(self._B[c]):
            return c, j + 1
        if c + 1 < len(self._B):
            return c + 1, 0
        return None

    def _prev(self, c: int, j: int) -> tuple[int, int] | None:
        if j:
            return c, j - 1
        if c:
            return c - 1, len(self._B[c - 1]) - 1
        return None

    def _first_overlap(self, x: int) -> tuple[int, int] | None:
        """Position of the first region that ends above *x*."""
        if not self._n:
            return None
        p = self._floor(x)
        if p is None:
            return 0, 0
        c, j = p
        if self._E[c][j] > x:
            return p
        return self._next(c, j)

    def _region(self, c: int, j: int) -> Region:
        b = self._B[c][j]
        f, nid = self._A[c][j]
        # made as the tuple it is (see __iter__): validate looks up every allocation's region
        return tuple.__new__(Region, (b, self._E[c][j] - b, f, nid))

    def _compact(self) -> None:
        """Join a chunk that deletions left short to a neighbour (after an operation)."""
        base, self._small = self._small, None
        c = bisect_right(self._mins, base) - 1
        if c < 0 or len(self._B[c]) >= _SMALL or len(self._B) < 2:
            return
        if c + 1 == len(self._B) or (c and len(self._B[c - 1]) < len(self._B[c + 1])):
            c -= 1
        # Chunks c and c + 1 become one; gaps are per region and stay as they are.
        for rows in self._rows:
            rows[c].extend(rows.pop(c + 1))
        del self._mins[c + 1]
        for _, mx in self._maxima:
            mx[c] = max(mx[c], mx.pop(c + 1))
        if len(self._B[c]) > _SPLIT:
            self._split_chunk(c, len(self._B[c]) >> 1)

    # ------------------------------------------------------------------ views

    @property
    def cnt(self) -> int:
        """``type->cnt`` as the kernel reads it."""
        n = self._n
        return n if n else self.empty_cnt

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[Region]:
        # Each Region made as the tuple it is, without the namedtuple's Python-level __new__: a dump or a
        # snapshot lists every region, 10^5 of them.
        new = tuple.__new__
        for bc, ec, ac in zip(self._B, self._E, self._A, strict=True):
            for b, e, (f, nid) in zip(bc, ec, ac, strict=True):
                yield new(Region, (b, e - b, f, nid))

    def _prefix(self) -> list[int]:
        if self._pref is None:
            pref, n = [], 0
            for bc in self._B:
                pref.append(n)
                n += len(bc)
            self._pref = pref
        return self._pref

    def __getitem__(self, idx: int) -> Region:
        n = self._n
        if idx < 0:
            idx += n
        if not 0 <= idx < n:
            raise IndexError(f"{self.name}: region index {idx} out of range")
        pref = self._prefix()
        c = bisect_right(pref, idx) - 1
        return self._region(c, idx - pref[c])

    def rank(self, addr: int) -> int:
        """How many regions start below *addr*: the kernel's insertion index for a region at *addr*."""
        c = bisect_left(self._mins, addr) - 1
        if c < 0:
            return 0
        return self._prefix()[c] + bisect_left(self._B[c], addr)

    def regions(self) -> list[Region]:
        """All regions in address order."""
        return list(self)

    def snapshot(self) -> tuple[list[int], list[Region]]:
        """The bases and the regions, in address order, as of now (kept until the
        table changes; do not modify).  The allocator walks ``memory`` through it."""
        if self._snap is None:
            regs = list(self)
            self._snap = [r.base for r in regs], regs
        return self._snap

    def search(self, addr: int) -> Region | None:
        """``memblock_search()``: the region containing *addr*, if any."""
        p = self._floor(addr)
        if p is not None and addr < self._E[p[0]][p[1]]:
            return self._region(*p)
        return None

    def overlaps(self, base: int, size: int) -> bool:
        """``memblock_overlaps_region()``."""
        size = cap_size(base, size)
        p = self._first_overlap(base)
        return size > 0 and p is not None and self._B[p[0]][p[1]] < base + size

    # ------------------------------------------------------------- primitives

    def _note_cnt(self) -> None:
        n = self._n
        if n > self.max:
            raise ReplayError(f"memblock_insert_region: {self.name} array full (cnt {n})")
        if n > self.peak_cnt:
            self.peak_cnt = n

    def _delete(self, base: int) -> None:
        c, j = self._loc(base)
        self.total_size -= self._E[c][j] - base
        self._delete_at(c, j)

    def _split(self, base: int, at: int) -> None:
        # Same slots, one more region: cnt and capacity change, total_size does not.
        c, j = self._loc(base)
        end = self._E[c][j]
        self._E[c][j] = at
        self._put(c, j + 1, at, end, self._A[c][j], 0)
        self._note_cnt()

    def _bases_from(self, p: tuple[int, int] | None, end: int) -> list[int]:
        """Bases of the regions from position *p* on that start below *end*."""
        out: list[int] = []
        if p is None:
            return out
        c, j = p
        B = self._B
        while c < len(B):
            bc = B[c]
            k = bisect_left(bc, end, j)
            out.extend(bc[j:k])
            if k < len(bc):
                break
            c += 1
            j = 0
        return out

    # -------------------------------------------------------------- merge

    def merge_regions(self, first: int | None, last: int | None) -> None:
        """``memblock_merge_regions()`` over the regions from the one before *first*
        to the one after *last* (bases of the first and last touched regions).

        Before v6.5 the kernel scanned the whole array; on a minimal table the
        result is the same, except after trim/cap, which may leave pairs unmerged.
        """
        self._snap = None
        if not self._n:
            return
        B, E, A = self._B, self._E, self._A
        if not self.ranged_merge and self._maybe_unmerged:
            first, last = B[0][0], B[-1][-1]
            self._maybe_unmerged = False
        if first is None or last is None:
            # merge_regions(type, 0, 0) merges nothing.
            return
        c, j = self._loc(first)
        p = self._prev(c, j)
        if p is not None:
            c, j = p
        while B[c][j] <= last:
            q = self._next(c, j)
            if q is None:
                return
            c2, j2 = q
            xe, y = E[c][j], B[c2][j2]
            if xe != y or A[c][j] != A[c2][j2]:
                if xe > y:
                    raise ReplayError(f"memblock_merge_regions: {self.name} regions overlap at {y:#x}")
                c, j = c2, j2
                continue
            # y is absorbed: x takes its end, and the gap above y is now above x.
            x = B[c][j]
            E[c][j] = E[c2][j2]
            self._drop(c2, j2)
            if x == last:
                # end_rgn dropped to this index: the kernel's loop stops here.
                return
            if y == last:
                last = x
            # x keeps its position: only y, after it, went away.

    # ------------------------------------------------------------ add_range

    def _walk_new(self, base: int, end: int) -> tuple[list[tuple[int, int]], list[Region]]:
        """The uncovered pieces of ``[base, end)`` as the kernel's loop finds them, and
        the regions it would WARN about (those overlapped above a piece)."""
        pieces: list[tuple[int, int]] = []
        above: list[Region] = []
        p = self._first_overlap(base)
        if p is not None:
            c, j = p
            B, E = self._B, self._E
            while c < len(B):
                bc, ec = B[c], E[c]
                while j < len(bc):
                    rb = bc[j]
                    if rb >= end:
                        break
                    if rb > base:
                        above.append(self._region(c, j))
                        pieces.append((base, rb))
                    re = ec[j]
                    base = re if re < end else end
                    j += 1
                else:
                    c += 1
                    j = 0
                    continue
                break
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
        self._snap = None
        if size > PHYS_ADDR_MAX - base:
            size = PHYS_ADDR_MAX - base
        if not size:
            return True
        end = base + size
        attr = (int(flags), nid if self.numa else 0)
        if not self._n:
            if self.total_size and warn is not None:
                # WARN_ON(type->cnt != 0 || type->total_size): trim_memory() left bytes behind
                warn(f"WARNING: memblock_add_range: {self.name} total_size {self.total_size:#x} in an empty array")
            # The empty-array path sets total_size outright: trimmed bytes are forgotten.
            self.total_size = size
            self.trim_slack = 0
            self._insert(base, end, attr)
            self._note_cnt()
            return True
        if (self.ranged_merge or not self._maybe_unmerged) and self._add_in_gap(base, end, attr):
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
        for b, e in pieces:
            self._insert(b, e, attr)
            self.total_size += e - b
        self._note_cnt()
        self.merge_regions(pieces[0][0], pieces[-1][0])
        if self._small is not None:
            self._compact()
        return True

    def _add_in_gap(self, base: int, end: int, attr: Attr) -> bool:
        """add_range() when ``[base, end)`` lies in one free gap and needs no doubling:
        one insertion and the merge with either neighbour, done in place.

        Returns False (nothing done) for every other case.
        """
        B, E, A = self._B, self._E, self._A
        # Where the allocator just found room, if it did: checked below like a bisect's answer.
        h = self._hint
        self._hint = None
        if h is not None and h[0] < len(B) and h[1] <= len(B[h[0]]):
            c, j = h
            if j:
                pc, pj = c, j - 1
            elif c:
                pc, pj = c - 1, len(B[c - 1]) - 1
            else:
                pc = pj = -1
        else:
            # _floor(base), written out: this runs for every reservation.
            pc = bisect_right(self._mins, base) - 1
            pj = bisect_right(B[pc], base) - 1 if pc >= 0 else -1
        if pc < 0:
            prev_end = 0
            nc, nj = 0, 0
        else:
            prev_end = E[pc][pj]
            if prev_end > base:
                return False
            if pj + 1 < len(B[pc]):
                nc, nj = pc, pj + 1
            else:
                nc, nj = pc + 1, 0
        if nc < len(B):
            nb = B[nc][nj]
            if nb < end:
                return False
        else:
            nc = -1
        n = self._n
        if n * 2 + 1 > self.max and n + 1 > self.max:
            return False
        # The kernel inserts first, then merges: the count peaks one higher.
        if n + 1 > self.peak_cnt:
            self.peak_cnt = n + 1
        self.total_size += end - base
        with_prev = pc >= 0 and prev_end == base and A[pc][pj] == attr
        with_next = nc >= 0 and nb == end and A[nc][nj] == attr
        if with_prev and with_next:
            # The three become one; the gap above the next region does not change.
            E[pc][pj] = E[nc][nj]
            self._drop(nc, nj)
            if self._small is not None:
                self._compact()
        elif with_prev:
            # The gap above shrinks: its classes stay, as upper bounds (see the module doc).
            E[pc][pj] = end
            if nc >= 0:
                self._G[nc][nj] = nb - end
        elif with_next:
            B[nc][nj] = base
            if not nj:
                self._mins[nc] = base
            self._G[nc][nj] = base - prev_end
        elif nc == pc and pc >= 0:
            # The gap is cut in two within one chunk: both parts keep its classes.
            G = self._G
            bc = B[pc]
            bc.insert(nj, base)
            E[pc].insert(nj, end)
            A[pc].insert(nj, attr)
            g = G[pc]
            g.insert(nj, base - prev_end)
            g[nj + 1] = nb - end
            row = self._Q[pc]
            row.insert(nj, row[nj])
            row = self._P[pc]
            row.insert(nj, row[nj])
            row = self._C[pc]
            row.insert(nj, row[nj])
            self._n += 1
            self._pref = None
            if len(bc) > _SPLIT:
                self._split_chunk(pc, len(bc) >> 1)
        else:
            if pc < 0:
                pc, pj = 0, -1
            pc, pj = self._put(pc, pj + 1, base, end, attr, base - prev_end)
            self._fix_next_gap(pc, pj + 1, end)
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
        self._snap = None
        size = cap_size(base, size)
        if not size:
            return []
        end = base + size
        # "we'll create at most two more regions": grows even when nothing splits.
        while self.cnt + 2 > self.max:
            if double is None or not double(self, base, size):
                return None
        inside = self._bases_from(self._first_overlap(base), end)
        if not inside:
            return []
        # Only the first region can cross base and only the last can cross end.
        if inside[0] < base:
            self._split(inside[0], base)
            inside[0] = base
        c, j = self._loc(inside[-1])
        if self._E[c][j] > end:
            self._split(inside[-1], end)
        return inside

    def remove_range(self, base: int, size: int, *, double: DoubleFn | None) -> bool:
        """``memblock_remove_range()``: isolate, then drop the regions inside."""
        self._snap = None
        if size > PHYS_ADDR_MAX - base:  # cap_size(), written out: this runs for every free
            size = PHYS_ADDR_MAX - base
        if size and self._n:
            # isolate_range()'s room check comes first: it may double the array (cnt: _n, not empty).
            while self._n + 2 > self.max:
                if double is None or not double(self, base, size):
                    return False
            if self._remove_in_region(base, base + size):
                return True
        inside = self.isolate_range(base, size, double=double)
        if inside is None:
            return False
        for k in inside:
            self._delete(k)
        if self._small is not None:
            self._compact()
        return True

    def _remove_in_region(self, base: int, end: int) -> bool:
        """remove_range() when ``[base, end)`` lies inside one region: the kernel's
        split(s) and removal, done in place.  Returns False for every other case."""
        # _floor(base), written out: this runs for every free.
        c = bisect_right(self._mins, base) - 1
        if c < 0:
            return False
        bc, E = self._B[c], self._E
        j = bisect_right(bc, base) - 1
        rb, re = bc[j], E[c][j]
        if re < end:
            return False
        n = self._n
        self.total_size -= end - base
        if rb == base:
            if re == end:
                self._delete_at(c, j)
                if self._small is not None:
                    self._compact()
                return True
            # One split (at end), then the lower part goes.
            if n + 1 > self.peak_cnt:
                self.peak_cnt = n + 1
            bc[j] = end
            if not j:
                self._mins[c] = end
            self._gmark(c, j, self._G[c][j] + end - base)
            return True
        splits = 1 if re == end else 2
        if n + splits > self.peak_cnt:
            self.peak_cnt = n + splits
        E[c][j] = base
        if re == end:
            self._fix_next_gap(c, j + 1, base)
        else:
            self._put(c, j + 1, end, re, self._A[c][j], end - base)
        return True

    def _set_attrs(self, inside: list[int], fn: Callable[[Attr], Attr]) -> None:
        A = self._A
        for k in inside:
            c, j = self._loc(k)
            A[c][j] = fn(A[c][j])
        self.merge_regions(inside[0] if inside else None, inside[-1] if inside else None)
        if self._small is not None:
            self._compact()

    def setclr_flag(self, base: int, size: int, set_: bool, flag: int, *, double: DoubleFn | None) -> bool:
        """``memblock_setclr_flag()``: isolate, set or clear *flag*, merge."""
        self._snap = None
        inside = self.isolate_range(base, size, double=double)
        if inside is None:
            return False
        flag = int(flag)
        if set_:
            self._set_attrs(inside, lambda a: (a[0] | flag, a[1]))
        else:
            self._set_attrs(inside, lambda a: (a[0] & ~flag, a[1]))
        return True

    def set_node(self, base: int, size: int, nid: int, *, double: DoubleFn | None) -> bool:
        """``memblock_set_node()`` on this table (a no-op without CONFIG_NUMA)."""
        self._snap = None
        if not self.numa:
            return True
        inside = self.isolate_range(base, size, double=double)
        if inside is None:
            return False
        self._set_attrs(inside, lambda a: (a[0], nid))
        return True

    def trim(self, align: int) -> None:
        """``memblock_trim_memory()``: round every region in to *align*.

        Shrinking leaves ``total_size`` untouched, as the kernel does (only a
        removal subtracts); and it does not merge.
        """
        self._snap = None
        entries: list[tuple[int, int, Attr]] = []
        for r in self.regions():
            start = ((((r.base - 1) & MASK) | (align - 1)) + 1) & MASK
            end = r.end & ~(align - 1) & MASK
            if start == r.base and end == r.end:
                entries.append((r.base, r.end, (r.flags, r.nid)))
                continue
            if start < end:
                entries.append((start, end, (r.flags, r.nid)))
                self.trim_slack += r.size - (end - start)
            else:
                self.total_size -= r.size
            self._maybe_unmerged = True
        self._rebuild(entries)

    def remove_unless(self, keep: Callable[[Region], bool], below: int | None, above: int | None) -> None:
        """Remove the regions that *keep* rejects among those with base < *below*
        and those with base > *above* (the loops of ``memblock_cap_memory_range()``;
        None for *above* means every region)."""
        self._snap = None
        entries: list[tuple[int, int, Attr]] = []
        for r in self.regions():
            if (above is None or r.base > above or (below is not None and r.base < below)) and not keep(r):
                self.total_size -= r.size
            else:
                entries.append((r.base, r.end, (r.flags, r.nid)))
        self._maybe_unmerged = True
        self._rebuild(entries)

    # ------------------------------------------------------------- free gaps

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

    def _filter(self, size: int, align: int) -> tuple[list[bytearray], bytearray, int]:
        """What the search passes gaps over by: ``(per-chunk classes, chunk maxima,
        threshold)``; a gap that fits has a class >= threshold.

        The length class for most requests; the alignment class when *align* is
        a power of two at least *size* (page tables, huge pages), where a long
        gap may still hold no aligned block.
        """
        if not align & (align - 1):
            if align >= size and align > 4096:
                return self._P, self._pmax, size.bit_length()
            if align >= 4096:
                return self._C, self._cmax, _q(size)
        return self._Q, self._qmax, _q(size)

    def fit_top_down(self, ws: int, we: int, size: int, align: int) -> int | None:
        """Highest ``round_down(e - size, align)`` over gaps clamped to ``[ws, we)`` that fits.

        Walks gaps from the top of the window down, as ``__next_mem_range_rev()``
        does, passing over gaps and chunks whose class rules them out (*size* > 0).
        """
        amask = ~(align - 1) & MASK
        B, G, mins = self._B, self._G, self._mins
        c = bisect_left(mins, we) - 1
        if c < 0:
            # No region starts below we: one gap, up to the first region (or the end).
            ge = mins[0] if B else PHYS_ADDR_MAX
            e = ge if ge < we else we
            if e - ws >= size:
                cand = (e - size) & amask
                if cand >= ws:
                    self._hint = (0, 0)
                    return cand
            return None
        bc = B[c]
        j = bisect_left(bc, we)
        # The top gap: below region (c, j), or the next chunk's first, or the tail.
        if j < len(bc):
            ge = bc[j]
            gs = ge - G[c][j]
        elif c + 1 < len(B):
            ge = mins[c + 1]
            gs = ge - G[c + 1][0]
        else:
            ge = PHYS_ADDR_MAX
            gs = self._E[c][-1]
        s = gs if gs > ws else ws
        e = ge if ge < we else we
        if e - s >= size and e > s:
            cand = (e - size) & amask
            if cand >= s:
                self._hint = (c, j)
                return cand
        if gs <= ws:
            return None
        # _filter(), written out: this runs for every allocation.
        if not align & (align - 1) and align >= 4096:
            if align >= size and align > 4096:
                K, km, t = self._P, self._pmax, size.bit_length()
            else:
                K, km, t = self._C, self._cmax, _q(size)
        else:
            K, km, t = self._Q, self._qmax, _q(size)
        tbl = _AT_LEAST[t]
        c_lo = -1
        # Below the top gap, within this chunk, then chunk by chunk down.
        j = j - 1 if km[c] >= t else -1
        while True:
            if j >= 0:
                g = G[c]
                marks = K[c].translate(tbl)
                while True:
                    i = marks.rfind(1, 0, j + 1)
                    if i < 0:
                        break
                    ge = bc[i]
                    if ge <= ws:
                        return None
                    gs = ge - g[i]
                    s = gs if gs > ws else ws
                    if ge - s >= size:
                        cand = (ge - size) & amask
                        if cand >= s:
                            self._hint = (c, i)
                            return cand
                    # Too small here: its classes may be ones a cut left high (see the module doc).
                    self._gset(c, i, ge - gs)
                    j = i - 1
            if c_lo < 0:
                c_lo = bisect_right(mins, ws) - 1
                if c_lo < 0:
                    c_lo = 0
            c = _last_at_least(km, c_lo, c - 1, t)
            if c < 0:
                return None
            bc = B[c]
            j = len(bc) - 1

    def fit_bottom_up(self, ws: int, we: int, size: int, align: int) -> int | None:
        """Lowest ``round_up(s, align)`` over gaps clamped to ``[ws, we)`` that fits."""
        am1 = align - 1
        B, G, mins = self._B, self._G, self._mins
        nch = len(B)
        c = bisect_right(mins, ws) - 1
        if c < 0:
            c, j = 0, 0
        else:
            j = bisect_right(B[c], ws)
        # Chunks from c_hi + 1 on start at or above we; so do their gaps but the first.
        c_hi = bisect_left(mins, we)
        if c_hi >= nch:
            c_hi = nch - 1
        K, km, t = self._filter(size, align)
        tbl = _AT_LEAST[t]
        if c <= c_hi and km[c] < t:
            j = len(B[c])
        while c <= c_hi:
            bc = B[c]
            if j < len(bc):
                g = G[c]
                marks = K[c].translate(tbl)
                while True:
                    i = marks.find(1, j)
                    if i < 0:
                        break
                    ge = bc[i]
                    gs = ge - g[i]
                    if gs >= we:
                        return None
                    s = gs if gs > ws else ws
                    e = ge if ge < we else we
                    if e > s:
                        cand = ((((s - 1) & MASK) | am1) + 1) & MASK
                        if cand < e and e - cand >= size:
                            self._hint = (c, i)
                            return cand
                    # Too small here: its classes may be ones a cut left high (see the module doc).
                    self._gset(c, i, ge - gs)
                    j = i + 1
            nxt = _first_at_least(km, c + 1, c_hi, t) if c < c_hi else -1
            if nxt < 0:
                break
            c, j = nxt, 0
        # Every chunk up to c_hi is passed; the tail gap follows only the last one.
        if c_hi < nch - 1:
            return None
        # The tail gap, above the last region.
        gs = self._E[-1][-1] if B else 0
        if gs >= we:
            return None
        s = gs if gs > ws else ws
        if we > s:
            cand = ((((s - 1) & MASK) | am1) + 1) & MASK
            if cand < we and we - cand >= size:
                self._hint = (nch - 1, len(B[-1])) if B else (0, 0)
                return cand
        return None

    # --------------------------------------------------------------- checks

    def check(self) -> None:
        """Raise ReplayError unless sorted, disjoint, and ``total_size`` is exact (tests)."""
        total = 0
        prev: Region | None = None
        for r in self:
            if r.size <= 0:
                raise ReplayError(f"{self.name}: empty region at {r.base:#x}")
            if prev is not None and prev.end > r.base:
                raise ReplayError(f"{self.name}: overlap at {r.base:#x}")
            total += r.size
            prev = r
        if total + self.trim_slack != self.total_size:
            raise ReplayError(f"{self.name}: total_size {self.total_size:#x} != sum {total:#x}")
        n, pe = 0, 0
        for c, bc in enumerate(self._B):
            lens = {len(x[c]) for x in (self._B, self._E, self._A, self._G, self._Q, self._P, self._C)}
            if not bc or len(lens) != 1 or len(bc) > _SPLIT:
                raise ReplayError(f"{self.name}: chunk {c} malformed (lengths {sorted(lens)})")
            starts = [pe, *self._E[c][:-1]]
            if self._G[c] != [b - s for s, b in zip(starts, bc, strict=True)]:
                raise ReplayError(f"{self.name}: chunk {c} gap lengths out of date")
            want = [_classes(s, b) for s, b in zip(starts, bc, strict=True)]
            # A class may be above the gap's (a cut leaves it), never below: the search would miss the gap.
            if not all(h >= w for have, need in zip((self._Q[c], self._P[c], self._C[c]), zip(*want, strict=True),
                                                    strict=True) for h, w in zip(have, need, strict=True)):
                raise ReplayError(f"{self.name}: chunk {c} gap classes out of date")
            if self._mins[c] != bc[0] or [self._qmax[c], self._pmax[c], self._cmax[c]] != [
                    max(self._Q[c]), max(self._P[c]), max(self._C[c])]:
                raise ReplayError(f"{self.name}: chunk {c} summary out of date")
            pe = self._E[c][-1]
            n += len(bc)
        if n != self._n or not len(self._mins) == len(self._qmax) == len(self._pmax) == len(self._cmax) == len(self._B):
            raise ReplayError(f"{self.name}: region count out of date")
