# SPDX-License-Identifier: GPL-2.0-only
"""``enum memblock_flags`` and the ways the kernel and our op scripts spell it.

The bit values are the kernel's (include/linux/memblock.h).  Bit 0x80 means
``MEMBLOCK_RSRV_HUGETLB`` since 7.3; the posted (unmerged) 2026 KHO series used
the same bit for ``MEMBLOCK_KHO_SCRATCH_EXT`` on the *memory* type.  The model
keeps the two apart by giving KHO_SCRATCH_EXT a bit of its own (0x100) that no
kernel prints; :func:`kernel_value` maps it back for output.
"""

from __future__ import annotations

import enum
from functools import lru_cache

__all__ = [
    "DEBUGFS_NAMES",
    "Flag",
    "flag_names",
    "format_flags",
    "kernel_value",
    "parse_flags",
]


class Flag(enum.IntFlag):
    """``enum memblock_flags``, spelled as the kernel spells it."""

    MEMBLOCK_NONE = 0x0
    MEMBLOCK_HOTPLUG = 0x1
    MEMBLOCK_MIRROR = 0x2
    MEMBLOCK_NOMAP = 0x4
    MEMBLOCK_DRIVER_MANAGED = 0x8
    MEMBLOCK_RSRV_NOINIT = 0x10
    MEMBLOCK_RSRV_KERN = 0x20
    MEMBLOCK_KHO_SCRATCH = 0x40
    MEMBLOCK_RSRV_HUGETLB = 0x80
    # The posted v1 series' flag; 0x80 in its patches, a private bit here.
    MEMBLOCK_KHO_SCRATCH_EXT = 0x100


# Short lowercase names used by op scripts (``mark kho_scratch ...``).
_SHORT: dict[str, Flag] = {f.name.removeprefix("MEMBLOCK_").lower(): f for f in Flag if f.value}

# debugfs names (mm/memblock.c flagname[]); RSV_HUGETLB is 7.3's.
DEBUGFS_NAMES: dict[Flag, str] = {
    Flag.MEMBLOCK_HOTPLUG: "HOTPLUG",
    Flag.MEMBLOCK_MIRROR: "MIRROR",
    Flag.MEMBLOCK_NOMAP: "NOMAP",
    Flag.MEMBLOCK_DRIVER_MANAGED: "DRV_MNG",
    Flag.MEMBLOCK_RSRV_NOINIT: "RSV_NIT",
    Flag.MEMBLOCK_RSRV_KERN: "RSV_KERN",
    Flag.MEMBLOCK_KHO_SCRATCH: "KHO_SCRATCH",
    Flag.MEMBLOCK_RSRV_HUGETLB: "RSV_HUGETLB",
    Flag.MEMBLOCK_KHO_SCRATCH_EXT: "KHO_SCRATCH_EXT",
}
_BY_DEBUGFS = {v.lower(): k for k, v in DEBUGFS_NAMES.items()}


def parse_flags(text: str) -> Flag:
    """Parse ``rsrv_kern|rsrv_noinit``, ``MEMBLOCK_RSRV_KERN``, ``RSV_KERN``, ``0x20`` or ``32``.

    >>> parse_flags("rsrv_kern|rsrv_noinit")
    <Flag.MEMBLOCK_RSRV_NOINIT|MEMBLOCK_RSRV_KERN: 48>

    :raises ValueError: for an unknown name (callers turn it into an InputError).
    """
    value = Flag.MEMBLOCK_NONE
    for part in text.split("|"):
        word = part.strip()
        low = word.lower()
        if not word:
            raise ValueError(f"empty flag name in {text!r}")
        if low[0].isdigit():
            value |= Flag(int(low, 0))
            continue
        low = low.removeprefix("memblock_")
        if low in _SHORT:
            value |= _SHORT[low]
        elif low in _BY_DEBUGFS:
            value |= _BY_DEBUGFS[low]
        elif low == "none":
            continue
        else:
            raise ValueError(f"unknown memblock flag {word!r}")
    return value


def flag_names(flags: int) -> list[Flag]:
    """The set bits of *flags* as :class:`Flag` members, lowest bit first."""
    return [f for f in Flag if f.value and flags & f.value]


@lru_cache(maxsize=1024)  # few distinct values, spelled once per op
def format_flags(flags: int) -> str:
    """Op-script spelling: ``rsrv_kern|rsrv_noinit`` (lowest bit first), ``none`` for 0."""
    names = [f.name.removeprefix("MEMBLOCK_").lower() for f in flag_names(flags)]
    unknown = int(flags) & ~sum(f.value for f in Flag)
    if unknown:
        names.append(hex(unknown))
    return "|".join(names) if names else "none"


def kernel_value(flags: int, *, scratch_ext_bit: int = 0x80) -> int:
    """The number the kernel would print for *flags* (KHO_SCRATCH_EXT folded back to its bit)."""
    if flags & Flag.MEMBLOCK_KHO_SCRATCH_EXT:
        flags = (flags & ~Flag.MEMBLOCK_KHO_SCRATCH_EXT) | scratch_ext_bit
    return int(flags)
