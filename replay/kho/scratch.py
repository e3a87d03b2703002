# SPDX-License-Identifier: GPL-2.0-only
"""Kexec HandOver on the memblock model: command line, scratch, preserved memory.

Cold boot: :func:`parse_kho_cmdline` reads ``kho=`` and ``kho_scratch=``
(kernel/liveupdate/kexec_handover.c: ``kho_parse_enable()``,
``kho_parse_scratch_size()``); :func:`reserve_scratch` sizes the areas from
``RSRV_KERN`` and reserves them as ``kho_reserve_scratch()`` does, with its
rollback and messages.  KHO boot: :func:`populate` adds and flags the inherited
scratch areas (``kho_populate()``); :class:`PreservedSet` is the memory the
previous kernel preserved (all gigantic pages, a seeded scatter of memfd
folios, or the ``kho_preserved_memory_reserve`` lines of a real log);
:func:`reserve_preserved` is the ``memblock_reserve()`` half of
``kho_mem_retrieve()``; :func:`busy_blocks` is the 1 GiB digest of
``kho_extend_scratch()`` (v1 10/12, 7.3).

>>> p = parse_kho_cmdline("console=ttyS0 kho=on kho_scratch=64M,3G,128M")
>>> p.enable, p.scale, p.lowmem >> 20, p.global_ >> 20, p.pernode >> 20
(True, 0, 64, 3072, 128)
>>> parse_kho_cmdline("kho_scratch=50%").scale
50
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import KhoReplayError
from ..flags import Flag
from ..memblock.engine import Memblock, round_down, round_up
from ..ops import MEMBLOCK_ALLOC_ACCESSIBLE, MEMBLOCK_ALLOC_ANYWHERE, NUMA_NO_NODE, DebugfsTable, Op, Reserve, Trace

__all__ = [
    "KHO_SCRATCH_EXT_BLKSIZE",
    "KhoParams",
    "PreservedSet",
    "ScratchArea",
    "ScratchResult",
    "busy_blocks",
    "extend_scratch",
    "check_preserve",
    "insert_cost",
    "memparse",
    "parse_kho_cmdline",
    "parse_preserve",
    "populate",
    "reserve_preserved",
    "reserve_scratch",
]

#: SCRATCH_ALIGNMENT_BYTES = PAGE_SIZE * MAX_ORDER_NR_PAGES: 4 MiB on x86_64 and arm64-4K (7.2, 7.3).
SCRATCH_ALIGNMENT_BYTES = 4 << 20
#: sizeof(struct kho_scratch): addr + size.
KHO_SCRATCH_DESC = 16
#: 7.3 kho_extend_scratch() digest granularity.
KHO_SCRATCH_EXT_BLKSIZE = 1 << 30
_MEMPARSE = re.compile(r"^(\d+|0[xX][0-9a-fA-F]+)([KMGTPEkmgtpe]?)$")
_SHIFT = {"": 0, "K": 10, "M": 20, "G": 30, "T": 40, "P": 50, "E": 60}


def memparse(text: str) -> int:
    """The kernel's ``memparse()`` for one fully consumed size (``512M``, ``0x1000``).

    :raises KhoReplayError: on anything else.
    """
    m = _MEMPARSE.match(text)
    if not m:
        raise KhoReplayError(f"not a size: {text!r}")
    return int(m.group(1), 0) << _SHIFT[m.group(2).upper()]


@dataclass(frozen=True, slots=True)
class KhoParams:
    """``kho=`` and ``kho_scratch=`` as the first kernel of a KHO chain reads them."""

    #: kho_enable; the trace kernel's CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT is unknown, so off unless kho=.
    enable: bool = False
    #: scratch_scale in percent; 0 when explicit sizes were given.
    scale: int = 200
    lowmem: int = 0
    global_: int = 0
    pernode: int = 0
    messages: tuple[str, ...] = ()


def parse_kho_cmdline(cmdline: str, *, default_enable: bool = False) -> KhoParams:
    """Read ``kho=`` (kstrtobool) and ``kho_scratch=`` (N% or three memparse sizes).

    A malformed ``kho_scratch=`` leaves the defaults, as the kernel's -EINVAL does.
    """
    enable, scale, low, glob, node = default_enable, 200, 0, 0, 0
    msgs: list[str] = []
    for word in cmdline.split():
        key, eq, val = word.partition("=")
        if key == "kho" and eq:
            if val[:1].lower() in ("y", "1") or val.lower() == "on":
                enable = True
            elif val[:1].lower() in ("n", "0") or val.lower() == "off":
                enable = False
        elif key == "kho_scratch" and eq:
            if val.endswith("%"):
                # The string including '%' must fit the parser's 11-byte buffer.
                if len(val) <= 11 and val[:-1].isdigit():
                    scale = int(val[:-1])
                    msgs.append(f"KHO: scratch scale is {scale}%")
                continue
            parts = val.split(",")
            try:
                sizes = [memparse(p) for p in parts]
            except KhoReplayError:
                continue
            if len(sizes) != 3 or not sum(sizes):
                continue
            low, glob, node = sizes
            scale = 0
            msgs.append(f"KHO: scratch areas: lowmem: {low >> 20}MiB global: {glob >> 20}MiB "
                        f"pernode: {node >> 20}MiB")
    return KhoParams(enable, scale, low, glob, node, tuple(msgs))


@dataclass(frozen=True, slots=True)
class ScratchArea:
    """One ``kho_scratch[]`` entry: ``name`` is ``lowmem``, ``global`` or ``node<N>``."""

    name: str
    base: int
    size: int

    @property
    def end(self) -> int:
        """Exclusive end."""
        return self.base + self.size


@dataclass(frozen=True, slots=True)
class ScratchResult:
    """What ``kho_reserve_scratch()`` computed and got.

    ``k_low``/``k_all``/``k_nodes`` are the RSRV_KERN figures the sizing used
    (after a strategy's subtraction); ``failed`` names the area that could not
    be reserved, in the kernel's words; ``areas`` is empty after a failure
    (the kernel frees what it had).
    """

    enabled: bool
    lowmem: int
    global_: int
    pernode: tuple[tuple[int, int], ...]
    k_low: int
    k_all: int
    k_nodes: tuple[tuple[int, int], ...]
    areas: tuple[ScratchArea, ...]
    failed: str | None
    messages: tuple[str, ...]
    #: Every memblock request it made, in order: (api, size, nid, address or None).
    attempts: tuple[tuple[str, int, int, int | None], ...] = ()


#: Accounting hook: RSRV_KERN bytes below *limit* on *nid* as a design counts them for sizing.
KernSize = Callable[[Memblock, int, int], int]


def _default_kern(mb: Memblock, limit: int, nid: int) -> int:
    return mb.reserved_kern_size(limit, nid)


def reserve_scratch(
    mb: Memblock,
    params: KhoParams,
    nodes: Sequence[int],
    *,
    kern_size: KernSize = _default_kern,
    caller: str = "kho_memory_init",
) -> ScratchResult:
    """``kho_reserve_scratch()``: size the scratch areas and reserve them, or roll back.

    Sizing (``scratch_size_update()``, ``scratch_size_node()``): with a scale,
    lowmem = K(below ARCH_LOW_ADDRESS_LIMIT) x scale/100, global = K(all) x
    scale/100 - the unrounded lowmem, per node = K(node) x scale/100, each
    rounded up to 4 MiB in u64; the per-node figure is read after lowmem and
    global were reserved (they carry nid -1).  *kern_size* is the strategy's
    accounting (7.3 subtracts ``RSRV_HUGETLB``).  Placement: the descriptor
    array with ``memblock_alloc()``, lowmem with ``memblock_phys_alloc_range()``
    below 4 GiB, global with ``memblock_phys_alloc()``, one exact-node
    ``memblock_alloc_range_nid()`` per node with memory, all top-down.
    """
    msgs: list[str] = []
    if not params.enable:
        return ScratchResult(False, 0, 0, (), 0, 0, (), (), None, ())
    mask = (1 << 64) - 1
    low_limit = mb.arch.arch_low_address_limit
    k_low = k_all = 0
    if params.scale:
        k_low = kern_size(mb, low_limit, NUMA_NO_NODE)
        lowmem = (k_low * params.scale // 100) & mask
        k_all = kern_size(mb, MEMBLOCK_ALLOC_ANYWHERE, NUMA_NO_NODE)
        # u64 arithmetic: a mostly-lowmem machine wraps here as the kernel does (kho-spec 5.1).
        global_ = (k_all * params.scale // 100 - lowmem) & mask
    else:
        lowmem, global_ = params.lowmem, params.global_
    lowmem = round_up(lowmem, SCRATCH_ALIGNMENT_BYTES)
    global_ = round_up(global_, SCRATCH_ALIGNMENT_BYTES)
    areas: list[ScratchArea] = []
    attempts: list[tuple[str, int, int, int | None]] = []
    pernode: list[tuple[int, int]] = []
    k_nodes: list[tuple[int, int]] = []
    failed: str | None = None

    def fail(what: str, msg: str) -> ScratchResult:
        msgs.append("KHO: " + msg)
        for a in reversed(areas):
            mb.phys_free(a.base, a.size)
        if arr is not None:
            mb.phys_free(arr, arr_size)
        msgs.append("KHO: Failed to reserve scratch area, disabling kexec handover")
        return ScratchResult(False, lowmem, global_, tuple(pernode), k_low, k_all, tuple(k_nodes), (),
                             what, tuple(msgs), tuple(attempts))

    arr = None
    arr_size = (len(nodes) + 2) * KHO_SCRATCH_DESC
    arr = mb.alloc_try_nid(arr_size, mb.page_size, 0, MEMBLOCK_ALLOC_ACCESSIBLE, NUMA_NO_NODE)
    attempts.append(("memblock_alloc", arr_size, NUMA_NO_NODE, arr))
    if arr is None:
        return fail("array", "Failed to reserve scratch array")
    addr = mb.phys_alloc_range(lowmem, SCRATCH_ALIGNMENT_BYTES, 0, low_limit)
    attempts.append(("memblock_phys_alloc_range", lowmem, NUMA_NO_NODE, addr))
    if addr is None:
        return fail("lowmem", "Failed to reserve lowmem scratch buffer")
    areas.append(ScratchArea("lowmem", addr, lowmem))
    addr = mb.phys_alloc_range(global_, SCRATCH_ALIGNMENT_BYTES, 0, MEMBLOCK_ALLOC_ACCESSIBLE)
    attempts.append(("memblock_phys_alloc", global_, NUMA_NO_NODE, addr))
    if addr is None:
        return fail("global", "Failed to reserve global scratch buffer")
    areas.append(ScratchArea("global", addr, global_))
    for nid in nodes:
        if params.scale:
            kn = kern_size(mb, MEMBLOCK_ALLOC_ANYWHERE, nid)
            k_nodes.append((nid, kn))
            size = round_up((kn * params.scale // 100) & mask, SCRATCH_ALIGNMENT_BYTES)
        else:
            size = round_up(params.pernode, SCRATCH_ALIGNMENT_BYTES)
        pernode.append((nid, size))
        addr = mb.alloc_range_nid(size, SCRATCH_ALIGNMENT_BYTES, 0, MEMBLOCK_ALLOC_ACCESSIBLE, nid, True)
        attempts.append(("memblock_alloc_range_nid", size, nid, addr))
        if addr is None:
            return fail(f"node{nid}", f"Failed to reserve nid {nid} scratch buffer")
        areas.append(ScratchArea(f"node{nid}", addr, size))
    return ScratchResult(True, lowmem, global_, tuple(pernode), k_low, k_all, tuple(k_nodes), tuple(areas),
                         failed, tuple(msgs), tuple(attempts))


def populate(mb: Memblock, areas: Iterable[ScratchArea]) -> None:
    """``kho_populate()``: add each inherited area, flag it KHO_SCRATCH, enter scratch-only.

    The areas are not reserved in this kernel; ``kho_scratch[]`` is set for
    ``kho_scratch_overlap()``.  (The descriptor array, a kexec segment inside
    scratch, is not modelled: its place is not in the trace.)
    """
    areas = list(areas)
    for a in areas:
        mb.add_range(mb.memory, a.base, a.size, mb.max_numnodes, 0)
        mb.setclr_flag(mb.memory, a.base, a.size, True, Flag.MEMBLOCK_KHO_SCRATCH)
    mb.kho_scratch = [(a.base, a.end) for a in areas]
    mb.kho_scratch_only = True


@dataclass(frozen=True, slots=True)
class PreservedSet:
    """Memory the previous kernel preserved: one ``(phys, size)`` per radix-tree key, in walk order.

    ``source`` says where it came from (``hugetlb``, ``memfd:64M:4K seed=0``,
    a log path); ``tree_pages`` are the radix tree's own pages (busy for the
    extension digest, not reserved).
    """

    source: str
    blocks: tuple[tuple[int, int], ...]
    tree_pages: tuple[int, ...] = field(default=())

    @property
    def total(self) -> int:
        """Preserved bytes."""
        return sum(s for _, s in self.blocks)


def _walk_order(blocks: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    # The radix walk visits the highest order first, ascending address within an order (kho-spec 6.1).
    return tuple(sorted(blocks, key=lambda b: (-b[1], b[0])))


def check_preserve(spec: str) -> None:
    """Check the syntax of a ``--preserve`` spec before any replay runs.

    >>> check_preserve("memfd:64M:2M")

    :raises KhoReplayError: when *spec* is none of hugetlb, memfd:SIZE[:FOLIO], log, debugfs.
    """
    kind, *rest = spec.split(":")
    if kind in ("hugetlb", "log", "debugfs") and not rest:
        return
    if kind == "memfd" and 1 <= len(rest) <= 2:
        try:
            for part in rest:
                memparse(part)
        except KhoReplayError:
            pass
        else:
            return
    raise KhoReplayError(f"unknown --preserve {spec!r} (hugetlb, memfd:SIZE[:FOLIO], log, debugfs)")


def parse_preserve(
    spec: str,
    *,
    gigantic: Sequence[tuple[int, int]] = (),
    free_ranges: Sequence[tuple[int, int]] = (),
    trace: Trace | None = None,
    seed: int = 0,
) -> PreservedSet:
    """Build a :class:`PreservedSet` from ``--preserve``.

    * ``hugetlb``: every gigantic page of the cold boot (*gigantic*);
    * ``memfd:SIZE[:FOLIO]``: SIZE bytes of FOLIO-sized (default 4K) folios
      scattered over *free_ranges* (the cold boot's free memory outside
      scratch, since ``kho_preserve_folio()`` refuses scratch), seeded;
    * ``log``: the ``kho_preserved_memory_reserve`` reservations of *trace*,
      a real second-kernel log;
    * ``debugfs``: the second kernel's ``/sys/kernel/debug/memblock/reserved``
      in *trace*: every region that is ``RSRV_NOINIT`` but not ``RSRV_KERN``
      (how ``kho_mem_retrieve()`` leaves preserved memory; merged runs, so
      one block per run rather than per folio).

    :raises KhoReplayError: on an unknown spec or when the folios do not fit.
    """
    if spec == "hugetlb":
        return PreservedSet("hugetlb", _walk_order(gigantic))
    if spec.startswith("memfd:"):
        parts = spec.split(":")
        size = memparse(parts[1])
        folio = memparse(parts[2]) if len(parts) > 2 else 4096
        if folio <= 0 or folio & (folio - 1) or size % folio:
            raise KhoReplayError(f"--preserve {spec}: FOLIO must be a power of two dividing SIZE")
        slots: list[tuple[int, int]] = []
        for s, e in free_ranges:
            s = round_up(s, folio)
            e = round_down(e, folio)
            if e > s:
                slots.append((s, (e - s) // folio))
        total = sum(n for _, n in slots)
        want = size // folio
        if want > total:
            raise KhoReplayError(f"--preserve {spec}: only {total * folio} bytes of free memory to scatter over")
        rng = random.Random(seed)
        picks = sorted(rng.sample(range(total), want))
        out: list[tuple[int, int]] = []
        si, before = 0, 0
        for p in picks:
            while p >= before + slots[si][1]:
                before += slots[si][1]
                si += 1
            out.append((slots[si][0] + (p - before) * folio, folio))
        return PreservedSet(f"{spec} seed={seed}", _walk_order(out))
    if spec == "log":
        if trace is None:
            raise KhoReplayError("--preserve log needs a second-kernel trace")
        blocks = tuple((op.base, op.size) for op in trace.ops
                       if isinstance(op, Reserve) and (op.caller or "").startswith("kho_preserved_memory_reserve"))
        return PreservedSet(trace.context.source, blocks)
    if spec == "debugfs":
        tables = [o for o in (trace.observations if trace is not None else ())
                  if isinstance(o, DebugfsTable) and o.name == "reserved"]
        if not tables:
            raise KhoReplayError("--preserve debugfs needs a memblock debugfs 'reserved' table")
        noinit, kern = int(Flag.MEMBLOCK_RSRV_NOINIT), int(Flag.MEMBLOCK_RSRV_KERN)
        blocks = tuple((r.base, r.size) for r in tables[-1].regions if r.flags & noinit and not r.flags & kern)
        return PreservedSet(f"{trace.context.source if trace else ''} (debugfs)", blocks)
    raise KhoReplayError(f"unknown --preserve {spec!r} (hugetlb, memfd:SIZE[:FOLIO], log, debugfs)")


def insert_cost(mb: Memblock, base: int) -> tuple[int, int]:
    """Cost proxy of one insertion into ``reserved[]`` at *base*: (entries scanned, entries memmoved).

    ``memblock_add_range()`` walks the array from index 0 to the insertion
    point, twice when the array may need to double, then memmoves the tail
    (kho-spec §7.3).
    """
    t = mb.reserved
    rank, cnt = t.rank(base), len(t)
    passes = 2 if cnt + 1 > t.max // 2 else 1
    return rank * passes, cnt - rank


def reserve_preserved(mb: Memblock, preserved: PreservedSet, cost: list[int] | None = None) -> list[Op]:
    """The reservation half of ``kho_mem_retrieve()``: per key one reserve (flags 0) and a NOINIT mark.

    Returns the ops it executed, so a report can count them; *cost*, a
    two-item list, accumulates :func:`insert_cost`.
    """
    done: list[Op] = []
    for base, size in preserved.blocks:
        if cost is not None:
            scan, move = insert_cost(mb, base)
            cost[0] += scan
            cost[1] += move
        mb.reserve_range(base, size, NUMA_NO_NODE, 0)
        mb.setclr_flag(mb.reserved, base, size, True, Flag.MEMBLOCK_RSRV_NOINIT)
        done.append(Reserve(base, size, NUMA_NO_NODE, Flag.MEMBLOCK_NONE, caller="kho_preserved_memory_reserve"))
    return done


def busy_blocks(preserved: PreservedSet, blksize: int = KHO_SCRATCH_EXT_BLKSIZE) -> list[int]:
    """The digest of ``kho_extend_scratch()``: indexes of *blksize* blocks holding preserved memory or tree pages."""
    busy: set[int] = set()
    for base, size in preserved.blocks:
        busy.update(range(base // blksize, (base + size - 1) // blksize + 1))
    busy.update(p // blksize for p in preserved.tree_pages)
    return sorted(busy)


def free_runs(mb: Memblock, busy: Sequence[int], blksize: int = KHO_SCRATCH_EXT_BLKSIZE) -> list[tuple[int, int]]:
    """The ``[start, end)`` runs between busy blocks, up to ``memblock_end_of_DRAM()``."""
    regions = mb.memory.regions()
    end_of_dram = regions[-1].end if regions else 0
    runs, prev_end = [], 0
    for b in busy:
        if b * blksize > prev_end:
            runs.append((prev_end, b * blksize))
        prev_end = (b + 1) * blksize
    if prev_end < end_of_dram:
        runs.append((prev_end, end_of_dram))
    return runs


def extend_scratch(mb: Memblock, preserved: PreservedSet, flag: Flag) -> int:
    """``kho_extend_scratch()``: flag every 1 GiB block free of preserved memory with *flag*.

    *flag* is ``MEMBLOCK_KHO_SCRATCH_EXT`` for the v1 series (09/12, 10/12) and
    ``MEMBLOCK_KHO_SCRATCH`` for 7.3.  Marking touches memory[] only; holes are
    ignored.  Returns the bytes of memory[] newly flagged (the report's
    "extended bytes").
    """
    before = sum(r.size for r in mb.memory if r.flags & flag)
    for s, e in free_runs(mb, busy_blocks(preserved)):
        mb.setclr_flag(mb.memory, s, e - s, True, flag)
    return sum(r.size for r in mb.memory if r.flags & flag) - before
