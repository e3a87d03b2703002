# SPDX-License-Identifier: GPL-2.0-only
"""Build a host's op stream from a template boot of the same kernel build and the host's plain log.

One kernel build makes the same memblock calls on every machine, in the same
order, up to a few quantities the machine decides.  :func:`retarget` walks the
template's ops once, running the plain model for the host as it goes, and for
each op either copies it (a build constant), or rewrites it from the host's
own lines, or from a kernel formula:

* memory layout: ``e820__memblock_setup()``'s adds are the host's e820 RAM
  after its printed ``e820: update/remove`` lines; ``get_max_mapped()`` and the
  init_mem_mapping() windows follow the host's top of RAM;
* NUMA: one ``memblock_set_node()`` per host node (``Initmem setup node``), one
  ``NODE_DATA`` allocation per node at the printed address;
* firmware: ACPI table reservations, the SMP MP-table and ``RAMDISK:`` as the
  host printed them; the other pre-``memblock=debug`` reservations (real-mode
  and BIOS areas) are assumed to be the template's;
* the kernel image (and everything reserved inside it, e.g. ``brk``) at
  ``/proc/iomem``'s ``Kernel code``, else at the template's address (an
  assumption the result states);
* sizes that scale: memmap (``sparse_init()``: one mem_section root per
  256 sections, one usemap block per node of 88 bytes... per section as the
  template shows, one 2 MiB vmemmap block per present 128 MiB section, a PMD
  page per new 1 GiB of vmemmap), hash tables (the host's ``hash table
  entries`` lines), swiotlb (``software IO TLB: mapped``), crashkernel, CMA,
  gigantic pages (the host's ``hugepages=``, with the kernel's
  stop-at-first-failure loop) and the KHO scratch areas (``kho_reserve_scratch()``
  sizing on the host's own accounting);
* everything else (percpu, early small allocations) is the template's, and a
  fixed-address op inside an allocation follows that allocation (:mod:`..kho.link`).

This module walks the template and rewrites layout, firmware and kernel-image
ops; the routines whose calls scale with the machine are in :mod:`.scaled`.

Every op says where it came from in its ``# inferred:`` reason (``retarget:
template console.log:123``, ``retarget: host dmesg.txt:45``, ``retarget:
formula ...``), after the template's own reason when it had one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from kho_replay.parsers.console.grammar import stated_kib
from kho_replay.parsers.plain import Iomem, PlainBoot

from ..errors import KhoReplayError
from ..flags import Flag
from ..memblock.engine import Memblock
from ..ops import (
    NUMA_NO_NODE,
    Add,
    Alloc,
    Free,
    KernelMessage,
    Mark,
    Observation,
    Op,
    Phase,
    Reserve,
    ReserveKern,
    SetCurrentLimit,
    SetNode,
    Src,
    Trace,
)
from ..profile import arch_for, profile_for
from . import scaled
from .scaled import GIGANTIC, caller_fn, why_text

__all__ = ["BuildMismatch", "Retargeted", "retarget"]



class BuildMismatch(KhoReplayError):
    """The host's log is not of the template's kernel build."""


@dataclass(frozen=True, slots=True)
class Retargeted:
    """The host's predicted boot: a Trace whose ops carry their origin, and what was assumed."""

    trace: Trace
    assumptions: tuple[str, ...]
    host: PlainBoot
    template: str
    #: how many ops came from each origin kind (template, host, formula).
    origins: tuple[tuple[str, int], ...] = ()


