# SPDX-License-Identifier: GPL-2.0-only
"""Re-execute a recorded boot under a design, as a cold boot or as the KHO boot after it.

The trace's ops run in order on a fresh :class:`~.engine.Memblock`; at the
boot's decision points (in ``start_kernel()``'s order) the driver asks the
:class:`~.strategies.Strategy`:

* ``kho_populate`` (KHO boot, before the first logged allocation of
  ``setup_arch()``): the inherited scratch areas are added and flagged, and
  scratch-only starts;
* start of ``mm_core_init_early()`` (the first hugetlb request, or the
  ``mm_core_init_early``/``hugetlb_bootmem_begin`` phase): extension digest,
  early reservation of preserved memory, end of scratch-only, per design;
* each gigantic hugetlb request: the design's allocator, the kernel's
  stop-at-first-failure loop, the tail ``NOINIT`` mark;
* ``hugetlb_cma_reserve()`` (just before ``hugetlb_bootmem_alloc()``), when
  ``hugetlb_cma=`` asks for areas the trace did not log (:mod:`.hugetlb_cma`);
  with areas in place the gigantic pages are skipped, or with
  ``hugetlb_cma_only=`` carved from the areas;
* end of the hugetlb allocations: missing attempts (when the recorded boot
  stopped early) and the HugeTLB messages;
* ``kho_memory_init()``: on a cold boot ``kho_reserve_scratch()`` with the
  design's accounting (replacing the trace's own KHO ops, or synthesizing them
  for a kernel without KHO); on a KHO boot the reservation of preserved memory;
* ``memblock_free_all()``: scratch-only ends; accounting for ``fork_init()``.

Fixed-address ops inside an earlier allocation follow it (:mod:`.link`).

>>> from kho_replay.replay.ops import Context, Trace, parse_script
>>> t = Trace(Context(cmdline="kho=on"), parse_script('''
... add 0x0 4G nid=0
... alloc memblock_alloc size=64M align=4K
... phase free_all
... '''))
>>> o = run_cold(t, "baseline", kernel="7.2")

The 64 MiB block ends at 4 GiB, so below ARCH_LOW_ADDRESS_LIMIT (4 GiB - 1) it
counts one byte short: lowmem is 2 bytes under 128 MiB and global is those 2
bytes, rounded up to 4 MiB.

>>> o.scratch.enabled, o.scratch.lowmem >> 20, o.scratch.global_ >> 20
(True, 128, 4)
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import NamedTuple, TypedDict, Unpack

from ..errors import KernelPanic, KhoReplayError
from ..flags import Flag
from ..memblock.engine import Memblock
from ..memblock.regions import attribute_copy
from ..memblock.search import for_each_free_mem_range
from ..ops import (
    MEMBLOCK_ALLOC_ACCESSIBLE,
    NUMA_NO_NODE,
    Alloc,
    Free,
    KhoExtendScratch,
    KhoScratchArea,
    KhoScratchOnly,
    Mark,
    Op,
    Phase,
    Reserve,
    ReserveKern,
    Trace,
    ZoneRanges,
)
from ..strategies import Strategy, get
from .classify import Subsystem, classify
from .hugepages import HugepagesRequest, hugepages_request, hugetlb_params
from .hugetlb_cma import (
    CmaArea,
    CmaReservation,
    HugetlbCma,
    hugetlb_cma_cmdline,
    hugetlb_cma_order,
    hugetlb_cma_reserve,
)
from .link import Anchor, link, resolve
from .model import kernel_strategy, memblock_for
from .outcome import Agreement, Cost, Gigantic, Outcome, Request, Scratch, ScratchArea, agreement
from .params import KhoParams, parse_kho_cmdline
from .preserve import (
    PreservedSet,
    PreserveKind,
    PreserveSpec,
    busy_blocks,
    extend_scratch,
    free_runs,
    insert_cost,
    parse_preserve,
    reserve_preserved,
)
from .scratch import ScratchReservation, populate, reserve_scratch

__all__ = [
    "Boot",
    "BootInputs",
    "BootPlan",
    "ColdOptions",
    "HugepagesRequest",
    "KexecOptions",
    "Replayed",
    "SecondKernelCheck",
    "WalkTables",
    "check_second_kernel",
    "classify_ops",
    "execute",
    "first_difference",
    "handover",
    "kexec_segments",
    "hugepages_request",
    "new_boot",
    "plain_kexec",
    "plan",
    "replay_cold",
    "replay_kexec",
    "replay_pair",
    "run_cold",
    "run_kexec",
    "walk_tables",
]

GIGANTIC = 1 << 30


class Replayed(NamedTuple):
    """One replayed boot: its outcome and the final model (for memory maps and ``reserved[]``)."""

    outcome: Outcome
    model: Memblock


def first_difference(a: Sequence[object], b: Sequence[object]) -> int:
    """The first index where *a* and *b* differ (the shorter one's length when one extends the other)."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x is not y and x != y:
            return i
    return min(len(a), len(b))


def classify_ops(trace: Trace) -> list[Subsystem]:
    """The subsystem of every op of *trace*; CMA areas count as hugetlb only with ``hugetlb_cma=``."""
    hugetlb_cma = "hugetlb_cma=" in trace.context.cmdline
    out = []
    for op in trace.ops:
        sub = classify(op.caller, getattr(op, "api", None), op.inferred)
        if sub is Subsystem.HUGETLB_CMA and not hugetlb_cma and not (op.caller or "").startswith("hugetlb_cma"):
            sub = Subsystem.OTHER  # a cma= (DMA) area through the same cma_declare_contiguous_nid() path
        out.append(sub)
    return out


@dataclass(frozen=True, slots=True)
class BootPlan:
    """Op indexes where the driver's decision points fall (the hook runs before that op)."""

    populate: int
    early: int
    hugetlb_end: int
    kho_init: int
    free_all: int
    #: first percpu request (memmap is done) and first request after percpu; -1 when absent.
    percpu: int = -1
    after_percpu: int = -1
    #: ``hugetlb_cma_reserve()``: right before ``hugetlb_bootmem_alloc()`` (7.2 mm/mm_init.c:2708, 7.3 :2633).
    hugetlb_cma: int = -1


def plan(ops: Sequence[Op], subs: Sequence[Subsystem], order: str = "7.2") -> BootPlan:
    """Find the decision points in *ops*: phase markers when the trace has them, else from callers.

    *order* is the kernel's ``mm_core_init_early()`` order: "7.3" opens it with
    ``kho_memory_init_early()`` (the extension) before ``free_area_init()`` and hugetlb, "7.2" with hugetlb.
    """
    n = len(ops)

    def phase(*names: str) -> int | None:
        return next((i for i, op in enumerate(ops) if isinstance(op, Phase) and op.name in names), None)

    def first(pred: Callable[[int], bool]) -> int | None:
        return next((i for i in range(n) if pred(i)), None)

    free_all = phase("free_all")
    free_all = n if free_all is None else free_all
    kho_init = phase("kho_memory_init", "kho_reserve_scratch")
    if kho_init is None:
        kho_init = first(lambda i: subs[i] in (Subsystem.KHO_SCRATCH, Subsystem.KHO_PRESERVED)
                         and not isinstance(ops[i], Phase))
    if kho_init is None:
        kho_init = free_all
    huge = [i for i in range(n) if subs[i] in (Subsystem.HUGETLB_GIGANTIC, Subsystem.HUGETLB_CMA)
            and isinstance(ops[i], Alloc)]
    early = phase("mm_core_init_early", "hugetlb_bootmem_begin")
    if early is None:
        early = huge[0] if huge else first(lambda i: subs[i] is Subsystem.MEMMAP)
    elif huge and huge[0] < early:
        # hugetlb_cma_reserve() opens mm_core_init_early(), before the gigantic pages' phase marker.
        early = huge[0]
    if order == "7.3":
        # kho_memory_init_early() runs first; its own ops (inferred or its radix-tree allocations) mark the start
        kho_early = first(lambda i: isinstance(ops[i], KhoScratchArea | KhoExtendScratch)
                          or (ops[i].caller or "").split("+", 1)[0] in ("kho_memory_init_early", "kho_radix_add_key"))
        if kho_early is not None and (early is None or kho_early < early):
            early = kho_early
    if early is None:
        early = kho_init
    # hugetlb_cma_reserve() comes first in the hugetlb step: at its own logged areas, else where the gigantic
    # pages begin; with no hugetlb op, at the start of mm_core_init_early() (7.3's free_area_init() in between
    # allocates nothing on x86-64/arm64 and kho_memory_init_early()'s ops are the driver's).
    begin = phase("hugetlb_bootmem_begin")
    cma_at = min([x for x in (huge[0] if huge else None, begin) if x is not None], default=early)
    end = phase("hugetlb_bootmem_end")
    if end is None:
        end = huge[-1] + 1 if huge else early
    populate_at = first(lambda i: isinstance(ops[i], Alloc))
    populate_at = early if populate_at is None else min(populate_at, early)
    pcpu = [i for i in range(n) if subs[i] is Subsystem.PERCPU and isinstance(ops[i], Alloc) and i >= end]
    percpu = pcpu[0] if pcpu else -1
    after = next((i for i in range(pcpu[-1] + 1, n) if isinstance(ops[i], Alloc) and subs[i] is not Subsystem.PERCPU),
                 kho_init) if pcpu else -1
    return BootPlan(populate_at, early, end, kho_init, free_all, percpu, after, max(cma_at, early))


class WalkTables(NamedTuple):
    """What :meth:`Boot.walk` reads from the whole trace: subsystems, decision points, anchors, hugepages=."""

    subs: list[Subsystem]
    bp: BootPlan
    anchors: tuple[Anchor | None, ...]
    hreq: HugepagesRequest | None
    gig_ops: frozenset[int]


def walk_tables(trace: Trace, order: str) -> WalkTables:
    """The :class:`WalkTables` of *trace* (*order*: the kernel's ``mm_core_init_early()`` order, :func:`plan`)."""
    subs = classify_ops(trace)
    ops = trace.ops
    return WalkTables(subs, plan(ops, subs, order), link(ops),
                      hugepages_request(trace.context.cmdline, trace.context.arch or "x86_64"),
                      frozenset(i for i, op in enumerate(ops)
                                if isinstance(op, Alloc) and subs[i] is Subsystem.HUGETLB_GIGANTIC))


@dataclass
class Boot:
    """The state a strategy's decision points see: the model, the KHO inputs, what hugetlb got."""

    mb: Memblock
    strategy: Strategy
    kexec: bool
    params: KhoParams
    nodes: tuple[int, ...]
    areas: tuple[ScratchArea, ...] = ()
    preserved: PreservedSet | None = None
    #: (addr, size, nid recorded in reserved[]) of every gigantic page, adopted ones included.
    pages: list[tuple[int, int, int]] = field(default_factory=list)
    adopted: list[int] = field(default_factory=list)
    adopted_used: int = 0
    ext_runs: list[tuple[int, int]] = field(default_factory=list)
    extended_bytes: int = 0
    digest_keys: int = 0
    #: (op index, line) of what the boot prints besides the engine's own messages.
    messages: list[tuple[int, str]] = field(default_factory=list)
    scratch_left: list[tuple[str, int]] = field(default_factory=list)
    busy_reserved: list[tuple[int, int]] = field(default_factory=list)
    # --- the replay walk (:meth:`run`)
    trace: Trace | None = None
    #: kexec_file segments reserved inside scratch at ``kho_populate()``: (base, size, flags).
    segments: tuple[tuple[int, int, int], ...] = ()
    requests: list[Request] = field(default_factory=list)
    #: op index -> address the replay gave that allocation (None: failed).
    placed: dict[int, int | None] = field(default_factory=dict)
    #: the hugetlb loop: the plain form stops at its first failure (key None), the node form per node.
    stopped: set[int | None] = field(default_factory=set)
    got_per_node: dict[int, int] = field(default_factory=dict)
    last_nid: int = NUMA_NO_NODE
    scratch_res: ScratchReservation | None = None
    #: Entries scanned and memmoved by the replay's reservations (cost proxies).
    scanned: int = 0
    memmoves: int = 0
    panic: str | None = None
    subs: list[Subsystem] = field(default_factory=list)
    bp: BootPlan = field(default_factory=lambda: BootPlan(0, 0, 0, 0, 0))
    hreq: HugepagesRequest | None = None
    #: op indexes of the gigantic pages' logged requests.
    gig_ops: set[int] = field(default_factory=set)
    anchors: tuple[Anchor | None, ...] = ()
    #: the next op :meth:`walk` replays.
    at: int = 0
    #: ``kho=`` forced by the caller (None: the command line's).
    kho: bool | None = None
    #: ``hugetlb_cma=`` / ``hugetlb_cma_only=`` of the command line; the areas once reserved (or logged).
    cma_req: HugetlbCma | None = None
    cma_only: bool = False
    cma: CmaReservation | None = None
    #: early-CMA gigantic pages (address, size, node of the area): inside an area, not RSRV_HUGETLB.
    cma_pages: list[tuple[int, int, int]] = field(default_factory=list)
    #: the trace logged its own hugetlb_cma areas (replayed as they are, not synthesized).
    cma_logged: bool = False

    # ----------------------------------------------------------- accounting

    def hugetlb_size(self, limit: int, nid: int) -> int:
        """Gigantic bytes below *limit* on *nid*, with ``memblock_reserved_kern_size()``'s cut rule."""
        total = 0
        for base, size, rnid in sorted(self.pages):
            if base > limit:
                break
            if nid != NUMA_NO_NODE and rnid != nid:
                continue
            total += size if base + size <= limit else limit - base
        return total

    def scratch_kern_size(self, mb: Memblock, limit: int, nid: int) -> int:
        """RSRV_KERN as the design's scratch sizing counts it (A knob)."""
        k = mb.reserved_kern_size(limit, nid)
        if not self.strategy.hugetlb_in_scratch_sizing and self.strategy.hugetlb_rsrv_kern:
            k -= self.hugetlb_size(limit, nid)
        return k

    def scratch_free(self) -> int:
        """Free bytes of KHO_SCRATCH memory (what later scratch-only allocations can still use)."""
        mb = self.mb
        total = 0
        for s, e, _ in for_each_free_mem_range(
                mb.memory, mb.reserved, lambda m: not m.flags & Flag.MEMBLOCK_KHO_SCRATCH):
            total += e - s
        return total

    # ------------------------------------------------------ decision points

    def early_init(self) -> None:
        """Start of ``mm_core_init_early()`` on a KHO boot: extension, early reservations, scratch-only end."""
        s, mb = self.strategy, self.mb
        if self.preserved is not None and s.extension is not None:
            self.digest_keys = len(self.preserved.blocks)
            if s.extension == "ext":
                self.extended_bytes = extend_scratch(mb, self.preserved, Flag.MEMBLOCK_KHO_SCRATCH_EXT)
                mb.scratch_only_flags = int(Flag.MEMBLOCK_KHO_SCRATCH | Flag.MEMBLOCK_KHO_SCRATCH_EXT)
            elif s.extension == "scratch":
                self.extended_bytes = extend_scratch(mb, self.preserved, Flag.MEMBLOCK_KHO_SCRATCH)
            elif s.extension == "reserve_busy":
                # Alternative 4: the busy 1 GiB blocks, one reservation per run, stay reserved.
                blk = 1 << 30
                busy = busy_blocks(self.preserved, blk)
                runs: list[list[int]] = []
                for b in busy:
                    if runs and runs[-1][1] == b:
                        runs[-1][1] = b + 1
                    else:
                        runs.append([b, b + 1])
                for b0, b1 in runs:
                    mb.reserve_range(b0 * blk, (b1 - b0) * blk, NUMA_NO_NODE, 0)
                    self.busy_reserved.append((b0 * blk, (b1 - b0) * blk))
            self.ext_runs = free_runs(mb, busy_blocks(self.preserved)) if s.extension in ("ext", "scratch") else []
        if self.preserved is not None and s.preserved_reserved_at == "mm_core_init_early":
            self._reserve_preserved()
        if s.adopt_preserved_gigantic and self.preserved is not None:
            self.adopted = [b for b, size in self.preserved.blocks if size == GIGANTIC]
        if s.reserve_scratch_around_hugetlb:
            for a in self.areas:
                mb.reserve_range(a.base, a.size, NUMA_NO_NODE, 0)
            mb.kho_scratch_only = False
        if s.scratch_only_ends == "mm_core_init_early":
            mb.kho_scratch_only = False

    def after_hugetlb(self) -> None:
        """End of the hugetlb allocations: alternative 2 releases scratch and re-enters scratch-only."""
        if self.strategy.reserve_scratch_around_hugetlb:
            for a in self.areas:
                self.mb.phys_free(a.base, a.size)
            self.mb.kho_scratch_only = True

    def kho_memory_init(self) -> None:
        """``kho_memory_init()`` on a KHO boot: the baseline reservation of preserved memory."""
        if self.preserved is not None and self.strategy.preserved_reserved_at == "kho_memory_init":
            self._reserve_preserved()

    def _reserve_preserved(self) -> None:
        if self.preserved is not None:
            scanned, moved = reserve_preserved(self.mb, self.preserved)
            self.scanned += scanned
            self.memmoves += moved

    def alloc_gigantic(self, size: int, nid: int, exact: bool, op: Alloc | None) -> int | None:
        """One gigantic page through the design's allocator (P knob); None on failure."""
        s, mb = self.strategy, self.mb
        if s.adopt_preserved_gigantic and self.adopted_used < len(self.adopted):
            addr = self.adopted[self.adopted_used]
            self.adopted_used += 1
            return addr
        if s.gigantic_api == "hugetlb":
            return mb.alloc_hugetlb(size, nid, exact)
        if s.gigantic_api == "nid_user":
            # v1 12/12: never plain SCRATCH for gigantic pages; SCRATCH_EXT while scratch-only.
            if mb.kho_scratch_only:
                flags = int(Flag.MEMBLOCK_KHO_SCRATCH_EXT)
            else:
                flags = int(Flag.MEMBLOCK_MIRROR) if mb.system_has_some_mirror else 0
            addr = mb.alloc_range_nid(size, size, 0, MEMBLOCK_ALLOC_ACCESSIBLE, nid, exact, flags=flags)
            if addr is not None and not s.hugetlb_rsrv_kern:
                mb.setclr_flag(mb.reserved, addr, size, False, Flag.MEMBLOCK_RSRV_KERN)
            return addr
        if op is not None and (op.api != "memblock_alloc_hugetlb" or mb.profile.has_alloc_hugetlb):
            return mb.alloc(op)
        # the kernel asked for has no memblock_alloc_hugetlb(): hugetlb_bootmem_alloc() used the raw APIs
        api = "memblock_alloc_exact_nid_raw" if exact else "memblock_alloc_try_nid_raw"
        return mb.alloc(Alloc(api, size, align=size, nid=nid, caller="alloc_bootmem"))

    # ------------------------------------------------------- the replay walk

    def say(self, text: str) -> None:
        """A line the boot prints at the current op."""
        self.messages.append((self.mb.op_index or 0, text))

    def run(self) -> Outcome:
        """Replay the trace's ops once, running the decision points before the ops they precede."""
        self.begin()
        self.walk()
        return self.finish()

    def begin(self) -> None:
        """Start the walk at op 0: the tables of :meth:`tables` and the lines ``setup_arch()`` prints first."""
        self.tables()
        self.at = 0
        for text in self.params.messages:
            self.messages.append((0, text))  # early_param("kho_scratch"): parsed during setup_arch()

    def tables(self, tabs: WalkTables | None = None) -> None:
        """What the walk reads from the whole trace (:func:`walk_tables`, unless given)."""
        if self.trace is None:
            raise KhoReplayError("internal: Boot.run() without a trace")
        t = tabs or walk_tables(self.trace, self.mb.profile.mm_core_init_early_order)
        self.subs, self.bp, self.anchors, self.hreq = list(t.subs), t.bp, t.anchors, t.hreq
        self.gig_ops = set(t.gig_ops)
        self.cma_req, self.cma_only = hugetlb_cma_cmdline(
            self.trace.context.cmdline, percent=self.mb.profile.version >= (7, 3), max_numnodes=self.mb.max_numnodes)
        self.cma_logged = any(self._is_cma_area(i) for i in range(len(self.trace.ops)))

    def _is_cma_area(self, i: int) -> bool:
        """Op *i* is a logged hugetlb_cma area: hugetlb_cma's CMA alignment is the gigantic size (cma='s is 2 MiB)."""
        op = self.trace.ops[i] if self.trace is not None else None
        return (self.subs[i] is Subsystem.HUGETLB_CMA and isinstance(op, Alloc)
                and (op.align or 0) >= GIGANTIC)

    def walk(self, stop: int | None = None) -> None:
        """Replay ops from :attr:`at` up to *stop*; without *stop*, all of them and the hooks after the last."""
        trace, mb = self.trace, self.mb
        assert trace is not None
        ops = trace.ops
        if self.panic is not None:
            return
        try:
            for i in range(self.at, len(ops) if stop is None else min(stop, len(ops))):
                mb.op_index = i
                self.decision_points(i)
                self.replay_op(i, ops[i], self.anchors)
                self.at = i + 1
            if stop is None:
                mb.op_index = len(ops)
                self.decision_points(len(ops))
        except KernelPanic as e:
            self.panic = e.message
            self.say(f"Kernel panic - not syncing: {e.message}")

    def finish(self) -> Outcome:
        """The boot's outcome, once :meth:`walk` has run to the end."""
        assert self.trace is not None
        self.mb.kho_scratch_only = False
        return _outcome(self.trace, self.strategy, self, self.kexec, self.scratch_res, self.hreq, self.requests,
                        self.scanned, self.memmoves, self.panic)

    def shared_until(self, trace: Trace, k: int, tabs: WalkTables | None = None) -> int:
        """How many of the first *k* ops a walk of *trace* replays exactly as this boot's walk does.

        *trace* must have this boot's trace's ops before *k* and its context but
        the command line.  The command line decides the subsystems (``hugetlb_cma=``)
        and the plan is made from the whole trace, so the walks part at the first
        op classified differently or the first decision point planned elsewhere.
        *tabs*: *trace*'s walk tables, when the caller has them.
        """
        return self._shared_until(trace, k, tabs or walk_tables(trace, self.mb.profile.mm_core_init_early_order))

    def _shared_until(self, trace: Trace, k: int, tabs: WalkTables) -> int:
        if self.trace is None or replace(trace.context, cmdline="") != replace(self.trace.context, cmdline=""):
            return 0
        bp = tabs.bp
        k = min(k, first_difference(self.subs, tabs.subs))
        if self._params_for(trace) != self._params_for(self.trace):
            k = min(k, self.bp.kho_init, bp.kho_init)  # kho_reserve_scratch() reads kho=/kho_scratch=
        if (hugepages_request(trace.context.cmdline, trace.context.arch or "x86_64")
                != hugepages_request(self.trace.context.cmdline, self.trace.context.arch or "x86_64")):
            k = min(k, self.bp.hugetlb_end, bp.hugetlb_end)  # the loop's missing attempts follow hugepages=
        cma = self.mb.profile.version >= (7, 3), self.mb.max_numnodes
        if (hugetlb_cma_cmdline(trace.context.cmdline, percent=cma[0], max_numnodes=cma[1])
                != hugetlb_cma_cmdline(self.trace.context.cmdline, percent=cma[0], max_numnodes=cma[1])):
            k = min(k, self.bp.hugetlb_cma, bp.hugetlb_cma)  # hugetlb_cma_reserve() reads hugetlb_cma(_only)=
        for f in fields(BootPlan):
            old, new = getattr(self.bp, f.name), getattr(bp, f.name)
            if old != new:
                # the hook must not have run (or have been due) in the shared part: stop before the earlier one
                k = min(k, *(x for x in (old, new) if x >= 0))
        return k

    def copy(self) -> Boot:
        """An independent copy of the boot in its current state: the model and every list it grows.

        The trace, the strategy, the inputs and the entries of the lists (frozen) are shared.
        """
        b = attribute_copy(self)  # not copy.copy(): see attribute_copy()
        b.mb = self.mb.copy()
        b.cma = copy.deepcopy(self.cma)  # early-CMA pages move the areas' cursors
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, list | dict | set):
                setattr(b, f.name, v.copy())
        return b

    def _params_for(self, trace: Trace) -> KhoParams:
        params = parse_kho_cmdline(trace.context.cmdline)
        return params if self.kho is None else replace(params, enable=self.kho)

    def fork(self, trace: Trace | None = None, tabs: WalkTables | None = None,
             **inputs: Unpack[BootInputs]) -> Boot | None:
        """A copy of this boot part-way through its walk, to continue it on *trace* (default: the same).

        *tabs* are *trace*'s walk tables when the caller has them (another boot of the same trace:
        :meth:`current_tables`).  *inputs* replace the boot's :class:`BootInputs` (the scratch, preserved set
        and segments a KHO boot starts from); the prefix of a KHO boot is the same whatever they are, as
        long as no decision point has read them (:attr:`at` not past :meth:`first_hook`).

        None when *trace*'s walk would have differed before :attr:`at` (:meth:`shared_until`), or when
        *inputs* come after a decision point.
        """
        if inputs and self.at > self.first_hook():
            return None
        if trace is not None and trace is not self.trace:
            tabs = tabs or walk_tables(trace, self.mb.profile.mm_core_init_early_order)
            if self._shared_until(trace, self.at, tabs) < self.at:
                return None
        else:
            tabs = None
        b = self.copy()
        for key, value in inputs.items():
            setattr(b, key, value)
        new = self.trace if trace is None or self.trace is None else trace
        if new is not None and self.trace is not None and (new.context.cmdline != self.trace.context.cmdline
                                                           or b.kho != self.kho):
            params = b._params_for(new)
            # the kho_scratch= lines begin() printed come first: the new command line's replace them
            n = len(self.params.messages)
            b.messages[:n] = [(0, text) for text in params.messages]
            b.params = params
        if tabs is not None:
            b.trace = trace
            b.tables(tabs)
        return b

    def first_hook(self) -> int:
        """The op index of the first decision point (before it, nothing reads the boot's inputs)."""
        return min(x for x in (getattr(self.bp, f.name) for f in fields(BootPlan)) if x >= 0)

    def current_tables(self) -> WalkTables:
        """The walk tables this boot reads (:func:`walk_tables` of its trace), for :meth:`fork`."""
        return WalkTables(self.subs, self.bp, self.anchors, self.hreq, frozenset(self.gig_ops))

    def replay_op(self, i: int, op: Op, anchors: Sequence[Anchor | None]) -> None:
        """One op of the trace, unless the driver owns it (KHO ops, gigantic pages' tail marks)."""
        mb, sub = self.mb, self.subs[i]
        # The driver owns KHO: the trace's own scratch and preserved ops and mode switches are replaced.
        if (sub in (Subsystem.KHO_SCRATCH, Subsystem.KHO_PRESERVED)
                or isinstance(op, KhoScratchOnly | KhoScratchArea | KhoExtendScratch)):
            return
        if isinstance(op, Mark) and (op.inferred or "").startswith("kho_preserved_memory_reserve"):
            return  # the NOINIT half of a logged preserved block: resynthesized with the block
        if isinstance(op, Alloc):
            before = mb.stats["find_calls"]
            if i in self.gig_ops:
                exact = op.exact or op.api == "memblock_alloc_exact_nid_raw"
                self.gigantic(i, op.size, op.nid if op.nid is not None else NUMA_NO_NODE, exact, op, False)
            else:
                only = mb.kho_scratch_only
                addr = mb.alloc(op)
                self.placed[i] = addr
                if addr is not None and self.cma is not None and self._is_cma_area(i):
                    nid = op.nid if op.nid is not None else NUMA_NO_NODE
                    self.cma.areas.append(CmaArea(nid, [(addr, op.size)]))
                    self.cma.total += op.size
                self.requests.append(Request(i, op.api, op.size, op.nid if op.nid is not None else NUMA_NO_NODE,
                                             sub, addr, op.caller, False, only))
            self.scanned += (mb.stats["find_calls"] - before) * mb.reserved.cnt
            return
        anchor = anchors[i]
        if anchor is not None and anchor.alloc in self.gig_ops and isinstance(op, Mark):
            return  # the tail NOINIT mark is synthesized with the page
        op2 = resolve(op, anchor, self.placed)
        if op2 is None:
            return
        if isinstance(op2, Reserve | ReserveKern | Free):
            scan, move = insert_cost(mb, op2.base)
            self.scanned += scan
            self.memmoves += move
        mb.apply(op2)

    def gigantic(self, i: int, size: int, nid: int, exact: bool, op: Alloc | None, synth: bool) -> None:
        """One gigantic page request of the hugetlb loop (logged, or *synth*esized by the driver)."""
        mb = self.mb
        key = nid if exact else None
        if key in self.stopped or self.cma_skips():
            return
        only = mb.kho_scratch_only
        self.last_nid = nid
        if self.cma_early():
            self.early_cma_page(i, size, nid, exact)
            return
        addr = self.alloc_gigantic(size, nid, exact, op)
        if addr is None:
            self.stopped.add(key)
        else:
            r = mb.reserved.search(addr)
            rnid = r.nid if r is not None and not (self.adopted and addr in self.adopted) else nid
            self.pages.append((addr, size, rnid))
            self.got_per_node[nid] = self.got_per_node.get(nid, 0) + 1
            if r is not None and not self._crosses_zones(addr, size):
                # hugetlb keeps the head page initialised and marks the tail NOINIT (mm/hugetlb.c).
                mb.setclr_flag(mb.reserved, addr + mb.page_size, size - mb.page_size, True,
                               Flag.MEMBLOCK_RSRV_NOINIT)
        api = op.api if op is not None else ("memblock_alloc_exact_nid_raw" if exact else
                                             "memblock_alloc_try_nid_raw")
        self.requests.append(Request(i, api, size, nid, Subsystem.HUGETLB_GIGANTIC, addr,
                                     op.caller if op is not None else "alloc_bootmem", synth, only))
        self.placed[i] = addr

    # ------------------------------------------------------------ hugetlb_cma

    def cma_skips(self) -> bool:
        """Boot-time gigantic pages are skipped: a CMA area exists and they are not early-CMA pages
        (``hugetlb_hstate_alloc_pages()``, 7.2 mm/hugetlb.c:3609, 7.3 :3636)."""
        return self.cma is not None and self.cma.total > 0 and not self.cma_early()

    def cma_early(self) -> bool:
        """``hugetlb_early_cma()``: ``hugetlb_cma_only=`` survives ``hugetlb_cma_validate_params()`` only with
        areas (7.2 mm/hugetlb_cma.c:281-293, 7.3 :399-411; x86/arm64 have no arch bootmem allocator)."""
        return self.cma_only and self.cma is not None and self.cma.total > 0

    def hugetlb_cma_point(self) -> None:
        """``hugetlb_cma_reserve()``: the areas the command line asks for, unless the trace logged its own."""
        if self.cma_req is None:
            return
        if self.cma_logged:
            self.cma = CmaReservation()  # filled as the logged areas replay
            return
        trace, mb = self.trace, self.mb
        assert trace is not None
        zones = next((o.zones for o in trace.observations if isinstance(o, ZoneRanges)), ())
        arch = trace.context.arch or mb.arch.name
        res = hugetlb_cma_reserve(mb, self.cma_req, self.nodes or (0,), order=hugetlb_cma_order(arch, mb.page_size),
                                  era73=mb.profile.version >= (7, 3), zones=zones)
        self.cma = res
        for text in res.messages:
            self.say(text)
        at = mb.op_index or 0
        for op, addr, size in res.requests:
            api = op.api if op is not None else "memblock_reserve"
            nid = op.nid if op is not None and op.nid is not None else NUMA_NO_NODE
            self.requests.append(Request(at, api, size, nid, Subsystem.HUGETLB_CMA, addr, "cma_alloc_mem"
                                         if op is not None else "cma_declare_contiguous_multi", True,
                                         mb.kho_scratch_only))
        if self.cma_skips() and self._gigantic_hstate():
            self.say("HugeTLB: hugetlb_cma is enabled, skip boot time allocation")

    def _gigantic_hstate(self) -> bool:
        # a 1 GiB hstate exists once a hugepagesz= or default_hugepagesz= of that size was accepted
        if self.trace is None:
            return False
        return hugetlb_params(self.trace.context.cmdline, self.trace.context.arch or self.mb.arch.name
                              ).hstate(GIGANTIC) is not None

    def early_cma_page(self, i: int, size: int, nid: int, exact: bool) -> None:
        """A gigantic page from the areas: ``hugetlb_cma_alloc_bootmem()`` (7.2 mm/hugetlb_cma.c:74-105, 7.3
        :99-120): the node's area, then (not exact) the other bootmem nodes' in order; no memblock allocation."""
        assert self.cma is not None
        key = nid if exact else None
        addr, got = None, nid
        area = self.cma.area(nid)
        if area is not None:
            addr = area.reserve_early(size)
        if addr is None and not exact:
            for a in sorted(self.cma.areas, key=lambda a: a.nid):
                if a.nid == nid or not a.valid:
                    continue
                addr = a.reserve_early(size)
                if addr is not None:
                    got = a.nid
                    break
        if addr is None:
            self.stopped.add(key)
        else:
            self.cma_pages.append((addr, size, got))
            self.got_per_node[nid] = self.got_per_node.get(nid, 0) + 1
            # the tail is still marked NOINIT inside the area's reservation (7.2 :3121, 7.3 :3166-3176)
            self.mb.setclr_flag(self.mb.reserved, addr + self.mb.page_size, size - self.mb.page_size, True,
                                Flag.MEMBLOCK_RSRV_NOINIT)
        self.requests.append(Request(i, "cma_reserve_early", size, nid, Subsystem.HUGETLB_GIGANTIC, addr,
                                     "hugetlb_cma_alloc_bootmem", True, self.mb.kho_scratch_only))
        self.placed[i] = addr

    def _crosses_zones(self, addr: int, size: int) -> bool:
        """7.3: a gigantic page in more than one zone (the trace's Zone ranges) gets no tail NOINIT mark."""
        if not self.mb.profile.hugetlb_noinit_same_zone_only or self.trace is None:
            return False
        zones = next((o.zones for o in self.trace.observations if isinstance(o, ZoneRanges)), ())
        return sum(1 for _, b, e in zones if b < addr + size and addr < e) > 1

    def finish_hugetlb(self, at: int) -> None:
        """End of the hugetlb loop: the attempts the recorded boot did not log, the failure messages."""
        nodes = self.nodes or (0,)
        hreq = self.hreq
        if hreq is not None and not self.cma_skips():
            if hreq.per_node:
                for n, want in hreq.per_node:
                    while n not in self.stopped and self.got_per_node.get(n, 0) < want:
                        self.gigantic(at, GIGANTIC, n, True, None, True)
                    if self.got_per_node.get(n, 0) < want:
                        self.say(f"HugeTLB: allocating {want} of page size 1.00 GiB failed node{n}.  "
                                 f"Only allocated {self.got_per_node.get(n, 0)} hugepages.")
            else:
                while None not in self.stopped and len(self.pages) + len(self.cma_pages) < hreq.total:
                    # round robin over nodes with memory, continuing after the last node used
                    k = nodes.index(self.last_nid) + 1 if self.last_nid in nodes else 0
                    self.gigantic(at, GIGANTIC, nodes[k % len(nodes)], False, None, True)
                got = len(self.pages) + len(self.cma_pages)
                if got < hreq.total:
                    self.say(f"HugeTLB: allocating {hreq.total} of page size 1.00 GiB failed.  "
                             f"Only allocated {got} hugepages.")
        if self.kexec:
            self.scratch_left.append(("hugetlb", self.scratch_free()))
            self.after_hugetlb()

    def _find_nodes(self) -> tuple[int, ...]:
        mb, trace = self.mb, self.trace
        assert trace is not None
        return _nodes(trace, [r.nid for r in mb.memory if r.nid != mb.max_numnodes])

    def decision_points(self, i: int) -> None:
        """The hooks that run before op *i*, in ``start_kernel()``'s order."""
        mb, bp, kexec = self.mb, self.bp, self.kexec
        if kexec and i == bp.populate:
            populate(mb, self.areas)
            # kexec_file put the new kernel's segments inside scratch (kho_locate_mem_hole()).
            for base, size, flags in self.segments:
                mb.reserve_range(base, size, NUMA_NO_NODE, flags)
            self.scratch_left.append(("setup_arch", self.scratch_free()))
        if i == bp.early:
            self.nodes = self._find_nodes()
            if kexec:
                self.early_init()
        if i == bp.hugetlb_cma:
            self.hugetlb_cma_point()
        if i == bp.hugetlb_end:
            self.finish_hugetlb(i)
        if kexec and i == bp.percpu:
            self.scratch_left.append(("memmap", self.scratch_free()))
        if kexec and i == bp.after_percpu and i != bp.kho_init:
            self.scratch_left.append(("percpu", self.scratch_free()))
        if i == bp.kho_init:
            if not self.nodes:
                self.nodes = self._find_nodes()
            if kexec:
                self.scratch_left.append(("kho_memory_init", self.scratch_free()))
                self.kho_memory_init()
            else:
                res = reserve_scratch(mb, self.params, self.nodes, kern_size=self.scratch_kern_size)
                self.scratch_res = res
                for text in res.messages:
                    self.say(text)
                for q in res.requests:
                    self.requests.append(Request(i, q.api, q.size, q.nid, Subsystem.KHO_SCRATCH, q.addr,
                                                 "kho_reserve_scratch", True, False))
                self.areas = res.scratch.areas


