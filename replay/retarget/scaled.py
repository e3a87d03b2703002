# SPDX-License-Identifier: GPL-2.0-only
"""What scales with the machine: the kernel's own rules, emitting the host's ops for :mod:`.build`.

Each function here stands for one kernel routine whose memblock calls depend
on the host (``sparse_init()``, ``hugetlb_bootmem_alloc()``,
``kho_reserve_scratch()``, ``pcpu_embed_first_chunk()``,
``dma_contiguous_reserve()``/``arch_reserve_crashkernel()``,
``alloc_large_system_hash()``), emits the calls the host's boot makes through
the builder (which runs the model as it goes) and says in each op's origin
which rule or host line it followed.
"""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import KhoReplayError
from ..flags import Flag
from ..kho.hugepages import HugepagesRequest
from ..memblock.engine import Memblock
from ..ops import NUMA_NO_NODE, Alloc, Free, Mark, Op, Phase

if TYPE_CHECKING:
    from .build import _Builder

__all__ = [
    "GIGANTIC",
    "caller_fn",
    "cma_crash",
    "hash_inserts",
    "hash_name",
    "hugetlb",
    "memmap",
    "pcpu_emit",
    "pcpu_plan",
    "present_sections",
    "scratch",
    "why_text",
]

SECTION_SHIFT = 27  # x86_64 and arm64 (4K pages): 128 MiB sections
SECTIONS_PER_ROOT = 256  # PAGE_SIZE / sizeof(struct mem_section)
SECTIONS_PER_PMD_PAGE = 512  # one PMD page maps 512 x 2 MiB of vmemmap (64 GiB of RAM)
GIGANTIC = 1 << 30


def caller_fn(op: Op) -> str:
    """The function an op is attributed to: its caller's symbol, else the one its inferred reason names."""
    if op.caller:
        return op.caller.split("+")[0]
    m = re.match(r"^([A-Za-z_]\w*)\(\)", op.inferred or "")
    return m.group(1) if m else ""


def why_text(op: Op, origin: str) -> str:
    return f"{op.inferred}; retarget: {origin}" if op.inferred else f"retarget: {origin}"


def cma_crash(b: _Builder, ops: tuple[Op, ...], htop: int) -> None:
    """The host's ``cma=`` area and crashkernel when the template booted without them (right after NODE_DATA).

    x86 setup_arch() calls dma_contiguous_reserve() and arch_reserve_crashkernel()
    after initmem_init(); cma_alloc_mem() first tries bottom-up from 4 GiB when
    the limit leaves room, and the crashkernel goes below 4 GiB first.
    """
    from ..ops import SetBottomUp

    host = b.host
    has_cma = any((op.inferred or "").startswith("cma_alloc_mem()") and isinstance(op, Alloc) for op in ops)
    has_crash = any("crashkernel" in caller_fn(op) for op in ops)
    cma = [c for c in host.cma if c[1] is not None]
    if cma and not has_cma:
        size, base, line = cma[0]
        origin = b.hsrc(line) + " cma (formula cma_alloc_mem(); the template had no cma= area)"
        why = "cma_alloc_mem(): direct memblock_alloc_range_nid() (cma: Reserved line)"
        if htop >= (1 << 32) + size:
            b.emit(SetBottomUp(True, inferred="cma_alloc_mem(): bottom-up try above 4G"), origin)
            b.emit(Alloc("memblock_alloc_range_nid", size, align=2 << 20, nid=NUMA_NO_NODE, min_addr=1 << 32,
                         max_addr=htop, exact=True, expect=base if base >= 1 << 32 else None,
                         caller="memblock_alloc_range_nid", inferred=why), origin)
            b.emit(SetBottomUp(False, inferred="cma_alloc_mem(): back to top-down"), origin)
            if base < 1 << 32:
                b.emit(Alloc("memblock_alloc_range_nid", size, align=2 << 20, nid=NUMA_NO_NODE, min_addr=0,
                             max_addr=htop, exact=True, expect=base, caller="memblock_alloc_range_nid",
                             inferred=why), origin)
        else:
            b.emit(Alloc("memblock_alloc_range_nid", size, align=2 << 20, nid=NUMA_NO_NODE, min_addr=0,
                         max_addr=htop, exact=True, expect=base, caller="memblock_alloc_range_nid", inferred=why),
                   origin)
    if host.crashkernel is not None and not has_crash:
        base, end, line = host.crashkernel
        high = base >= 1 << 32
        b.emit(Alloc("memblock_phys_alloc_range", end - base, align=16 << 20, min_addr=1 << 32 if high else 0,
                     max_addr=htop if high else 1 << 32, expect=base, caller="reserve_crashkernel_generic"),
               b.hsrc(line) + " crashkernel (formula reserve_crashkernel_generic(); not in the template)")


