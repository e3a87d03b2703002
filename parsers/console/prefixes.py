# SPDX-License-Identifier: GPL-2.0-only
"""What a capture puts before the printk text, and how to take it off.

dmesg, ``dmesg -T``/``-x``, ``journalctl -k``, syslog priorities, serial
stamps, caller ids, terminal escapes and CR: :func:`clean_line` leaves the
kernel's own text and its timestamp.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Line", "clean_line"]

# --------------------------------------------------------------------------
# Compiled regexes: prefixes a line can carry before the printk text

_ESCAPE = re.compile(r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[@-Z\\-_a-z])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SYSLOG_PRI = re.compile(r"^<\d{1,3}>")
_JOURNAL = re.compile(
    r"^(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S*) \S+ kernel: "
)
_DMESG_X = re.compile(r"^(?:kern|user|mail|daemon|auth|syslog|lpr|news)\s*:\s*[a-z]+\s*: ")
_DMESG_T = re.compile(r"^\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\] ?")
_STAMP = re.compile(r"\[\s*(?P<ts>\d+\.\d+)\]")
_CALLER_ID = re.compile(r"^\s?\[\s*[TC]\d+\]")

# --------------------------------------------------------------------------
# Line cleaning


@dataclass(frozen=True, slots=True)
class Line:
    """One printk line: where it was, its timestamp and text without prefixes."""

    lineno: int
    ts: float | None
    text: str
    raw: str


def clean_line(raw: str) -> tuple[float | None, str]:
    """Strip escapes, CR, syslog/journal/dmesg prefixes, timestamp and caller id.

    >>> clean_line("\\x1b[2J[    0.021033] memblock_add: [0x1000-0x9fbff] f+0x1/0x2\\r")
    (0.021033, 'memblock_add: [0x1000-0x9fbff] f+0x1/0x2')
    >>> clean_line("<6>[    1.5][    T0] Memory: 1K/2K available (x)")
    (1.5, 'Memory: 1K/2K available (x)')
    """
    text = _ESCAPE.sub("", raw.replace("\r", ""))
    text = _CONTROL.sub("", text)
    text = _SYSLOG_PRI.sub("", text)
    text = _JOURNAL.sub("", text)
    text = _DMESG_X.sub("", text)
    text = _SYSLOG_PRI.sub("", text)
    ts = None
    m = _DMESG_T.match(text)
    if m:
        text = text[m.end():]
    else:
        # serial captures may carry junk before the first stamp on a line
        m = _STAMP.search(text) if "] " in text else None
        # firmware output without a newline can precede the first stamp ("k[    0.000000] ...")
        # ... but "dmesg| [ 2.0] ..." (userspace quoting dmesg) is not a kernel line
        if m and (m.start() == 0 or (m.start() < 16 and text[: m.start()].isalnum())):
            ts = float(m.group("ts"))
            text = text[m.end():]
            if text.startswith(" "):
                text = text[1:]
    m = _CALLER_ID.match(text)
    if m:
        text = text[m.end():]
        if text.startswith(" "):
            text = text[1:]
    return ts, text.rstrip("\n")
