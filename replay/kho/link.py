# SPDX-License-Identifier: GPL-2.0-only
"""Tie fixed-address ops to the allocation they act on, so they move with it.

A real boot frees parts of what it allocated (percpu returns the unused tail of
its first chunk, hugetlb marks a gigantic page's tail ``NOINIT``, KHO frees its
scratch areas when one fails) and sometimes reserves again inside an earlier
allocation.  Those ops carry absolute addresses.  When a strategy places an
allocation somewhere else, they must follow it; ops that fall inside no earlier
live allocation (firmware, kernel image, initrd) stay where they are.

:func:`link` returns, per op, ``None`` (stays put) or an :class:`Anchor`
"allocation *k* + *offset*"; :func:`resolve` turns an anchored op back into a
concrete one for the addresses a replay actually produced.

>>> from kho_replay.replay.ops import parse_script
>>> ops = parse_script('''
... add 0x0 4G
... alloc memblock_alloc size=1M align=4K expect=0xfff00000
... free 0xfff80000 512K
... reserve 0x1000000 1M
... ''')
>>> link(ops)[2]
Anchor(alloc=1, offset=524288)
>>> link(ops)[3] is None
True
>>> resolve(ops[2], link(ops)[2], {1: 0x80000000}).base == 0x80080000
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from ..flags import Flag
from ..ops import RESERVED_FLAGS, Alloc, Clear, Free, Mark, Op, Reserve, ReserveKern

__all__ = ["Anchor", "link", "resolve"]


@dataclass(frozen=True, slots=True)
class Anchor:
    """An op's range expressed as "allocation at op index *alloc*, plus *offset* bytes"."""

    alloc: int
    offset: int


def _fixed_range(op: Op) -> tuple[int, int] | None:
    """The ``[base, end)`` of an op that acts on ``reserved`` at a fixed address, else None."""
    match op:
        case Reserve(base=b, size=s) | ReserveKern(base=b, size=s) | Free(base=b, size=s):
            return b, b + s
        case Mark(flag=f, base=b, size=s) | Clear(flag=f, base=b, size=s) if Flag(f) & RESERVED_FLAGS:
            # memory[] flags (kho_scratch, nomap...) describe the machine, not an allocation.
            return b, b + s
    return None


def link(ops: Sequence[Op], addrs: Mapping[int, int | None] | None = None) -> tuple[Anchor | None, ...]:
    """For every op, the allocation it acts inside, or None.

    *addrs* maps the op index of each :class:`~.ops.Alloc` to the address it
    got in the recorded boot (an allocation missing from it uses its
    ``expect``).  The newest live allocation containing the whole range wins;
    a free of a whole allocation ends it, so later ops at that address belong
    to whatever is allocated there next.
    """
    live: list[tuple[int, int, int]] = []  # (base, end, op index), in allocation order
    out: list[Anchor | None] = []
    for i, op in enumerate(ops):
        if isinstance(op, Alloc):
            a = addrs.get(i) if addrs is not None and i in addrs else op.expect
            if isinstance(a, int) and op.size:
                live.append((a, a + op.size, i))
            out.append(None)
            continue
        rng = _fixed_range(op)
        anchor = None
        if rng is not None:
            b, e = rng
            for j in range(len(live) - 1, -1, -1):
                lb, le, k = live[j]
                if lb <= b and e <= le:
                    anchor = Anchor(k, b - lb)
                    if isinstance(op, Free) and lb == b and le == e:
                        del live[j]
                    break
        out.append(anchor)
    return tuple(out)


def resolve(op: Op, anchor: Anchor | None, placed: Mapping[int, int | None]) -> Op | None:
    """*op* with its base moved to where allocation ``anchor.alloc`` went in *placed*.

    Returns *op* unchanged without an anchor, and None when the allocation it
    belongs to failed (the kernel would have had nothing to free or mark).
    """
    if anchor is None:
        return op
    base = placed.get(anchor.alloc)
    if base is None:
        return None
    new = base + anchor.offset
    return op if new == op.base else replace(op, base=new)  # type: ignore[attr-defined]
