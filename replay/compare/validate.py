# SPDX-License-Identifier: GPL-2.0-only
"""Check a parsed boot against the plain memblock model (``baseline``).

:func:`validate` replays a Trace's ops on :class:`~.engine.Memblock` and, at
each observation, compares what the kernel printed with the model's state:

* every allocation with a recorded result (``Alloc.expect``): address or failure;
* every ``MEMBLOCK configuration:`` dump: sizes, counts, and each region's
  base, size, flags and node (the node only where the kernel prints one);
* every debugfs table read after boot (flags and node when that generation
  prints them);
* the physical-pages total of ``Memory: ...K/...K available`` where present;
* ``Early memory node ranges`` (every memory[] region, whole pages, with its
  node) and ``Zone ranges:`` (the lowest zone starts at the first page of
  memory[], the highest ends at the end of DRAM).

After a wrong allocation the model is put back in step with the kernel (the
wrong block is freed and the recorded one reserved) so that later checks
still mean something; the first mismatch is what to look at.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from operator import attrgetter

from ..errors import KernelPanic
from ..flags import Flag
from ..gcpause import gc_paused
from ..kho.model import memblock_for
from ..memblock.engine import Memblock
from ..ops import (
    FAILED,
    NUMA_NO_NODE,
    Alloc,
    Context,
    DebugfsTable,
    Doubling,
    KernelMessage,
    MemblockDump,
    NodeRanges,
    Observation,
    Op,
    Region,
    Src,
    Trace,
    ZoneRanges,
)
from ..ranges import subtract

__all__ = ["Mismatch", "OpStream", "ValidationReport", "validate"]


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One disagreement between the log and the model."""

    src: Src | None
    what: str
    caller: str | None
    expected: str
    got: str
    #: The physical addresses the two sides name (for a report to show the regions around them).
    addrs: tuple[int, ...] = ()

    def __str__(self) -> str:
        where = str(self.src) if self.src else "?"
        who = f" ({self.caller})" if self.caller else ""
        return f"{where}: {self.what}{who}: expected {self.expected}, got {self.got}"


@dataclass(slots=True)
class ValidationReport:
    """Counts of what was checked and reproduced, and the mismatches (first one first)."""

    source: str
    allocations: int = 0
    allocations_ok: int = 0
    dumps: int = 0
    dumps_ok: int = 0
    debugfs: int = 0
    debugfs_ok: int = 0
    doublings: int = 0
    doublings_ok: int = 0
    memory_lines: int = 0
    memory_lines_ok: int = 0
    node_ranges: int = 0
    node_ranges_ok: int = 0
    zone_ranges: int = 0
    zone_ranges_ok: int = 0
    inferred_ops: int = 0
    ops: int = 0
    #: allocations whose result depends on state the trace does not show (an excerpt, a cut).
    allocations_unchecked: int = 0
    #: why they could not be checked: "before line L" (the state they depend on ends there), one each.
    unchecked_because: list[str] = field(default_factory=list)
    panic: str | None = None
    #: (base, size) ranges a debugfs table lacks because they were freed after boot.
    after_boot_frees: list[tuple[int, int]] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    #: the model after the last op, for callers that want to look closer.
    model: Memblock | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """Everything checked was reproduced."""
        return not self.mismatches and self.panic is None

    @property
    def partial(self) -> str | None:
        """``partial: N of M allocations checkable; ...`` when some could not be checked, else None."""
        if not self.ops:
            return "partial: 0 of 0 allocations checkable; no memblock operations (tables only: nothing to replay)"
        if not self.allocations_unchecked and not self.unchecked_because:
            return None
        total = self.allocations + self.allocations_unchecked
        why = ", ".join(self.unchecked_because) or "state the trace does not show"
        return f"partial: {self.allocations} of {total} allocations checkable; the rest depend on {why}"

    @property
    def first_mismatch(self) -> Mismatch | None:
        """The earliest disagreement, the one worth reading."""
        return self.mismatches[0] if self.mismatches else None

    def summary(self) -> str:
        """One paragraph: reproduced N/M per kind, inferred ops, first mismatch."""
        lines = [
            f"{self.source}: {self.ops} ops ({self.inferred_ops} inferred)",
            f"  allocations reproduced {self.allocations_ok}/{self.allocations}",
            f"  dumps matched {self.dumps_ok}/{self.dumps}",
            f"  debugfs tables matched {self.debugfs_ok}/{self.debugfs}"
            + (f" (after {len(self.after_boot_frees)} post-boot free(s): "
               + ", ".join(f"[{b:#018x}-{b + s - 1:#018x}]" for b, s in self.after_boot_frees) + ")"
               if self.after_boot_frees else ""),
            f"  array doublings matched {self.doublings_ok}/{self.doublings}",
            f"  Memory: totals matched {self.memory_lines_ok}/{self.memory_lines}",
        ]
        if self.partial:
            lines.append(f"  {self.partial}")
        if self.node_ranges or self.zone_ranges:
            lines.append(f"  Early memory node ranges matched {self.node_ranges_ok}/{self.node_ranges}, "
                         f"Zone ranges {self.zone_ranges_ok}/{self.zone_ranges}")
        if self.panic:
            lines.append(f"  model panicked: {self.panic}")
        if self.first_mismatch:
            lines.append(f"  first mismatch: {self.first_mismatch}")
        return "\n".join(lines)


