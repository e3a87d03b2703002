# SPDX-License-Identifier: GPL-2.0-only
"""Sizes and addresses as reports print them, one helper each for text, HTML and JSON.

Addresses print as the kernel prints ``phys_addr_t`` with ``%pa``
(``0x000000023ffd2f80``), in text and in JSON alike; sizes print in text as
the kernel's messages print them (``64MiB``, ``1.5GiB``) and stay integers in
JSON.
"""

from __future__ import annotations

__all__ = ["human", "mib", "phys_addr", "phys_addr_or_none"]


def phys_addr(a: int) -> str:
    """*a* as ``%pa`` prints a 64-bit ``phys_addr_t``.

    >>> phys_addr(0x23ffd2f80)
    '0x000000023ffd2f80'
    """
    return f"{a:#018x}"


def phys_addr_or_none(a: int | None) -> str | None:
    """:func:`phys_addr`, with None (no address: a failed request) kept as None for JSON's null."""
    return None if a is None else phys_addr(a)


def human(n: int) -> str:
    """Bytes the way the kernel prints sizes in its messages, one decimal at most.

    >>> human(64 << 20), human(3 << 29), human(4096), human(12)
    ('64MiB', '1.5GiB', '4KiB', '12B')
    """
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            v = f"{n / (1 << shift):.1f}".removesuffix(".0")
            return f"{v}{unit}"
    return f"{n}B"


def mib(n: int) -> str:
    """Bytes in MiB as ``kho-replay kho`` lists scratch sizes (whole, else one decimal).

    >>> mib(128 << 20), mib(3 << 19)
    ('128 MiB', '1.5 MiB')
    """
    return f"{n >> 20} MiB" if n % (1 << 20) == 0 else f"{n / (1 << 20):.1f} MiB"
