# SPDX-License-Identifier: GPL-2.0-only
"""The physical KASLR slots of the x86-64 decompressor (arch/x86/boot/compressed/kaslr.c, Linux 7.3).

``choose_random_location()`` picks the kernel's physical load address among
*slots*: every ``CONFIG_PHYSICAL_ALIGN`` step where the whole image fits in
usable memory, above the minimum, below ``mem_limit`` and clear of the
``mem_avoid`` regions, after skipping the 1 GiB blocks ``hugepages=`` will
want.  :func:`slot_areas` follows the kernel's walk rule by rule (each rule
names the function it comes from); :func:`trace_slots` feeds it what a
``memblock=debug`` log shows of a machine.

>>> areas = slot_areas([(0x100000, 0xbfee0000), (1 << 32, 1 << 32)], image_size=46 << 20)
>>> [(hex(a.addr), a.num) for a in areas]
[('0x3e00000', 1482), ('0x100000000', 2026)]
>>> hex(slot_at(areas, 1482))
'0x100000000'

With ``hugepagesz=1G hugepages=2`` the first two whole 1 GiB blocks are kept
free for gigantic pages (``process_gb_huge_pages()``):

>>> areas = slot_areas([(0x100000, 0xbfee0000), (1 << 32, 1 << 32)], image_size=46 << 20,
...                    cmdline="hugepagesz=1G hugepages=2")
>>> [(hex(a.addr), a.num) for a in areas]
[('0x3e00000', 459), ('0x80000000', 489), ('0x140000000', 1514)]
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import KhoReplayError
from ..kho.hugepages import memparse_prefix
from ..kho.params import memparse, strtoull_end
from ..ops import Add, Alloc, Reserve, ReserveKern, Trace

__all__ = [
    "LOAD_PHYSICAL_ADDR",
    "PHYSICAL_ALIGN",
    "KaslrInput",
    "SlotArea",
    "all_slots",
    "kaslr_input",
    "sample_slots",
    "slot_areas",
    "slot_at",
    "slot_count",
    "trace_slots",
]

#: CONFIG_PHYSICAL_START, the default CONFIG_PHYSICAL_ALIGN on x86-64 (arch/x86/Kconfig: "default 0x200000").
LOAD_PHYSICAL_ADDR = 0x1000000
PHYSICAL_ALIGN = 0x200000
#: MAXMEM with 4-level paging (1 << MAX_PHYSMEM_BITS, 46): kaslr.c choose_random_location() "mem_limit = MAXMEM".
MAXMEM = 1 << 46
#: kaslr.c "#define MAX_SLOT_AREA 100"; MAX_MEMMAP_REGIONS is 4 (misc.h).
MAX_SLOT_AREA = 100
MAX_MEMMAP_REGIONS = 4
PUD_SIZE = 1 << 30


@dataclass(frozen=True, slots=True)
class SlotArea:
    """One ``struct slot_area``: ``num`` slots at ``addr + k * align``."""

    addr: int
    num: int
    align: int = PHYSICAL_ALIGN

    @property
    def end(self) -> int:
        """End of the last slot's start, exclusive: ``addr + num * align``."""
        return self.addr + self.num * self.align


def _align(x: int, a: int) -> int:
    return (x + a - 1) // a * a


