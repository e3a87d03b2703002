# SPDX-License-Identifier: GPL-2.0-only
"""What Linux 7.3 merged: extension flagged KHO_SCRATCH, memblock_alloc_hugetlb(), RSRV_HUGETLB (kho-
spec §10.4).
"""

from __future__ import annotations

from .base import Strategy

__all__ = ["Merged", "STRATEGY"]


class Merged(Strategy):
    """What Linux 7.3 merged: extension flagged KHO_SCRATCH, memblock_alloc_hugetlb(), RSRV_HUGETLB (kho-
    spec §10.4).
    """


STRATEGY = Merged(
    name='merged',
    description=(
        '7.3: kho_extend_scratch() marks KHO_SCRATCH, memblock_alloc_hugetlb() skips kho_scratch[], sizing '
        'subtracts RSRV_HUGETLB'
    ),
    source='Linux 7.3 (liveupdate kho-scratch branch 2026-07-26, verified in linux-source 7.3.4)',
    gigantic_api='hugetlb',
    hugetlb_in_scratch_sizing=False,
    extension='scratch',
)
