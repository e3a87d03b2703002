# SPDX-License-Identifier: GPL-2.0-only
"""What the trace's kernel does (mainline up to 7.2, kho-spec §10.1).
"""

from __future__ import annotations

from .base import Strategy

__all__ = ["Baseline", "STRATEGY"]


class Baseline(Strategy):
    """What the trace's kernel does (mainline up to 7.2, kho-spec §10.1).
    """


STRATEGY = Baseline(
    name='baseline',
    description="what the trace's kernel does: gigantic pages RSRV_KERN, scratch-only until memblock_free_all()",
    source='mainline <= 7.2 (kernel/liveupdate/kexec_handover.c, mm/hugetlb.c); kho-spec §10.1',
)
