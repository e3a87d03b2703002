# SPDX-License-Identifier: GPL-2.0-only
"""Caller classification and the linking of fixed-address ops to allocations."""

from __future__ import annotations

import pytest

from kho_replay.replay.kho.classify import Subsystem, classify
from kho_replay.replay.kho.link import Anchor, link, resolve
from kho_replay.replay.ops import parse_script


@pytest.mark.parametrize(("caller", "want"), [
    ("alloc_bootmem+0x53/0x130", Subsystem.HUGETLB_GIGANTIC),
    ("kho_memory_init+0x1ee/0x430", Subsystem.KHO_SCRATCH),
    ("kho_preserved_memory_reserve+0x7c/0xb0", Subsystem.KHO_PRESERVED),
    ("sparse_init_nid+0x2e/0x340", Subsystem.MEMMAP),
    ("vmemmap_pud_populate.isra.0+0x43/0xc0", Subsystem.MEMMAP),
    ("pcpu_embed_first_chunk+0x1e1/0x630", Subsystem.PERCPU),
    ("alloc_low_pages+0x9d/0x1b0", Subsystem.PAGE_TABLES),
    ("swiotlb_init_remap+0xd1/0x300", Subsystem.SWIOTLB),
    ("reserve_crashkernel_generic+0x5c/0x120", Subsystem.CRASHKERNEL),
    ("setup_arch+0xb81/0xcd0", Subsystem.FIRMWARE_KERNEL),
    ("early_reserve_memory+0x3b/0x90", Subsystem.FIRMWARE_KERNEL),
    ("hugetlb_cma_reserve+0x1a0/0x300", Subsystem.HUGETLB_CMA),
    ("cma_declare_contiguous_nid+0x40/0x90", Subsystem.HUGETLB_CMA),
    ("alloc_large_system_hash+0x21a/0x2e0", Subsystem.HASH_TABLES),
    ("__memblock_alloc_or_panic+0x1f/0x40", Subsystem.OTHER),
    (None, Subsystem.OTHER),
])
def test_classify(caller, want):
    assert classify(caller) is want


def test_hugetlb_api_is_gigantic_whoever_calls():
    assert classify("foo+0x1/0x2", "memblock_alloc_hugetlb") is Subsystem.HUGETLB_GIGANTIC


OPS = parse_script("""
add 0x0 8G nid=0
reserve 0x1000000 16M
alloc memblock_alloc_try_nid size=2M align=2M nid=0 expect=0x1ffe00000
free 0x1fff00000 1M
alloc memblock_alloc size=1G align=1G expect=0x1c0000000
free 0x1c0000000 1G
reserve 0x1c0000000 4K
free 0x1000000 4K
""")


def test_partial_free_moves_with_its_allocation():
    anchors = link(OPS)
    # The percpu-style tail free is "allocation 2 + 1 MiB".
    assert anchors[3] == Anchor(2, 1 << 20)
    moved = resolve(OPS[3], anchors[3], {2: 0x100000000})
    assert moved.base == 0x100100000 and moved.size == 1 << 20


def test_whole_free_ends_the_allocation():
    anchors = link(OPS)
    assert anchors[5] == Anchor(4, 0)
    # After the whole block went back, a reserve at the same address belongs to nothing.
    assert anchors[6] is None


def test_fixed_ops_outside_allocations_stay_put():
    anchors = link(OPS)
    assert anchors[1] is None and anchors[7] is None
    assert resolve(OPS[7], anchors[7], {}) is OPS[7]


def test_op_of_a_failed_allocation_is_dropped():
    anchors = link(OPS)
    assert resolve(OPS[3], anchors[3], {2: None}) is None


def test_cma_area_is_hugetlb_only_with_hugetlb_cma():
    from kho_replay.replay.kho.boot import classify_ops
    from kho_replay.replay.ops import Context, Trace

    ops = parse_script("alloc memblock_alloc_range_nid size=128M align=2M nid=-1 exact "
                       "caller=cma_declare_contiguous_nid+0x40/0x90")
    assert classify_ops(Trace(Context(cmdline="cma=128M"), ops)) == [Subsystem.OTHER]
    assert classify_ops(Trace(Context(cmdline="hugetlb_cma=2G"), ops)) == [Subsystem.HUGETLB_CMA]


def test_inferred_reason_names_the_real_caller():
    assert classify("memblock_alloc_range_nid+0xe9/0x190", inferred="alloc_node_data(): x") is Subsystem.OTHER
    assert classify("memblock_alloc_range_nid+0xe9/0x190",
                    inferred="vmemmap_populate_hugepages(): x") is Subsystem.MEMMAP
