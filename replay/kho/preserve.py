# SPDX-License-Identifier: GPL-2.0-only
"""Memory a previous kernel preserved, and what a KHO boot does with it.

:class:`PreservedSet` is the preserved memory (all gigantic pages, a seeded scatter
of memfd folios, or the ``kho_preserved_memory_reserve`` lines of a real log);
:func:`reserve_preserved` is the ``memblock_reserve()`` half of ``kho_mem_retrieve()``;
:func:`busy_blocks`, :func:`free_runs` and :func:`extend_scratch` are the 1 GiB digest
of 7.3's ``kho_extend_scratch()``.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import KhoReplayError
from ..flags import Flag
from ..memblock.engine import Memblock, round_down, round_up
from ..ops import NUMA_NO_NODE, DebugfsTable, KhoExtendScratch, Reserve, Trace
from .params import memparse

__all__ = ["KHO_SCRATCH_EXT_BLKSIZE", "PreserveKind", "PreserveSpec", "PreservedSet", "busy_blocks", "check_preserve",
           "extend_scratch", "free_runs", "insert_cost", "mark_free_runs", "parse_preserve", "reserve_preserved"]

#: 7.3 kho_extend_scratch() digest granularity.
KHO_SCRATCH_EXT_BLKSIZE = 1 << 30


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
    # kho_mem_retrieve() walks the radix tree highest order first, ascending address within an order.
    return tuple(sorted(blocks, key=lambda b: (-b[1], b[0])))


class PreserveKind(enum.StrEnum):
    """Where a KHO boot's preserved memory comes from."""

    #: every gigantic page of the cold boot
    HUGETLB = "hugetlb"
    #: SIZE bytes of FOLIO-sized folios scattered over the cold boot's free memory
    MEMFD = "memfd"
    #: the kho_preserved_memory_reserve reservations of a real second-kernel log
    LOG = "log"
    #: the second kernel's debugfs memblock/reserved table
    DEBUGFS = "debugfs"


@dataclass(frozen=True, slots=True)
class PreserveSpec:
    """A ``--preserve`` spec, checked when it is parsed: ``hugetlb``, ``memfd:SIZE[:FOLIO]``, ``log``, ``debugfs``.

    >>> PreserveSpec.parse("memfd:64M:2M")
    PreserveSpec(kind=<PreserveKind.MEMFD: 'memfd'>, size=67108864, folio=2097152)
    >>> str(PreserveSpec.parse("memfd:64M"))
    'memfd:64M'
    """

    kind: PreserveKind
    size: int = 0
    folio: int = 4096
    #: the spec as the user wrote it
    text: str = field(default="", compare=False, repr=False)

    @classmethod
    def parse(cls, spec: str) -> PreserveSpec:
        """Read *spec*.

        :raises KhoReplayError: when *spec* is none of hugetlb, memfd:SIZE[:FOLIO], log, debugfs, or
            FOLIO is not a power of two dividing SIZE.
        """
        kind, *rest = spec.split(":")
        if kind in ("hugetlb", "log", "debugfs") and not rest:
            return cls(PreserveKind(kind), text=spec)
        if kind == "memfd" and 1 <= len(rest) <= 2:
            try:
                size = memparse(rest[0])
                folio = memparse(rest[1]) if len(rest) > 1 else 4096
            except KhoReplayError:
                pass
            else:
                if folio <= 0 or folio & (folio - 1) or size % folio:
                    raise KhoReplayError(f"--preserve {spec}: FOLIO must be a power of two dividing SIZE")
                return cls(PreserveKind.MEMFD, size, folio, text=spec)
        raise KhoReplayError(f"unknown --preserve {spec!r} (hugetlb, memfd:SIZE[:FOLIO], log, debugfs)")

    def __str__(self) -> str:
        return self.text or (self.kind.value if self.kind is not PreserveKind.MEMFD
                             else f"memfd:{self.size}:{self.folio}")


def check_preserve(spec: str) -> None:
    """Check a ``--preserve`` spec before any replay runs (see :meth:`PreserveSpec.parse`).

    >>> check_preserve("memfd:64M:2M")

    :raises KhoReplayError: when *spec* does not parse.
    """
    PreserveSpec.parse(spec)