def _nodes(trace: Trace, mb_nodes: Sequence[int]) -> tuple[int, ...]:
    if trace.context.nodes:
        return tuple(sorted({n for n, _, _ in trace.context.nodes}))
    return tuple(sorted(set(mb_nodes))) or (0,)


class BootInputs(TypedDict, total=False):
    """What a boot starts from besides its trace, for :func:`execute` and :func:`new_boot`.

    A KHO boot inherits *areas* and starts with *preserved*; *segments* are
    ``(base, size, flags)`` reserved inside scratch at ``kho_populate()``
    (the kexec_file segments); *kho* forces ``kho=`` (None: the command line's).
    """

    areas: tuple[ScratchArea, ...]
    preserved: PreservedSet | None
    segments: tuple[tuple[int, int, int], ...]
    kho: bool | None


def execute(trace: Trace, strategy: Strategy, *, kernel: str | None, arch: str | None, kexec: bool,
            **kw: Unpack[BootInputs]) -> Replayed:
    """Replay *trace* once under *strategy*: a cold boot, or (*kexec*) a KHO boot (:class:`BootInputs`).

    Returns the outcome and the final model.
    """
    boot = new_boot(trace, strategy, kernel=kernel, arch=arch, kexec=kexec, **kw)
    return Replayed(boot.run(), boot.mb)


