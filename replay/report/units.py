# SPDX-License-Identifier: GPL-2.0-only
"""Sizes and addresses in one style for text, HTML and JSON; ``parse_size()`` reads sizes back.

Addresses print as the kernel prints ``phys_addr_t`` with ``%pa`` (``0x000000023ffd2f80``).

Binary units with no space, as the kernel's ``KHO: scratch areas: ... 64MiB``
prints them: ``12B``, ``4KiB``, ``64MiB``, ``5.5GiB``.  A size is printed
exactly: ``3GiB+4KiB`` rather than a rounded ``3GiB``; only a size that no
two terms give exactly is rounded, and then says so with ``~``.

>>> human(64 << 20), human(11 << 29), human((3 << 30) + 4096), human(12)
('64MiB', '5.5GiB', '3GiB+4KiB', '12B')
>>> parse_size("2MiB") == parse_size("2M") == parse_size("0x200000") == 2 << 20
True
>>> parse_size(human((3 << 30) + 4096)) == (3 << 30) + 4096
True
"""

from __future__ import annotations

import re

__all__ = ["human", "mib", "parse_size", "phys_addr", "phys_addr_or_none", "signed"]

_UNITS = (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10))
_SHIFT = {"": 0, "b": 0, "k": 10, "kb": 10, "kib": 10, "m": 20, "mb": 20, "mib": 20, "g": 30, "gb": 30, "gib": 30,
          "t": 40, "tb": 40, "tib": 40}
_TERM = re.compile(r"\s*(0x[0-9a-f]+|\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.IGNORECASE)


def _exact(n: int) -> str | None:
    """*n* in its largest unit with at most three decimals, when that is exact."""
    for unit, shift in _UNITS:
        if n >= 1 << shift:
            for places in (0, 1, 2, 3):
                v = round(n / (1 << shift), places)
                if round(v * (1 << shift)) == n:
                    return f"{v:.{places}f}{unit}"
            return None
    return f"{n}B"


def human(n: int) -> str:
    """Bytes as 64MiB, 5.5GiB, 3GiB+4KiB (exact), or ~5.54GiB when neither form is exact."""
    if n < 0:
        return signed(n)
    one = _exact(n)
    if one is not None:
        return one
    for _unit, shift in _UNITS:
        if n >= 1 << shift:
            head = n >> shift << shift
            rest = _exact(n - head)
            if rest is not None and "." not in rest:
                return f"{_exact(head)}+{rest}"
            return f"~{n / (1 << shift):.2f}{_unit}"
    return f"{n}B"  # pragma: no cover - _exact() handles n < 1 KiB


def signed(n: int) -> str:
    """A size delta with its sign: ``+64MiB``, ``-3.875GiB``, ``-(3GiB+4KiB)`` (a sign never binds to one term).

    >>> signed(64 << 20), signed(-((3 << 30) + 4096)), signed(0)
    ('+64MiB', '-(3GiB+4KiB)', '+0B')
    """
    text = human(abs(n))
    if n < 0 and "+" in text:
        text = f"({text})"
    return ("-" if n < 0 else "+") + text


def parse_size(text: str) -> int:
    """A size as a user or this tool writes it: 4096, 0x1000, 4K, 2M, 2MiB, 5.5GiB, 3GiB+4KiB.

    :raises ValueError: naming the text when it is not a size.
    """
    total = 0
    terms = text.split("+")
    for term in terms:
        m = _TERM.fullmatch(term)
        if m is None or m[2].lower() not in _SHIFT:
            raise ValueError(f"{text!r} is not a size (e.g. 4096, 0x1000, 4K, 2MiB, 5.5GiB)")
        num, unit = m[1], m[2].lower()
        value = int(num, 16) << _SHIFT[unit] if num.lower().startswith("0x") else float(num) * (1 << _SHIFT[unit])
        if value != int(value):
            raise ValueError(f"{text!r} is not a whole number of bytes")
        total += int(value)
    return total


def phys_addr(a: int) -> str:
    """*a* as ``%pa`` prints a 64-bit ``phys_addr_t``.

    >>> phys_addr(0x23ffd2f80)
    '0x000000023ffd2f80'
    """
    return f"{a:#018x}"


def phys_addr_or_none(a: int | None) -> str | None:
    """:func:`phys_addr`, with None (no address: a failed request) kept as None for JSON's null."""
    return None if a is None else phys_addr(a)


def mib(n: int) -> str:
    """Bytes in MiB as ``kho-replay kho`` lists scratch sizes (whole, else one decimal).

    >>> mib(128 << 20), mib(3 << 19)
    ('128 MiB', '1.5 MiB')
    """
    return f"{n >> 20} MiB" if n % (1 << 20) == 0 else f"{n / (1 << 20):.1f} MiB"
