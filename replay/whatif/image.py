# SPDX-License-Identifier: GPL-2.0-only
"""``--image-at ADDR``: the boot as it would have been with the kernel image in another KASLR slot.

x86-64 ``setup_arch()`` reserves the image ``[_text, __end_of_kernel_reserve)``
first (``memblock_reserve_kern()``, usually before ``memblock=debug`` prints,
so the parser derives it from the first ``MEMBLOCK configuration:`` dump) and
then the used part of the brk that follows it (``reserve_brk()``, caller
``setup_arch``).  The image is the reservation the brk reservation starts at
the end of; without a brk line, the largest kernel reservation (RSRV_KERN, or
``arm64_memblock_init()``'s on arm64) made before the first allocation.

Moving the image shifts those ops, and every later op lying wholly inside the
image, by the same distance; each changed op says why in its ``inferred`` reason.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import KhoReplayError
from ..flags import Flag
from ..ops import Alloc, Clear, Free, Mark, Op, Reserve, ReserveKern, Trace

__all__ = ["KernelImage", "check_slot", "find_image", "move_image", "why"]


@dataclass(frozen=True, slots=True)
class KernelImage:
    """Where *trace* had the kernel: the ops that reserve it and the range they cover."""

    #: op indexes of the image reservation and of the brk reservation after it.
    indexes: tuple[int, ...]
    base: int
    #: the image reservation's size (without brk).
    size: int
    #: end of the last reservation (image plus used brk) minus base.
    span: int


def _kern(op: Op) -> bool:
    if isinstance(op, ReserveKern):
        return True
    if isinstance(op, Reserve):
        return op.flags is not None and bool(op.flags & Flag.MEMBLOCK_RSRV_KERN)
    return False


def find_image(trace: Trace) -> KernelImage:
    """The kernel image's reservation in *trace* (see the module docstring for the rule).

    :raises KhoReplayError: when the trace shows no image reservation.
    """
    ops = trace.ops
    first_alloc = next((i for i, op in enumerate(ops) if isinstance(op, Alloc)), len(ops))
    early = [(i, op) for i, op in enumerate(ops[:first_alloc]) if isinstance(op, Reserve | ReserveKern)]
    # reserve_brk(): setup_arch's reservation right at the end of an earlier one is the brk after the image.
    for j, brk in early:
        if not (brk.caller or "").startswith("setup_arch"):
            continue
        for i, img in early:
            if i < j and img.base + img.size == brk.base:
                return KernelImage((i, j), img.base, img.size, brk.base + brk.size - img.base)
    cands = [(op.size, -i, i, op) for i, op in early
             if _kern(op) or (op.caller or "").startswith("arm64_memblock_init")]
    if not cands:
        raise KhoReplayError(f"{trace.context.source}: no kernel image reservation before the first allocation")
    _, _, i, op = max(cands)
    return KernelImage((i,), op.base, op.size, op.size)


def why(addr: int, img: KernelImage) -> str:
    """The reason a moved op carries."""
    return f"what-if: kernel image at 0x{addr:x} (was 0x{img.base:x})"


def check_slot(trace: Trace, addr: int) -> None:
    """Refuse *addr* unless the decompressor could have chosen it for *trace*'s machine.

    :raises KhoReplayError: one line naming the address and the nearest slots.
    """
    from .kaslr import kaslr_input, trace_slots

    areas = trace_slots(trace)
    for a in areas:
        if a.addr <= addr < a.end and (addr - a.addr) % a.align == 0:
            return
    k = kaslr_input(trace)
    if not areas:
        if addr == k.recorded:
            return
        raise KhoReplayError(f"{trace.context.source}: image at 0x{addr:x}: physical KASLR is off for this boot "
                             f"(nokaslr, too many memmap=, or no region fits); the image stays at 0x{k.recorded:x}")
    if not k.randomised:
        raise KhoReplayError(f"{trace.context.source}: image at 0x{addr:x}: this {trace.context.arch} boot shows no "
                             f"physical KASLR; its one slot is 0x{k.recorded:x}")
    spans = ", ".join(f"[0x{a.addr:x}-0x{a.end - a.align + k.image_size:x})" for a in areas[:6])
    more = f" and {len(areas) - 6} more" if len(areas) > 6 else ""
    raise KhoReplayError(f"{trace.context.source}: image at 0x{addr:x}: not a slot the decompressor could choose "
                         f"({k.image_size >> 20} MiB image, {areas[0].align if areas else 0:#x}-aligned, "
                         f"in {spans}{more})")


def move_image(trace: Trace, addr: int, *, check: bool = True) -> Trace:
    """*trace* with the kernel image reserved at *addr* instead (same size, brk after it).

    :raises KhoReplayError: when *check* and *addr* is not a KASLR slot of the trace's machine.
    """
    img = find_image(trace)
    if check:
        check_slot(trace, addr)
    if addr == img.base:
        return trace
    delta = addr - img.base
    end = img.base + img.span
    reason = why(addr, img)
    ops = list(trace.ops)
    for i, op in enumerate(ops):
        inside = isinstance(op, Reserve | ReserveKern | Free | Mark | Clear) and img.base <= op.base \
            and op.base + op.size <= end
        if i in img.indexes or (i > img.indexes[-1] and inside):
            note = f"{op.inferred}; {reason}" if op.inferred else reason
            ops[i] = replace(op, base=op.base + delta, inferred=note)  # type: ignore[call-arg]
    return replace(trace, ops=tuple(ops))