def new_boot(trace: Trace, strategy: Strategy, *, kernel: str | None, arch: str | None, kexec: bool,
             **kw: Unpack[BootInputs]) -> Boot:
    """The :class:`Boot` that :func:`execute` runs, before its walk (same arguments): for sweeps that run
    a shared prefix once (:meth:`Boot.begin`, :meth:`Boot.walk` to an op) and :meth:`Boot.fork` it per point."""
    kho = kw.get("kho")
    mb = memblock_for(trace, kernel=kernel, arch=arch)
    strategy = kernel_strategy(strategy, mb.profile)
    params = parse_kho_cmdline(trace.context.cmdline)
    if kho is not None:
        # What-if for a kernel without KHO (or booted without kho=on): the trace's own cmdline otherwise.
        params = replace(params, enable=kho)
    return Boot(mb, strategy, kexec, params, (), kw.get("areas", ()), kw.get("preserved"), trace=trace,
                segments=kw.get("segments", ()), kho=kho)


def _outcome(trace: Trace, strategy: Strategy, boot: Boot, kexec: bool, scratch_res: ScratchReservation | None,
             hreq: HugepagesRequest | None, requests: list[Request], scanned: int, memmoves: int,
             panic: str | None) -> Outcome:
    mb = boot.mb
    if kexec:
        scratch = Scratch(True, 0, 0, (), 0, 0, (), tuple(boot.areas), None)
    elif scratch_res is not None:
        scratch = scratch_res.scratch
    else:
        scratch = Scratch(False, 0, 0, (), 0, 0, (), (), None)
    areas = [(a.base, a.end) for a in scratch.areas] if kexec else []

    def overlaps(b: int, e: int, ranges: Sequence[tuple[int, int]]) -> bool:
        return any(s < e and b < t for s, t in ranges)

    pages = boot.pages + boot.cma_pages
    per_node: dict[int, int] = {}
    for _, _, n in pages:
        per_node[n] = per_node.get(n, 0) + 1
    in_scratch = sum(1 for b, s, _ in pages if overlaps(b, b + s, areas))
    in_ext = sum(1 for b, s, _ in pages if overlaps(b, b + s, boot.ext_runs) and not overlaps(b, b + s, areas))
    requested = hreq.total if hreq is not None else sum(1 for r in requests if r.subsystem is
                                                        Subsystem.HUGETLB_GIGANTIC and not r.synthesized)
    gig = Gigantic(requested, len(pages), tuple(sorted(per_node.items())), per_node.get(NUMA_NO_NODE, 0),
                   in_scratch, in_ext, boot.adopted_used, tuple(b for b, _, _ in pages))
    msgs_tail = [f"HugeTLB: registered 1.00 GiB page size, pre-allocated {len(pages)} pages"] if pages else []
    # One list in boot order: the engine's warnings and the boot's own lines, by op index.
    lines = [(m.op_index or 0, m.text) for m in mb.messages if m.level != "dbg"] + boot.messages
    lines.sort(key=lambda x: x[0])
    preserved = boot.preserved.total if boot.preserved is not None else 0
    return Outcome(
        source=trace.context.source,
        strategy=strategy.name + "".join(f"+{o}" for o in sorted(strategy.options)),
        boot="kexec" if kexec else "cold",
        kho_boot=kexec,
        scratch=scratch,
        gigantic=gig,
        rsrv_kern=mb.reserved_kern_size(),
        rsrv_hugetlb=mb.reserved_hugetlb_size(),
        preserved_bytes=preserved,
        estimated_nr_free_pages=mb.estimated_nr_free_pages(),
        max_threads=mb.max_threads(),
        reserved_cnt_peak=mb.reserved.peak_cnt,
        reserved_cnt_final=mb.reserved.cnt,
        doublings=tuple(mb.doublings),
        scratch_left=tuple(boot.scratch_left),
        extended_bytes=boot.extended_bytes,
        messages=tuple([text for _, text in lines] + msgs_tail),
        cost=Cost(scanned, memmoves, boot.digest_keys),
        requests=tuple(requests),
        panic=panic,
        hugetlb_cma=tuple((a.nid, b, sz) for a in (boot.cma.areas if boot.cma is not None else ()) if a.valid
                          for b, sz in a.ranges),
    )


