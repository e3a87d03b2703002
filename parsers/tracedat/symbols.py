# SPDX-License-Identifier: GPL-2.0-only
"""The three text tables a trace.dat carries beside its formats.

* ``/proc/kallsyms`` — ``Kallsyms``: address to symbol, for ``%ps``/``%pS``;
* ``printk_formats`` — ``parse_printk_formats``: exact address to format
  string, for ``bprint``/``bputs`` and ``tracepoint_string()`` pointers;
* ``saved_cmdlines`` — ``parse_cmdlines``: pid to comm.

All three are parsed on first use only (a real kallsyms is ~5 MB); bad lines
are skipped the way trace-cmd skips them, since these tables are advisory.
"""

from __future__ import annotations

import bisect
import re
from typing import NamedTuple

__all__ = ["Kallsyms", "Symbol", "parse_cmdlines", "parse_printk_formats"]

_KALLSYMS_LINE = re.compile(rb"^([0-9a-fA-F]+) (\S) (\S+)(?:\t\[(\S+)\])?", re.MULTILINE)
_PRINTK_LINE = re.compile(rb'^0x([0-9a-fA-F]+) : "(.*)"\s*$', re.MULTILINE)
_CMDLINE_LINE = re.compile(rb"^(\d+) (.*)$", re.MULTILINE)
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


class Symbol(NamedTuple):
    """One kallsyms entry: ``addr``, ``type`` letter, ``name``, ``module`` (or None)."""

    addr: int
    type: str
    name: str
    module: str | None


class Kallsyms:
    """Sorted kallsyms table with nearest-below lookup.

    Models libtraceevent's ``tep_find_function()``: the symbol at or below an
    address; an address below every symbol resolves to nothing.

    >>> ks = Kallsyms(b"ffffffff81000000 T _stext\\nffffffff81001000 T setup_arch\\n")
    >>> ks.lookup(0xffffffff81001010)
    (Symbol(addr=18446744071578849280, type='T', name='setup_arch', module=None), 16)
    >>> ks.lookup(0x1000) is None
    True
    """

    def __init__(self, text: bytes) -> None:
        syms = []
        for m in _KALLSYMS_LINE.finditer(text):
            mod = m.group(4)
            syms.append(
                Symbol(
                    int(m.group(1), 16),
                    m.group(2).decode("ascii", "replace"),
                    m.group(3).decode("utf-8", "surrogateescape"),
                    None if mod is None else mod.decode("utf-8", "surrogateescape"),
                )
            )
        # Hidden addresses (kptr_restrict) are all zero and resolve nothing useful: keep them anyway.
        syms.sort(key=lambda s: s.addr)
        self.symbols: tuple[Symbol, ...] = tuple(syms)
        self._addrs = [s.addr for s in syms]

    def __len__(self) -> int:
        return len(self.symbols)

    def lookup(self, addr: int) -> tuple[Symbol, int] | None:
        """Return ``(symbol, offset)`` for the greatest symbol at or below *addr*, or None."""
        i = bisect.bisect_right(self._addrs, addr) - 1
        if i < 0:
            return None
        sym = self.symbols[i]
        return sym, addr - sym.addr


def _unescape(raw: str) -> str:
    out = []
    i = 0
    n = len(raw)
    while i < n:
        c = raw[i]
        if c == "\\" and i + 1 < n and raw[i + 1] in _ESCAPES:
            out.append(_ESCAPES[raw[i + 1]])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def parse_printk_formats(text: bytes) -> dict[int, str]:
    """Parse ``printk_formats`` lines ``0x<addr> : "<escaped format>"`` into addr -> format.

    The kernel escapes ``\\n``, ``\\t``, ``\\\\`` and ``\\"`` (spec pitfall 20); they are undone here.

    >>> parse_printk_formats(b'0x10 : "a=%d\\\\n"\\n')
    {16: 'a=%d\\n'}
    """
    table = {}
    for m in _PRINTK_LINE.finditer(text):
        table[int(m.group(1), 16)] = _unescape(m.group(2).decode("utf-8", "surrogateescape"))
    return table


def parse_cmdlines(text: bytes) -> dict[int, str]:
    """Parse ``saved_cmdlines`` lines ``"<pid> <comm>"`` into pid -> comm.

    >>> parse_cmdlines(b"1 swapper/0\\n42 memblock-test\\n")
    {1: 'swapper/0', 42: 'memblock-test'}
    """
    return {
        int(m.group(1)): m.group(2).decode("utf-8", "surrogateescape") for m in _CMDLINE_LINE.finditer(text)
    }