@dataclass
class _Builder:
    template: Trace
    host: PlainBoot
    tplain: PlainBoot | None
    iomem: Iomem | None
    tiomem: Iomem | None
    mb: Memblock
    out: list[Op] = field(default_factory=list)
    assume: list[str] = field(default_factory=list)
    placed: dict[int, int | None] = field(default_factory=dict)
    #: template op index -> index of the first host op emitted for it.
    where: dict[int, int] = field(default_factory=dict)
    #: page-table pages init_mem_mapping() takes beyond (or below) the template's count.
    low_pages_delta: int = 0
    low_pages_seen: int = 0
    #: NODE_DATA allocations that did not land where the host printed them.
    node_data_misses: int = 0

    def emit(self, op: Op, origin: str, *, keep_reason: Op | None = None) -> int | None:
        src = keep_reason if keep_reason is not None else op
        op = replace(op, inferred=why_text(src, origin), src=Src("retarget", len(self.out) + 1))
        if isinstance(op, Alloc):
            # the reservation's nid and flags the template printed are the template's, not the host's
            op = replace(op, res_nid=None, res_flags=None)
        self.out.append(op)
        self.mb.op_index = len(self.out) - 1
        return self.mb.apply(op)

    def tsrc(self, op: Op) -> str:
        return f"template {op.src}" if op.src is not None else "template"

    def hsrc(self, line: int) -> str:
        return f"host {self.host.source}:{line}"


def _top_of_ram(ranges: list[tuple[int, int, int]]) -> int:
    return max(e for _, e, _ in ranges)


def _template_kernel(template: Trace, tplain: PlainBoot | None, tiomem: Iomem | None) -> tuple[int, int] | None:
    """[start, end) the template reserved for its kernel image before memblock=debug (RSRV_KERN, not the initrd)."""
    rd = tplain.ramdisk if tplain else None
    for op in template.ops:
        if isinstance(op, Reserve) and (op.inferred or "").startswith("reserved before memblock=debug") \
                and op.flags is not None and op.flags & Flag.MEMBLOCK_RSRV_KERN:
            if rd is not None and op.base < rd[1] and rd[0] < op.base + op.size:
                continue
            if tiomem is not None and not op.base <= tiomem.code < op.base + op.size:
                continue
            start, end = op.base, op.base + op.size
            # reserve_brk() (setup_arch) reserves the brk area right after the image once memblock=debug is on
            for o in template.ops:
                if isinstance(o, Reserve | ReserveKern) and o.base == end and (o.caller or "").startswith("setup_arch"):
                    end = o.base + o.size
            return start, end
    return None


def retarget(template: Trace, host: PlainBoot, *, iomem: Iomem | None = None, tplain: PlainBoot | None = None,
             tiomem: Iomem | None = None, force: bool = False) -> Retargeted:
    """Predict *host*'s boot from *template* (one boot of the same build, parsed with memblock=debug).

    *tplain* is the template's own log read as a plain log (its hash-table
    names, RAMDISK, swiotlb size, banner); *iomem*/*tiomem* the host's and the
    template's ``/proc/iomem`` (kernel image).

    :raises BuildMismatch: when the banners differ (another release or build), unless *force*.
    """
    assume: list[str] = []
    tb = tplain.banner if tplain else None
    if host.banner is None:
        assume.append("host log has no 'Linux version' banner: assumed the template's build")
    elif tb is not None and host.banner != tb:
        msg = (f"{host.source}: another kernel build than the template "
               f"({host.release or '?'} vs {tplain.release if tplain else '?'}; banners differ)")
        if not force:
            raise BuildMismatch(msg + "; --force to predict anyway")
        assume.append(msg + ": every build constant (op sequence, sizes, kernel image size) assumed the template's")
    ctx = template.context
    arch = ctx.arch or "x86_64"
    mb = Memblock(profile_for(ctx.release or "7.2"), arch_for(arch))
    b = _build(template, host, tplain, iomem, tiomem, mb, assume)
    nodes = tuple((n, base, end) for n, (base, end, _) in sorted(host.node_spans().items()))
    obs: list[Observation] = []
    end = len(b.out)

    def seen(kind: str, line: int, text: str) -> None:
        obs.append(KernelMessage(at=end, src=Src(host.source, line, text=text), kind=kind, text=text,
                                 kib=stated_kib(kind, text)))

    if host.memory is not None:
        seen("memory", host.memory[2], host.memory[3])
    for nid, base, e, line in host.node_ranges:
        seen("retarget:node_range", line, f"node {nid}: [mem {base:#018x}-{e - 1:#018x}]")
    if host.ramdisk is not None:
        seen("retarget:reserved", host.ramdisk[2], f"RAMDISK: [mem {host.ramdisk[0]:#x}-{host.ramdisk[1] - 1:#x}]")
    for sig, base, e, line in host.acpi:
        seen("retarget:reserved", line, f"ACPI: Reserving {sig} table memory at [mem {base:#x}-{e - 1:#x}]")
    if GIGANTIC in host.hugetlb:
        n, line = host.hugetlb[GIGANTIC]
        seen("retarget:hugetlb", line, f"HugeTLB: registered 1.00 GiB page size, pre-allocated {n} pages")
    failed = False
    for f in host.kho:
        if "disabling kexec handover" in f.text:
            failed = True
            seen("retarget:kho", f.line, f.text)
        elif f.text.startswith("KHO: scratch areas:"):
            seen("retarget:kho_sizes", f.line, f.text)
    from ..kho.params import parse_kho_cmdline

    if not failed and host.cmdline_line and parse_kho_cmdline(host.cmdline).enable:
        seen("retarget:kho", host.cmdline_line, "kho=on and no 'KHO: Failed to reserve scratch' line")
    facts = (("retarget_template", ctx.source), ("retarget_host", host.source),
             *(("retarget_assume", a) for a in b.assume))
    hctx = replace(ctx, source=host.source, cmdline=host.cmdline, nodes=nodes, facts=ctx.facts + facts)
    trace = Trace(hctx, tuple(b.out), tuple(obs))
    kinds: dict[str, int] = {}
    for op in b.out:
        k = (op.inferred or "").split("retarget: ", 1)[-1].split(" ", 1)[0]
        kinds[k] = kinds.get(k, 0) + 1
    return Retargeted(trace, tuple(b.assume), host, ctx.source, tuple(sorted(kinds.items())))