def _strategy(s: Strategy | str, options: Sequence[str]) -> Strategy:
    return get(s, tuple(options)) if isinstance(s, str) else s


def replay_cold(trace: Trace, strategy: Strategy | str = "baseline", *, options: Sequence[str] = (),
                kernel: str | None = None, arch: str | None = None, kho: bool | None = None) -> Replayed:
    """Re-execute *trace* as a cold boot under *strategy* (name or object): outcome and final model.

    ``kho=`` and ``kho_scratch=`` come from the trace's command line; without
    ``kho=on`` there is no scratch (the trace kernel's default is unknown);
    *kho* overrides it, e.g. to synthesize ``kho_reserve_scratch()`` for a
    kernel built without KHO (it runs just before ``memblock_free_all()``).
    """
    return execute(trace, _strategy(strategy, options), kernel=kernel, arch=arch, kexec=False, kho=kho)


class ColdOptions(TypedDict, total=False):
    """The keyword arguments of :func:`replay_cold`, for :func:`run_cold`."""

    options: Sequence[str]
    kernel: str | None
    arch: str | None
    kho: bool | None


class KexecOptions(ColdOptions, total=False):
    """The keyword arguments of :func:`replay_kexec`, for :func:`run_kexec`."""

    preserve: str | PreserveSpec | PreservedSet
    seed: int
    second: Trace | None
    scratch_from: Strategy | str | None