def hash_inserts(b: _Builder, ops: tuple[Op, ...]) -> dict[int, list[tuple[str, int, int]]]:
    """Hash tables the host allocated from memblock (``linear``) where the template used vmalloc (``hashdist``)."""
    out: dict[int, list[tuple[str, int, int]]] = {}
    if b.tplain is None:
        return out
    for name, (size, line, linear) in b.host.hashes.items():
        t = b.tplain.hashes.get(name)
        if not linear or t is None or t[2]:
            continue
        at = next((i for i, op in enumerate(ops) if op.src is not None and (op.src.line or 0) > t[1]), len(ops))
        out.setdefault(at, []).append((name, size, line))
    return out


def pcpu_plan(b: _Builder, ops: tuple[Op, ...]) -> tuple[set[int], bool]:
    """The template's percpu group chunks, and whether the host's groups or unit size differ from them."""
    tp = b.tplain.pcpu if b.tplain else None
    hp = b.host.pcpu
    if tp is None or hp is None:
        return set(), False
    atom = tp[2]
    groups = {i for i, op in enumerate(ops) if isinstance(op, Alloc) and caller_fn(op) in ("pcpu_fc_alloc",
              "pcpu_embed_first_chunk") and op.align == atom and op.size % atom == 0}
    same = (tp[:3] == hp[:3] and [len(g) for g in b.tplain.pcpu_groups] == [len(g) for g in b.host.pcpu_groups])
    return groups, bool(groups) and not same and bool(b.host.pcpu_groups)


