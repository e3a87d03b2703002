# SPDX-License-Identifier: GPL-2.0-only
"""What arch code does to memblock without printing it, on arches read with a generic profile.

x86_64 and arm64 have per-arch rules (``infer``).  For every other arch the calls
that print nothing are taken from the arch's defaults (:data:`~kho_replay.replay.profile.GENERIC_ARCHES`)
or, where the log shows them, from the placement of its first allocations, and each
such assumption is noted for the one warning line:

* 32-bit ``phys_addr_t``: PHYS_ADDR_MAX is ``0xffffffff`` and ``memblock_cap_size()``
  caps at it; the model's addresses are 64-bit, so ops are widened here;
* direction: ``memblock_set_bottom_up()`` (mips, sparc32, patched kernels);
* bottom-up before v5.11 (2dcb39645441 "memblock: do not start bottom-up
  allocations with kernel_end"): searches start above the kernel image, whose end
  is that of the largest reservation the arch made before allocating;
* ``memblock_set_current_limit()``: 32-bit arches keep early allocations in lowmem
  (arm's ``adjust_lowmem_bounds()``); the lowest limit the first allocation allows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from kho_replay.replay.flags import Flag
from kho_replay.replay.ops import (
    MEMBLOCK_ALLOC_ANYWHERE,
    MEMORY_FLAGS,
    Add,
    Alloc,
    Free,
    Mark,
    MemblockDump,
    Observation,
    Op,
    Remove,
    Reserve,
    SetBottomUp,
    SetCurrentLimit,
)
from kho_replay.replay.profile import Arch

__all__ = ["ArchState", "generic_arch_state"]

_PHYS32_MAX = 0xFFFFFFFF


@dataclass
class ArchState:
    """The op stream after the arch's silent calls, and what was assumed to get it."""

    ops: list[Op]
    obs: list[Observation]
    #: one clause each for the warning line
    assumed: list[str] = field(default_factory=list)
    #: (key, value) context facts the model reads (``kernel_end``, ``bottom_up_from_kernel_end``)
    facts: list[tuple[str, str]] = field(default_factory=list)
    #: the direction found (None: not a generic arch)
    bottom_up: bool | None = None

    def insert(self, k: int, op: Op) -> None:
        """Insert *op* as op *k*: observations made before op *k* now see it done."""
        self.ops.insert(k, op)
        self.obs = [dataclasses.replace(o, at=o.at + 1) if o.at >= k else o for o in self.obs]


def generic_arch_state(state: ArchState, arch: Arch, phys_addr_bits: int, direction_given: bool) -> ArchState:
    """Apply the silent arch calls to *state* (see the module docstring)."""
    if phys_addr_bits == 32:
        state.ops = [_widen(op) for op in state.ops]
    if not arch.generic:
        return state
    up = arch.bottom_up
    seen = None if direction_given else _first_alloc_direction(state.ops, arch)
    if seen is not None and seen != up:
        up = seen
        state.assumed.append(f"direction {'bottom-up' if up else 'top-down'} (from the first allocation; "
                             f"override: --arch {arch.name},{'top-down' if up else 'bottom-up'})")
    state.bottom_up = up
    _hidden_marks(state)
    if up:
        first = state.ops[0].src if state.ops else None
        why = (f"{arch.name} arch code allocates bottom-up (memblock_set_bottom_up() prints nothing)"
               if up == arch.bottom_up else "the first allocation landed at the bottom of memory")
        state.insert(0, SetBottomUp(True, inferred=why, src=first))
        _kernel_end(state)
    else:
        _lowmem_limit(state, arch.page_size)
    return state


def _hidden_marks(state: ArchState) -> None:
    """``memblock_mark_nomap()`` and friends print nothing: memory flags a later dump shows that no
    op set were set just before it (EFI ``reserve_regions()`` marks runtime regions NOMAP)."""
    dumps = sorted((o for o in state.obs if isinstance(o, MemblockDump)), key=lambda o: o.at)
    # the last first: insertions move only what comes after them
    for dump in reversed(dumps[1:]):
        k = dump.at
        marked = [(op.base, op.base + op.size, int(op.flag)) for op in state.ops[:k] if isinstance(op, Mark)]
        for r in dump.memory:
            for bit in (int(b) for b in Flag if int(b) & r.flags & int(MEMORY_FLAGS)):
                if any(b <= r.base and r.base + r.size <= e and f & bit for b, e, f in marked):
                    continue
                state.insert(k, Mark(Flag(bit), r.base, r.size, src=dump.src, inferred=(
                    "memblock_mark_*() prints nothing: the next MEMBLOCK configuration dump shows the flag")))
                k += 1