def run_cold(trace: Trace, strategy: Strategy | str = "baseline", **kw: Unpack[ColdOptions]) -> Outcome:
    """The outcome of :func:`replay_cold` (same arguments)."""
    return replay_cold(trace, strategy, **kw).outcome


def replay_kexec(
    trace: Trace,
    strategy: Strategy | str = "baseline",
    *,
    preserve: str | PreserveSpec | PreservedSet = "hugetlb",
    options: Sequence[str] = (),
    kernel: str | None = None,
    arch: str | None = None,
    seed: int = 0,
    second: Trace | None = None,
    scratch_from: Strategy | str | None = None,
    kho: bool | None = None,
) -> tuple[Replayed, Replayed]:
    """The cold boot of *trace*, then the KHO boot that runs the same requests after it.

    The KHO boot inherits the cold boot's scratch areas and starts with the
    preserved set *preserve* (``hugetlb``, ``memfd:SIZE[:FOLIO]``, ``log`` with
    *second* a real second-kernel trace, or a :class:`PreservedSet`).  With
    *second*, the kexec segments it shows inside the inherited scratch are
    reserved at ``kho_populate()`` (:func:`kexec_segments`).  When the
    cold boot disabled KHO, the following kexec is a plain one: the second
    outcome is a cold boot marked ``boot="kexec"``, ``kho_boot=False``.
    *scratch_from* names another strategy whose cold boot provides the
    scratch areas (a what-if: baseline's KHO boot after a first kernel that
    did reserve scratch); the returned cold outcome is then that one.

    :raises KhoReplayError: for a bad preserve spec.
    """
    s = _strategy(strategy, options)
    first = s if scratch_from is None else _strategy(scratch_from, ())
    first_boot = execute(trace, first, kernel=kernel, arch=arch, kexec=False, kho=kho)
    inputs = handover(first_boot, s, preserve=preserve, seed=seed, second=second)
    if inputs is None:
        return first_boot, plain_kexec(first_boot)
    return first_boot, execute(trace, s, kernel=kernel, arch=arch, kexec=True, kho=kho, **inputs)


