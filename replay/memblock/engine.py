# SPDX-License-Identifier: GPL-2.0-only
"""The memblock API over two region tables, for one kernel era and arch.

:class:`Memblock` models ``struct memblock`` and mm/memblock.c function by
function; method names are the kernel's minus ``memblock_`` (``add_range``,
``isolate_range``, ``double_array``, ``find_in_range_node``,
``alloc_range_nid``).  What differs between kernel versions comes from a
:class:`~.profile.Profile`, what differs between arches from an
:class:`~.profile.Arch`; the code reads named behaviours, never versions.

Where the kernel returns 0 for "no address" we return ``None``; where it
panics we raise :class:`~.errors.KernelPanic`; WARNs, ``pr_err`` and
``pr_warn`` lines it would print are kept in :attr:`Memblock.messages`.

>>> from kho_replay.replay.ops import parse_script
>>> mb = Memblock.for_kernel("7.3", "x86_64")
>>> res = mb.run(parse_script('''
... add 0x100000 0x3ff00000
... reserve 0x1000000 16M
... alloc memblock_alloc size=4K align=4K
... '''))
>>> [hex(r.addr) for r in res.results]
['0x3ffff000']
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..errors import KernelPanic, ReplayError
from ..flags import Flag
from ..gcpause import gc_paused
from ..ops import (
    ALLOCATORS,
    ARCH_LOW_LIMIT,
    CALLER,
    MAX_PHYS_ADDR,
    MEMBLOCK_ALLOC_ACCESSIBLE,
    MEMBLOCK_ALLOC_ANYWHERE,
    MEMBLOCK_ALLOC_NOLEAKTRACE,
    MEMORY_FLAGS,
    NUMA_NO_NODE,
    Add,
    Alloc,
    AllowResize,
    CapMemoryRange,
    Clear,
    Doubling,
    EnforceMemoryLimit,
    Free,
    KhoScratchOnly,
    Mark,
    MirroredKernelcore,
    MovableNode,
    Op,
    Phase,
    Region,
    Remove,
    Reserve,
    ReserveKern,
    SetBottomUp,
    SetCurrentLimit,
    SetNode,
    TrimMemory,
    caller_function,
)
from ..profile import Arch, Profile, arch_for, profile_for
from .regions import MASK, ArrayPlace, RegionTable, attribute_copy
from .search import find_range_literal

__all__ = [
    "AllocResult",
    "Memblock",
    "Message",
    "RunResult",
    "format_region_line",
    "format_region_lines",
    "replay_json",
]

PHYS_ADDR_MAX = MAX_PHYS_ADDR
# Plain ints for the hot paths: IntFlag arithmetic costs a Python call per operator.
_HOTPLUG = int(Flag.MEMBLOCK_HOTPLUG)
_MIRROR = int(Flag.MEMBLOCK_MIRROR)
_NOMAP = int(Flag.MEMBLOCK_NOMAP)
_DRIVER_MANAGED = int(Flag.MEMBLOCK_DRIVER_MANAGED)
_KHO_SCRATCH = int(Flag.MEMBLOCK_KHO_SCRATCH)
_KHO_SCRATCH_EXT = int(Flag.MEMBLOCK_KHO_SCRATCH_EXT)
_KHO_ANY = _KHO_SCRATCH | _KHO_SCRATCH_EXT
# set_max_threads(): MIN_THREADS and MAX_THREADS (FUTEX_TID_MASK).
MIN_THREADS = 20
MAX_THREADS = 0x3FFFFFFF


def round_down(x: int, a: int) -> int:
    """The kernel's ``round_down()``: a bit mask, garbage for non powers of two as in C."""
    return x & ~(a - 1) & MASK


def round_up(x: int, a: int) -> int:
    """The kernel's ``round_up()``: ``((x - 1) | (a - 1)) + 1`` in phys_addr_t."""
    return ((((x - 1) & MASK) | (a - 1)) + 1) & MASK


@dataclass(frozen=True, slots=True)
class Message:
    """A line the kernel would print: ``level`` is ``warn``, ``err``, ``info`` or ``dbg``."""

    op_index: int | None
    level: str
    text: str


class AllocResult(NamedTuple):
    """What one ``alloc`` op got: the address (None on failure) and where it was asked."""

    op_index: int
    api: str
    size: int
    addr: int | None
    nid: int
    caller: str | None = None


@dataclass(slots=True)
class RunResult:
    """What :meth:`Memblock.run` returns: each alloc's result in op order, and messages."""

    results: list[AllocResult] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    panic: str | None = None


