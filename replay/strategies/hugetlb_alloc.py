# SPDX-License-Identifier: GPL-2.0-only
"""The maintainer's alternative 1: SCRATCH_EXT kept, a hugetlb-only allocator, RSRV_KERN kept.
"""

from __future__ import annotations

from .base import RAPOPORT_REPLY, Strategy

__all__ = ["STRATEGY"]

STRATEGY = Strategy(
    name='hugetlb-alloc',
    description=(
        'alternative 1: SCRATCH_EXT placement, memblock_alloc_gigantic_hugetlb() keeps RSRV_KERN, sizing '
        'excludes hugetlb'
    ),
    source=f'{RAPOPORT_REPLY}, alternative 1',
    gigantic_api='nid_user',
    hugetlb_in_scratch_sizing=False,
    extension='ext',
)