def plain_kexec(first: Replayed) -> Replayed:
    """The boot after a cold boot that reserved no scratch: a plain kexec, a cold boot of its own.

    Its outcome is *first*'s, marked ``boot="kexec"``, ``kho_boot=False``.
    """
    return Replayed(replace(first.outcome, boot="kexec", kho_boot=False), first.model)


def handover(first: Replayed, strategy: Strategy, *, preserve: str | PreserveSpec | PreservedSet = "hugetlb",
             seed: int = 0, second: Trace | None = None) -> BootInputs | None:
    """What the KHO boot after the cold boot *first* starts from under *strategy*: its scratch areas, the
    preserved set *preserve* and the kexec segments *second* shows (:func:`replay_kexec`).

    None when *first* reserved no scratch (the next kexec is a plain one, :func:`plain_kexec`).

    :raises KhoReplayError: for a bad preserve spec.
    """
    cold, cmb = first
    if not cold.scratch.enabled:
        return None
    areas = cold.scratch.areas
    only_hugetlb = False
    if isinstance(preserve, PreservedSet):
        pset = preserve
    else:
        spec = preserve if isinstance(preserve, PreserveSpec) else PreserveSpec.parse(preserve)
        only_hugetlb = spec.kind is PreserveKind.HUGETLB
        gig = [(b, GIGANTIC) for b in cold.gigantic.addrs]
        free = [(st, en) for st, en, _ in for_each_free_mem_range(cmb.memory, cmb.reserved, lambda m: False)
                ] if spec.kind is PreserveKind.MEMFD else []  # only memfd folios are scattered over free memory
        pset = parse_preserve(spec, gigantic=gig, free_ranges=free, trace=second, seed=seed)
    if strategy.adopt_preserved_gigantic and not only_hugetlb and cold.gigantic.addrs:
        # Alternative 3 preserves every gigantic page in addition to whatever else is preserved.
        extra = tuple((b, GIGANTIC) for b in cold.gigantic.addrs)
        pset = PreservedSet(pset.source + "+hugetlb", tuple(sorted(set(pset.blocks) | set(extra),
                                                                  key=lambda b: (-b[1], b[0]))))
    if not isinstance(pset, PreservedSet):
        raise KhoReplayError("internal: no preserved set")
    segs = kexec_segments(second, areas) if second is not None else ()
    return BootInputs(areas=areas, preserved=pset, segments=segs)


