# SPDX-License-Identifier: GPL-2.0-only
"""Half-open address ranges ``[start, end)``: what is left of some ranges once others are taken out.

Shared by the console parser (which parts of a region no logged op covers)
and the validator (which parts of a debugfs table the model lacks).

>>> subtract([(0, 100), (200, 300)], [(50, 250)])
[(0, 50), (250, 300)]
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["subtract"]


def subtract(ranges: Iterable[tuple[int, int]], cover: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of each ``[start, end)`` of *ranges*, in order, that no range of *cover* overlaps.

    *cover* may be unsorted and overlapping.
    """
    cover = list(cover)
    out: list[tuple[int, int]] = []
    for base, end in ranges:
        pos = base
        for b, e in sorted((max(b, base), min(e, end)) for b, e in cover if b < end and e > base):
            if b > pos:
                out.append((pos, b))
            pos = max(pos, e)
        if pos < end:
            out.append((pos, end))
    return out
