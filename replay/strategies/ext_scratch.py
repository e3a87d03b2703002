# SPDX-License-Identifier: GPL-2.0-only
"""The posted v1 series (2026-04-29): patches 09/12, 10/12 and 12/12.
"""

from __future__ import annotations

from .base import Strategy

__all__ = ["STRATEGY"]

STRATEGY = Strategy(
    name='ext-scratch',
    description=(
        'v1: 1 GiB extended scratch flagged SCRATCH_EXT; gigantic pages via memblock_alloc_nid_user() with '
        'RSRV_KERN cleared'
    ),
    source=(
        "Pratyush Yadav, [PATCH 00/12] kho: make boot time huge page allocation work nicely with KHO, 2026-04-29 "
        "(https://lore.kernel.org/linux-mm/20260429133928.850721-1-pratyush@kernel.org/): 09/12 memblock: "
        "introduce MEMBLOCK_KHO_SCRATCH_EXT, 10/12 kho: extended scratch, 12/12 mm/hugetlb: make bootmem "
        "allocation work with KHO"
    ),
    gigantic_api='nid_user',
    hugetlb_rsrv_kern=False,
    extension='ext',
)