class Memblock:
    """``struct memblock``: the ``memory`` and ``reserved`` tables and the allocator's state.

    :param profile: the kernel era (see :mod:`.profile`).
    :param arch: per-arch constants.
    """

    def __init__(self, profile: Profile, arch: Arch) -> None:
        self.profile = profile
        self.arch = arch
        self.page_size = arch.page_size
        self.max_numnodes = arch.max_numnodes
        common = dict(empty_cnt=profile.empty_cnt, numa=arch.numa, ranged_merge=profile.ranged_merge)
        self.memory = RegionTable("memory", arch.init_memory_regions, **common)
        self.reserved = RegionTable("reserved", arch.init_reserved_regions, **common)
        self.physmem = RegionTable("physmem", 4, **common)
        self.bottom_up = False
        self.current_limit = MEMBLOCK_ALLOC_ANYWHERE
        self.can_resize = False
        self.kho_scratch_only = False
        #: What choose_memblock_flags() asks for while scratch-only is on: KHO_SCRATCH,
        #: or KHO_SCRATCH | KHO_SCRATCH_EXT under the posted v1 series (its patch 09/12).
        self.scratch_only_flags = _KHO_SCRATCH
        self.movable_node = False
        self.mirrored_kernelcore = False
        self.system_has_some_mirror = False
        #: KHO's ``kho_scratch[]`` array (7.3 ``memblock_alloc_hugetlb()`` avoids it).
        self.kho_scratch: list[tuple[int, int]] = []
        #: ``__pa_symbol(_end)``, for the pre-5.11 bottom-up rule; None when unknown.
        self.kernel_end: int | None = None
        self.messages: list[Message] = []
        self.doublings: list[Doubling] = []
        self.op_index: int | None = None
        #: counters a report may want ("regions scanned" is the allocator's cost proxy).
        self.stats = {"find_calls": 0}
        #: What an allocation's reservation carries when it records the nid (else None).
        self._alloc_flags = profile.alloc_flags if profile.alloc_records_nid else None
        self._warned_max_numnodes = False
        #: Ops of layers above memblock (KHO's ``kho_scratch_area``...): type -> handler(model, op).
        self.op_handlers: dict[type[Op], Callable[[Memblock, Op], None]] = {}

    def copy(self) -> Memblock:
        """An independent copy of the model in its current state (profile and arch shared: immutable)."""
        new = attribute_copy(self)
        new.memory, new.reserved, new.physmem = self.memory.copy(), self.reserved.copy(), self.physmem.copy()
        new.kho_scratch = self.kho_scratch[:]
        new.messages = self.messages[:]
        new.doublings = self.doublings[:]
        new.stats = dict(self.stats)
        new.op_handlers = dict(self.op_handlers)
        return new

    @classmethod
    def for_kernel(cls, kernel: str, arch: str = "x86_64") -> Memblock:
        """A fresh model for kernel release *kernel* (``7.3``, ``6.1.192``) on *arch*."""
        return cls(profile_for(kernel), arch_for(arch))

    # ------------------------------------------------------------- helpers

    def _msg(self, level: str, text: str) -> None:
        self.messages.append(Message(self.op_index, level, text))

    def _warn(self, text: str) -> None:
        self._msg("warn", text)

    def numa_valid_node(self, nid: int) -> bool:
        """``numa_valid_node()``; before it existed, only NUMA_NO_NODE meant "any node"."""
        if self.profile.numa_valid_node:
            return 0 <= nid < self.max_numnodes
        return nid != NUMA_NO_NODE

    def _fix_nid(self, nid: int) -> int:
        # Before numa_valid_node(), MAX_NUMNODES was turned into NUMA_NO_NODE with a WARN.
        if not self.profile.numa_valid_node and nid == self.max_numnodes:
            if not self._warned_max_numnodes:  # WARN_ONCE: once per boot
                self._warned_max_numnodes = True
                self._warn("Usage of MAX_NUMNODES is deprecated. Use NUMA_NO_NODE instead")
            return NUMA_NO_NODE
        return nid

    def page_align(self, x: int) -> int:
        """``PAGE_ALIGN()``."""
        return round_up(x, self.page_size)

    # -------------------------------------------------------- doubling

    def double_array(self, t: RegionTable, new_area_start: int, new_area_size: int) -> bool:
        """``memblock_double_array()``: find room for a twice larger array and move there.

        The new array goes through the normal search (direction, current_limit,
        mirror or KHO scratch), page aligned; for ``reserved`` it must not
        overlap the range about to be reserved.  The old array, unless it is
        the static one, is freed first, then the new one reserved.
        """
        if not self.can_resize:
            if self.profile.resize_unallowed_panics:
                raise KernelPanic(f"memblock: cannot resize {t.name} array", op_index=self.op_index)
            return False
        old_size = t.max * self.profile.region_size
        new_size = old_size << 1
        old_alloc = self.page_align(old_size)
        new_alloc = self.page_align(new_size)
        # only exclude range when trying to double reserved.regions
        if t is not self.reserved:
            new_area_start = new_area_size = 0
        addr = self.find_in_range(new_area_start + new_area_size, self.current_limit, new_alloc, self.page_size)
        if addr is None and new_area_size:
            addr = self.find_in_range(0, min(new_area_start, self.current_limit), new_alloc, self.page_size)
        if addr is None:
            self._msg("err", f"memblock: Failed to double {t.name} array from {t.max} to {t.max * 2} entries !")
            return False
        self._msg("dbg", f"memblock: {t.name} is doubled to {t.max * 2} at "
                         f"[{addr:#018x}-{(addr + new_size - 1) & MASK:#018x}]")
        old = t.array
        t.max <<= 1
        t.array = ArrayPlace(addr, new_alloc)
        self.doublings.append(Doubling(at=-1 if self.op_index is None else self.op_index, name=t.name,
                                       new_max=t.max, base=addr, size=new_size, alloc_size=new_alloc))
        if old is not None:
            self.phys_free(old.base, old_alloc)
        if self.profile.has_rsrv_kern:
            ok = self.reserve_range(addr, new_alloc, NUMA_NO_NODE, Flag.MEMBLOCK_RSRV_KERN)
        else:
            ok = self.reserve(addr, new_alloc)
        if not ok:
            raise KernelPanic(f"memblock_double_array: BUG: cannot reserve new {t.name} array",
                              op_index=self.op_index)
        return True

    # ------------------------------------------------- region-set mutators

    def add_range(self, t: RegionTable, base: int, size: int, nid: int, flags: int) -> bool:
        """``memblock_add_range()`` on *t*."""
        return t.add_range(base, size, nid=nid, flags=flags, double=self.double_array, warn=self._warn)

    def add_node(self, base: int, size: int, nid: int, flags: int = 0) -> bool:
        """``memblock_add_node()``."""
        return self.add_range(self.memory, base, size, nid, flags)

    def add(self, base: int, size: int) -> bool:
        """``memblock_add()``: memory with nid MAX_NUMNODES, no flags."""
        return self.add_range(self.memory, base, size, self.max_numnodes, 0)

    def physmem_add(self, base: int, size: int) -> bool:
        """``memblock_physmem_add()``."""
        return self.add_range(self.physmem, base, size, self.max_numnodes, 0)

    def remove(self, base: int, size: int) -> bool:
        """``memblock_remove()``."""
        return self.memory.remove_range(base, size, double=self.double_array)

    def phys_free(self, base: int, size: int) -> bool:
        """``memblock_phys_free()`` (``memblock_free()`` before 5.16) during early boot."""
        return self.reserved.remove_range(base, size, double=self.double_array)

    def reserve_range(self, base: int, size: int, nid: int, flags: int) -> bool:
        """``__memblock_reserve(base, size, nid, flags)``."""
        return self.add_range(self.reserved, base, size, nid, flags)

    def reserve(self, base: int, size: int) -> bool:
        """``memblock_reserve()``: NUMA_NO_NODE (MAX_NUMNODES before ~6.16), no flags."""
        nid = NUMA_NO_NODE if self.profile.reserve_nid == "none" else self.max_numnodes
        return self.reserve_range(base, size, nid, 0)

    def reserve_kern(self, base: int, size: int) -> bool:
        """``memblock_reserve_kern()``: reserved with MEMBLOCK_RSRV_KERN."""
        return self.reserve_range(base, size, NUMA_NO_NODE, Flag.MEMBLOCK_RSRV_KERN)

    def setclr_flag(self, t: RegionTable, base: int, size: int, set_: bool, flag: int) -> bool:
        """``memblock_setclr_flag()``."""
        return t.setclr_flag(base, size, set_, flag, double=self.double_array)

    def mark_mirror(self, base: int, size: int) -> bool:
        """``memblock_mark_mirror()``: a no-op unless ``kernelcore=mirror``."""
        if not self.mirrored_kernelcore:
            return True
        self.system_has_some_mirror = True
        return self.setclr_flag(self.memory, base, size, True, Flag.MEMBLOCK_MIRROR)

    def set_node(self, base: int, size: int, t: RegionTable, nid: int) -> bool:
        """``memblock_set_node()``."""
        return t.set_node(base, size, nid, double=self.double_array)

    def set_current_limit(self, limit: int) -> None:
        """``memblock_set_current_limit()``."""
        self.current_limit = limit

    def set_bottom_up(self, enable: bool) -> None:
        """``memblock_set_bottom_up()``."""
        self.bottom_up = enable

    def allow_resize(self) -> None:
        """``memblock_allow_resize()``."""
        self.can_resize = True

    def trim_memory(self, align: int) -> None:
        """``memblock_trim_memory()``."""
        self.memory.trim(align)

    def _find_max_addr(self, limit: int) -> int:
        for r in self.memory:
            if limit <= r.size:
                return r.base + limit
            limit -= r.size
        return PHYS_ADDR_MAX

    def enforce_memory_limit(self, limit: int) -> None:
        """``memblock_enforce_memory_limit()`` (``mem=``)."""
        if not limit:
            return
        max_addr = self._find_max_addr(limit)
        if max_addr == PHYS_ADDR_MAX:
            return
        self.memory.remove_range(max_addr, PHYS_ADDR_MAX, double=self.double_array)
        self.reserved.remove_range(max_addr, PHYS_ADDR_MAX, double=self.double_array)

    def cap_memory_range(self, base: int, size: int) -> None:
        """``memblock_cap_memory_range()``: keep memory inside ``[base, base + size)`` and NOMAP."""
        if not size:
            return
        if not self.memory.total_size:
            self._warn("memblock_cap_memory_range: No memory registered yet")
            return
        inside = self.memory.isolate_range(base, size, double=self.double_array)
        if inside is None:
            return

        def keep(r: Region) -> bool:
            return bool(r.flags & Flag.MEMBLOCK_NOMAP)

        # With nothing inside, the kernel's loops remove every mapped region.
        if inside:
            self.memory.remove_unless(keep, inside[0], inside[-1])
        else:
            self.memory.remove_unless(keep, None, None)
        self.reserved.remove_range(0, base, double=self.double_array)
        self.reserved.remove_range(base + size, PHYS_ADDR_MAX, double=self.double_array)

    # ------------------------------------------------------------ search

    def choose_memblock_flags(self) -> int:
        """``choose_memblock_flags()``: KHO scratch only, or mirror when some exists."""
        if self.kho_scratch_only:
            return self.scratch_only_flags
        return _MIRROR if self.system_has_some_mirror else 0

    def should_skip_region(self, m: Region, nid: int, flags: int) -> bool:
        """``should_skip_region()`` for a ``memory`` region."""
        if nid != m.nid and self.numa_valid_node(nid):
            return True
        mf = m.flags
        if not mf and not flags:
            return False
        if self.movable_node and mf & _HOTPLUG and not flags & _HOTPLUG:
            return True
        if flags & _MIRROR and not mf & _MIRROR:
            return True
        if not flags & _NOMAP and mf & _NOMAP:
            return True
        if not flags & _DRIVER_MANAGED and mf & _DRIVER_MANAGED:
            return True
        # KHO: keep a region only if it has one of the scratch bits asked for (one bit: baseline;
        # SCRATCH|SCRATCH_EXT: v1 09/12 keeps either kind).
        want = flags & _KHO_ANY
        return bool(want and not mf & want)

    def _find_top_down(self, start: int, end: int, size: int, align: int, nid: int, flags: int) -> int | None:
        if size == 0:
            # Zero-length free ranges matter here: walk exactly as the kernel does.
            return find_range_literal(self.memory, self.reserved, lambda m: self.should_skip_region(m, nid, flags),
                                      start, end, size, align, False)
        bases, regs = self.memory.snapshot()
        fit = self.reserved.fit_top_down
        # numa_valid_node(), written out: this runs for every allocation.
        any_node = not (0 <= nid < self.max_numnodes) if self.profile.numa_valid_node else nid == NUMA_NO_NODE
        for i in range(bisect_left(bases, end) - 1, -1, -1):
            m = regs[i]
            mb = m.base
            me = mb + m.size
            if me <= start:
                break
            # should_skip_region(), its common answers first: another node, or no flags either side.
            if (not any_node and nid != m.nid) or ((m.flags or flags) and self.should_skip_region(m, nid, flags)):
                continue
            ws = mb if mb > start else start
            we = me if me < end else end
            if we - ws < size:
                continue
            c = fit(ws, we, size, align)
            if c is not None:
                return c
        return None

    def _find_bottom_up(self, start: int, end: int, size: int, align: int, nid: int, flags: int) -> int | None:
        if size == 0:
            return find_range_literal(self.memory, self.reserved, lambda m: self.should_skip_region(m, nid, flags),
                                      start, end, size, align, True)
        bases, regs = self.memory.snapshot()
        i = bisect_right(bases, start) - 1
        if i < 0 or regs[i].base + regs[i].size <= start:
            i += 1
        for m in regs[i:]:
            if m.base >= end:
                break
            if self.should_skip_region(m, nid, flags):
                continue
            ws = m.base if m.base > start else start
            we = m.end if m.end < end else end
            if we - ws < size:
                continue
            c = self.reserved.fit_bottom_up(ws, we, size, align)
            if c is not None:
                # round_up may wrap to 0, which the kernel's callers take as failure.
                return c or None
        return None

    def find_in_range_node(
        self, size: int, align: int, start: int, end: int, nid: int = NUMA_NO_NODE, flags: int = 0
    ) -> int | None:
        """Find a free *size*-byte area aligned to *align* in ``[start, end)`` on *nid*.

        Models ``memblock_find_in_range_node()``: *end* 0 or 1 means
        ``current_limit``; the first page is never returned.  ``None`` where the
        kernel returns 0.
        """
        self.stats["find_calls"] += 1
        if end in (MEMBLOCK_ALLOC_ACCESSIBLE, MEMBLOCK_ALLOC_NOLEAKTRACE):
            end = self.current_limit
        # avoid allocating the first page (max() written out: this runs for every allocation)
        if start < self.page_size:
            start = self.page_size
        if end < start:
            end = start
        if self.bottom_up:
            if self.profile.bottom_up_from_kernel_end and self.kernel_end is not None:
                # Before v5.11: bottom-up only above the kernel image, else top-down.
                if end > self.kernel_end:
                    bottom = max(start, self.kernel_end)
                    found = self._find_bottom_up(bottom, end, size, align, nid, flags)
                    if found is not None:
                        return found
                    self._warn("memblock: bottom-up allocation failed, memory hotremove may be affected")
                return self._find_top_down(start, end, size, align, nid, flags)
            return self._find_bottom_up(start, end, size, align, nid, flags)
        return self._find_top_down(start, end, size, align, nid, flags)

    def find_in_range(self, start: int, end: int, size: int, align: int) -> int | None:
        """``memblock_find_in_range()``: any node, mirror first then any memory."""
        flags = self.choose_memblock_flags()
        while True:
            found = self.find_in_range_node(size, align, start, end, NUMA_NO_NODE, flags)
            if found is None and flags & _MIRROR:
                self._warn(f"Could not allocate {size:#018x} bytes of mirrored memory")
                flags &= ~_MIRROR
                continue
            return found

    # -------------------------------------------------------- allocation

    def alloc_range_nid(
        self, size: int, align: int, start: int, end: int, nid: int, exact_nid: bool,
        flags: int | None = None,
    ) -> int | None:
        """Find and reserve; models ``memblock_alloc_range_nid()``.

        Order: node (+mirror), any node (+mirror) unless *exact_nid*, then the
        same without mirror.  The reservation carries RSRV_KERN and the
        requested nid (>= ~6.16) or plain memblock_reserve() (older).
        *flags* given models the v1 series' ``__memblock_alloc_range_nid()``
        split, whose caller chooses the search flags.
        """
        if flags is None:
            # choose_memblock_flags(), written out: this runs for every allocation.
            flags = self.scratch_only_flags if self.kho_scratch_only else _MIRROR if self.system_has_some_mirror else 0
        if nid == self.max_numnodes:
            nid = self._fix_nid(nid)
        if not align:
            # The kernel dump_stack()s and uses the cache line size.
            self._warn(f"memblock_alloc_range_nid: align 0, using SMP_CACHE_BYTES ({self.arch.smp_cache_bytes})")
            align = self.arch.smp_cache_bytes
        while True:
            found = self.find_in_range_node(size, align, start, end, nid, flags)
            if found is not None and self._alloc_reserve(found, size, nid):
                return found
            if self.numa_valid_node(nid) and not exact_nid:
                found = self.find_in_range_node(size, align, start, end, NUMA_NO_NODE, flags)
                if found is not None and self._alloc_reserve(found, size, NUMA_NO_NODE):
                    return found
            if flags & _MIRROR:
                flags &= ~_MIRROR
                self._warn(f"Could not allocate {size:#018x} bytes of mirrored memory")
                continue
            return None

    def _alloc_reserve(self, base: int, size: int, nid: int) -> bool:
        if self._alloc_flags is not None:
            # reserve_range() -> add_range(), called directly: this runs for every allocation.
            return self.reserved.add_range(base, size, nid=nid, flags=self._alloc_flags, double=self.double_array,
                                           warn=self._warn)
        return self.reserve(base, size)

    def phys_alloc_range(self, size: int, align: int, start: int, end: int) -> int | None:
        """``memblock_phys_alloc_range()``: no current_limit clamp unless *end* is 0/1."""
        return self.alloc_range_nid(size, align, start, end, NUMA_NO_NODE, False)

    def phys_alloc_try_nid(self, size: int, align: int, nid: int) -> int | None:
        """``memblock_phys_alloc_try_nid()``."""
        return self.alloc_range_nid(size, align, 0, MEMBLOCK_ALLOC_ACCESSIBLE, nid, False)

    def alloc_internal(
        self, size: int, align: int, min_addr: int, max_addr: int, nid: int, exact_nid: bool
    ) -> int | None:
        """``memblock_alloc_internal()``: clamp to current_limit, then retry without *min_addr*."""
        if max_addr > self.current_limit:
            max_addr = self.current_limit
        found = self.alloc_range_nid(size, align, min_addr, max_addr, nid, exact_nid)
        if found is None and min_addr:
            found = self.alloc_range_nid(size, align, 0, max_addr, nid, exact_nid)
        return found

    def alloc_try_nid(self, size: int, align: int, min_addr: int, max_addr: int, nid: int) -> int | None:
        """``memblock_alloc_try_nid()`` (and ``_raw``: placement is the same)."""
        return self.alloc_internal(size, align, min_addr, max_addr, nid, False)

    def alloc_exact_nid_raw(self, size: int, align: int, min_addr: int, max_addr: int, nid: int) -> int | None:
        """``memblock_alloc_exact_nid_raw()``: no fallback to other nodes."""
        return self.alloc_internal(size, align, min_addr, max_addr, nid, True)

    def kho_scratch_overlap(self, base: int, size: int) -> bool:
        """``kho_scratch_overlap()``: does ``[base, base + size)`` touch ``kho_scratch[]``."""
        end = base + size
        return any(s < end and base < e for s, e in self.kho_scratch)

    def alloc_hugetlb(self, size: int, nid: int, exact_nid: bool) -> int | None:
        """``memblock_alloc_hugetlb()`` (7.3): size-aligned, never mirror, never in ``kho_scratch[]``.

        The reservation carries ``RSRV_KERN | RSRV_HUGETLB``.
        """
        flags = self.choose_memblock_flags() & ~_MIRROR
        start, end = 0, MEMBLOCK_ALLOC_ACCESSIBLE
        while True:
            addr = self.find_in_range_node(size, size, start, end, nid, flags)
            if addr is None:
                if self.numa_valid_node(nid) and not exact_nid:
                    # Opening the search to all nodes resets the window narrowed by scratch.
                    nid = NUMA_NO_NODE
                    start, end = 0, MEMBLOCK_ALLOC_ACCESSIBLE
                    continue
                return None
            if self.kho_scratch_overlap(addr, size):
                if self.bottom_up:
                    start = addr + size
                else:
                    end = addr
                continue
            if not self.reserve_range(addr, size, nid, Flag.MEMBLOCK_RSRV_KERN | Flag.MEMBLOCK_RSRV_HUGETLB):
                return None
            return addr

    def alloc(self, op: Alloc) -> int | None:
        """Run one :class:`~.ops.Alloc` through the kernel API it names (:data:`~.ops.ALLOCATORS`):
        the core call that API's wrapper makes, with the arguments the wrapper passes."""
        api = ALLOCATORS.get(op.api)
        if api is None:
            raise ReplayError(f"unknown allocation API {op.api}", op_index=self.op_index, caller=op.caller)
        size = op.size
        align = op.align if op.align is not None else 0
        nid = api.nid if api.nid != CALLER else op.nid if op.nid is not None else NUMA_NO_NODE
        core = api.core
        if core == "alloc_hugetlb":
            if not self.profile.has_alloc_hugetlb:
                raise ReplayError(f"memblock_alloc_hugetlb() does not exist in {self.profile.name}",
                                  op_index=self.op_index, caller=op.caller)
            return self.alloc_hugetlb(size, nid, op.exact)
        if core == "phys_alloc_try_nid":
            return self.phys_alloc_try_nid(size, align, nid)
        lo = api.min_addr if api.min_addr != CALLER else op.min_addr if op.min_addr is not None else 0
        hi = api.max_addr
        if hi == CALLER:
            hi = op.max_addr if op.max_addr is not None else MEMBLOCK_ALLOC_ACCESSIBLE
        elif hi == ARCH_LOW_LIMIT:
            hi = self.arch.arch_low_address_limit
        if core == "phys_alloc_range":
            return self.phys_alloc_range(size, align, lo, hi)
        if core == "alloc_range_nid":
            return self.alloc_range_nid(size, align, lo, hi, nid, op.exact)
        if core == "alloc_exact_nid_raw":
            return self.alloc_exact_nid_raw(size, align, lo, hi, nid)
        # alloc_try_nid(), called through: this runs for most allocations.
        found = self.alloc_internal(size, align, lo, hi, nid, False)
        if found is None and api.panics:
            # the macro passes its caller's __func__: the function name of the %pS caller
            func = caller_function(op.caller) or op.api
            raise KernelPanic(f"{func}: Failed to allocate {size:#018x} bytes", op_index=self.op_index,
                              caller=op.caller)
        return found

    # -------------------------------------------------------- accounting

    def phys_mem_size(self) -> int:
        """``memblock_phys_mem_size()``."""
        return self.memory.total_size

    def reserved_size(self) -> int:
        """``memblock_reserved_size()``."""
        return self.reserved.total_size

    def _reserved_flag_size(self, flag: int, limit: int, nid: int) -> int:
        total = 0
        any_node = not self.numa_valid_node(nid)
        for r in self.reserved:
            if r.base > limit:
                break
            size = r.size if r.end <= limit else limit - r.base
            if (any_node or nid == r.nid) and r.flags & flag:
                total += size
        return total

    def reserved_kern_size(self, limit: int = MEMBLOCK_ALLOC_ANYWHERE, nid: int = NUMA_NO_NODE) -> int:
        """``memblock_reserved_kern_size()``: RSRV_KERN bytes below *limit* on *nid*.

        Stops at the first region starting above *limit*; a region crossing it
        counts up to *limit*.
        """
        return self._reserved_flag_size(Flag.MEMBLOCK_RSRV_KERN, limit, nid)

    def reserved_hugetlb_size(self, limit: int = MEMBLOCK_ALLOC_ANYWHERE, nid: int = NUMA_NO_NODE) -> int:
        """``memblock_reserved_hugetlb_size()`` (7.3)."""
        return self._reserved_flag_size(Flag.MEMBLOCK_RSRV_HUGETLB, limit, nid)

    def estimated_nr_free_pages(self) -> int:
        """``memblock_estimated_nr_free_pages()`` for this era (pages, u64 arithmetic)."""
        if self.profile.nr_free_pages == "reserved":
            free = (self.phys_mem_size() - self.reserved_size()) & MASK
        else:
            free = (self.phys_mem_size() - self.reserved_kern_size()) & MASK
        return free // self.page_size

    def max_threads(self, nr_pages: int | None = None) -> int:
        """``max_threads`` as ``set_max_threads(MAX_THREADS)`` computes it in ``fork_init()``."""
        if nr_pages is None:
            nr_pages = self.estimated_nr_free_pages()
        if nr_pages.bit_length() + self.page_size.bit_length() > 64:
            threads = MAX_THREADS
        else:
            threads = nr_pages * self.page_size // (self.arch.thread_size * 8)
        threads = min(threads, MAX_THREADS)
        return max(MIN_THREADS, min(threads, MAX_THREADS))

    # ------------------------------------------------------------- ops

    def apply(self, op: Op) -> int | None:
        """Execute one op; returns the address for an :class:`~.ops.Alloc`, else None."""
        do = _APPLY.get(type(op))
        if do is None:
            # A subclass of one of our ops runs as that op; KHO's and others' ops by their handler.
            do = next((_APPLY[c] for c in type(op).__mro__ if c in _APPLY), None)
            if do is None:
                handler = self.op_handlers.get(type(op))
                if handler is None:
                    raise ReplayError(f"op {op.keyword!r} is not modelled", op_index=self.op_index)
                handler(self, op)
                return None
        return do(self, op)

    def run(self, ops: Iterable[Op]) -> RunResult:
        """Execute *ops* in order.  A modelled kernel panic ends the run and is reported."""
        result = RunResult(messages=self.messages)
        add_result = result.results.append
        apply, table = self.apply, _APPLY
        # AllocResult's fields as one tuple, without the namedtuple's Python-level __new__ (10^5s of them).
        new_result = tuple.__new__
        with gc_paused():
            for i, op in enumerate(ops):
                self.op_index = i
                try:
                    # apply()'s table lookup made here: one call less for each of millions of ops.
                    do = table.get(type(op))
                    addr = apply(op) if do is None else do(self, op)
                except KernelPanic as e:
                    result.panic = e.message
                    self._msg("emerg", f"Kernel panic - not syncing: {e.message}")
                    break
                if isinstance(op, Alloc):
                    add_result(new_result(AllocResult, (i, op.api, op.size, addr, op.nid if op.nid is not None
                                                        else NUMA_NO_NODE, op.caller)))
        self.op_index = None
        return result

    # ------------------------------------------------------------ output

    def dump_all(self) -> list[str]:
        """The lines of ``memblock_dump_all()`` (``MEMBLOCK configuration:``), without prefix."""
        lines = [
            "MEMBLOCK configuration:",
            f" memory size = {self.memory.total_size:#018x} reserved size = {self.reserved.total_size:#018x}",
        ]
        for t in (self.memory, self.reserved):
            lines.append(f" {t.name}.cnt  = {t.cnt:#x}")
            regions = t.regions() or ([Region(0, 0, 0, self.max_numnodes)] if t.cnt else [])
            lines += format_region_lines(t.name, regions, self._dump_nid_valid)
        return lines

    def _dump_nid_valid(self, nid: int) -> bool:
        if not self.arch.numa:
            return False
        if self.profile.numa_valid_node:
            return self.numa_valid_node(nid)
        return nid != self.max_numnodes

    def tables_json(self) -> dict[str, list[dict[str, object]]]:
        """``memory`` and ``reserved`` as JSON-ready lists (hex strings, nid as int)."""
        def conv(t: RegionTable) -> list[dict[str, object]]:
            return [{"base": hex(r.base), "size": hex(r.size), "flags": hex(r.flags), "nid": r.nid} for r in t]
        return {"memory": conv(self.memory), "reserved": conv(self.reserved)}


