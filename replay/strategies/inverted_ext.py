# SPDX-License-Identifier: GPL-2.0-only
"""The maintainer's alternative 4: reserve the 1 GiB blocks around preserved memory, end scratch-only
before hugetlb.
"""

from __future__ import annotations

from dataclasses import replace

from .base import EXCLUDE_HUGETLB, RAPOPORT_REPLY, Option, Strategy

__all__ = ["InvertedExt", "STRATEGY"]


class InvertedExt(Strategy):
    """The maintainer's alternative 4: reserve the 1 GiB blocks around preserved memory, end scratch-only
    before hugetlb.
    """

    def configure(self, s: Strategy) -> Strategy:
        """``protect-scratch``: gigantic pages retry past ``kho_scratch[]`` as 7.3 does.

        The reply asks that hugetlb not spill into scratch but names no mechanism; without the
        option nothing keeps the pages out.
        """
        s = super().configure(s)
        if Option.PROTECT_SCRATCH in s.options:
            return replace(s, gigantic_api="hugetlb")
        return s


STRATEGY = InvertedExt(
    name='inverted-ext',
    description=(
        'alternative 4: busy 1 GiB blocks reserved, scratch-only ends before hugetlb; '
        '--option protect-scratch retries past scratch'
    ),
    source=f'{RAPOPORT_REPLY}, alternative 4',
    extension='reserve_busy',
    preserved_reserved_at='never',
    scratch_only_ends='mm_core_init_early',
    known_options=(EXCLUDE_HUGETLB, (Option.PROTECT_SCRATCH.value,
                                     'gigantic pages retry past kho_scratch[] as 7.3 does (the reply names no '
                                     'mechanism; without it nothing keeps them out)')),
)