def _fmt_region(r: Region) -> str:
    nid = "" if r.nid is None else f" nid={r.nid}"
    return f"[{r.base:#018x}-{(r.base + r.size - 1):#018x}] flags={r.flags:#x}{nid}"


class _Checker:
    def __init__(self, trace: Trace, resync: bool, known: bool | None = None) -> None:
        ctx = trace.context
        self.trace = trace
        #: the observations when every one is known (a streamed read's come at its end: see :class:`OpStream`)
        self.final: tuple[Observation, ...] | None = trace.observations
        self.resync = resync
        self.mb = memblock_for(trace)
        self.report = ValidationReport(ctx.source, ops=len(trace.ops),
                                       inferred_ops=sum(1 for o in trace.ops if o.inferred), model=self.mb)
        self.mb.bottom_up = self.mb.arch.bottom_up  # the direction the arch's boot code leaves memblock in
        for key, value in ctx.facts:
            # what the reader learned of a generic arch's boot (parsers/console/generic.py)
            if key == "kernel_end":
                self.mb.kernel_end = int(value, 16)
            elif key == "bottom_up_from_kernel_end":
                self.mb.profile = replace(self.mb.profile, bottom_up_from_kernel_end=value == "1")
        self.known = _starts_known(trace) if known is None else known
        #: ever unknown: doublings are counted from the boot's start, so they cannot be matched
        self.was_unknown = not self.known
        #: allocations met while the state was unknown, waiting for the line that makes it known again
        self.waiting = 0
        self.lost_at: str | None = None if self.known else "the state before the excerpt"
        #: a KernelPanic stopped the replay: no later op or observation is looked at
        self.stopped = False

    def _shown_nid(self, nid: int | None) -> int | None:
        if nid is None:
            return None
        return nid if self.mb._dump_nid_valid(nid) else None

    def _mismatch(self, src: Src | None, what: str, caller: str | None, expected: str, got: str,
                  addrs: tuple[int, ...] = ()) -> None:
        self.report.mismatches.append(Mismatch(src, what, caller, expected, got, addrs))

    def run(self) -> ValidationReport:
        with gc_paused():  # an op's worth of region objects per op, no cycle among them
            self._run()
        return self.report

    def _run(self) -> None:
        obs = sorted(self.trace.observations, key=lambda o: o.at)
        k = 0
        ops = self.trace.ops
        n = len(ops)
        i = 0
        while True:
            k = self._observe_upto(obs, k, i)
            if i == n:
                break
            stop = min(n, obs[k].at) if k < len(obs) else n  # > i: the observations up to i are done
            if not self._ops(ops, i, stop, 0):
                break
            i = stop
        self._end()

    def _end(self) -> None:
        if self.waiting:
            self.report.unchecked_because.append(f"{self.lost_at} (nothing later shows it)")
        if not self.was_unknown:
            self._doublings()

    def _observe_upto(self, obs: Sequence[Observation], k: int, i: int) -> int:
        """The observations ``obs[k:]`` (sorted by ``at``) made before op *i*; return the index of the first left."""
        while k < len(obs) and obs[k].at <= i:
            group = [obs[k]]
            k += 1
            # both debugfs tables of one capture seed together
            while (isinstance(group[0], DebugfsTable) and k < len(obs) and obs[k].at == group[0].at
                   and isinstance(obs[k], DebugfsTable)):
                group.append(obs[k])
                k += 1
            if not self.known:
                self._unknown_observe(group)
                continue
            for o in group:
                if isinstance(o, KernelMessage) and o.kind == "cut":
                    self.known, self.was_unknown = False, True
                    self.lost_at = f"what was cut at line {o.src.line if o.src else '?'}"
                else:
                    self._observe(o)
        return k

    def _ops(self, ops: Sequence[Op], i: int, stop: int, base: int) -> bool:
        """Apply ``ops[i:stop]``, op ``base + j`` of the trace each (no observation among them), and check each
        allocation's result; False where one stops the run (a panic).

        Each op is applied here; an allocation with a recorded result goes to :meth:`_result` but where it
        reproduced that address, with the nid and flags its reservation printed (most of them)."""
        mb = self.mb
        apply = mb.apply
        search = mb.reserved.search
        report = self.report
        known = self.known  # only an observation changes it: none is made among these ops
        for j in range(i, stop):
            op = ops[j]
            mb.op_index = base + j
            try:
                got = apply(op)
            except KernelPanic as e:
                report.panic = f"{op.src}: {e.message}"
                self.stopped = True
                return False
            if not isinstance(op, Alloc) or op.expect is None:
                continue
            if known and got is not None and got == op.expect:
                # _result()'s common answer (and _reservation_ok()'s, without a Flag of the region's)
                rn, rf = op.res_nid, op.res_flags
                r = search(got) if rn is not None or rf is not None else None
                if r is None and (rn is not None or rf is not None):
                    pass
                elif r is None or ((rn is None or r.nid == rn) and (rf is None or r.flags == rf)):
                    report.allocations += 1
                    report.allocations_ok += 1
                    continue
            self._result(op, got)
            mb = self.mb  # the model as _result() left it
            apply = mb.apply
            search = mb.reserved.search
        return True

    # --- excerpts: what cannot be checked, and where checking starts again

    def _unknown_observe(self, group: list[Observation]) -> None:
        """State unknown (an excerpt's start, a cut): a dump or both debugfs tables make it known again."""
        o = group[0]
        if isinstance(o, KernelMessage):
            if o.kind == "cut":
                self.lost_at = self.lost_at or f"what was cut at line {o.src.line if o.src else '?'}"
            return
        tables: dict[str, tuple[Region, ...]] = {}
        if isinstance(o, MemblockDump):
            tables = {"memory": o.memory, "reserved": o.reserved}
        else:
            tables = {d.name: d.regions for d in group if isinstance(d, DebugfsTable)}
        if set(tables) < {"memory", "reserved"}:
            return
        self._reseed(tables["memory"], tables["reserved"])
        line = o.src.line if o.src else "?"
        if self.waiting:
            self.report.unchecked_because.append(f"state before line {line}")
        self.waiting = 0
        self.known = True
        self.lost_at = None

    def _reseed(self, memory: tuple[Region, ...], reserved: tuple[Region, ...]) -> None:
        """The model takes the tables the kernel printed (same profile, arch and allocator state)."""
        old = self.mb
        mb = Memblock(old.profile, old.arch)
        mb.op_handlers.update(old.op_handlers)
        for attr in ("bottom_up", "current_limit", "can_resize", "kho_scratch_only", "scratch_only_flags",
                     "movable_node", "mirrored_kernelcore", "system_has_some_mirror", "kho_scratch", "kernel_end"):
            setattr(mb, attr, getattr(old, attr))
        res_nid = NUMA_NO_NODE if mb.profile.reserve_nid == "none" else mb.max_numnodes
        for table, regions, default_nid in ((mb.memory, memory, mb.max_numnodes), (mb.reserved, reserved, res_nid)):
            rows = [r for r in regions if r.size]
            # the arrays the kernel had were at least this big: seeding is not an allocation
            while table.max < len(rows) + 2:
                table.max *= 2
            for r in rows:
                nid = default_nid if r.nid is None or r.nid == NUMA_NO_NODE else r.nid
                mb.add_range(table, r.base, r.size, nid, max(0, r.flags))
        self.mb = mb
        self.report.model = mb

    def _doublings(self) -> None:
        """The k-th ``... is doubled to ...`` line against the model's k-th memblock_double_array()."""
        seen = [o for o in self.trace.observations if isinstance(o, Doubling)]
        done = self.mb.doublings
        for k, o in enumerate(seen):
            self.report.doublings += 1
            want = f"{o.name} to {o.new_max} at {o.base:#018x} (op {o.at})"
            if k >= len(done):
                self._mismatch(o.src, "array doubling", None, want, "no doubling", (o.base,))
                continue
            d = done[k]
            got = f"{d.name} to {d.new_max} at {d.base:#018x} (op {d.at})"
            if (d.name, d.new_max, d.base, d.at) == (o.name, o.new_max, o.base, o.at):
                self.report.doublings_ok += 1
            else:
                self._mismatch(o.src, "array doubling", None, want, got, (o.base, d.base))
        for d in done[len(seen):]:
            self.report.doublings += 1
            self._mismatch(None, "array doubling", None, "no doubling in the log",
                           f"{d.name} to {d.new_max} at {d.base:#018x} (op {d.at})", (d.base,))

    def _result(self, op: Alloc, got: int | None) -> None:
        """The allocation *op* gave *got* on the model: checked against the address its log recorded."""
        if self.known:
            self.report.allocations += 1
        else:
            # an excerpt's allocation: its result depends on what the log does not show
            self.report.allocations_unchecked += 1
            self.waiting += 1
        want = None if op.expect == FAILED else op.expect
        if got == want:
            if self.known and (got is None or self._reservation_ok(op, got)):
                self.report.allocations_ok += 1
            return
        if self.known:
            self._mismatch(op.src, op.api + (" (inferred)" if op.inferred else ""), op.caller,
                           "failure" if want is None else f"{want:#018x}",
                           "failure" if got is None else f"{got:#018x}",
                           tuple(a for a in (want, got) if a is not None))
        if self.resync or not self.known:
            # put the model back in step with the kernel before going on
            if got is not None:
                self.mb.phys_free(got, op.size)
            if want is not None:
                self._resync_reserve(op, want)

    def _reservation_ok(self, op: Alloc, addr: int) -> bool:
        """The nid and flags the kernel printed on the allocation's reservation, against the model's region."""
        if op.res_nid is None and op.res_flags is None:
            return True
        r = self.mb.reserved.search(addr)
        if (r is not None and (op.res_nid is None or r.nid == op.res_nid)
                and (op.res_flags is None or r.flags == op.res_flags)):
            return True  # the common case, without making a Flag of the region's
        got_nid, got_flags = (r.nid, Flag(r.flags)) if r is not None else (None, None)
        nid_ok = op.res_nid is None or got_nid == op.res_nid
        flags_ok = op.res_flags is None or got_flags == op.res_flags
        if nid_ok and flags_ok:
            return True
        def fmt(nid: int | None, flags: Flag | None) -> str:
            return f"nid={nid} flags={int(flags or 0):x}"
        self._mismatch(op.src, f"{op.api} reservation", op.caller, fmt(op.res_nid, op.res_flags),
                       fmt(got_nid, got_flags))
        return False

    def _resync_reserve(self, op: Alloc, addr: int) -> None:
        """Reserve the kernel's block as the API does: its own flags (RSRV_KERN|RSRV_HUGETLB for
        memblock_alloc_hugetlb()), and the nid the reservation printed when it did."""
        mb = self.mb
        if not mb.profile.has_rsrv_kern:
            mb.reserve(addr, op.size)
            return
        if op.res_flags is not None:
            flags = op.res_flags
        elif op.api == "memblock_alloc_hugetlb":
            flags = Flag.MEMBLOCK_RSRV_KERN | Flag.MEMBLOCK_RSRV_HUGETLB
        else:
            flags = Flag.MEMBLOCK_RSRV_KERN
        if op.res_nid is not None:
            nid = op.res_nid
        else:
            nid = op.nid if op.nid is not None and mb.profile.alloc_records_nid else NUMA_NO_NODE
        mb.reserve_range(addr, op.size, nid, flags)

    def _observe(self, o: Observation) -> None:
        if isinstance(o, MemblockDump):
            self._dump(o)
        elif isinstance(o, DebugfsTable):
            self._debugfs(o)
        elif isinstance(o, KernelMessage) and o.kind == "memory" and not self.mb.arch.generic:
            # a generic arch's zone setup decides its present pages, not memblock.memory alone
            self._memory_line(o)
        elif isinstance(o, NodeRanges):
            self._node_ranges(o)
        elif isinstance(o, ZoneRanges):
            self._zone_ranges(o)

    def _pages(self) -> list[tuple[int, int, int]]:
        """memory[] as free_area_init() lists it: (nid, base, end) of the whole pages of each region."""
        page = self.mb.page_size
        out = []
        for r in self.mb.memory:
            b, e = -(-r.base // page) * page, r.end // page * page
            if b < e:
                out.append((r.nid, b, e))
        return out

    def _node_ranges(self, o: NodeRanges) -> None:
        self.report.node_ranges += 1
        got = self._pages()
        for idx in range(max(len(got), len(o.ranges))):
            w = o.ranges[idx] if idx < len(o.ranges) else None
            g = got[idx] if idx < len(got) else None
            if (w is not None and g is not None and w[1:] == g[1:]
                    and (w[0] == g[0] or not self.mb._dump_nid_valid(g[0]))):
                continue
            fmt = lambda x: "nothing" if x is None else f"node {x[0]}: [mem {x[1]:#018x}-{x[2] - 1:#018x}]"  # noqa: E731
            self._mismatch(o.src, f"Early memory node ranges[{idx}]", None, fmt(w), fmt(g))
            return
        self.report.node_ranges_ok += 1

    def _zone_ranges(self, o: ZoneRanges) -> None:
        got = self._pages()
        if not o.zones or not got:
            return
        self.report.zone_ranges += 1
        want = (o.zones[0][1], max(e for _, _, e in o.zones))
        have = (got[0][1], got[-1][2])
        if want == have:
            self.report.zone_ranges_ok += 1
        else:
            self._mismatch(o.src, "Zone ranges (first page, end of DRAM)", None,
                           f"[mem {want[0]:#018x}-{want[1] - 1:#018x}]", f"[mem {have[0]:#018x}-{have[1] - 1:#018x}]")

    def _table(self, name: str) -> list[Region]:
        t = self.mb.memory if name == "memory" else self.mb.reserved
        return list(t)

    def _dump(self, d: MemblockDump) -> None:
        self.report.dumps += 1
        before = len(self.report.mismatches)
        for name, want, size, cnt in (("memory", d.memory, d.memory_size, d.memory_cnt),
                                      ("reserved", d.reserved, d.reserved_size, d.reserved_cnt)):
            t = self.mb.memory if name == "memory" else self.mb.reserved
            if t.total_size != size:
                self._mismatch(d.src, f"dump {name} size", None, f"{size:#018x}", f"{t.total_size:#018x}")
            if t.cnt != cnt:
                self._mismatch(d.src, f"dump {name}.cnt", None, f"{cnt:#x}", f"{t.cnt:#x}")
            got = [Region(r.base, r.size, int(r.flags), self._shown_nid(r.nid)) for r in t]
            exp = [Region(r.base, r.size, r.flags, None if r.nid == NUMA_NO_NODE else r.nid)
                   for r in want if r.size]
            self._compare_regions(d.src, f"dump {name}", exp, got)
        if len(self.report.mismatches) == before:
            self.report.dumps_ok += 1

    def _compare_regions(self, src: Src | None, what: str, exp: list[Region], got: list[Region]) -> None:
        for idx in range(max(len(exp), len(got))):
            e = exp[idx] if idx < len(exp) else None
            g = got[idx] if idx < len(got) else None
            if e is not None and g is not None:
                flags_ok = e.flags == -1 or e.flags == g.flags
                if e.base == g.base and e.size == g.size and flags_ok and e.nid == g.nid:
                    continue
            ends = tuple(a for r in (e, g) if r is not None for a in (r.base, r.base + r.size - 1))
            self._mismatch(src, f"{what}[{idx:#x}]", None, _fmt_region(e) if e else "nothing",
                           _fmt_region(g) if g else "nothing", ends)
            return

    def _debugfs(self, d: DebugfsTable) -> None:
        self.report.debugfs += 1
        before = len(self.report.mismatches)
        if d.name not in ("memory", "reserved"):
            return
        printed_nid = any(r.flags != -1 for r in d.regions)
        model = self._table(d.name)
        got = [Region(r.base, r.size, int(r.flags), self._shown_nid(r.nid) if printed_nid else None)
               for r in model]
        self._compare_regions(d.src, f"debugfs {d.name}", list(d.regions), got)
        if len(self.report.mismatches) != before and d.name == "reserved":
            # Read after boot: free_initmem()/free_initrd_mem() may have removed ranges since.
            after = self._after_boot_frees(model, list(d.regions))
            if after is not None:
                del self.report.mismatches[before:]
                got = [Region(r.base, r.size, int(r.flags), self._shown_nid(r.nid) if printed_nid else None)
                       for r in after]
                self._compare_regions(d.src, f"debugfs {d.name}", list(d.regions), got)
        if len(self.report.mismatches) == before:
            self.report.debugfs_ok += 1

    def _after_boot_frees(self, model: list[Region], table: list[Region]) -> list[Region] | None:
        """The model's reserved table less the ranges freed after boot, or None.

        On ARCH_KEEP_MEMBLOCK arches ``free_reserved_area()`` also removes the
        range from ``memblock.reserved``; the log prints only the pages it
        freed (``Freeing unused kernel memory: 3904K``, ``Freeing initrd memory:
        1004K``).  The explanation is accepted only when the ranges missing
        from the debugfs table pair one to one with those lines, each freeing
        exactly the printed number of whole pages, and nothing else differs.
        """
        if self.final is None:
            raise _Unstreamable("a debugfs table read before the log's end differs: the free lines after it count")
        freed = sorted(o.kib for o in self.final
                       if isinstance(o, KernelMessage) and o.kind in ("free_initmem", "free_initrd")
                       and o.kib is not None)
        if not freed:
            return None
        missing = subtract([(r.base, r.end) for r in model], [(r.base, r.end) for r in table])
        if len(missing) != len(freed) or subtract([(r.base, r.end) for r in table],
                                                   [(r.base, r.end) for r in model]):
            return None
        page = self.mb.page_size
        kib = sorted(max(0, e // page - -(-b // page)) * page // 1024 for b, e in missing)
        if kib != freed:
            return None
        self.report.after_boot_frees = [(b, e - b) for b, e in missing]
        out = []
        for r in model:
            pieces = subtract([(r.base, r.end)], missing)
            out += [Region(b, e - b, r.flags, r.nid) for b, e in pieces]
        return out

    def _memory_line(self, o: KernelMessage) -> None:
        if o.kib is None:
            return
        self.report.memory_lines += 1
        page = self.mb.page_size
        # present pages: for_each_mem_pfn_range() walks every memory region, NOMAP included
        pages = sum(max(0, (r.end // page) - -(-r.base // page)) for r in self.mb.memory)
        got_k = pages * page // 1024
        want_k = o.kib
        if got_k == want_k:
            self.report.memory_lines_ok += 1
        else:
            self._mismatch(o.src, "Memory: total (present pages)", None, f"{want_k}K", f"{got_k}K")


def _starts_known(trace: Trace) -> bool:
    """Whether memblock's state is known where the trace begins.

    A log with its ``Linux version`` banner (or an op script) starts at boot, unless its first
    dump or debugfs table comes before any logged op (the ops inferred to explain it are no
    evidence: the table is where the log's knowledge starts).  An excerpt (the reader's
    ``excerpt`` fact) starts known only when its first logged op registers memory:
    ``memblock_add()`` of the firmware's banks is where memblock's life begins.
    """
    if not trace.ops:
        return False  # tables alone: they are the state
    first = next((i for i, op in enumerate(trace.ops) if not op.inferred), None)
    return _known_from(trace.context, first, None if first is None else trace.ops[first],
                       [o.at for o in trace.observations if isinstance(o, (MemblockDump, DebugfsTable))])


def _known_from(ctx: Context, first: int | None, op: Op | None, tables: list[int]) -> bool:
    """:func:`_starts_known` of a trace whose first logged op is *op*, op *first*, its tables at *tables*."""
    if tables and (first is None or min(tables) <= first):
        return False  # nothing logged before the first table: it is the state the log starts from
    if not any(k == "excerpt" for k, _ in ctx.facts):
        return True
    return op is not None and op.keyword == "add"


_INFERRED = attrgetter("inferred")


class _Unstreamable(Exception):
    """A check :class:`OpStream` cannot make as the ops come: the whole Trace is validated instead."""


class OpStream:
    """:func:`validate` of a console log as its reader hands the ops out: none is held once applied.

    The reader's sink (``parsers.load(sink=...)``): before its walk it calls :meth:`watch` with a view
    of what it knows (the context, the observations made so far); then it gives the ops in order, a list
    at a time, each list holding only ops no later line changes, and every observation made before the
    last of them already made.  :meth:`finish` takes the Trace the read returned (its ops given here)
    and returns the report :func:`validate` makes of the whole Trace.  An input read another way (the
    sink never called) is validated whole there.

    :raises _Unstreamable: (out of the read) for a check that needs observations made later; validate
        the whole Trace then.

    The reader need not make the ops' :class:`Src` (``srcs``): only a mismatch or a panic quotes one, and
    the caller then validates the whole Trace again (see :func:`~..inputs.validate_source`).
    """

    srcs = False

    def __init__(self, resync: bool = True) -> None:
        self.resync = resync
        self.view: Callable[[], tuple[Context, list[Observation]]] | None = None
        self.checker: _Checker | None = None
        #: the ops up to the first logged one, held: the state at the start is decided there (_starts_known)
        self.held: list[Op] = []
        #: the index of the next op, and how many were given and inferred
        self.base = 0
        self.count = 0
        self.inferred = 0
        #: (at, index) of the observations not looked at yet; how many of the view's were taken, and its list
        self.due: list[tuple[int, int]] = []
        self.taken = 0
        self.live: list[Observation] | None = None

    def watch(self, view: Callable[[], tuple[Context, list[Observation]]]) -> None:
        """The reader's view, asked at each list of ops."""
        self.view = view

    def __call__(self, ops: list[Op]) -> None:
        self.count += len(ops)
        self.inferred += sum(map(bool, map(_INFERRED, ops)))  # (C loops: an op at a time, millions of them)
        if self.view is None:
            raise _Unstreamable("ops given without a view of the observations")
        if self.checker is None:
            self.held += ops
            first = next((i for i, op in enumerate(self.held) if not op.inferred), None)
            if first is None:
                return
            ctx, live = self.view()
            # the tables at or before the first logged op were made before it
            known = _known_from(ctx, first, self.held[first],
                                [o.at for o in live if isinstance(o, (MemblockDump, DebugfsTable))])
            self.checker = _Checker(Trace(ctx, ()), self.resync, known)
            self.checker.final = None
            ops, self.held = self.held, []
        _, live = self.view()
        self._take(live)
        self._feed(ops)

    def _take(self, live: Sequence[Observation]) -> None:
        """Note the observations made since the last list (by index: a listing's is replaced as it is read)."""
        if self.live is not None and live is not self.live and not isinstance(live, tuple):
            raise _Unstreamable("the observations were made again")
        if not isinstance(live, tuple):
            self.live = live  # type: ignore[assignment]
        for k in range(self.taken, len(live)):
            insort(self.due, (live[k].at, k))
        self.taken = len(live)

    def _observe(self, live: Sequence[Observation], i: int) -> None:
        """The observations made before op *i* (all of them are made by now)."""
        due = self.due
        n = 0
        while n < len(due) and due[n][0] <= i:
            n += 1
        if n:
            self.checker._observe_upto([live[k] for _, k in due[:n]], 0, i)  # type: ignore[union-attr]
            del due[:n]

    def _feed(self, ops: list[Op]) -> None:
        c = self.checker
        assert c is not None and self.live is not None
        i, n = 0, len(ops)
        while i < n and not c.stopped:
            self._observe(self.live, self.base + i)
            stop = n if not self.due else min(n, self.due[0][0] - self.base)
            c._ops(ops, i, stop, self.base)
            i = stop
        self.base += n

    def finish(self, trace: Trace) -> ValidationReport:
        """The report of *trace*, the Trace the read returned (without the ops given here)."""
        c = self.checker
        if c is None:
            # nothing given (another format, no ops), or no logged op: the whole Trace
            return validate(replace(trace, ops=tuple(self.held) + trace.ops), resync=self.resync)
        if trace.ops:
            raise _Unstreamable("ops after the streamed ones")
        c.trace = trace
        c.final = trace.observations
        self._take(trace.observations)
        if not c.stopped:
            self._observe(trace.observations, self.base)
        c.report.ops = self.count
        c.report.inferred_ops = self.inferred
        c._end()
        return c.report


def validate(trace: Trace, *, resync: bool = True) -> ValidationReport:
    """Replay *trace* on the plain engine and check every recorded result and dump.

    :param resync: after a wrong allocation, move the model to the kernel's address and go on.
    :returns: a :class:`ValidationReport`; ``report.ok`` when everything matched.
    """
    return _Checker(trace, resync).run()
