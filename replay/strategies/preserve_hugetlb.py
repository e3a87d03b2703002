# SPDX-License-Identifier: GPL-2.0-only
"""The maintainer's alternative 3: hugetlb preserves every gigantic page; the KHO boot adopts them.
"""

from __future__ import annotations

from .base import RAPOPORT_REPLY, Strategy

__all__ = ["STRATEGY"]

STRATEGY = Strategy(
    name='preserve-hugetlb',
    description='alternative 3: every gigantic page preserved and adopted on the KHO boot; sizing excludes hugetlb',
    source=(
        f'{RAPOPORT_REPLY}, alternative 3; adoption as in Pratyush Yadav, [RFC 07/10] mm: hugetlb: don\'t '
        'allocate pages already in live update, 2025-12-07 (<20251206230222.853493-8-pratyush@kernel.org>)'
    ),
    hugetlb_in_scratch_sizing=False,
    adopt_preserved_gigantic=True,
)