def run_kexec(trace: Trace, strategy: Strategy | str = "baseline",
              **kw: Unpack[KexecOptions]) -> tuple[Outcome, Outcome]:
    """The outcomes of :func:`replay_kexec` (same arguments): the cold boot and the KHO boot after it."""
    cold, kx = replay_kexec(trace, strategy, **kw)
    return cold.outcome, kx.outcome


@dataclass(frozen=True, slots=True)
class SecondKernelCheck:
    """A real second-kernel log against the KHO boot synthesized from the first kernel's log.

    ``real`` replays the second kernel's own requests, ``synthesized`` the
    first kernel's requests, both as KHO boots with the scratch of the cold
    replay and the preserved set of the second log (the synthesized one also
    gets the kexec segments the second log shows inside scratch); ``vs_synth`` compares
    their scratch-only placements, ``vs_recorded`` compares ``real`` with the
    addresses the second kernel logged.
    """

    cold: Outcome
    real: Outcome
    synthesized: Outcome
    vs_synth: Agreement
    vs_recorded: Agreement


def kexec_segments(second: Trace, areas: Sequence[ScratchArea]) -> tuple[tuple[int, int, int], ...]:
    """What a real second kernel reserved inside scratch before its first allocation.

    These are the kexec_file segments ``kho_locate_mem_hole()`` put in scratch
    (the image and its brk, initrd, setup_data, the scratch array), as
    ``(base, size, flags)``; the first kernel's log cannot know them.  A
    second kernel that was not a KHO boot (no scratch-only phase) gives none.
    """
    if not any(isinstance(op, KhoScratchOnly) and op.on for op in second.ops):
        return ()
    first_alloc = next((i for i, op in enumerate(second.ops) if isinstance(op, Alloc)), len(second.ops))
    segs = []
    for op in second.ops[:first_alloc]:
        if not isinstance(op, Reserve | ReserveKern):
            continue
        if not any(a.base <= op.base and op.base + op.size <= a.end for a in areas):
            continue
        if isinstance(op, ReserveKern):
            flags = int(Flag.MEMBLOCK_RSRV_KERN)
        else:
            flags = int(op.flags) if op.flags is not None else 0
        segs.append((op.base, op.size, flags))
    return tuple(segs)


