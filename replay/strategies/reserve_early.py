# SPDX-License-Identifier: GPL-2.0-only
"""Maintainer's alternative 2: reserve preserved memory and scratch before hugetlb (kho-spec §10.5).
"""

from __future__ import annotations

from .base import EXCLUDE_HUGETLB, Strategy

__all__ = ["ReserveEarly", "STRATEGY"]


class ReserveEarly(Strategy):
    """Maintainer's alternative 2: reserve preserved memory and scratch before hugetlb (kho-spec §10.5).
    """


STRATEGY = ReserveEarly(
    name='reserve-early',
    description=(
        'alternative 2: preserved memory reserved before hugetlb, scratch reserved around the hugetlb '
        'allocations'
    ),
    source='Mike Rapoport, kexec list 2026-05-17 (L-0517), alternative 2',
    preserved_reserved_at='mm_core_init_early',
    reserve_scratch_around_hugetlb=True,
    known_options=(EXCLUDE_HUGETLB,),
)
