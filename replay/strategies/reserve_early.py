# SPDX-License-Identifier: GPL-2.0-only
"""The maintainer's alternative 2: reserve preserved memory, and scratch around hugetlb, before hugetlb.
"""

from __future__ import annotations

from .base import EXCLUDE_HUGETLB, RAPOPORT_REPLY, Strategy

__all__ = ["STRATEGY"]

STRATEGY = Strategy(
    name='reserve-early',
    description=(
        'alternative 2: preserved memory reserved before hugetlb, scratch reserved around the hugetlb '
        'allocations'
    ),
    source=f'{RAPOPORT_REPLY}, alternative 2',
    preserved_reserved_at='mm_core_init_early',
    reserve_scratch_around_hugetlb=True,
    known_options=(EXCLUDE_HUGETLB,),
)
