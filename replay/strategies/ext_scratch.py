# SPDX-License-Identifier: GPL-2.0-only
"""The posted v1 series (2026-04-29, patches 09, 10, 12), kho-spec §10.2.
"""

from __future__ import annotations

from .base import Strategy

__all__ = ["ExtScratch", "STRATEGY"]


class ExtScratch(Strategy):
    """The posted v1 series (2026-04-29, patches 09, 10, 12), kho-spec §10.2.
    """


STRATEGY = ExtScratch(
    name='ext-scratch',
    description=(
        'v1: 1 GiB extended scratch flagged SCRATCH_EXT; gigantic pages via memblock_alloc_nid_user() with '
        'RSRV_KERN cleared'
    ),
    source=(
        'P-00 v1 series 2026-04-29 (09/12 MEMBLOCK_KHO_SCRATCH_EXT, 10/12 kho_extend_scratch, 12/12 '
        'memblock_alloc_nid_user)'
    ),
    gigantic_api='nid_user',
    hugetlb_rsrv_kern=False,
    extension='ext',
)