def parse_preserve(
    spec: str | PreserveSpec,
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
    ps = spec if isinstance(spec, PreserveSpec) else PreserveSpec.parse(spec)
    if ps.kind is PreserveKind.HUGETLB:
        return PreservedSet("hugetlb", _walk_order(gigantic))
    if ps.kind is PreserveKind.MEMFD:
        size, folio = ps.size, ps.folio
        slots: list[tuple[int, int]] = []
        for s, e in free_ranges:
            s = round_up(s, folio)
            e = round_down(e, folio)
            if e > s:
                slots.append((s, (e - s) // folio))
        total = sum(n for _, n in slots)
        want = size // folio
        if want > total:
            raise KhoReplayError(f"--preserve {ps}: only {total * folio} bytes of free memory to scatter over")
        rng = random.Random(seed)
        picks = sorted(rng.sample(range(total), want))
        out: list[tuple[int, int]] = []
        si, before = 0, 0
        for p in picks:
            while p >= before + slots[si][1]:
                before += slots[si][1]
                si += 1
            out.append((slots[si][0] + (p - before) * folio, folio))
        return PreservedSet(f"{ps} seed={seed}", _walk_order(out))
    if ps.kind is PreserveKind.LOG:
        if trace is None:
            raise KhoReplayError("--preserve log needs a second-kernel trace")
        blocks = tuple((op.base, op.size) for op in trace.ops
                       if isinstance(op, Reserve) and (op.caller or "").startswith("kho_preserved_memory_reserve"))
        # a 7.3 log's kho_extend_scratch op also knows the blocks busy only with the incoming tree's pages
        covered = set(busy_blocks(PreservedSet("", blocks)))
        tree = tuple(b for op in trace.ops if isinstance(op, KhoExtendScratch) for b in op.busy
                     if b // KHO_SCRATCH_EXT_BLKSIZE not in covered)
        return PreservedSet(trace.context.source, blocks, tree)
    tables = [o for o in (trace.observations if trace is not None else ())
              if isinstance(o, DebugfsTable) and o.name == "reserved"]
    if not tables:
        raise KhoReplayError("--preserve debugfs needs a memblock debugfs 'reserved' table")
    noinit, kern = int(Flag.MEMBLOCK_RSRV_NOINIT), int(Flag.MEMBLOCK_RSRV_KERN)
    blocks = tuple((r.base, r.size) for r in tables[-1].regions if r.flags & noinit and not r.flags & kern)
    return PreservedSet(f"{trace.context.source if trace else ''} (debugfs)", blocks)


def insert_cost(mb: Memblock, base: int) -> tuple[int, int]:
    """Cost proxy of one insertion into ``reserved[]`` at *base*: (entries scanned, entries memmoved).

    ``memblock_add_range()`` walks the array from index 0 to the insertion
    point, twice when the array may need to double, then memmoves the tail
    (mm/memblock.c: memblock_add_range(), memblock_insert_region()).
    """
    t = mb.reserved
    rank, cnt = t.rank(base), len(t)
    passes = 2 if cnt + 1 > t.max // 2 else 1
    return rank * passes, cnt - rank


def reserve_preserved(mb: Memblock, preserved: PreservedSet) -> tuple[int, int]:
    """The reservation half of ``kho_mem_retrieve()``: per key one reserve (flags 0) and a NOINIT mark.

    Returns the cost of the insertions, summed over :func:`insert_cost`:
    (entries scanned, entries memmoved).
    """
    scanned = moved = 0
    for base, size in preserved.blocks:
        scan, move = insert_cost(mb, base)
        scanned += scan
        moved += move
        mb.reserve_range(base, size, NUMA_NO_NODE, 0)
        mb.setclr_flag(mb.reserved, base, size, True, Flag.MEMBLOCK_RSRV_NOINIT)
    return scanned, moved


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


def mark_free_runs(mb: Memblock, busy: Sequence[int], flag: Flag = Flag.MEMBLOCK_KHO_SCRATCH,
                   blksize: int = KHO_SCRATCH_EXT_BLKSIZE) -> None:
    """The marking half of ``kho_extend_scratch()``: *flag* on every run between the *busy* block indexes.

    ``memblock_mark_kho_scratch()`` on each gap and from the last busy block to the end of DRAM; holes
    in memory[] are left alone.  The ``kho_extend_scratch`` op and the synthesized KHO boot both run it.
    """
    for s, e in free_runs(mb, busy, blksize):
        mb.setclr_flag(mb.memory, s, e - s, True, flag)


def extend_scratch(mb: Memblock, preserved: PreservedSet, flag: Flag) -> int:
    """``kho_extend_scratch()``: flag every 1 GiB block free of preserved memory with *flag*.

    *flag* is ``MEMBLOCK_KHO_SCRATCH_EXT`` for the v1 series (09/12, 10/12) and
    ``MEMBLOCK_KHO_SCRATCH`` for 7.3.  Marking touches memory[] only; holes are
    ignored.  Returns the bytes of memory[] newly flagged (the report's
    "extended bytes").
    """
    before = sum(r.size for r in mb.memory if r.flags & flag)
    mark_free_runs(mb, busy_blocks(preserved), flag)
    return sum(r.size for r in mb.memory if r.flags & flag) - before
