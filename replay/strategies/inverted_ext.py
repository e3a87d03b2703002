# SPDX-License-Identifier: GPL-2.0-only
"""Maintainer's alternative 4: reserve the 1 GiB blocks around preserved memory, end scratch-only
before hugetlb (kho-spec §10.7).
"""

from __future__ import annotations

from dataclasses import replace

from .base import EXCLUDE_HUGETLB, Strategy

__all__ = ["InvertedExt", "STRATEGY"]


class InvertedExt(Strategy):
    """Maintainer's alternative 4: reserve the 1 GiB blocks around preserved memory, end scratch-only
    before hugetlb (kho-spec §10.7).
    """

    def configure(self, s: Strategy) -> Strategy:
        """``protect-scratch``: use the 7.3 overlap retry for gigantic pages (R4b); default R4a has none."""
        s = super().configure(s)
        if "protect-scratch" in s.options:
            return replace(s, gigantic_api="hugetlb")
        return s


STRATEGY = InvertedExt(
    name='inverted-ext',
    description=(
        'alternative 4: busy 1 GiB blocks reserved, scratch-only ends before hugetlb; '
        '--option protect-scratch retries past scratch'
    ),
    source='Mike Rapoport, kexec list 2026-05-17 (L-0517), alternative 4',
    extension='reserve_busy',
    preserved_reserved_at='never',
    scratch_only_ends='mm_core_init_early',
    known_options=(EXCLUDE_HUGETLB, ('protect-scratch', 'gigantic pages retry below kho_scratch[] as 7.3 does (R4b)'),),
)