# ------------------------------------------------------------------ ops, by type

def _reserve(mb: Memblock, op: Reserve) -> None:
    if op.nid is None and op.flags is None:
        # reserve() -> reserve_range() -> add_range(), called through: a boot has 10^5s of these.
        nid = NUMA_NO_NODE if mb.profile.reserve_nid == "none" else mb.max_numnodes
        mb.reserved.add_range(op.base, op.size, nid=nid, flags=0, double=mb.double_array, warn=mb._warn)
    else:
        mb.reserve_range(op.base, op.size, NUMA_NO_NODE if op.nid is None else op.nid, op.flags or 0)


def _reserve_kern(mb: Memblock, op: ReserveKern) -> None:
    mb.reserve_range(op.base, op.size, NUMA_NO_NODE if op.nid is None else op.nid, Flag.MEMBLOCK_RSRV_KERN)


def _free(mb: Memblock, op: Free) -> None:
    # phys_free(), called through.
    mb.reserved.remove_range(op.base, op.size, double=mb.double_array)


def _remove(mb: Memblock, op: Remove) -> None:
    mb.remove(op.base, op.size)


def _set_node(mb: Memblock, op: SetNode) -> None:
    mb.set_node(op.base, op.size, mb.reserved if op.reserved else mb.memory, op.nid)


