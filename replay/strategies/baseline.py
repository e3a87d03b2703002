# SPDX-License-Identifier: GPL-2.0-only
"""What the trace's kernel does: Linux up to 7.2.
"""

from __future__ import annotations

from .base import Strategy

__all__ = ["STRATEGY"]

STRATEGY = Strategy(
    name='baseline',
    description="what the trace's kernel does: gigantic pages RSRV_KERN, scratch-only until memblock_free_all()",
    source=(
        'Linux 7.2.13 (Debian linux-source-7.2): kernel/liveupdate/kexec_handover.c kho_reserve_scratch(), '
        'kho_populate(); mm/hugetlb.c alloc_bootmem()'
    ),
)