def pcpu_emit(b: _Builder, tmpl: Op) -> None:
    """pcpu_embed_first_chunk() for the host's groups: one chunk per group, then each unit's unused tail freed.

    A group holds its cpus' units rounded up to whole atoms; a unit keeps its
    first static+reserved+dynamic bytes, an empty unit is freed whole, and
    adjacent freed ranges come out as one ``memblock_phys_free`` line.
    """
    size_sum, unit, atom, line = b.host.pcpu
    upa = max(1, atom // unit)
    origin = b.hsrc(line) + " formula pcpu_embed_first_chunk() for the host's pcpu-alloc groups"
    bases = []
    for g, cpus in enumerate(b.host.pcpu_groups):
        units = -(-max(1, len(cpus)) // upa) * upa
        nid = b.host.nodes[g] if len(b.host.pcpu_groups) > 1 and g < len(b.host.nodes) else tmpl.nid
        addr = b.emit(replace(tmpl, size=units * unit, nid=nid, expect=None), origin, keep_reason=tmpl)
        bases.append((addr, units, len(cpus)))
    for addr, units, used in bases:
        if addr is None:
            continue
        runs: list[list[int]] = []
        for u in range(units):
            start = addr + u * unit + (size_sum if u < used else 0)
            end = addr + (u + 1) * unit
            if runs and runs[-1][1] == start:
                runs[-1][1] = end
            else:
                runs.append([start, end])
        for start, end in runs:
            b.emit(Free(start, end - start, caller="pcpu_embed_first_chunk"), origin)


def hash_name(b: _Builder, op: Alloc) -> str | None:
    """The template's ``<name> hash table entries`` line that follows *op*'s own line."""
    if b.tplain is None or op.src is None or op.src.line is None:
        return None
    best = None
    for name, (_, line, _linear) in b.tplain.hashes.items():
        if line > op.src.line and (best is None or line < best[1]):
            best = (name, line)
    return best[0] if best else None


def present_sections(mb: Memblock) -> list[tuple[int, int]]:
    """(section number, nid) of every present section, in the order memblocks_present() visits them."""
    seen: dict[int, int] = {}
    for r in mb.memory:
        first = r.base >> SECTION_SHIFT
        last = (r.end - 1) >> SECTION_SHIFT
        for s in range(first, last + 1):
            seen.setdefault(s, r.nid)
    return sorted(seen.items())


def memmap(b: _Builder, ops: tuple[Op, ...], first: int, last: int) -> None:
    """sparse_init(): mem_section roots, then per node its usemap and the vmemmap of each section."""
    block = [(i, ops[i]) for i in range(first, last + 1) if isinstance(ops[i], Alloc)]
    root = next((op for _, op in block if caller_fn(op) == "sparse_index_alloc"), None)
    usemaps = [op for _, op in block if caller_fn(op) == "sparse_init_nid"]
    big = [op for _, op in block if caller_fn(op) == "vmemmap_populate_hugepages"]
    if not big:
        raise KhoReplayError(f"{b.template.context.source}: template's sparse_init() is not the "
                             "sparse-vmemmap form this retargeting knows")
    first_big = next(k for k, (_, op) in enumerate(block) if caller_fn(op) == "vmemmap_populate_hugepages")
    first_use = next((k for k, (_, op) in enumerate(block) if caller_fn(op) == "sparse_init_nid"), -1)
    pre = [op for _, op in block[first_use + 1:first_big] if caller_fn(op).startswith("vmemmap_")]
    tcount = sum(1 for op in big if op.nid == (usemaps[0].nid if usemaps else big[0].nid))
    per_section = usemaps[0].size // max(1, tcount) if usemaps else 0
    secs = present_sections(b.mb)
    f = "formula sparse_init()"
    if root is not None:
        roots: set[int] = set()
        for s, nid in secs:
            if s // SECTIONS_PER_ROOT not in roots:
                roots.add(s // SECTIONS_PER_ROOT)
                b.emit(replace(root, nid=nid, expect=None), f + ": a mem_section root per 256 sections",
                       keep_reason=root)
    pmd_pages: set[int] = set()
    for nid in sorted({n for _, n in secs}, key=lambda n: next(s for s, m in secs if m == n)):
        mine = [s for s, m in secs if m == nid]
        if usemaps:
            b.emit(replace(usemaps[0], nid=nid, size=per_section * len(mine), expect=None),
                   f + f": usemap {per_section} bytes x {len(mine)} sections", keep_reason=usemaps[0])
        for s in mine:
            blk = s // SECTIONS_PER_PMD_PAGE
            if not pmd_pages:
                for p in pre:
                    b.emit(replace(p, nid=nid, expect=None), f + ": vmemmap page tables", keep_reason=p)
            elif blk not in pmd_pages and pre:
                b.emit(replace(pre[-1], nid=nid, expect=None), f + ": PMD page for a new 1 GiB of vmemmap",
                       keep_reason=pre[-1])
            pmd_pages.add(blk)
            b.emit(replace(big[0], nid=nid, expect=None), f + f": 2 MiB of memmap for section {s:#x}",
                   keep_reason=big[0])


def hugetlb(b: _Builder, hreq: HugepagesRequest | None, ops: tuple[Op, ...]) -> None:
    """hugetlb_bootmem_alloc() for the host's ``hugepages=``: the kernel's loop, stopping at the first failure."""
    if hreq is None or not hreq.total:
        return
    tmpl = next((op for op in ops if isinstance(op, Alloc) and caller_fn(op).startswith("alloc_bootmem")), None)
    mark = next((op for op in ops if isinstance(op, Mark) and (op.inferred or "").startswith("__alloc_bootmem")),
                None)
    origin = f"formula hugetlb_bootmem_alloc() for the host's hugepages= ({b.host.source})"
    b.emit(Phase("hugetlb_bootmem_begin", inferred="alloc_bootmem(): first gigantic page request"), origin)
    nodes = b.host.nodes

    def one(nid: int, exact: bool) -> bool:
        if tmpl is not None:
            api = tmpl.api if tmpl.api == "memblock_alloc_hugetlb" else (
                "memblock_alloc_exact_nid_raw" if exact else "memblock_alloc_try_nid_raw")
            op = replace(tmpl, api=api, nid=nid, expect=None, exact=exact and tmpl.api == "memblock_alloc_hugetlb")
        else:
            op = Alloc("memblock_alloc_exact_nid_raw" if exact else "memblock_alloc_try_nid_raw", GIGANTIC,
                       align=GIGANTIC, nid=nid, min_addr=0, max_addr=0, caller="alloc_bootmem")
        addr = b.emit(op, origin, keep_reason=tmpl or op)
        if addr is None:
            return False
        page = b.mb.page_size
        m = mark or Mark(Flag.MEMBLOCK_RSRV_NOINIT, 0, 0,
                         inferred="__alloc_bootmem_huge_page(): memblock_reserved_mark_noinit() on the tail pages")
        b.emit(replace(m, base=addr + page, size=GIGANTIC - page), origin, keep_reason=m)
        return True

    if hreq.per_node:
        for nid, count in hreq.per_node:
            for _ in range(count):
                if not one(nid, True):
                    break
    else:
        for k in range(hreq.total):
            if not one(nodes[k % len(nodes)], False):
                break
    b.emit(Phase("hugetlb_bootmem_end", inferred="alloc_bootmem(): end of the gigantic page requests"), origin)


def scratch(b: _Builder, ops: tuple[Op, ...], at: int) -> None:
    """kho_reserve_scratch() sized on the host's accounting, as the allocations (and frees) it makes."""
    from ..kho.params import parse_kho_cmdline
    from ..kho.scratch import reserve_scratch

    params = parse_kho_cmdline(b.host.cmdline)
    if not params.enable:
        return
    tmpl: dict[str, Alloc] = {}
    for op in ops[at + 1:]:
        if isinstance(op, Phase):
            break
        if isinstance(op, Alloc):
            key = {"memblock_alloc_try_nid": "memblock_alloc",
                   "memblock_alloc_range_nid": "memblock_alloc_range_nid"}.get(op.api, op.api)
            if key == "memblock_phys_alloc_range" and not op.max_addr:
                key = "memblock_phys_alloc"
            tmpl.setdefault(key, op)
    trial = copy.deepcopy(b.mb)
    res = reserve_scratch(trial, params, b.host.nodes)
    origin = "formula kho_reserve_scratch() on the host's RSRV_KERN"
    got: list[tuple[int, int]] = []
    for api, size, nid, _addr in ((r.api, r.size, r.nid, r.addr) for r in res.requests):
        t = tmpl.get(api)
        if api == "memblock_alloc":
            op = t or Alloc("memblock_alloc_try_nid", size, align=b.mb.page_size, nid=NUMA_NO_NODE, min_addr=0,
                            max_addr=0, caller="kho_memory_init")
        elif api == "memblock_phys_alloc_range":
            op = t or Alloc(api, size, align=4 << 20, min_addr=0, max_addr=0xFFFFFFFF, caller="kho_memory_init")
        elif api == "memblock_phys_alloc":
            op = t or Alloc("memblock_phys_alloc_range", size, align=4 << 20, min_addr=0, max_addr=0,
                            caller="kho_memory_init")
        else:
            op = t or Alloc(api, size, align=2 << 20, nid=nid, min_addr=0, max_addr=0, exact=True,
                            caller="memblock_alloc_range_nid",
                            inferred="kho_reserve_scratch(): per-node scratch via memblock_alloc_range_nid(exact_nid)")
        op = replace(op, size=size, nid=nid if api == "memblock_alloc_range_nid" else op.nid, expect=None)
        addr = b.emit(op, origin, keep_reason=op)
        if addr is None:
            for base, sz in reversed(got):
                b.emit(Free(base, sz, caller="kho_memory_init"), origin + ": rollback after a failure")
            return
        got.append((addr, size))