def _add(mb: Memblock, op: Add) -> None:
    if op.nid is None:
        mb.add_range(mb.memory, op.base, op.size, mb.max_numnodes, op.flags)
    else:
        mb.add_node(op.base, op.size, op.nid, op.flags)


def _mark(mb: Memblock, op: Mark) -> None:
    if op.flag == Flag.MEMBLOCK_MIRROR:
        mb.mark_mirror(op.base, op.size)
    else:
        mb.setclr_flag(mb.memory if op.flag & MEMORY_FLAGS else mb.reserved, op.base, op.size, True, op.flag)


def _clear(mb: Memblock, op: Clear) -> None:
    mb.setclr_flag(mb.memory if op.flag & MEMORY_FLAGS else mb.reserved, op.base, op.size, False, op.flag)


def _phase(mb: Memblock, op: Phase) -> None:
    if op.name == "free_all":
        # memblock_free_all() ends the scratch-only phase.
        mb.kho_scratch_only = False


def _setter(attr: str, field_name: str) -> Callable[[Memblock, Op], None]:
    def apply(mb: Memblock, op: Op) -> None:
        setattr(mb, attr, getattr(op, field_name))
    return apply


#: How each op of the stream runs on the model: one entry per op type (a table, not a match, so
#: that a million-op replay finds its op in one dictionary lookup).
_APPLY: dict[type[Op], Callable[[Memblock, Any], int | None]] = {
    Alloc: Memblock.alloc,
    Reserve: _reserve,
    ReserveKern: _reserve_kern,
    Free: _free,
    Add: _add,
    Remove: _remove,
    Mark: _mark,
    Clear: _clear,
    SetNode: _set_node,
    SetCurrentLimit: lambda mb, op: mb.set_current_limit(op.addr),
    SetBottomUp: lambda mb, op: mb.set_bottom_up(op.on),
    AllowResize: lambda mb, op: mb.allow_resize(),
    KhoScratchOnly: _setter("kho_scratch_only", "on"),
    MovableNode: _setter("movable_node", "on"),
    MirroredKernelcore: _setter("mirrored_kernelcore", "on"),
    TrimMemory: lambda mb, op: mb.trim_memory(op.align),
    EnforceMemoryLimit: lambda mb, op: mb.enforce_memory_limit(op.limit),
    CapMemoryRange: lambda mb, op: mb.cap_memory_range(op.base, op.size),
    Phase: _phase,
}


