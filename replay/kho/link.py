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

import bisect
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


class _Live:
    """The live allocations, found by containment in O(log n) per query.

    Allocations are filed by size class (``size.bit_length()``), each class a
    sorted list of distinct ``(base, end)`` ranges; a range allocated again
    while still live stacks its op indices.  An allocation of class *c* is
    shorter than ``2**c``, so only ranges starting in ``(end - 2**c, base]``
    can contain ``[base, end)``: a few per class, found by bisection.
    """

    def __init__(self) -> None:
        self.classes: dict[int, list[tuple[int, int]]] = {}
        self.order: list[int] = []  # classes in use, ascending
        self.stacks: dict[tuple[int, int], list[int]] = {}

    def add(self, base: int, end: int, k: int) -> None:
        key = (base, end)
        stack = self.stacks.get(key)
        if stack is not None:
            stack.append(k)
            return
        self.stacks[key] = [k]
        c = (end - base).bit_length()
        ranges = self.classes.get(c)
        if ranges is None:
            ranges = self.classes[c] = []
            bisect.insort(self.order, c)
        bisect.insort(ranges, key)

    def newest_containing(self, base: int, end: int) -> tuple[int, int, int] | None:
        """``(base, end, op index)`` of the newest live allocation holding ``[base, end)``."""
        best: tuple[int, int, int] | None = None
        order = self.order
        for ci in range(bisect.bisect_left(order, (end - base).bit_length()), len(order)):
            c = order[ci]
            ranges = self.classes[c]
            floor = end - (1 << c)
            i = bisect.bisect_right(ranges, (base, _NO_END)) - 1
            while i >= 0:
                lb, le = ranges[i]
                if lb <= floor:
                    break
                if le >= end:
                    k = self.stacks[(lb, le)][-1]
                    if best is None or k > best[2]:
                        best = (lb, le, k)
                i -= 1
        return best

    def end(self, base: int, end: int) -> None:
        """The newest allocation of exactly ``[base, end)`` was freed whole."""
        key = (base, end)
        stack = self.stacks[key]
        stack.pop()
        if stack:
            return
        del self.stacks[key]
        c = (end - base).bit_length()
        ranges = self.classes[c]
        del ranges[bisect.bisect_left(ranges, key)]
        if not ranges:
            del self.classes[c]
            self.order.remove(c)


_NO_END = 1 << 128  # sorts after every (base, end) with the same base
#: The last plain link() result, by the identity of its (immutable) ops: every strategy and boot
#: replayed from one trace asks for the same one.
_last: tuple[Sequence[Op], tuple[Anchor | None, ...]] | None = None


def link(ops: Sequence[Op], addrs: Mapping[int, int | None] | None = None) -> tuple[Anchor | None, ...]:
    """For every op, the allocation it acts inside, or None.

    *addrs* maps the op index of each :class:`~.ops.Alloc` to the address it
    got in the recorded boot (an allocation missing from it uses its
    ``expect``).  The newest live allocation containing the whole range wins;
    a free of a whole allocation ends it, so later ops at that address belong
    to whatever is allocated there next.  Linear in the ops (times a log).
    """
    global _last
    if addrs is None and isinstance(ops, tuple) and _last is not None and _last[0] is ops:
        return _last[1]
    live = _Live()
    out: list[Anchor | None] = []
    for i, op in enumerate(ops):
        if isinstance(op, Alloc):
            a = addrs.get(i) if addrs is not None and i in addrs else op.expect
            if isinstance(a, int) and op.size:
                live.add(a, a + op.size, i)
            out.append(None)
            continue
        rng = _fixed_range(op)
        anchor = None
        if rng is not None:
            b, e = rng
            hit = live.newest_containing(b, e)
            if hit is not None:
                lb, le, k = hit
                anchor = Anchor(k, b - lb)
                if isinstance(op, Free) and lb == b and le == e:
                    live.end(lb, le)
        out.append(anchor)
    result = tuple(out)
    if addrs is None and isinstance(ops, tuple):
        _last = (ops, result)
    return result


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
