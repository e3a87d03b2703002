# SPDX-License-Identifier: GPL-2.0-only
"""What Linux 7.3 merged: extension flagged KHO_SCRATCH, memblock_alloc_hugetlb(), RSRV_HUGETLB.
"""

from __future__ import annotations

from .base import Strategy

__all__ = ["STRATEGY"]

STRATEGY = Strategy(
    name='merged',
    description=(
        '7.3: kho_extend_scratch() marks KHO_SCRATCH, memblock_alloc_hugetlb() skips kho_scratch[], sizing '
        'subtracts RSRV_HUGETLB'
    ),
    source=(
        'Linux 7.3 (liveupdate tree, branch kho-scratch, merge eb7145b5cb2a, 2026-07-26), read in Linux 7.3.4 '
        '(Debian linux-source-7.3): kernel/liveupdate/kexec_handover.c kho_extend_scratch(), mm/memblock.c '
        'memblock_alloc_hugetlb()'
    ),
    gigantic_api='hugetlb',
    hugetlb_in_scratch_sizing=False,
    extension='scratch',
)