def _cmdline_limits(cmdline: str) -> tuple[int, list[tuple[int, int]], int, bool]:
    """``handle_mem_options()``: mem_limit from mem=/memmap=, memmap= regions to avoid, 1 GiB page count.

    Returns (mem_limit, avoid regions, max_gb_huge_pages, memmap_too_large).
    """
    limit = MAXMEM
    avoid: list[tuple[int, int]] = []
    too_large = False
    gb_pages = 0
    gbpage_sz = False
    for word in cmdline.split():
        if word == "--":
            break  # handle_mem_options(): "Stop at --"
        key, eq, val = word.partition("=")
        if key == "memmap" and eq:
            # mem_avoid_memmap()/parse_memmap(): nn[KMG]{#,$,!}ss avoids [ss, ss+nn); nn@ss is usable (skipped);
            # a bare nn limits memory like mem=; "exactmap" stops the walk.
            for part in val.split(","):
                if len(avoid) >= MAX_MEMMAP_REGIONS:
                    too_large = True  # "More than 4 memmaps, fail kaslr"
                    break
                if part.startswith("exactmap"):
                    break
                size_s, sep, rest = _split_size(part)
                try:
                    size = memparse(size_s)
                except KhoReplayError:
                    break
                if sep in ("#", "$", "!"):
                    try:
                        start = memparse(rest)
                    except KhoReplayError:
                        break
                    if start:
                        avoid.append((start, size))
                        continue
                elif sep == "@":
                    size = 0
                if 0 < size < limit:
                    limit = size
        elif "hugepages" in key:
            # parse_gb_huge_pages(): hugepagesz= of exactly PUD_SIZE arms the count; any other size disarms it.
            if key == "hugepagesz":
                gbpage_sz = memparse_prefix(val) == PUD_SIZE  # memparse() reads the leading size only
            elif key == "hugepages" and gbpage_sz:
                # boot_kstrtoul(..., 0): the whole value one number (a leading 0 octal); a per-node list
                # fails to parse and leaves the count as it was.
                n, end = strtoull_end(val)
                if end and end == len(val):
                    gb_pages = n
        elif key == "mem" and eq and val != "nopentium":
            size = memparse_prefix(val)  # memparse(p, &p): the leading size, what follows it unread
            if size == 0:
                break  # "if (mem_size == 0) break;"
            limit = min(limit, size)
    return limit, avoid, gb_pages, too_large


def _split_size(part: str) -> tuple[str, str, str]:
    for i, c in enumerate(part):
        if c in "#$!@":
            return part[:i], c, part[i + 1:]
    return part, "", ""


