# SPDX-License-Identifier: GPL-2.0-only
"""The December 2025 RFC: retrieve preserved memory before hugetlb and end scratch-only right after.
"""

from __future__ import annotations

from .base import EXCLUDE_HUGETLB, Strategy

__all__ = ["STRATEGY"]

STRATEGY = Strategy(
    name='scratch-off-early',
    description='Dec 2025 RFC: kho_mem_retrieve() before hugetlb, scratch-only cleared right after retrieval',
    source=(
        "Pratyush Yadav, [RFC 02/10] kho: disable scratch-only earlier in boot, series 'hugetlb live update', "
        "2025-12-07 (<20251206230222.853493-3-pratyush@kernel.org>)"
    ),
    preserved_reserved_at='mm_core_init_early',
    scratch_only_ends='mm_core_init_early',
    known_options=(EXCLUDE_HUGETLB,),
)
