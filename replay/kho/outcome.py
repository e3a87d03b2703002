# SPDX-License-Identifier: GPL-2.0-only
"""What one re-executed boot produced: per-request results and the metrics a kernel developer asks about.

Everything here is a frozen dataclass so two outcomes can be lined up by a
differ request by request (:attr:`Outcome.requests`, by op index) and metric
by metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from ..ops import Doubling, caller_function
from .classify import Subsystem

__all__ = [
    "Agreement",
    "Cost",
    "Gigantic",
    "Outcome",
    "Request",
    "Scratch",
    "ScratchArea",
    "agreement",
]


@dataclass(frozen=True, slots=True)
class Request:
    """One allocation request of the boot: where it went (None: failed) and who asked."""

    op_index: int
    api: str
    size: int
    nid: int
    subsystem: Subsystem
    addr: int | None
    caller: str | None = None
    #: True when the op was synthesized (KHO scratch of a trace without KHO, extra hugetlb attempts).
    synthesized: bool = False
    #: memblock was scratch-only when the request ran (a KHO boot before memblock_free_all()).
    scratch_only: bool = False


class ScratchArea(NamedTuple):
    """One ``kho_scratch[]`` entry: ``name`` is ``lowmem``, ``global`` or ``node<N>``."""

    name: str
    base: int
    size: int

    @property
    def end(self) -> int:
        """Exclusive end."""
        return self.base + self.size


@dataclass(frozen=True, slots=True)
class Scratch:
    """KHO scratch on the cold boot (sizes, areas or the failure), or inherited on a KHO boot.

    Sizes are bytes; ``pernode`` is ``((nid, size), ...)``; ``k_low``/``k_all``/
    ``k_nodes`` are the RSRV_KERN figures the sizing used (after a strategy's
    subtraction); ``failed`` is the area the kernel could not reserve
    (``global``, ``node1``...), and ``areas`` is then empty (the kernel frees
    what it had).
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

    @property
    def reserved(self) -> int:
        """Bytes of scratch actually in place."""
        return sum(s for _, _, s in self.areas)


@dataclass(frozen=True, slots=True)
class Gigantic:
    """Gigantic hugetlb pages of the boot.

    ``per_node`` counts pages by the nid their reservation carries (-1: the
    memblock any-node fallback); ``in_scratch`` pages overlap ``kho_scratch[]``
    and cannot be preserved; ``in_extended`` lie in memory a strategy's
    extension flagged; ``adopted`` came from the previous kernel (alternative 3).
    """

    requested: int
    allocated: int
    per_node: tuple[tuple[int, int], ...]
    fallbacks: int
    in_scratch: int
    in_extended: int
    adopted: int
    addrs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Cost:
    """Cost proxies: regions the kernel would scan, entries it would memmove, digest keys."""

    regions_scanned: int
    memmove_entries: int
    digest_keys: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """One boot under one strategy (``boot`` is ``cold`` or ``kexec``)."""

    source: str
    strategy: str
    boot: str
    kho_boot: bool
    scratch: Scratch
    gigantic: Gigantic
    rsrv_kern: int
    rsrv_hugetlb: int
    preserved_bytes: int
    estimated_nr_free_pages: int
    max_threads: int
    reserved_cnt_peak: int
    reserved_cnt_final: int
    #: Every ``memblock_double_array()`` of the boot, in order.
    doublings: tuple[Doubling, ...]
    #: (phase, free bytes of KHO_SCRATCH memory) after each early phase of a KHO boot.
    scratch_left: tuple[tuple[str, int], ...]
    extended_bytes: int
    messages: tuple[str, ...]
    cost: Cost
    requests: tuple[Request, ...]
    panic: str | None = None
    #: ``hugetlb_cma=`` areas in place: ``(nid, base, size)`` per range (empty: none).
    hugetlb_cma: tuple[tuple[int, int, int], ...] = ()

    def in_scratch(self, d: Doubling) -> bool:
        """Whether the array of doubling *d* went into the inherited ``kho_scratch[]`` (KHO boots only)."""
        end = d.base + (d.alloc_size or d.size)
        return self.kho_boot and any(d.base < a.end and a.base < end for a in self.scratch.areas)

    @property
    def doublings_in_scratch(self) -> int:
        """How many of :attr:`doublings` went into the inherited scratch."""
        return sum(self.in_scratch(d) for d in self.doublings)

    def request(self, op_index: int) -> Request | None:
        """The request made by op *op_index*, if the boot made one."""
        for r in self.requests:
            if r.op_index == op_index:
                return r
        return None


@dataclass(frozen=True, slots=True)
class Agreement:
    """How two KHO boots agree on where their scratch-only requests landed.

    Requests are paired by (caller function, size, nid) in order of
    occurrence; ``mismatches`` lists ``(caller, size, addr_a, addr_b)`` for
    pairs that differ, ``unpaired`` counts requests one boot made and the
    other did not.
    """

    paired: int
    same: int
    mismatches: tuple[tuple[str, int, int | None, int | None], ...]
    unpaired: int


def agreement(a: Outcome, b: Outcome) -> Agreement:
    """Line up the scratch-only requests of *a* and *b* and count where they agree."""
    def keyed(o: Outcome) -> dict[tuple[str, int, int, int], Request]:
        seen: dict[tuple[str, int, int], int] = {}
        out = {}
        for r in o.requests:
            if not r.scratch_only:
                continue
            k = (caller_function(r.caller), r.size, r.nid)
            n = seen.get(k, 0)
            seen[k] = n + 1
            out[(*k, n)] = r
        return out

    ka, kb = keyed(a), keyed(b)
    common = [k for k in ka if k in kb]
    mism = tuple((k[0], k[1], ka[k].addr, kb[k].addr) for k in common if ka[k].addr != kb[k].addr)
    unpaired = len(ka) + len(kb) - 2 * len(common)
    return Agreement(len(common), len(common) - len(mism), mism, unpaired)
