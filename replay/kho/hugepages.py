# SPDX-License-Identifier: GPL-2.0-only
"""``hugepagesz=``, ``default_hugepagesz=`` and ``hugepages=`` as the kernel reads them.

The kernel records these early parameters in command-line order and parses
them together in ``hugetlb_parse_params()`` (7.2 and 7.3 mm/hugetlb.c, the
same code), from ``hugetlb_bootmem_alloc()``, once the nodes are known.  The
order matters: a ``hugepages=`` goes to the hstate of the last size parsed, or
to the default size when none was parsed yet, and several mistakes make the
kernel ignore a count (each rule below names the check it follows).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .params import memparse_end

__all__ = ["HugepagesRequest", "Hstate", "HugetlbParams", "hugepages_request", "hugetlb_params",
           "memparse_prefix"]

SZ_64K, SZ_2M, SZ_32M, SZ_1G = 1 << 16, 1 << 21, 1 << 25, 1 << 30

#: arch_hugetlb_valid_size() with 4 KiB pages: x86 PMD and PUD (with GBPAGES), arm64 also CONT_PTE and CONT_PMD.
_VALID_SIZES = {"x86_64": (SZ_2M, SZ_1G), "arm64": (SZ_64K, SZ_2M, SZ_32M, SZ_1G)}
#: HUGE_MAX_HSTATE: the kernel records at most 2 * HUGE_MAX_HSTATE + 1 of these parameters.
_MAX_HSTATE = {"x86_64": 2, "arm64": 4}
#: MAX_NUMNODES (1 << NODES_SHIFT as Debian configures it): a larger nid is invalid.
_MAX_NUMNODES = {"x86_64": 1 << 10, "arm64": 1 << 4}
#: HPAGE_SIZE: the default hstate when no default_hugepagesz= was parsed.
HPAGE_SIZE = SZ_2M
#: The gigantic size whose pages memblock allocates at boot (PUD_SIZE).
GIGANTIC = SZ_1G

_COUNT = re.compile(r"\d+")


def memparse_prefix(text: str) -> int:
    """The kernel's ``memparse()`` of the size *text* starts with, ignoring what follows; 0 when it does
    not start with a number.

    >>> memparse_prefix("1G"), memparse_prefix("1024m"), memparse_prefix("0x40000000"), memparse_prefix("G")
    (1073741824, 1073741824, 1073741824, 0)
    """
    return memparse_end(text)[0]


@dataclass(slots=True)
class Hstate:
    """One hstate the parameters created: its page size and requested pages (``max_huge_pages``)."""

    size: int
    max_huge_pages: int = 0
    #: ``max_huge_pages_node[]``: nid -> count, from the ``nid:count`` form.
    per_node: dict[int, int] = field(default_factory=dict)


@dataclass(slots=True)
class HugetlbParams:
    """What ``hugetlb_parse_params()`` leaves: the hstates in creation order, the default one, the warnings."""

    hstates: list[Hstate]
    #: default_hstate's size once default_hugepagesz= was parsed, else None (HPAGE_SIZE, set up by hugetlb_init()).
    default_size: int | None
    #: hugepages= given before any size: default_hstate_max_huge_pages, for HPAGE_SIZE when no default was parsed.
    default_pages: int
    default_per_node: dict[int, int]
    warnings: list[str]

    def hstate(self, size: int) -> Hstate | None:
        """The hstate of *size* pages, if the parameters created it."""
        return next((h for h in self.hstates if h.size == size), None)


def _hugepages(p: HugetlbParams, target: Hstate | None, s: str, max_numnodes: int,
               online: frozenset[int] | None) -> bool:
    """hugepages_setup()'s count or ``nid:count,...`` list into *target* (None: the default count);
    False when the kernel finds it invalid (and clears the counts it was filling)."""
    pos, first = 0, True
    while pos < len(s):
        m = _COUNT.match(s, pos)
        if not m:
            break
        n, end = int(m.group()), m.end()
        if end < len(s) and s[end] == ":":
            if n >= max_numnodes or (online is not None and n not in online):
                break
            c = _COUNT.match(s, end + 1)
            if not c:
                break
            count = int(c.group())
            if target is None:
                p.default_per_node[n] = count
                p.default_pages += count
            else:
                target.per_node[n] = count
                target.max_huge_pages += count
            if c.end() < len(s) and s[c.end()] == ",":
                pos, first = c.end() + 1, False
                continue
            return True
        if not first:
            break  # a plain count after a node list: "p != s"
        if target is None:
            p.default_pages = n
        else:
            target.max_huge_pages = n
        return True
    else:
        return True  # the string ended ("" or "nid:count,"): the counts so far are kept
    # "Invalid hugepages parameter": hugepages_clear_pages_in_node()
    p.warnings.append(f"HugeTLB: Invalid hugepages parameter {s[pos:]}")
    if target is None:
        p.default_pages = 0
        p.default_per_node.clear()
    else:
        target.max_huge_pages = 0
        target.per_node.clear()
    return False


def hugetlb_params(cmdline: str, arch: str = "x86_64", online: frozenset[int] | None = None) -> HugetlbParams:
    """The hstates and counts *cmdline* gives on *arch*, as ``hugetlb_parse_params()`` leaves them.

    *online*: the nids with memory, for the ``nid:count`` form's ``node_online()`` check (None: not checked).

    >>> p = hugetlb_params("hugepages=2 default_hugepagesz=1G")
    >>> p.default_size, p.hstate(1 << 30).max_huge_pages
    (1073741824, 2)
    """
    valid = _VALID_SIZES.get(arch, _VALID_SIZES["x86_64"])
    max_args = 2 * _MAX_HSTATE.get(arch, 2) + 1
    max_numnodes = _MAX_NUMNODES.get(arch, 1 << 10)
    p = HugetlbParams([], None, 0, {}, [])
    parsed: Hstate | None = None  # parsed_hstate
    valid_size = True  # parsed_valid_hugepagesz
    last: object = None  # last_mhp: the count the previous hugepages= filled
    args = 0
    for word in cmdline.split():
        if word == "--":
            break  # the rest is init's
        key, eq, val = word.partition("=")
        if key not in ("hugepages", "hugepagesz", "default_hugepagesz") or not eq:
            continue
        if args >= max_args:
            continue  # hugetlb_add_param(): the table of recorded parameters is full
        args += 1
        if key == "hugepages":
            if not valid_size:
                p.warnings.append(f"HugeTLB: hugepages={val} does not follow a valid hugepagesz, ignoring")
                valid_size = True
                continue
            target = parsed if p.hstates else None  # !hugetlb_max_hstate: the default hstate's count
            slot = id(target) if target is not None else "default"
            if slot == last:
                p.warnings.append("HugeTLB: hugepages= specified twice without interleaving hugepagesz=, "
                                  f"ignoring hugepages={val}")
                continue
            if _hugepages(p, target, val, max_numnodes, online):
                last = slot
            continue
        valid_size = False
        if key == "default_hugepagesz" and p.default_size is not None:
            p.warnings.append(f"HugeTLB: default_hugepagesz previously specified, ignoring {val}")
            continue
        size = memparse_prefix(val)
        if size not in valid:
            p.warnings.append(f"HugeTLB: unsupported {key}={val}")
            continue
        h = p.hstate(size)
        if key == "hugepagesz" and h is not None:
            # only the default hstate may be named again, and only while it has no count yet
            if p.default_size != size or h.max_huge_pages:
                p.warnings.append(f"HugeTLB: hugepagesz={val} specified twice, ignoring")
                continue
            parsed, valid_size = h, True
            continue
        if h is None:
            h = Hstate(size)
            p.hstates.append(h)
            parsed = h  # hugetlb_add_hstate() makes a new hstate the parsed one
        valid_size = True
        if key == "default_hugepagesz":
            p.default_size = size
            if p.default_pages:  # a count given first now belongs to this size
                h.max_huge_pages = p.default_pages
                h.per_node.update((n, c) for n, c in p.default_per_node.items() if c)
                p.default_pages = 0
    return p


@dataclass(frozen=True, slots=True)
class HugepagesRequest:
    """The 1 GiB hstate's ``hugepages=`` request: a total, or ``((nid, count), ...)``."""

    total: int
    per_node: tuple[tuple[int, int], ...] = ()


def hugepages_request(cmdline: str, arch: str = "x86_64",
                      online: frozenset[int] | None = None) -> HugepagesRequest | None:
    """The gigantic (1 GiB) hstate's request on *cmdline*, or None when it has none.

    Per node: ``hugetlb_hstate_alloc_pages_specific_nodes()`` allocates every online node's
    count above 0, in nid order, and the total is what the kernel reports failures against.

    >>> hugepages_request("hugepagesz=1G hugepages=2")
    HugepagesRequest(total=2, per_node=())
    >>> hugepages_request("hugepagesz=1G hugepages=0:1,1:3").per_node
    ((0, 1), (1, 3))
    >>> hugepages_request("hugepages=8") is None
    True
    """
    h = hugetlb_params(cmdline, arch, online).hstate(GIGANTIC)
    if h is None or not h.max_huge_pages:
        return None
    return HugepagesRequest(h.max_huge_pages, tuple(sorted((n, c) for n, c in h.per_node.items() if c > 0)))