def _widen(op: Op) -> Op:
    if isinstance(op, Alloc) and op.max_addr == _PHYS32_MAX:
        return dataclasses.replace(op, max_addr=MEMBLOCK_ALLOC_ANYWHERE)
    if isinstance(op, (Add, Remove, Reserve, Free)) and 0 <= _PHYS32_MAX - op.base < op.size:
        return dataclasses.replace(op, size=_PHYS32_MAX - op.base)
    return op


def _first_alloc(ops: list[Op]) -> tuple[int, Alloc, list[tuple[int, int]], list[tuple[int, int]], bool] | None:
    """The first allocation: its index, the op, the free ranges and reservations logged before it,
    and whether a current_limit was set before it."""
    memory: list[tuple[int, int]] = []
    taken: list[tuple[int, int]] = []
    limited = False
    for k, op in enumerate(ops):
        if isinstance(op, SetCurrentLimit):
            limited = True
        elif isinstance(op, Add):
            memory.append((op.base, op.base + op.size))
        elif isinstance(op, Remove):
            memory = _minus(memory, (op.base, op.base + op.size))
        elif isinstance(op, Reserve):
            taken.append((op.base, op.base + op.size))
        elif isinstance(op, Alloc):
            free = sorted(memory)
            for t in taken:
                free = _minus(free, t)
            return k, op, free, taken, limited
    return None


def _first_alloc_direction(ops: list[Op], arch: Arch) -> bool | None:
    """Whether the first recorded allocation is where a bottom-up search puts it: the lowest fit,
    or the lowest above the kernel image (pre-5.11).  None when the log does not show enough."""
    first = _first_alloc(ops)
    if first is None:
        return None
    _, op, free, taken, _ = first
    if not isinstance(op.expect, int) or not free:
        return None
    align = op.align or arch.smp_cache_bytes
    image_end = max(taken, key=lambda t: t[1] - t[0])[1] if taken else 0
    fits = [_lowest_fit(free, op.size, align, floor) for floor in (arch.page_size, image_end)]
    return op.expect in fits


def _lowest_fit(free: list[tuple[int, int]], size: int, align: int, floor: int) -> int | None:
    for b, e in free:
        c = -(-max(b, floor) // align) * align
        if c + size <= e:
            return c
    return None


def _kernel_end(state: ArchState) -> None:
    """The kernel image's end, and whether bottom-up searches started above it (the pre-5.11 rule)."""
    image: tuple[int, int] | None = None
    for op in state.ops:
        if isinstance(op, Reserve) and not op.inferred and (image is None or op.size > image[1] - image[0]):
            image = (op.base, op.base + op.size)
        elif isinstance(op, Alloc) and isinstance(op.expect, int) and image is not None:
            start, end = image
            state.facts.append(("kernel_end", f"{end:#x}"))
            if op.expect >= end:
                rule = "1"
            elif op.expect + op.size <= start:
                rule = "0"
            else:
                return
            state.facts.append(("bottom_up_from_kernel_end", rule))
            state.assumed.append(f"kernel image [{start:#x}-{end - 1:#x}] (the largest early reservation): "
                                 "bottom-up allocations start "
                                 + ("above it (before v5.11)" if rule == "1" else "at the bottom (v5.11+)")
                                 + ", as the first allocation shows")
            return
        elif isinstance(op, Alloc):
            return


def _lowmem_limit(state: ArchState, page_size: int) -> None:
    """A first top-down allocation below free memory: arch code had set memblock.current_limit."""
    first = _first_alloc(state.ops)
    if first is None:
        return
    k, op, free, _, limited = first
    if limited or not isinstance(op.expect, int) or op.max_addr not in (0, 1):
        return
    end = op.expect + op.size
    if max((e for b, e in free if e - b >= op.size), default=0) <= end:
        return
    limit = -(-end // page_size) * page_size
    state.insert(k, SetCurrentLimit(limit, src=op.src, inferred=(
        "arch code capped early allocations (lowmem): the first one landed below free memory")))
    state.assumed.append(f"memblock.current_limit {limit:#x} (lowmem; the lowest the first allocation allows)")


def _minus(ranges: list[tuple[int, int]], cut: tuple[int, int]) -> list[tuple[int, int]]:
    out = []
    for b, e in ranges:
        if cut[1] <= b or cut[0] >= e:
            out.append((b, e))
            continue
        if b < cut[0]:
            out.append((b, cut[0]))
        if cut[1] < e:
            out.append((cut[1], e))
    return out
