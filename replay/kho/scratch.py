# SPDX-License-Identifier: GPL-2.0-only
"""KHO scratch: how a first kernel sizes and reserves it, how a KHO boot takes it over.

:func:`reserve_scratch` sizes the areas from ``RSRV_KERN`` and reserves them as
``kho_reserve_scratch()`` does, with its rollback and messages; :func:`populate`
adds and flags the inherited areas on a KHO boot (``kho_populate()``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ..flags import Flag
from ..memblock.engine import Memblock, round_up
from ..ops import MEMBLOCK_ALLOC_ACCESSIBLE, MEMBLOCK_ALLOC_ANYWHERE, NUMA_NO_NODE
from .outcome import Scratch, ScratchArea
from .params import KhoParams

__all__ = ["KhoParams", "ScratchArea", "ScratchRequest", "ScratchReservation", "populate", "reserve_scratch",
           "set_scratch_area"]

#: SCRATCH_ALIGNMENT_BYTES = PAGE_SIZE * MAX_ORDER_NR_PAGES: 4 MiB on x86_64 and arm64-4K (7.2, 7.3).
SCRATCH_ALIGNMENT_BYTES = 4 << 20
#: sizeof(struct kho_scratch): addr + size.
KHO_SCRATCH_DESC = 16


@dataclass(frozen=True, slots=True)
class ScratchRequest:
    """One memblock request ``kho_reserve_scratch()`` made: API, size, nid and the address (None: failed)."""

    api: str
    size: int
    nid: int
    addr: int | None


@dataclass(frozen=True, slots=True)
class ScratchReservation:
    """What ``kho_reserve_scratch()`` did: the scratch it sized and got, what it printed, what it asked."""

    scratch: Scratch
    messages: tuple[str, ...]
    requests: tuple[ScratchRequest, ...]


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
) -> ScratchReservation:
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
        return ScratchReservation(Scratch(False, 0, 0, (), 0, 0, (), (), None), (), ())
    mask = (1 << 64) - 1
    low_limit = mb.arch.arch_low_address_limit
    k_low = k_all = 0
    if params.scale:
        k_low = kern_size(mb, low_limit, NUMA_NO_NODE)
        lowmem = (k_low * params.scale // 100) & mask
        k_all = kern_size(mb, MEMBLOCK_ALLOC_ANYWHERE, NUMA_NO_NODE)
        # u64 arithmetic: a mostly-lowmem machine wraps here as scratch_size_update() does.
        global_ = (k_all * params.scale // 100 - lowmem) & mask
    else:
        lowmem, global_ = params.lowmem, params.global_
    lowmem = round_up(lowmem, SCRATCH_ALIGNMENT_BYTES)
    global_ = round_up(global_, SCRATCH_ALIGNMENT_BYTES)
    areas: list[ScratchArea] = []
    requests: list[ScratchRequest] = []
    pernode: list[tuple[int, int]] = []
    k_nodes: list[tuple[int, int]] = []

    def fail(what: str, msg: str) -> ScratchReservation:
        msgs.append("KHO: " + msg)
        for a in reversed(areas):
            mb.phys_free(a.base, a.size)
        if arr is not None:
            mb.phys_free(arr, arr_size)
        msgs.append("KHO: Failed to reserve scratch area, disabling kexec handover")
        return ScratchReservation(Scratch(False, lowmem, global_, tuple(pernode), k_low, k_all, tuple(k_nodes), (),
                                          what), tuple(msgs), tuple(requests))

    arr = None
    arr_size = (len(nodes) + 2) * KHO_SCRATCH_DESC
    arr = mb.alloc_try_nid(arr_size, mb.page_size, 0, MEMBLOCK_ALLOC_ACCESSIBLE, NUMA_NO_NODE)
    requests.append(ScratchRequest("memblock_alloc", arr_size, NUMA_NO_NODE, arr))
    if arr is None:
        return fail("array", "Failed to reserve scratch array")
    addr = mb.phys_alloc_range(lowmem, SCRATCH_ALIGNMENT_BYTES, 0, low_limit)
    requests.append(ScratchRequest("memblock_phys_alloc_range", lowmem, NUMA_NO_NODE, addr))
    if addr is None:
        return fail("lowmem", "Failed to reserve lowmem scratch buffer")
    areas.append(ScratchArea("lowmem", addr, lowmem))
    addr = mb.phys_alloc_range(global_, SCRATCH_ALIGNMENT_BYTES, 0, MEMBLOCK_ALLOC_ACCESSIBLE)
    requests.append(ScratchRequest("memblock_phys_alloc", global_, NUMA_NO_NODE, addr))
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
        requests.append(ScratchRequest("memblock_alloc_range_nid", size, nid, addr))
        if addr is None:
            return fail(f"node{nid}", f"Failed to reserve nid {nid} scratch buffer")
        areas.append(ScratchArea(f"node{nid}", addr, size))
    return ScratchReservation(Scratch(True, lowmem, global_, tuple(pernode), k_low, k_all, tuple(k_nodes),
                                      tuple(areas), None), tuple(msgs), tuple(requests))


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
    mb.kho_scratch = []
    for a in areas:
        set_scratch_area(mb, a.base, a.size)
    mb.kho_scratch_only = True


def set_scratch_area(mb: Memblock, base: int, size: int) -> None:
    """One ``kho_scratch[]`` entry, seen from now on by ``kho_scratch_overlap()`` (the ``kho_scratch_area`` op)."""
    if (base, base + size) not in mb.kho_scratch:
        mb.kho_scratch.append((base, base + size))
