# SPDX-License-Identifier: GPL-2.0-only
"""Maintainer's alternative 3: hugetlb preserves every gigantic page; the KHO boot adopts them (kho-
spec §10.6).
"""

from __future__ import annotations

from .base import Strategy

__all__ = ["PreserveHugetlb", "STRATEGY"]


class PreserveHugetlb(Strategy):
    """Maintainer's alternative 3: hugetlb preserves every gigantic page; the KHO boot adopts them (kho-
    spec §10.6).
    """


STRATEGY = PreserveHugetlb(
    name='preserve-hugetlb',
    description='alternative 3: every gigantic page preserved and adopted on the KHO boot; sizing excludes hugetlb',
    source='Mike Rapoport, kexec list 2026-05-17 (L-0517), alternative 3; P-DEC25 07/10',
    hugetlb_in_scratch_sizing=False,
    adopt_preserved_gigantic=True,
)