#: A memblock_dump() line; one %-format parses its specs in C, where an f-string calls format() per
#: field (a dump can be 10^5 lines).
_REGION_LINE = " %s[%#x]\t[%#018x-%#018x], %#018x bytes%s flags: %#x"


def format_region_line(name: str, idx: int, r: Region, show_nid: bool) -> str:
    """One ``memblock_dump()`` line: `` reserved[0x3]\\t[0x...-0x...], 0x... bytes on node 0 flags: 0x20``."""
    base, size, flags, nid = r
    return _REGION_LINE % (name, idx, base, (base + size - 1) & MASK, size, f" on node {nid}" if show_nid else "",
                           flags)


def format_region_lines(name: str, regions: Iterable[Region], show_nid: Callable[[int], bool]) -> list[str]:
    """:func:`format_region_line` for each of *regions*, numbered from 0; *show_nid* says for a nid
    whether the kernel prints it.  A dump can be 10^5 lines: one format for them all, one answer per nid.

    >>> format_region_lines("reserved", [Region(0x1000, 0x2000, 0x20, 0)], lambda nid: True)
    [' reserved[0x0]\\t[0x0000000000001000-0x0000000000002fff], 0x0000000000002000 bytes on node 0 flags: 0x20']
    """
    fmt = _REGION_LINE
    on_node: dict[int, str] = {}
    lines = []
    add = lines.append
    for idx, (base, size, flags, nid) in enumerate(regions):
        node = on_node.get(nid)
        if node is None:
            node = on_node[nid] = f" on node {nid}" if show_nid(nid) else ""
        add(fmt % (name, idx, base, (base + size - 1) & MASK, size, node, flags))
    return lines


def replay_json(ops: Sequence[Op], kernel: str = "7.3", arch: str = "harness") -> dict[str, object]:
    """Replay *ops* and return ``{"allocs", "memory", "reserved", "messages"[, "panic"]}``.

    The differential oracle's comparable form (tests/oracle): the shape its C
    driver prints from the kernel's own code, with ``hex()`` numbers.  Not a
    user document: ``kho-replay run --format json`` is
    :func:`kho_replay.replay.report.json.run_document`.
    """
    mb = Memblock.for_kernel(kernel, arch)
    res = mb.run(ops)
    out: dict[str, object] = {"allocs": [None if r.addr is None else hex(r.addr) for r in res.results]}
    out.update(mb.tables_json())
    out["messages"] = [m.text for m in res.messages]
    if res.panic is not None:
        out["panic"] = res.panic
    return out