def _build(template: Trace, host: PlainBoot, tplain: PlainBoot | None, iomem: Iomem | None,
           tiomem: Iomem | None, mb: Memblock, assume: list[str]) -> _Builder:
    """Walk the template; when NODE_DATA misses the printed address, solve for init_mem_mapping()'s page count.

    How many page-table pages ``alloc_low_pages()`` takes depends on how the
    direct map is split around the kernel image (KASLR), which a plain log
    does not print; the ``NODE_DATA`` line, allocated right after, pins it.
    """
    first = None
    for delta in (0, -1, 1, -2, 2, -3, 3, -4, 4):
        b = _Builder(template, host, tplain, iomem, tiomem, copy.deepcopy(mb), assume=list(assume),
                     low_pages_delta=delta)
        _walk(b)
        if first is None:
            first = b
        if not b.node_data_misses:
            if delta:
                b.assume.append(f"init_mem_mapping() took {delta:+d} page-table page(s) against the template "
                                "(solved from the host's NODE_DATA line)")
            return b
    return first


def _walk(b: _Builder) -> None:
    """One rule per kind of template op, in boot order (see the module docstring)."""
    from ..kho.hugepages import hugepages_request
    from ..kho.link import link, resolve

    t, host = b.template, b.host
    ops = t.ops
    anchors = link(ops)
    tram = b.tplain.ram() if b.tplain else []
    hram = host.ram()
    if not hram:
        raise KhoReplayError(f"{host.source}: the e820 map has no System RAM")
    ttop = _top_of_ram(tram) if tram else None
    htop = _top_of_ram(hram)
    tkern = _template_kernel(t, b.tplain, b.tiomem)
    delta = 0
    if tkern is not None:
        if b.iomem is not None:
            start = b.tiomem.code if b.tiomem is not None else tkern[0]
            delta = b.iomem.code - start
            kern_origin = f"host iomem {b.iomem.source}:{b.iomem.line}"
        else:
            kern_origin = "assumed: kernel image at the template's address (no --iomem)"
            b.assume.append(f"kernel image at the template's {tkern[0]:#x} (KASLR slot unknown without --iomem)")
            if not any(s <= tkern[0] and tkern[1] <= e for s, e, _ in hram):
                b.assume.append("the template's kernel image address is outside the host's RAM")
    trd = b.tplain.ramdisk if b.tplain else None
    hnodes = host.nodes
    tnodes = sorted({n for n, _, _ in t.context.nodes}) or [0]
    if not host.cmdline:
        b.assume.append("host printed no command line: no hugepages=, kho= or kho_scratch= assumed")
    tcpus = b.tplain.nr_cpu_ids if b.tplain else None
    if host.nr_cpu_ids and tcpus and host.nr_cpu_ids != tcpus:
        b.assume.append(f"percpu bookkeeping allocations sized for the template's {tcpus} CPUs "
                        f"(host: {host.nr_cpu_ids})")
    if len(hnodes) != len(tnodes):
        b.assume.append(f"host has {len(hnodes)} node(s), template {len(tnodes)}: per-node percpu groups and "
                        "per-node early allocations other than NODE_DATA/memmap follow the template")

    def nid_of(n: int | None) -> int | None:
        if n is None or n < 0:
            return n
        return n if n in hnodes else hnodes[n % len(hnodes)]

    done: set[str] = set()
    hreq = hugepages_request(host.cmdline, t.context.arch or "x86_64")
    memmap = {"sparse_index_alloc", "sparse_init_nid"}
    first_memmap = next((i for i, op in enumerate(ops) if isinstance(op, Alloc) and (
        caller_fn(op) in memmap or caller_fn(op).startswith("vmemmap_"))), None)
    last_memmap = max((i for i, op in enumerate(ops)
                       if caller_fn(op) in memmap or caller_fn(op).startswith("vmemmap_")), default=None)
    huge_at = first_memmap
    if huge_at is not None and huge_at > 0 and isinstance(ops[huge_at - 1], Alloc) \
            and caller_fn(ops[huge_at - 1]).endswith("alloc_or_panic"):
        huge_at -= 1  # memblocks_present()'s mem_section array opens sparse_init()
    has_huge_phase = any(isinstance(op, Phase) and op.name == "hugetlb_bootmem_begin" for op in ops)
    in_scratch = False
    hash_inserts = scaled.hash_inserts(b, ops)
    pcpu_groups, pcpu_regroup = scaled.pcpu_plan(b, ops)

    for i, op in enumerate(ops):
        b.where.setdefault(i, len(b.out))
        fn = caller_fn(op)
        why = op.inferred or ""
        for name, size, line in hash_inserts.get(i, ()):
            b.emit(Alloc("memblock_alloc_try_nid", size, align=64, nid=NUMA_NO_NODE, min_addr=0, max_addr=0,
                         caller="alloc_large_system_hash"),
                   b.hsrc(line) + f" {name} hash table (linear here, vmalloc on the template)")
        if pcpu_regroup:
            if i == min(pcpu_groups):
                scaled.pcpu_emit(b, ops[i])
            if i in pcpu_groups or (anchors[i] is not None and anchors[i].alloc in pcpu_groups):
                continue
        # ------------------------------------------------------------ gigantic pages
        if (has_huge_phase and isinstance(op, Phase) and op.name == "hugetlb_bootmem_begin") or (
                not has_huge_phase and i == huge_at):
            scaled.hugetlb(b, hreq, ops)
            if has_huge_phase:
                continue
        if fn.startswith("alloc_bootmem") or why.startswith("__alloc_bootmem_huge_page") or (
                isinstance(op, Phase) and op.name in ("hugetlb_bootmem_begin", "hugetlb_bootmem_end")):
            continue
        # ------------------------------------------------------------ memory layout
        if isinstance(op, Add) and fn == "e820__memblock_setup":
            if "e820" not in done:
                done.add("e820")
                for base, end, line in hram:
                    b.emit(Add(base, end - base, op.nid, op.flags, caller=op.caller), b.hsrc(line) + " e820 RAM",
                           keep_reason=op)
            continue
        if isinstance(op, SetCurrentLimit) and "get_max_mapped" in why:
            b.emit(replace(op, addr=htop), "formula get_max_mapped() = host top of RAM")
            continue
        if isinstance(op, SetNode) and op.nid >= 0:
            key = f"set_node:{op.reserved}:{why}"
            if key not in done:
                done.add(key)
                for n, (base, end, line) in sorted(host.node_spans().items()):
                    b.emit(SetNode(base, end - base, n, op.reserved, caller=op.caller), b.hsrc(line) + " node span",
                           keep_reason=op)
            continue
        if isinstance(op, Alloc) and why.startswith("alloc_node_data()"):
            if "node_data" not in done:
                done.add("node_data")
                for n in hnodes:
                    nd = host.node_data.get(n)
                    origin = (b.hsrc(nd[2]) + " NODE_DATA address, pg_data_t size from the template" if nd
                              else "template size, address not printed")
                    b.placed[i] = b.emit(replace(op, nid=n, expect=nd[0] if nd else None), origin)
                    if nd and b.placed[i] != nd[0]:
                        b.node_data_misses += 1
                scaled.cma_crash(b, ops, htop)
            continue
        # ------------------------------------------------------------ firmware and early reservations
        if isinstance(op, Reserve | ReserveKern) and why.startswith("reserved before memblock=debug"):
            end = op.base + op.size
            if trd is not None and op.base < trd[1] and trd[0] < end:
                if host.ramdisk is not None:
                    rb, re_, line = host.ramdisk
                    b.emit(replace(op, base=rb, size=re_ - rb), b.hsrc(line) + " RAMDISK")
                else:
                    b.assume.append("host printed no RAMDISK: booted without an initrd")
                continue
            if tkern is not None and tkern[0] <= op.base and end <= tkern[1]:
                b.emit(replace(op, base=op.base + delta), kern_origin)
                continue
            b.emit(op, "template (firmware area, assumed the same on the host)")
            continue
        if isinstance(op, Reserve) and fn == "acpi_reserve_initial_tables":
            if "acpi" not in done:
                done.add("acpi")
                for sig, base, end, line in host.acpi:
                    b.emit(replace(op, base=base, size=end - base), b.hsrc(line) + f" ACPI {sig}")
            continue
        if isinstance(op, Reserve) and fn == "smp_scan_config" and "mptable" not in done:
            done.add("mptable")
            if host.mptable is not None:
                base, end, line = host.mptable
                b.emit(replace(op, base=base, size=end - base), b.hsrc(line) + " MP-table")
                continue
        if tkern is not None and isinstance(op, Reserve | ReserveKern | Free) and anchors[i] is None \
                and tkern[0] <= op.base and op.base + op.size <= tkern[1]:
            b.emit(replace(op, base=op.base + delta), kern_origin + " (inside the kernel image)")
            continue
        # ------------------------------------------------------------ memmap
        if first_memmap is not None and first_memmap <= i <= (last_memmap or i):
            if i == first_memmap:
                scaled.memmap(b, ops, first_memmap, last_memmap or first_memmap)
            if isinstance(op, Alloc | Reserve | Free | Mark) and (fn in memmap or fn.startswith("vmemmap_")):
                continue
        # ------------------------------------------------------------ KHO scratch
        if isinstance(op, Phase) and op.name == "kho_reserve_scratch":
            b.emit(op, b.tsrc(op))
            scaled.scratch(b, ops, i)
            in_scratch = True
            continue
        if in_scratch:
            if fn in ("kho_memory_init", "kho_reserve_scratch") or why.startswith("kho_reserve_scratch()"):
                continue
            in_scratch = False
        # ------------------------------------------------------------ allocations
        if isinstance(op, Alloc) and fn == "alloc_low_pages":
            b.low_pages_seen += 1
            total = sum(1 for o in ops if isinstance(o, Alloc) and caller_fn(o) == "alloc_low_pages")
            if b.low_pages_seen > total + b.low_pages_delta:
                continue
            b.placed[i] = _alloc(b, i, op, fn, ttop, htop, nid_of)
            if b.low_pages_seen == total:
                for _ in range(b.low_pages_delta):
                    _alloc(b, i, op, fn, ttop, htop, nid_of)
            continue
        if isinstance(op, Alloc):
            b.placed[i] = _alloc(b, i, op, fn, ttop, htop, nid_of)
            continue
        new = resolve(op, anchors[i], b.placed)
        if new is None:
            continue  # the allocation it belonged to is gone on this host
        origin = b.tsrc(op) + (" (moved with its allocation)" if new is not op else "")
        if isinstance(new, Reserve | SetNode) and getattr(new, "nid", None) is not None:
            new = replace(new, nid=nid_of(new.nid))
        b.emit(new, origin, keep_reason=op)
        if isinstance(op, Free) and fn == "init_mem_mapping" and b.low_pages_delta > 0 and not any(
                isinstance(o, Alloc) and caller_fn(o) == "alloc_low_pages" for o in ops):
            # the template mapped its top 512 MiB from the early brk buffer; this host needed page-table pages
            for _ in range(b.low_pages_delta):
                b.emit(Alloc("memblock_phys_alloc_range", b.mb.page_size, align=b.mb.page_size,
                             min_addr=htop - (512 << 20), max_addr=htop, caller="alloc_low_pages"),
                       "formula init_mem_mapping(): a page-table page from the first step [top - 512 MiB, top)")
    b.where.setdefault(len(ops), len(b.out))


