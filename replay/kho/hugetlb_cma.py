# SPDX-License-Identifier: GPL-2.0-only
"""``hugetlb_cma=``: per-node CMA areas for gigantic pages, reserved through memblock before hugetlb's bootmem.

Line numbers refer to Debian's linux-source-7.2 (7.2.13) and linux-source-7.3
(7.3.4) trees.  ``hugetlb_cma_reserve()`` runs in ``mm_core_init_early()``
just before ``hugetlb_bootmem_alloc()`` in both eras (7.2 mm/mm_init.c:2708,
first thing; 7.3 mm/mm_init.c:2633, after ``kho_memory_init_early()`` and
``free_area_init()``).  Each node's area comes from
``cma_declare_contiguous_multi()`` (mm/cma.c:534): one range from
``cma_alloc_mem()`` (bottom-up from 4 GiB first, then top-down, exact node,
``RSRV_KERN``), else up to ``CMA_MAX_RANGES`` free ranges above 4 GiB taken
with plain ``memblock_reserve()``.  No design touches this path: the areas are
ordinary memblock allocations (``RSRV_KERN``, never ``RSRV_HUGETLB``) in every
strategy, and a KHO boot makes them while scratch-only is on.

With an area in place, boot-time gigantic pages are skipped (mm/hugetlb.c
``hugetlb_hstate_alloc_pages()``, 7.2 :3609, 7.3 :3636) unless
``hugetlb_cma_only=`` makes them "early CMA" pages carved from the areas
(``hugetlb_cma_alloc_bootmem()`` / ``cma_reserve_early()``), which take no
memblock allocation of their own.

>>> parse_hugetlb_cma("0:2G,1:1G", percent=False)
HugetlbCma(size=3221225472, percent=0, per_node=((0, 2147483648, False), (1, 1073741824, False)))
>>> parse_hugetlb_cma("25%", percent=True).percent
25
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import KhoReplayError
from ..memblock.engine import Memblock, round_up
from ..memblock.search import for_each_free_mem_range
from ..ops import Alloc
from .params import memparse

__all__ = [
    "CmaArea",
    "CmaReservation",
    "HugetlbCma",
    "hugetlb_cma_cmdline",
    "hugetlb_cma_order",
    "hugetlb_cma_reserve",
    "parse_hugetlb_cma",
]

SZ_4G = 4 << 30
#: mm/cma.h:38.
CMA_MAX_RANGES = 8
#: HUGETLB_PAGE_ORDER on x86-64/arm64 with 4 KiB pages: the area's bitmap granule (order_per_bit).
HUGETLB_PAGE_ORDER = 9
_KSTRTOBOOL_TRUE = ("y", "1", "on", "yes", "true")
_KSTRTOBOOL = (*_KSTRTOBOOL_TRUE, "n", "0", "off", "no", "false")


@dataclass(frozen=True, slots=True)
class HugetlbCma:
    """``hugetlb_cma=`` as the kernel holds it: a total, a percent (7.3), or per node ``(nid, value, percent)``."""

    size: int = 0
    percent: int = 0
    per_node: tuple[tuple[int, int, bool], ...] = ()


def _memparse(text: str) -> int | None:
    # the whole of *text* one size, read as memparse() reads it (a leading 0 is octal)
    try:
        return memparse(text)
    except KhoReplayError:
        return None


def parse_hugetlb_cma(value: str, *, percent: bool, max_numnodes: int = 1 << 10) -> HugetlbCma:
    """``cmdline_parse_hugetlb_cma()`` (7.2 mm/hugetlb_cma.c:107-142, 7.3 :122-195), strictly.

    ``SIZE`` or ``nid:SIZE[,nid:SIZE...]``; with *percent* (7.3) also ``N%`` and
    ``nid:N%`` (``N`` <= 100).  The kernel stops at the first thing it cannot read and
    keeps what it has; a replay refuses it instead.

    :raises KhoReplayError: one line saying what is accepted.
    """
    pct = " or N%, nid:N%" if percent else ""
    bad = KhoReplayError(f"hugetlb_cma={value}: expected SIZE or nid:SIZE[,nid:SIZE]{pct}")
    if ":" not in value:
        if percent and value.endswith("%"):
            n = _memparse(value[:-1])
            if n is None or n > 100:
                raise bad  # 7.3 :172 warns "invalid percentage" and keeps nothing
            return HugetlbCma(percent=n)
        size = _memparse(value)
        if size is None:
            raise bad
        return HugetlbCma(size=size)
    nodes: dict[int, tuple[int, bool]] = {}
    for part in value.split(","):
        nid_s, _, v = part.partition(":")
        if not nid_s.isdigit() or int(nid_s) >= max_numnodes:
            raise bad  # :118/:135: a node >= MAX_NUMNODES ends the parse
        n = _memparse(v[:-1]) if percent and v.endswith("%") else None
        if n is not None and n <= 100:
            nodes[int(nid_s)] = (n, True)
            continue
        size = _memparse(v)
        if size is None:
            raise bad
        nodes[int(nid_s)] = (size, False)
    per_node = tuple((n, v, p) for n, (v, p) in sorted(nodes.items()))
    # 7.2 sums the node sizes while parsing (:125); 7.3 recomputes in hugetlb_cma_reserve() (:225-239).
    return HugetlbCma(size=sum(v for _, v, p in per_node if not p), per_node=per_node)


def hugetlb_cma_cmdline(cmdline: str, *, percent: bool, max_numnodes: int = 1 << 10) -> tuple[HugetlbCma | None, bool]:
    """``hugetlb_cma=`` and ``hugetlb_cma_only=`` of *cmdline* (the last of each wins); unreadable: None."""
    cma, only = None, False
    for word in cmdline.split():
        key, _, val = word.partition("=")
        if key == "hugetlb_cma":
            try:
                cma = parse_hugetlb_cma(val, percent=percent, max_numnodes=max_numnodes)
            except KhoReplayError:
                cma = None
        elif key == "hugetlb_cma_only":
            only = val.lower() in _KSTRTOBOOL_TRUE if val.lower() in _KSTRTOBOOL else only
    return cma, only


def hugetlb_cma_order(arch: str, page_size: int = 4096) -> int:
    """``arch_hugetlb_cma_order()``: the gigantic page's order, 0 where the arch has none.

    x86 (arch/x86/mm/hugetlbpage.c:46): PUD order with GBPAGES (assumed: 1 GiB
    hugepagesz= needs it too); arm64 (arch/arm64/mm/hugetlbpage.c:39): PUD order
    when PUD sections exist (4 KiB pages), else contiguous PMD.  Other arches: the
    ``__weak`` 0 ("the option isn't supported by current arch").
    """
    if arch == "x86_64":
        return 30 - 12
    if arch == "arm64":
        if page_size == 4096:
            return 30 - 12
        return {16384: 30 - 14, 65536: 34 - 16}.get(page_size, 0)  # CONT_PMD: 32 MiB x 32 / 16 GiB
    return 0


@dataclass
class CmaArea:
    """One node's ``hugetlb%d`` area: its ranges ``[base, base + size)`` and ``cma_reserve_early()``'s cursor."""

    nid: int
    ranges: list[tuple[int, int]]
    #: bytes handed out from the start of each range (``cmr->early_pfn - cmr->base_pfn``).
    used: list[int] = field(default_factory=list)
    #: 7.3: ``cma_validate_zones()`` failed, the area is dropped (its memblock reservation stays).
    valid: bool = True

    @property
    def size(self) -> int:
        """Bytes of the area."""
        return sum(s for _, s in self.ranges)

    def reserve_early(self, size: int) -> int | None:
        """``cma_reserve_early()`` (mm/cma.c:1113): the first range with room, bumped from its base."""
        if not self.used:
            self.used = [0] * len(self.ranges)
        if size > self.size - sum(self.used):
            return None
        for i, (base, rsize) in enumerate(self.ranges):
            if size <= rsize - self.used[i]:
                addr = base + self.used[i]
                self.used[i] += size
                return addr
        return None


@dataclass
class CmaReservation:
    """What ``hugetlb_cma_reserve()`` did: ``hugetlb_cma_size`` afterwards, the areas, lines, requests."""

    total: int = 0
    areas: list[CmaArea] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    #: (Alloc op sent to the engine, address or None) for each cma_alloc_mem() try; (None, base) for a plain reserve.
    requests: list[tuple[Alloc | None, int | None, int]] = field(default_factory=list)

    def area(self, nid: int) -> CmaArea | None:
        """``hugetlb_cma[nid]``."""
        return next((a for a in self.areas if a.nid == nid and a.valid), None)


def _mib(x: int) -> int:
    return x >> 20


def _node_memory_size(mb: Memblock, nid: int) -> int:
    # 7.3 mm/hugetlb_cma.c:29-37 memblock_node_memory_size(): memory[] regions of the node.
    return sum(r.size for r in mb.memory if r.nid == nid)


def hugetlb_cma_reserve(mb: Memblock, req: HugetlbCma, nodes: Sequence[int], *, order: int,
                        era73: bool, zones: Sequence[tuple[str, int, int]] = ()) -> CmaReservation:
    """``hugetlb_cma_reserve()`` on the model (7.2 mm/hugetlb_cma.c:158-269, 7.3 :211-387).

    *nodes* are ``hugetlb_bootmem_nodes`` (nodes with memblock memory), *order*
    is :func:`hugetlb_cma_order`, *zones* the boot's ``Zone ranges`` (7.3 checks
    each area against them at once, ``cma_validate_zones()``).
    """
    res = CmaReservation()
    say = res.messages.append
    sizes = {n: v for n, v, p in req.per_node if not p}
    pcts = {n: v for n, v, p in req.per_node if p}
    has_node = bool(req.per_node)
    total = req.size
    if has_node and era73:
        # 7.3 :225-239: node percents of the node's memblock memory, then the sum.
        total = 0
        for nid in sorted(set(sizes) | set(pcts)):
            if nid in pcts:
                sizes[nid] = _node_memory_size(mb, nid) * pcts[nid] // 100
            total += sizes.get(nid, 0)
    elif req.percent:
        total = mb.phys_mem_size() * req.percent // 100  # 7.3 :240-243
    if not total:
        return res
    if not order:
        say("hugetlb_cma: the option isn't supported by current arch")  # :249-251 / 7.2 :168-170
        return res
    gsize = mb.page_size << order
    if req.percent:
        orig, total = total, total // gsize * gsize  # 7.3 :263-269
        if orig and not total:
            say(f"hugetlb_cma: reservation size rounded down to 0 from {_mib(orig)} MiB ({req.percent}%)")
    elif has_node and pcts:
        total = 0
        for nid in sorted(sizes):
            if nid in pcts:  # 7.3 :270-286
                orig = sizes[nid]
                sizes[nid] = orig // gsize * gsize
                if orig and not sizes[nid]:
                    say(f"hugetlb_cma: reservation size rounded down to 0 from {_mib(orig)} MiB "
                        f"({pcts[nid]}%) on node {nid}")
            total += sizes[nid]
    node_specific = False
    for nid in sorted(sizes):
        size = sizes[nid]
        if not size:
            continue
        # :291-308 (7.2 :184-201): an unknown node or a misaligned size drops that node's share.
        if nid not in nodes:
            say(f"hugetlb_cma: invalid node {nid} specified")
        elif size % gsize:
            say(f"hugetlb_cma: cma area of node {nid} must be a multiple of {_mib(gsize)} MiB")
        else:
            node_specific = True
            continue
        total -= size
        sizes[nid] = 0
    if not total:
        return res
    if total % gsize:
        say(f"hugetlb_cma: cma area must be a multiple of {_mib(gsize)} MiB")  # :314-319
        return res
    per_node = 0
    if not node_specific:
        # :321-336: split evenly over the bootmem nodes, rounded up to the gigantic size, in node order.
        per_node = round_up(-(-total // len(nodes)), gsize)
        if req.percent:
            say(f"hugetlb_cma: reserve {_mib(total)} MiB ({req.percent}%), up to {_mib(per_node)} MiB per node")
        else:
            say(f"hugetlb_cma: reserve {_mib(total)} MiB, up to {_mib(per_node)} MiB per node")
    reserved = 0
    for nid in sorted(nodes):
        if node_specific:
            size = sizes.get(nid, 0)
            if not size:
                continue
        else:
            size = min(per_node, total - reserved)
        ranges, err = _declare_contiguous_multi(mb, res, size, gsize, nid)
        if ranges is None:
            # 7.2 :250 "reservation failed: err %d, node %d"; 7.3 :362 the same words through "%s: err".
            say(f"hugetlb_cma: reservation failed: err {err}, node {nid}")
            continue
        area = CmaArea(nid, ranges)
        res.areas.append(area)
        if era73 and _spans_zones(ranges, zones):
            # 7.3 :361-366: hugetlb_cma[nid] = NULL, but the memblock reservation is not given back.
            area.valid = False
            say(f"hugetlb_cma: reserved area spans zones: err 0, node {nid}")
            continue
        reserved += size
        pct = pcts.get(nid) if era73 else None
        say(f"hugetlb_cma: reserved {_mib(size)} MiB ({pct}%) on node {nid}" if pct
            else f"hugetlb_cma: reserved {_mib(size)} MiB on node {nid}")
        if reserved >= total:
            break
    # :381-386: with nothing reserved hugetlb_cma_size goes back to 0 (boot-time gigantic pages are allocated).
    res.total = total if reserved else 0
    return res


def _spans_zones(ranges: Sequence[tuple[int, int]], zones: Sequence[tuple[str, int, int]]) -> bool:
    # mm/cma.c:104 cma_validate_zones(): every range within one zone
    return any(sum(1 for _, zb, ze in zones if zb < b + s and b < ze) > 1 for b, s in ranges)


def _declare_contiguous_multi(mb: Memblock, res: CmaReservation, total: int, align: int,
                              nid: int) -> tuple[list[tuple[int, int]] | None, int]:
    """``cma_declare_contiguous_multi()`` (mm/cma.c:534-714): one range, else several above 4 GiB."""
    # __cma_declare_contiguous_nid() (:436-521): base 0, limit 0 -> memblock_end_of_DRAM() (not aligned down);
    # alignment max(align, CMA_MIN_ALIGNMENT_BYTES) = the gigantic size; size is already a multiple of it.
    regions = mb.memory.regions()
    limit = regions[-1].end if regions else 0
    if total > limit:
        res.messages.append(f"cma: Failed to reserve {_mib(total)} MiB")  # :496 -EINVAL, no multi-range retry
        return None, -22
    addr = _cma_alloc_mem(mb, res, total, align, limit, nid)
    if addr is not None:
        res.messages.append(f"cma: Reserved {_mib(total)} MiB in 1 range")
        return [(addr, total)], 0
    # :580-: free ranges of the node above 4 GiB, with the kernel's list order, ignoring scratch-only
    # (for_each_free_mem_range(..., MEMBLOCK_NONE): should_skip_region() asks for no KHO_SCRATCH).
    ranges: list[list[int]] = []  # [base, size] in list order
    sizesum, nr = 0, 0
    gran = mb.page_size << HUGETLB_PAGE_ORDER
    for start, end, _ in for_each_free_mem_range(mb.memory, mb.reserved,
                                                 lambda m: mb.should_skip_region(m, nid, 0)):
        if start >> 32 == 0:
            continue  # :592 upper_32_bits(start) == 0: a range starting below 4 GiB is not considered
        start = round_up(start, align)
        if start >= end:
            continue
        end = end // align * align
        if end <= start:
            continue
        size = (end - start) // gran * gran
        if not size:
            continue
        sizesum += size
        if nr < CMA_MAX_RANGES:
            nr += 1
        else:
            last = ranges[-1]  # :622 list_last_entry(): replaced when not smaller
            if size < last[1]:
                continue
            ranges.pop()
            sizesum -= last[1]
        _insert_sorted(ranges, [start, size], lambda lh, rh: lh[1] > rh[1])  # revsizecmp
    if sizesum < total:
        res.messages.append(f"cma: Failed to reserve {_mib(total)} MiB")
        return None, -12
    final: list[list[int]] = []
    sizesum = 0
    for r in ranges:
        _insert_sorted(final, r, lambda lh, rh: lh[0] < rh[0])  # basecmp
        sizesum += r[1]
        if sizesum >= total:
            break
    out: list[tuple[int, int]] = []
    left = total
    for base, rsize in final:
        size = min(left, rsize)
        # :677 plain memblock_reserve(): flags 0, no node (not RSRV_KERN, unlike cma_alloc_mem()'s)
        mb.reserve(base, size)
        res.requests.append((None, base, size))
        out.append((base, size))
        left -= size
        if not left:
            break
    n = len(out)
    res.messages.append(f"cma: Reserved {_mib(total)} MiB in {n} range{'s' if n != 1 else ''}")
    return out, 0


def _insert_sorted(lst: list[list[int]], item: list[int], cmp: object) -> None:
    """mm/cma.c:343 list_insert_sorted(): before the first entry *cmp* accepts; when none does, the cursor
    is left on the last entry and the new one still goes before it."""
    if not lst:
        lst.append(item)
        return
    at = len(lst) - 1
    for i, e in enumerate(lst):
        if cmp(e, item):  # type: ignore[operator]
            at = i
            break
    lst.insert(at, item)


def _cma_alloc_mem(mb: Memblock, res: CmaReservation, size: int, align: int, limit: int, nid: int) -> int | None:
    """``cma_alloc_mem()`` (mm/cma.c:387-432): bottom-up from 4 GiB when top-down and the limit allows, then
    top-down over ``[0, limit)``; both exact-node through ``memblock_alloc_range_nid()`` (RSRV_KERN)."""
    why = "hugetlb_cma_reserve(): cma_alloc_mem() memblock_alloc_range_nid()"
    addr = None
    if not mb.bottom_up and limit >= SZ_4G + size:
        op = Alloc("memblock_alloc_range_nid", size, align=align, nid=nid, min_addr=SZ_4G, max_addr=limit,
                   exact=True, caller="cma_alloc_mem", inferred=why + ", bottom-up above 4G")
        mb.set_bottom_up(True)
        addr = mb.alloc(op)
        mb.set_bottom_up(False)
        res.requests.append((op, addr, size))
    if addr is None:
        op = Alloc("memblock_alloc_range_nid", size, align=align, nid=nid, min_addr=0, max_addr=limit,
                   exact=True, caller="cma_alloc_mem", inferred=why)
        addr = mb.alloc(op)
        res.requests.append((op, addr, size))
    return addr
