# SPDX-License-Identifier: GPL-2.0-only
"""Maintainer's alternative 1: SCRATCH_EXT kept, hugetlb-only allocator, RSRV_KERN kept (kho-spec
§10.3).
"""

from __future__ import annotations

from .base import Strategy

__all__ = ["HugetlbAlloc", "STRATEGY"]


class HugetlbAlloc(Strategy):
    """Maintainer's alternative 1: SCRATCH_EXT kept, hugetlb-only allocator, RSRV_KERN kept (kho-spec
    §10.3).
    """


STRATEGY = HugetlbAlloc(
    name='hugetlb-alloc',
    description=(
        'alternative 1: SCRATCH_EXT placement, memblock_alloc_gigantic_hugetlb() keeps RSRV_KERN, sizing '
        'excludes hugetlb'
    ),
    source='Mike Rapoport, kexec list 2026-05-17 (L-0517), alternative 1',
    gigantic_api='nid_user',
    hugetlb_in_scratch_sizing=False,
    extension='ext',
)