def _alloc(b: _Builder, i: int, op: Alloc, fn: str, ttop: int | None, htop: int,
           nid_of: Callable[[int | None], int | None]) -> int | None:
    """Emit the template's allocation *op* with what the host changes: sizes, printed addresses, limits."""
    host = b.host
    origin = b.tsrc(op)
    new = replace(op, expect=None, nid=nid_of(op.nid))
    if fn == "alloc_large_system_hash":
        name = scaled.hash_name(b, op)
        if name and name in host.hashes:
            size, line, linear = host.hashes[name]
            if not linear:
                return None  # hashdist: the host's table came from vmalloc, not memblock
            new, origin = replace(new, size=size), b.hsrc(line) + f" {name} hash table"
        else:
            b.assume.append(f"hash table {name or '?'}: the template's size")
    elif fn.startswith("swiotlb_init"):
        tsw = b.tplain.swiotlb if b.tplain else None
        if host.swiotlb is not None and tsw is not None:
            hsize, tsize = host.swiotlb[1] - host.swiotlb[0], tsw[1] - tsw[0]
            if op.size == tsize:
                new = replace(new, size=hsize, expect=host.swiotlb[0])
                origin = b.hsrc(host.swiotlb[2]) + " swiotlb buffer"
            elif op.size * 1024 // tsize * tsize == op.size * 1024 and op.size * 1024 // tsize > 1:
                # the slot array: one entry per 2 KiB slot, so it scales with the buffer
                new = replace(new, size=op.size * hsize // tsize)
                origin = "formula swiotlb slots = buffer / 2 KiB (host " + f"{b.host.source}:{host.swiotlb[2]})"
    elif "crashkernel" in fn:
        if host.crashkernel is None:
            b.assume.append("host printed no crashkernel reservation: dropped")
            return None
        base, end, line = host.crashkernel
        new, origin = replace(new, size=end - base, expect=base), b.hsrc(line) + " crashkernel"
    elif (op.inferred or "").startswith("cma_alloc_mem()"):
        hits = [c for c in host.cma if c[1] is not None]
        if not hits:
            b.assume.append("host printed no 'cma: Reserved N MiB at': CMA area dropped")
            return None
        size, base, line = hits[0]
        new = replace(new, size=size, expect=base,
                      max_addr=htop if op.max_addr == ttop else op.max_addr)
        origin = b.hsrc(line) + " cma"
    if ttop is not None:
        # init_mem_mapping() windows and limits relative to the top of RAM follow the host's
        if new.max_addr == ttop:
            new = replace(new, max_addr=htop)
            origin += "; max = host top of RAM"
        if new.min_addr and ttop - (1 << 30) <= new.min_addr < ttop and new.min_addr > (1 << 32):
            new = replace(new, min_addr=htop - (ttop - new.min_addr))
            origin += "; min relative to host top of RAM"
    return b.emit(new, origin, keep_reason=op)
