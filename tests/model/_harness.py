# SPDX-License-Identifier: GPL-2.0-only
"""The kernel's tools/testing/memblock set-up, rebuilt on the model.

The C harness allocates a 32 KiB buffer with malloc() and uses its (host
virtual) address as "physical" memory.  We use a synthetic base ``B`` that is
a multiple of 64 KiB, so every ``SMP_CACHE_BYTES`` and page rounding is a no-op
on the region boundaries, and write every expectation relative to ``B`` as the
kernel's own tests state them.

Harness constants (tools/testing/memblock, ``make NUMA=1``): PAGE_SIZE 4096,
SMP_CACHE_BYTES 32, MAX_NUMNODES 16, INIT_MEMBLOCK_REGIONS 128,
``sizeof(struct memblock_region)`` 24.
"""

from __future__ import annotations

from kho_replay.replay.flags import Flag
from kho_replay.replay.memblock.engine import Memblock
from kho_replay.replay.ops import MAX_PHYS_ADDR, NUMA_NO_NODE

__all__ = [
    "ANYWHERE",
    "B",
    "HOTPLUG",
    "MAX_NUMNODES",
    "MEM_SIZE",
    "NODE_FRACTIONS",
    "NUMA_NO_NODE",
    "PAGE",
    "PHYS_ADDR_MAX",
    "REGION_SIZE",
    "RSRV_KERN",
    "SMP",
    "new_mb",
    "node_base",
    "node_end",
    "node_size",
    "regs",
    "setup_memblock",
    "setup_numa_memblock",
]

B = 0x4000_0000  # synthetic dummy_physical_memory_base(): 1 GiB, a multiple of 64 KiB
MEM_SIZE = 32 << 10  # SZ_32K
PAGE = 4096
SMP = 32  # SMP_CACHE_BYTES in the userspace harness
MAX_NUMNODES = 16  # NODES_SHIFT 4
REGION_SIZE = 24
PHYS_ADDR_MAX = MAX_PHYS_ADDR
ANYWHERE = MAX_PHYS_ADDR
RSRV_KERN = int(Flag.MEMBLOCK_RSRV_KERN)
HOTPLUG = int(Flag.MEMBLOCK_HOTPLUG)

# alloc_nid_api.c node_fractions[] (basis 10000) of MEM_SIZE.
NODE_FRACTIONS = (2500, 625, 1250, 1250, 625, 625, 2500, 625)
_SIZES = [MEM_SIZE * f // 10000 for f in NODE_FRACTIONS]
_BASES = [sum(_SIZES[:i]) for i in range(len(_SIZES))]
assert _SIZES == [8192, 2048, 4096, 4096, 2048, 2048, 8192, 2048]
assert _BASES == [0, 8192, 10240, 14336, 18432, 20480, 22528, 30720]
NUMA_NO_NODE = NUMA_NO_NODE


def node_base(i: int) -> int:
    """Absolute base of node *i* in the 8-node layout."""
    return B + _BASES[i]


def node_size(i: int) -> int:
    return _SIZES[i]


def node_end(i: int) -> int:
    return node_base(i) + _SIZES[i]


def new_mb(kernel: str = "7.3", *, bottom_up: bool = False, resize: bool = False) -> Memblock:
    """A fresh ``struct memblock`` (reset_memblock_regions + reset_memblock_attributes)."""
    mb = Memblock.for_kernel(kernel, "harness")
    mb.set_bottom_up(bottom_up)
    if resize:
        mb.allow_resize()
    return mb


def setup_memblock(*, bottom_up: bool = False, kernel: str = "7.3") -> Memblock:
    """``setup_memblock()``: one 32 KiB memory region at B (nid MAX_NUMNODES)."""
    mb = new_mb(kernel, bottom_up=bottom_up)
    mb.add(B, MEM_SIZE)
    return mb


def setup_numa_memblock(*, bottom_up: bool = False, movable_node: bool = False) -> Memblock:
    """``setup_numa_memblock(node_fractions)``: 8 nodes, HOTPLUG unless movable_node (as common.c)."""
    mb = new_mb(bottom_up=bottom_up)
    mb.movable_node = movable_node
    flags = 0 if movable_node else HOTPLUG
    for i in range(8):
        mb.add_node(node_base(i), node_size(i), i, flags)
    return mb


def regs(t) -> list[tuple[int, int]]:
    """``[(base, size), ...]`` of a table."""
    return [(r.base, r.size) for r in t]