def slot_areas(
    ram: Sequence[tuple[int, int]],
    *,
    image_size: int,
    avoid: Sequence[tuple[int, int]] = (),
    cmdline: str = "",
    output: int = LOAD_PHYSICAL_ADDR,
    align: int = PHYSICAL_ALIGN,
    init_size: int | None = None,
) -> list[SlotArea]:
    """The decompressor's slot areas over e820 RAM entries *ram* (``(base, size)``, in table order).

    *image_size* is ``needed_size`` (misc.c extract_kernel(): the larger of
    the VO image with relocs and its run size, aligned to MIN_KERNEL_ALIGN);
    *output* the load address before randomisation; *avoid* the
    ``(start, size)`` regions of ``mem_avoid[]`` besides the ZO range and
    memmap= (initrd, command line, boot_params, setup_data).  The ZO range
    ``[input, output + init_size)`` is taken as ``[output, output + init_size)``
    (*init_size* defaults to *image_size*).  ``nokaslr`` gives no areas.
    """
    if any(w == "nokaslr" for w in cmdline.split()):
        return []  # choose_random_location(): "KASLR disabled: 'nokaslr' on cmdline."
    mem_limit, memmap_avoid, gb_pages, too_large = _cmdline_limits(cmdline)
    # mem_avoid_init(): MEM_AVOID_ZO_RANGE, INITRD, CMDLINE, BOOTPARAMS, then MEMMAP_BEGIN..END.
    avoids = [(output, init_size or image_size), *avoid, *memmap_avoid]
    avoids = [(s, z) for s, z in avoids if z > 0]
    # choose_random_location(): minimum is min(output, 512M) aligned up to CONFIG_PHYSICAL_ALIGN.
    minimum = _align(min(output, 512 << 20), align)
    areas: list[SlotArea] = []
    # find_random_phys_addr(): impossible minimum, or more than 4 memmap=, disables physical KASLR.
    if minimum + image_size > mem_limit or too_large:
        return areas
    state = {"gb": gb_pages}

    def store(start: int, size: int) -> None:
        # store_slot_info(): 1 + (size - image_size) / CONFIG_PHYSICAL_ALIGN slots from the region start.
        if len(areas) < MAX_SLOT_AREA:
            areas.append(SlotArea(start, 1 + (size - image_size) // align, align))

    def gb_huge(start: int, size: int) -> None:
        # process_gb_huge_pages(): skip as many whole 1 GiB blocks as hugepages= still wants.
        if not state["gb"]:
            store(start, size)
            return
        pud_start = _align(start, PUD_SIZE)
        pud_end = (start + size) // PUD_SIZE * PUD_SIZE
        if pud_start >= pud_end:
            store(start, size)
            return
        if pud_start >= start + image_size:
            store(start, pud_start - start)
        blocks = (pud_end - pud_start) // PUD_SIZE
        if blocks > state["gb"]:
            pud_end = pud_start + state["gb"] * PUD_SIZE
            state["gb"] = 0
        else:
            state["gb"] -= blocks
        if start + size >= pud_end + image_size:
            store(pud_end, start + size - pud_end)

    for base, size in ram:  # process_e820_entries(): E820_TYPE_RAM entries in table order
        if len(areas) >= MAX_SLOT_AREA:
            break  # process_mem_region(): "slot_areas full"
        # __process_mem_region(): enforce minimum and mem_limit, then clip around the avoided regions.
        start = max(base, minimum)
        region_end = min(base + size, mem_limit)
        while len(areas) < MAX_SLOT_AREA:
            start = _align(start, align)
            if start > region_end:
                break
            rsize = region_end - start
            if rsize < image_size:
                break
            # mem_avoid_overlap(): the overlapping avoided region with the lowest start.
            hits = [(s, z) for s, z in avoids if s < start + rsize and start < s + z]
            if not hits:
                gb_huge(start, rsize)
                break
            ostart, osize = min(hits)
            if ostart >= start + image_size:
                gb_huge(start, ostart - start)
            start = ostart + osize
    return areas


def slot_count(areas: Sequence[SlotArea]) -> int:
    """``slot_max``: how many slots there are to choose from."""
    return sum(a.num for a in areas)


def slot_at(areas: Sequence[SlotArea], index: int) -> int:
    """The address of slot *index*, as ``slots_fetch_random()`` maps a random number to one."""
    for a in areas:
        if index < a.num:
            return a.addr + index * a.align
        index -= a.num
    raise IndexError(index)


def all_slots(areas: Sequence[SlotArea]) -> list[int]:
    """Every slot address, in the kernel's slot order."""
    return [a.addr + k * a.align for a in areas for k in range(a.num)]


def sample_slots(areas: Sequence[SlotArea], n: int, seed: int = 0) -> list[int]:
    """*n* distinct slots drawn with a seeded generator (all of them when there are no more), in slot order."""
    total = slot_count(areas)
    picks = sorted(random.Random(seed).sample(range(total), min(n, total)))
    return [slot_at(areas, i) for i in picks]


@dataclass(frozen=True, slots=True)
class KaslrInput:
    """What the decompressor saw, as far as a memblock=debug log shows it."""

    ram: tuple[tuple[int, int], ...]
    avoid: tuple[tuple[int, int], ...]
    image_size: int
    recorded: int
    cmdline: str
    randomised: bool


def kaslr_input(trace: Trace) -> KaslrInput:
    """The e820 RAM, the avoided regions and the image size of *trace*'s boot.

    * RAM: the ``memblock_add()`` calls of ``e820__memblock_setup()`` (the
      E820_TYPE_RAM entries; the decompressor reads the same table);
    * avoided: everything reserved before the first allocation other than the
      image and its brk (initrd, setup_data, firmware tables: all placed
      before the decompressor ran);
    * image size: ``needed_size``, estimated as the image reservation
      ``[_text, __end_of_kernel_reserve)`` plus the used brk, aligned to
      MIN_KERNEL_ALIGN (2 MiB); the log does not print init_size.
    """
    from .image import find_image

    img = find_image(trace)
    ram: list[tuple[int, int]] = []
    avoid: list[tuple[int, int]] = []
    for i, op in enumerate(trace.ops):
        if isinstance(op, Alloc):
            break
        if isinstance(op, Add):
            ram.append((op.base, op.size))
        elif isinstance(op, Reserve | ReserveKern) and i not in img.indexes:
            avoid.append((op.base, op.size))
    size = _align(img.span, 1 << 21)
    arch = trace.context.arch or "x86_64"
    return KaslrInput(tuple(ram), tuple(avoid), size, img.base, trace.context.cmdline, arch == "x86_64")


def trace_slots(trace: Trace, *, align: int = PHYSICAL_ALIGN) -> list[SlotArea]:
    """The slot areas of *trace*'s machine; one slot (where the image was) when the trace is not randomised.

    arm64's physical placement is the EFI stub's, not modelled: its one slot is the recorded one.
    """
    k = kaslr_input(trace)
    if not k.randomised:
        return [SlotArea(k.recorded, 1, align)]
    return slot_areas(k.ram, image_size=k.image_size, avoid=k.avoid, cmdline=k.cmdline, align=align)
