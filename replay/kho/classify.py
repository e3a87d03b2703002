# SPDX-License-Identifier: GPL-2.0-only
"""Which subsystem asked for a memblock range, from the caller the kernel printed.

``memblock=debug`` prints the caller of every allocation and reservation as
``%pS`` (``alloc_bootmem+0x53/0x130``).  Strategies need to know which requests
are gigantic hugetlb pages (they place them differently) and which ones are
KHO's own scratch areas (they are re-sized per design); reports group bytes by
subsystem.  One table maps caller functions to a :class:`Subsystem`; the first
matching row wins, so specific names come before generic prefixes.

>>> classify("alloc_bootmem+0x53/0x130") is Subsystem.HUGETLB_GIGANTIC
True
>>> classify("vmemmap_populate_hugepages+0xd8/0x190").value
'memmap/vmemmap'
>>> classify("kho_memory_init+0x1b8/0x430").value
'KHO scratch'
>>> classify("some_driver_init+0x10/0x20").value
'other'
"""

from __future__ import annotations

import enum
import functools
import re

from ..ops import caller_function

__all__ = ["CALLER_TABLE", "Subsystem", "caller_function", "classify"]


class Subsystem(enum.StrEnum):
    """Who a reservation is for, as a report names it (the value is the report's words)."""

    HUGETLB_GIGANTIC = "hugetlb gigantic pages"
    HUGETLB_CMA = "hugetlb CMA"
    KHO_SCRATCH = "KHO scratch"
    KHO_PRESERVED = "KHO preserved"
    MEMMAP = "memmap/vmemmap"
    PERCPU = "percpu"
    PAGE_TABLES = "page tables"
    HASH_TABLES = "hash tables"
    SWIOTLB = "swiotlb"
    CRASHKERNEL = "crashkernel"
    FIRMWARE_KERNEL = "firmware/kernel image"
    MEMBLOCK_ARRAYS = "memblock arrays"
    OTHER = "other"


S = Subsystem
#: (caller function name pattern, subsystem); ``re.fullmatch`` on the function part of ``%pS``.
CALLER_TABLE: tuple[tuple[str, Subsystem], ...] = (
    # hugetlb_bootmem_alloc() -> alloc_bootmem() / __alloc_bootmem_huge_page() (ppc overrides the latter).
    (r"alloc_bootmem|__alloc_bootmem_huge_page|alloc_bootmem_huge_page|hugetlb_hstate_alloc_pages.*"
     r"|hugetlb_bootmem_alloc|memblock_alloc_hugetlb|memblock_alloc_nid_user", S.HUGETLB_GIGANTIC),
    (r"hugetlb_cma_.*", S.HUGETLB_CMA),
    # cma_declare_contiguous_nid() backs hugetlb_cma and also dma/cma= areas; hugetlb's is the common case here.
    # Ambiguous with cma= (dma_contiguous_reserve()): the boot driver keeps it hugetlb only with hugetlb_cma=.
    (r"cma_declare_contiguous.*|cma_reserve_early|__cma_declare_contiguous_nid|cma_alloc_mem", S.HUGETLB_CMA),
    (r"kho_preserved_memory_reserve|kho_mem_retrieve|kho_mem_deserialize|kho_restore_.*", S.KHO_PRESERVED),
    (r"kho_reserve_scratch|kho_memory_init|kho_populate|kho_extend_scratch|kho_memory_init_early"
     r"|kho_radix_.*|kho_ext_.*", S.KHO_SCRATCH),
    (r"sparse_.*|vmemmap_.*|__populate_section_memmap|populate_section_memmap|memmap_alloc"
     r"|alloc_node_mem_map|free_area_init.*|__earlyonly_bootmem_alloc|sparse_buffer_init", S.MEMMAP),
    (r"pcpu_.*|setup_per_cpu_areas|pcpu_fc_alloc|pcpu_embed_first_chunk|pcpu_page_first_chunk", S.PERCPU),
    (r"alloc_low_pages?|spp_getpage|alloc_low_page|early_alloc_pgt_buf|init_mem_mapping"
     r"|kernel_physical_mapping_init|phys_.*_init|early_pgtable_alloc|pgtable_alloc.*|kasan_.*"
     r"|__create_pgd_mapping.*|early_pte_alloc|early_pmd_alloc", S.PAGE_TABLES),
    (r"alloc_large_system_hash|vfs_caches_init_early|.*_hash_init|pidhash_init", S.HASH_TABLES),
    (r"swiotlb_.*", S.SWIOTLB),
    (r"reserve_crashkernel.*|arch_reserve_crashkernel|crash_.*", S.CRASHKERNEL),
    (r"memblock_double_array", S.MEMBLOCK_ARRAYS),
    (r"setup_arch|early_reserve_memory|memblock_x86_reserve_range_setup_data|reserve_brk|reserve_initrd"
     r"|early_init_fdt_.*|fdt_.*|efi_.*|e820__.*|reserve_bios_regions|reserve_real_mode|acpi_.*"
     r"|x86_reserve_low_mem|arm64_memblock_init|paging_init|reserve_ibft_region|trim_low_memory_range"
     r"|memblock_reserve_kern|early_init_dt_.*|reserve_mem|reserve_bootmem_region|numa_.*|memblock_set_node"
     r"|setup_log_buf|reserve_elfcorehdr|.*_reserve_memory.*", S.FIRMWARE_KERNEL),
)
_COMPILED = tuple((re.compile(p), s) for p, s in CALLER_TABLE)
_INFERRED_FUNC = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\(\)")


@functools.lru_cache(maxsize=65536)  # a boot has a few hundred callers, asked once per op and per replay
def classify(caller: str | None, api: str | None = None, inferred: str | None = None) -> Subsystem:
    """The subsystem of a memblock request from its ``%pS`` caller (and API name).

    ``memblock_alloc_hugetlb`` and the v1 series' ``memblock_alloc_nid_user``
    are gigantic-page APIs whoever calls them.  When the caller says nothing
    (``memblock_alloc_range_nid+0xe9/0x190`` on a request a parser rebuilt),
    the function named first in the parser's *inferred* reason is tried
    (``"cma_alloc_mem(): ..."``).  An unknown or missing caller is
    :attr:`Subsystem.OTHER`.

    >>> classify("memblock_alloc_range_nid+0xe9/0x190", inferred="pcpu_fc_alloc(): no debug line").value
    'percpu'
    """
    if api in ("memblock_alloc_hugetlb", "memblock_alloc_nid_user"):
        return Subsystem.HUGETLB_GIGANTIC
    for text in (caller_function(caller) if caller else None,
                 m.group(1) if inferred and (m := _INFERRED_FUNC.match(inferred)) else None):
        if not text:
            continue
        for rx, sub in _COMPILED:
            if rx.fullmatch(text):
                return sub
    return Subsystem.OTHER