def _recorded(trace: Trace, like: Outcome) -> Outcome:
    # The logged addresses of the second kernel's requests, shaped as an Outcome for agreement().
    reqs = []
    for r in like.requests:
        op = trace.ops[r.op_index]
        addr = op.expect if isinstance(op, Alloc) and isinstance(op.expect, int) else None
        reqs.append(replace(r, addr=addr))
    return replace(like, requests=tuple(reqs))


def check_second_kernel(first: Trace, second: Trace, strategy: Strategy | str = "baseline", *,
                        kernel: str | None = None, arch: str | None = None) -> SecondKernelCheck:
    """Replay a real KHO boot and the one synthesized from the first kernel, and compare them.

    Requests whose logged result is unknown count as disagreeing in ``vs_recorded``.
    """
    s = _strategy(strategy, ())
    cold, _ = execute(first, s, kernel=kernel, arch=arch, kexec=False)
    if not cold.scratch.enabled:
        raise KhoReplayError(f"{first.context.source}: the cold boot reserved no scratch; nothing to hand over")
    areas = cold.scratch.areas
    pset = parse_preserve("log", trace=second)
    real, _ = execute(second, s, kernel=kernel, arch=arch, kexec=True, areas=areas, preserved=pset)
    # What the second kernel reserved inside scratch before its first allocation: the kexec segments
    # (its image and brk, initrd, setup_data, the scratch array).  The first kernel's log cannot know them.
    segs = kexec_segments(second, areas)
    synth, _ = execute(first, s, kernel=kernel, arch=arch, kexec=True, areas=areas, preserved=pset,
                        segments=segs)
    return SecondKernelCheck(cold, real, synth, agreement(real, synth), agreement(real, _recorded(second, real)))


def replay_pair(first: Trace, second: Trace, strategy: Strategy | str = "baseline") -> tuple[Replayed, Replayed]:
    """Replay two real boots to compare them: *first* as a cold boot, *second* as what it was.

    A *second* that was a KHO boot (its log shows the scratch-only phase) is
    replayed as one, inheriting *first*'s scratch and the memory its log
    shows preserved, as :func:`check_second_kernel` does; any other is a
    cold boot of its own.

    :raises KhoReplayError: when *second* is a KHO boot but *first* reserved no scratch.
    """
    s = _strategy(strategy, ())
    ra = execute(first, s, kernel=None, arch=None, kexec=False)
    a = ra.outcome
    if any(isinstance(op, KhoScratchOnly) and op.on for op in second.ops):
        if not a.scratch.enabled:
            raise KhoReplayError(f"{second.context.source} is a KHO boot, but {first.context.source} "
                                 "reserved no scratch to hand over")
        areas = a.scratch.areas
        rb = execute(second, s, kernel=None, arch=None, kexec=True, areas=areas,
                     preserved=parse_preserve("log", trace=second), segments=kexec_segments(second, areas))
    else:
        rb = execute(second, s, kernel=None, arch=None, kexec=False)
    return ra, rb
