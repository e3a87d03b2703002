# SPDX-License-Identifier: GPL-2.0-only
"""Capture scripts' sections: what is quoted output, not live kernel output.

A fixture or user script prints ``===== BEGIN name =====`` ... ``===== END =====``
around files it copies (debugfs tables, ``/proc`` files) and around quoted
``dmesg | grep`` output.  Quoted kernel lines keep their original
``[    0.000000]`` stamps, the ``Linux version`` banner included: they are not a
new boot and not new ops.  printk time only grows within a boot, so inside a
section a stamped line that goes back before the latest live stamp (or repeats
the very line that set it) is a quote.  A section cut with ``head -c`` leaves
its marker glued to the text before it (``  free_highatomi===== END =====``).

:func:`live_lines` splits glued markers onto their own line and takes the stamp
off quoted lines, so every later pass sees them as section text.  Outside any
section the same boot pasted twice (``journalctl -k`` then ``dmesg``) starts
again at its banner: :func:`drop_repeats` unstamps a "boot" every stamped line
of which, stamp and text, was already printed by an earlier one (a real reboot,
even of the same kernel, never repeats every stamp).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from .grammar import SECTION_BEGIN, SECTION_END, VERSION_LINE
from .prefixes import CallRun, Line, PlainRun

__all__ = ["drop_repeats", "iter_live_lines", "live_lines"]

#: A section marker at the end of a line, maybe glued to text before it.
_MARKER = re.compile(r"(?P<marker>===== (?:BEGIN .+?|END) =====)\s*$")


def _split_glued(ln: Line) -> list[Line]:
    m = _MARKER.search(ln.text)
    if m is None or m.start() == 0:
        return [ln]
    return [Line(ln.lineno, ln.ts, ln.text[: m.start()], ln.raw), Line(ln.lineno, None, m.group("marker"), ln.raw)]


def live_lines(lines: Iterable[Line]) -> list[Line]:
    """The lines with glued section markers on their own line and quoted stamped lines unstamped (``ts=None``).

    >>> from kho_replay.parsers.console.prefixes import clean_line
    >>> raw = ["[    5.0] live", "===== BEGIN dmesg =====", "[    0.0] Linux version 7.3.4 (x)",
    ...        "[    6.0] late live", "  free_high===== END ====="]
    >>> out = live_lines(Line(i, *clean_line(r), r) for i, r in enumerate(raw, 1))
    >>> [(ln.lineno, ln.ts, ln.text) for ln in out]  # doctest: +NORMALIZE_WHITESPACE
    [(1, 5.0, 'live'), (2, None, '===== BEGIN dmesg ====='), (3, None, 'Linux version 7.3.4 (x)'),
     (4, 6.0, 'late live'), (5, None, '  free_high'), (5, None, '===== END =====')]
    """
    return list(iter_live_lines(lines))


def iter_live_lines(lines: Iterable[Line | PlainRun | CallRun], in_section: bool = False,
                    latest: Line | None = None) -> Iterator[Line | PlainRun | CallRun]:
    """:func:`live_lines` one line at a time (a :class:`PlainRun` or :class:`CallRun` passed on whole
    outside sections).  *in_section* and *latest*: the state the lines before *lines* left (see below)."""
    # latest: the live line with the latest stamp
    for whole in lines:
        if whole.__class__ is CallRun:
            if not in_section:
                # no marker in it, every line stamped: outside sections each is live, the last the latest
                latest = whole.last  # type: ignore[union-attr]
                yield whole
                continue
            group: Iterable[Line] = whole.lines  # type: ignore[union-attr]
        elif whole.__class__ is PlainRun:
            if not in_section:
                # no marker in it, and outside sections every stamped line is live
                latest = whole.last_stamped_line() or latest  # type: ignore[union-attr]
                yield whole
                continue
            group = whole.lines()  # type: ignore[union-attr]
        else:
            # a marker, glued or not, holds "=====": the test is cheap, the regex is not
            group = _split_glued(whole) if "=====" in whole.text else (whole,)  # type: ignore[union-attr]
        for ln in group:
            if ln.text[:5] == "=====" and SECTION_BEGIN.match(ln.text):
                in_section = True
            elif ln.text[:5] == "=====" and SECTION_END.match(ln.text):
                in_section = False
            elif ln.ts is not None:
                if in_section and latest is not None and latest.ts is not None and (
                        ln.ts < latest.ts or (ln.ts == latest.ts and ln.text == latest.text)):
                    ln = Line(ln.lineno, None, ln.text, ln.raw)
                else:
                    # outside sections time going back is a new boot (a reboot), still live
                    latest = ln
            yield ln


def drop_repeats(lines: list[Line]) -> tuple[list[Line], list[tuple[int, int, int]]]:
    """The lines without repeated boots (all their stamped lines seen before, stamp and text), and each
    repeat dropped as ``(first line, last line, line of the boot it repeats)``."""
    starts = [i for i, ln in enumerate(lines)
              if ln.ts is not None and ln.text[:14] == "Linux version " and VERSION_LINE.match(ln.text)]
    if len(starts) < 2:
        return lines, []
    seen: dict[tuple[float | None, str], int] = {}
    for ln in lines[: starts[1]]:
        if ln.ts is not None:
            seen.setdefault((ln.ts, ln.text), lines[starts[0]].lineno)
    keep = list(lines[: starts[1]])
    dropped = []
    for k, begin in enumerate(starts[1:], 1):
        end = starts[k + 1] if k + 1 < len(starts) else len(lines)
        block = lines[begin:end]
        stamped = [(ln.ts, ln.text) for ln in block if ln.ts is not None]
        if all(x in seen for x in stamped):
            dropped.append((block[0].lineno, block[-1].lineno, seen[stamped[0]]))
            continue
        for x in stamped:
            seen.setdefault(x, block[0].lineno)
        keep += block
    return keep, dropped
