# SPDX-License-Identifier: GPL-2.0-only
"""Calls a ``memblock=debug`` log never prints, inferred from the lines around them.

A boot model, kept apart from the line reader: per-arch knowledge of which silent
calls (``memblock_set_current_limit()``, ``memblock_allow_resize()``,
``memblock_set_node()``, phase markers, CMA's and KHO's direct
``memblock_alloc_range_nid()`` calls) happen around which logged ones, and the
state seeded from the first ``MEMBLOCK configuration:`` dump.  Every op it adds
carries its reason.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

from kho_replay.replay.flags import Flag
from kho_replay.replay.ops import (
    FAILED,
    MEMORY_FLAGS,
    NUMA_NO_NODE,
    Add,
    Alloc,
    AllowResize,
    Clear,
    Free,
    KhoExtendScratch,
    KhoScratchArea,
    KhoScratchOnly,
    Mark,
    MemblockDump,
    MovableNode,
    NodeRanges,
    Op,
    Phase,
    Reserve,
    SetBottomUp,
    SetCurrentLimit,
    SetNode,
    caller_function,
)
from kho_replay.replay.profile import arch_for
from kho_replay.replay.ranges import subtract

from .grammar import (
    ARM64_DMA_PHYS_LIMIT,
    CMA_LINE,
    CMA_MIN_ALIGNMENT_BYTES,
    CMA_MULTI_LINE,
    HUGETLB_BOOTMEM_CALLERS,
    HUGETLB_CMA_ALIGN,
    ISA_END_ADDRESS,
    KHO_EARLY_CALLERS,
    KHO_INIT_CALLERS,
    KHO_RADIX_FREE_CALLERS,
    NODE_DATA_LINE,
    PAGE_SIZE,
    SCRATCH_ALIGNMENT_BYTES,
    SZ_1M,
    SZ_4G,
    ULLONG_MAX,
)
from .prefixes import Line


class HiddenOps:
    """Mixin of :class:`~.reader.ConsoleReader`: the inferred half of reading a log."""

    # --- seeding from the first dump

    def _seed_from(self, dump: MemblockDump) -> None:
        """Regions the first dump holds that no earlier line explains were there before the log began."""
        memory_cover: list[tuple[int, int]] = []
        marked: list[tuple[int, int, int]] = []
        reserved_cover: list[tuple[int, int]] = []
        for op in self.ops:
            if isinstance(op, Add):
                memory_cover.append((op.base, op.base + op.size))
            elif isinstance(op, Mark):
                marked.append((op.base, op.base + op.size, int(op.flag)))
            elif isinstance(op, Reserve):
                reserved_cover.append((op.base, op.base + op.size))
            elif isinstance(op, Alloc) and isinstance(op.expect, int):
                reserved_cover.append((op.expect, op.expect + op.size))
            elif isinstance(op, Free):
                # a logged free of something never logged as reserved: keep it explainable
                pass
        seeds: list[Op] = []
        src = dump.src
        why_mem = "in memory before memblock=debug took effect (first MEMBLOCK configuration dump)"
        why_res = "reserved before memblock=debug took effect (first MEMBLOCK configuration dump)"
        scratch_seen = False
        for r in dump.memory:
            if r.size == 0:
                continue
            flags = Flag(r.flags) & MEMORY_FLAGS
            explained = all(
                any(b <= r.base and r.end <= e and f == bit for b, e, f in marked) for bit in _bits(flags)
            )
            # memory the log never added came from firmware before it began, in one piece: seed the
            # whole region (re-adding what a later line adds again is a no-op in memblock_add_range())
            if (flags and not explained) or subtract([(r.base, r.end)], memory_cover):
                seeds.append(Add(r.base, r.size, inferred=why_mem, src=src))
            if flags and not explained:
                for bit in _bits(flags):
                    seeds.append(Mark(Flag(bit), r.base, r.size, inferred=why_mem, src=src))
                    if bit == Flag.MEMBLOCK_KHO_SCRATCH:
                        scratch_seen = True
                        self.kho_inherited.append((r.base, r.size))
        for r in dump.reserved:
            if r.size == 0:
                continue
            for b, e in subtract([(r.base, r.end)], reserved_cover):
                if self.era and self.era.reserve_fn == "__memblock_reserve":
                    seeds.append(Reserve(b, e - b, NUMA_NO_NODE, Flag(r.flags), inferred=why_res, src=src))
                else:
                    seeds.append(Reserve(b, e - b, inferred=why_res, src=src))
        if scratch_seen:
            seeds.append(KhoScratchOnly(True, inferred="kho_populate() found handover data before the log began: "
                                        "allocations come from KHO scratch only", src=src))
            self.scratch_only = True
            self.facts.append(("kho_boot", "second kernel (inherited KHO scratch areas)"))
        if not seeds:
            return
        self.ops[0:0] = seeds
        self.obs = [dataclasses.replace(o, at=o.at + len(seeds)) for o in self.obs]
        self.mem_end = max([self.mem_end] + [s.base + s.size for s in seeds if isinstance(s, Add)])

    def _orphan_alloc(self, idx: int, ln: Line, base: int, size: int, nid: int | None, caller: str) -> None:
        """A reservation from memblock_alloc_range_nid() with no API line: rebuild the request."""
        src = self._src(ln)
        ahead = [x.text for x in self._ahead(idx)]
        req_nid = NUMA_NO_NODE if nid is None else nid
        node_data = next((t for t in ahead if NODE_DATA_LINE.match(t)), None)
        cma = next((t for t in ahead if CMA_LINE.match(t) or CMA_MULTI_LINE.match(t)), None)
        if node_data:
            nd_nid = int(node_data[len("NODE_DATA("):].split(")", 1)[0])
            self._numa_setup(ln)
            why = "alloc_node_data(): memblock_phys_alloc_try_nid() prints no debug line (NODE_DATA line)"
            self._emit(Alloc("memblock_phys_alloc_try_nid", size, align=64, nid=nd_nid,
                             expect=base, caller=caller, inferred=why, src=src))
            return
        if cma:
            # hugetlb_cma (cma_declare_contiguous_multi()) aligns to the gigantic page, cma= to CMA's minimum
            align = HUGETLB_CMA_ALIGN if CMA_MULTI_LINE.match(cma) else CMA_MIN_ALIGNMENT_BYTES
            self._cma_alloc(ln, base, size, req_nid, caller, align)
            return
        if self.last_alloc_func in ("kho_reserve_scratch", "kho_memory_init") and req_nid != NUMA_NO_NODE:
            why = "kho_reserve_scratch(): per-node scratch via memblock_alloc_range_nid(exact_nid)"
            self._emit(Alloc("memblock_alloc_range_nid", size, align=SCRATCH_ALIGNMENT_BYTES, nid=req_nid,
                             min_addr=0, max_addr=0, exact=True, expect=base, caller=caller, inferred=why, src=src))
            return
        why = "reservation from memblock_alloc_range_nid() with no API line and no known caller"
        align = base & -base if base else 1
        self._emit(Alloc("memblock_phys_alloc_try_nid", size, align=min(align, 1 << 30), nid=req_nid,
                         expect=base, caller=caller, inferred=why, src=src))
        self._skip(ln, "allocation without API line from an unknown caller (request guessed)")

    def _cma_alloc(self, ln: Line, base: int, size: int, nid: int, caller: str,
                   align: int = CMA_MIN_ALIGNMENT_BYTES) -> None:
        """mm/cma.c cma_alloc_mem(): bottom-up from 4G first when the limit allows, then top-down."""
        src = self._src(ln)
        limit = self.mem_end
        if self.arch == "arm64" and nid == NUMA_NO_NODE:
            # arm64 dma_contiguous_reserve(arm64_dma_phys_limit) for the global area
            limit = min(limit, self.dma_limit or ARM64_DMA_PHYS_LIMIT)
        why = "cma_alloc_mem(): direct memblock_alloc_range_nid() (cma: Reserved line)"
        if limit >= SZ_4G + size:
            self._emit(SetBottomUp(True, inferred="cma_alloc_mem(): bottom-up try above 4G", src=src))
            self._emit(Alloc("memblock_alloc_range_nid", size, align=align, nid=nid,
                             min_addr=SZ_4G, max_addr=limit, exact=True,
                             expect=base if base >= SZ_4G else FAILED, caller=caller, inferred=why, src=src))
            self._emit(SetBottomUp(False, inferred="cma_alloc_mem(): back to top-down", src=src))
            if base >= SZ_4G:
                return
        self._emit(Alloc("memblock_alloc_range_nid", size, align=align, nid=nid,
                         min_addr=0, max_addr=limit, exact=True, expect=base, caller=caller, inferred=why, src=src))

    # --- hidden state around logged calls

    def _hidden_before(self, ln: Line, caller: str | None) -> None:
        func = caller_function(caller)
        if not (_may_hide(func) or self.hugetlb_open or self.x86_limit_pending or self.arm64_resize_pending):
            return  # nothing below acts on this caller, and no silent call is due (most lines of a log)
        self._phases(ln, func)
        self._kho_memory_init_early(ln, func)
        if self.arch == "x86_64":
            if func == "e820__memblock_setup" and not (self.limit_out
                                                        or any(isinstance(o, SetCurrentLimit) for o in self.ops)):
                if "movable_node" in self.cmdline.split():
                    self.bottom_up = True
                    self._infer(MovableNode, True, ln=ln, why="movable_node on the command line")
                    self._infer(SetBottomUp, True, ln=ln, why="x86 e820__memblock_setup(): movable_node "
                                "allocates bottom-up near the kernel until SRAT is parsed")
                self._infer(SetCurrentLimit, ISA_END_ADDRESS, ln=ln,
                            why="x86 e820__memblock_setup(): memblock_set_current_limit(ISA_END_ADDRESS)")
                self._infer(AllowResize, ln=ln, why="x86 e820__memblock_setup(): memblock_allow_resize()")
            if func in ("init_mem_mapping", "alloc_low_pages"):
                self.x86_limit_pending = True
            elif self.x86_limit_pending:
                self.x86_limit_pending = False
                self._infer(SetCurrentLimit, self.mem_end, ln=ln,
                            why="x86 setup_arch(): memblock_set_current_limit(get_max_mapped()) "
                                "after init_mem_mapping()")
            if func == "alloc_bootmem_cpumask_var" or (func and "numa" in func):
                self._numa_setup(ln)
        elif self.arch == "arm64":
            if func == "early_pgtable_alloc":
                self.arm64_resize_pending = True
            elif self.arm64_resize_pending:
                self.arm64_resize_pending = False
                self._infer(AllowResize, ln=ln, why="arm64 paging_init(): memblock_allow_resize()")

    def _phases(self, ln: Line, func: str) -> None:
        """Phase markers strategies hook: KHO memory init and the hugetlb boot-time allocations."""
        src = self._src(ln)
        if func in KHO_INIT_CALLERS and "kho_memory_init" not in self.phases_seen:
            self.phases_seen.add("kho_memory_init")
            self._emit(Phase("kho_memory_init", inferred=f"first memblock call from {func}()", src=src))
            if func != "kho_preserved_memory_reserve" and not self.scratch_only:
                self.phases_seen.add("kho_reserve_scratch")
                self._emit(Phase("kho_reserve_scratch", inferred="a first kernel reserves its scratch areas "
                                 "in kho_memory_init()", src=src))
        if func in HUGETLB_BOOTMEM_CALLERS:
            if not self.hugetlb_open:
                self.hugetlb_open = True
                self._emit(Phase("hugetlb_bootmem_begin", inferred=f"first gigantic page request from {func}()",
                                 src=src))
        elif self.hugetlb_open:
            self._close_hugetlb(ln)

    # --- 7.3 kho_memory_init_early() on a KHO boot

    def _kho_memory_init_early(self, ln: Line, func: str) -> None:
        """``kho_scratch[]`` set before its first allocation, the extension marks before the tree's frees."""
        if func in KHO_EARLY_CALLERS and not self.kho_early and self.scratch_only:
            self.kho_early = True
            for base, size in self.kho_inherited:
                self._infer(KhoScratchArea, base, size, ln=ln,
                            why="kho_memory_init_early(): kho_scratch[] points at the inherited scratch areas")
        elif func in KHO_RADIX_FREE_CALLERS:
            self._extend_scratch(ln)

    def _extend_scratch(self, ln: Line) -> None:
        """kho_extend_scratch() marks the non-busy 1 GiB blocks (silently) before it frees its busy tree."""
        if not self.kho_early or self.extend_at >= 0:
            return
        if self.profile is not None and not self.profile.kho_boot_extends_scratch:
            return
        # imported here: a boot that is no 7.3 KHO boot (parse above all) never loads KHO's code and the model's
        from kho_replay.replay.kho.preserve import KHO_SCRATCH_EXT_BLKSIZE, PreservedSet, busy_blocks

        busy = busy_blocks(PreservedSet("log", tuple(self.preserved_ranges)), KHO_SCRATCH_EXT_BLKSIZE)
        self.extend_at = self._at()
        self._infer(KhoExtendScratch, tuple(b * KHO_SCRATCH_EXT_BLKSIZE for b in busy), ln=ln,
                    why="kho_extend_scratch(): 1 GiB blocks with no kho_preserved_memory_reserve memory "
                        "become KHO_SCRATCH (prints nothing)")

    def _before_node_ranges(self, ln: Line) -> None:
        """free_area_init() runs after kho_memory_init_early(): the extension happened by now."""
        self._extend_scratch(ln)

    def _complete_extension(self) -> None:
        """Busy blocks the preserved reservations do not show (pages of the incoming radix tree, never
        logged) show as boundaries in ``Early memory node ranges``: add the fewest that explain them."""
        if self.extend_at < 0:
            return
        op = self.ops[self.extend_at - self.op_base]
        listing = next((o for o in self.obs if isinstance(o, NodeRanges) and o.at > self.extend_at), None)
        dump = next((o for o in reversed(self.obs) if isinstance(o, MemblockDump) and o.at <= self.extend_at),
                    None)
        if listing is None or dump is None or not isinstance(op, KhoExtendScratch):
            return
        from kho_replay.replay.kho.preserve import KHO_SCRATCH_EXT_BLKSIZE

        want = [(b, e) for _, b, e in listing.ranges]
        busy = {b // KHO_SCRATCH_EXT_BLKSIZE for b in op.busy}

        def misses(blocks: set[int]) -> list[int]:
            got = _ranges_after_extension(dump, blocks, PAGE_SIZE)
            return sorted({x for b, e in want for x in (b, e)} ^ {x for b, e in got for x in (b, e)})

        wrong = misses(busy)
        while wrong:
            # a boundary at a 1 GiB multiple the model lacks: one of the two blocks around it is busy
            edge = next((x for x in wrong if x % KHO_SCRATCH_EXT_BLKSIZE == 0), None)
            if edge is None:
                return
            k = edge // KHO_SCRATCH_EXT_BLKSIZE
            tries = [(len(misses(busy | {c})), c) for c in (k - 1, k) if c >= 0 and c not in busy]
            if not tries or min(tries)[0] >= len(wrong):
                return
            busy.add(min(tries)[1])
            wrong = misses(busy)
        why = (op.inferred or "") + "; busy blocks completed by the Early memory node ranges listing"
        self.ops[self.extend_at - self.op_base] = dataclasses.replace(
            op, busy=tuple(b * KHO_SCRATCH_EXT_BLKSIZE for b in sorted(busy)),
            inferred=why if busy != {b // KHO_SCRATCH_EXT_BLKSIZE for b in op.busy} else op.inferred)

    def _close_hugetlb(self, ln: Line) -> None:
        if self.hugetlb_open:
            self.hugetlb_open = False
            self._emit(Phase("hugetlb_bootmem_end", inferred="first memblock call after the gigantic page "
                             "requests", src=self._src(ln)))

    def _hidden_after(self, ln: Line, func: str) -> None:
        # AFTER_CALLERS are the funcs tested here: the reader calls this for those alone
        if func == "kho_preserved_memory_reserve" and self.ops and isinstance(self.ops[-1], Reserve):
            last = self.ops[-1]
            self._infer(Mark, Flag.MEMBLOCK_RSRV_NOINIT, last.base, last.size, ln=ln,
                        why="kho_preserved_memory_reserve(): memblock_reserved_mark_noinit()")
        if (self.arch == "x86_64" and func == "reserve_real_mode" and self.era
                and self.era.x86_lowmem_scratch and self.ops and isinstance(self.ops[-1], Reserve)):
            self._infer(Clear, Flag.MEMBLOCK_KHO_SCRATCH, 0, SZ_1M, ln=ln,
                        why="x86 reserve_real_mode(): memblock_clear_kho_scratch(0, SZ_1M)")

    def _numa_setup(self, ln: Line) -> None:
        """numa_memblks_init() + numa_register_meminfo(): node ids on memory and reserved."""
        if self.numa_done or not self.nodes:
            return
        self.numa_done = True
        reset = NUMA_NO_NODE
        if self.era is not None and self.era.numa_reset_to_max:
            reset = arch_for(self.arch or "x86_64").max_numnodes
        why = "numa_memblks_init(): reset node ids before parsing the firmware's NUMA layout"
        self._infer(SetNode, 0, ULLONG_MAX, reset, ln=ln, why=why)
        self._infer(SetNode, 0, ULLONG_MAX, reset, True, ln=ln, why=why)
        if self.arch == "x86_64" and self.bottom_up:
            self.bottom_up = False
            self._infer(SetBottomUp, False, ln=ln, why="x86 numa_memblks_init(memblock_force_top_down=true)")
        for nid, (b, e) in sorted(self.nodes.items()):
            self._infer(SetNode, b, e - b, nid, ln=ln, why="numa_register_meminfo(): memblock_set_node(memory)")
        for nid, (b, e) in sorted(self.nodes.items()):
            self._infer(SetNode, b, e - b, nid, True, ln=ln,
                        why="numa_clear_kernel_node_hotplug(): memblock_set_node(reserved)")

#: The callers _hidden_after() acts on (the others: nothing to do after their line)
AFTER_CALLERS = frozenset({"kho_preserved_memory_reserve", "reserve_real_mode"})
#: The callers _hidden_before() acts on whatever the state (the others only end a pending state)
_HIDING_CALLERS = (KHO_INIT_CALLERS | HUGETLB_BOOTMEM_CALLERS | KHO_EARLY_CALLERS | KHO_RADIX_FREE_CALLERS
                   | {"e820__memblock_setup", "init_mem_mapping", "alloc_low_pages", "alloc_bootmem_cpumask_var",
                      "early_pgtable_alloc"})


@lru_cache(maxsize=1 << 12)  # a boot prints a few hundred distinct callers, each on many lines
def _may_hide(func: str) -> bool:
    """Can a call from *func* come with silent calls of its own (see HiddenOps._hidden_before)?"""
    return func in _HIDING_CALLERS or "numa" in func


def _ranges_after_extension(dump: MemblockDump, busy: set[int], page_size: int) -> list[tuple[int, int]]:
    """memory[] of *dump* after ``kho_extend_scratch()`` with *busy* blocks, as the node-range listing
    prints it (whole pages), computed by the code the ``kho_extend_scratch`` op runs."""
    from kho_replay.replay.kho.preserve import mark_free_runs
    from kho_replay.replay.memblock.engine import Memblock

    mb = Memblock.for_kernel("7.3")
    for r in dump.memory:
        if r.size:
            mb.add_range(mb.memory, r.base, r.size, r.nid if r.nid != NUMA_NO_NODE else mb.max_numnodes, r.flags)
    mark_free_runs(mb, sorted(busy), Flag.MEMBLOCK_KHO_SCRATCH)
    out = []
    for r in mb.memory:
        b, e = -(-r.base // page_size) * page_size, r.end // page_size * page_size
        if b < e:
            out.append((b, e))
    return out


def _bits(flags: int) -> list[int]:
    return [1 << i for i in range(flags.bit_length()) if flags >> i & 1]
