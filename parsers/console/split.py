# SPDX-License-Identifier: GPL-2.0-only
"""A capture holding several boots (a serial console across reboots and kexecs), read one boot at a time.

One pass over the capture's cleaned lines (:func:`scan`) finds, as line numbers, where each boot
starts and which boots are the same boot pasted again (what ``ConsoleReader._boot_starts()`` and
:func:`.capture.drop_repeats` find in the list of every line), and the state the line passes were in at
each start; reading a boot then streams the capture again from that boot's first line, in that state,
and keeps only that boot's lines (:func:`crop`).  Only line numbers and, for the repeat check,
one hash per stamped line are held, never the lines of the other boots.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from .grammar import SECTION_BEGIN, SECTION_END, VERSION_LINE
from .prefixes import CallRun, Line, PlainRun

__all__ = ["Boots", "crop", "scan"]


@dataclass
class Boots:
    """Where a capture's boots are: what :func:`scan` found."""

    #: each boot's first line number (its ``Linux version`` line, or the stamped lines just before)
    starts: list[int] = field(default_factory=list)
    #: each boot pasted again: (first line, last line, line of the boot it repeats), and its first raw line
    drops: list[tuple[int, int, int]] = field(default_factory=list)
    drop_raws: list[str] = field(default_factory=list)
    #: the blank lines that are cut marks (see :class:`.prefixes.BlankCuts`)
    cuts: set[int] = field(default_factory=set)
    #: per start, the state ``capture.iter_live_lines()`` was in before that line: (in a section, the
    #: latest live line); a read of that boot starts there instead of at the capture's first line
    resume: list[tuple[bool, Line | None]] = field(default_factory=list)
    #: (character offset, line number) where each chunk of the text starts, to find a start's offset
    marks: list[tuple[int, int]] = field(default_factory=list)

    def span(self, k: int) -> tuple[int, int | None]:
        """Line numbers ``[lo, hi)`` of the *k*-th boot (0-based; hi None: to the end)."""
        lo = self.starts[k] if k else 0
        return lo, self.starts[k + 1] if k + 1 < len(self.starts) else None


#: A stamped line of a :class:`PlainRun` (a plain ``[ 1.0] text`` line): its stamp and text, as
#: ``prefixes._excerpt_line()`` reads them (a CR before the newline taken off), without making the Line.
_RUN_STAMPED = re.compile(r"^\[ *([0-9]+\.[0-9]+)\] ([^\r\n]*)\r?$", re.M)


def _banner(ln: Line) -> bool:
    return ln.ts is not None and ln.text[:14] == "Linux version " and VERSION_LINE.match(ln.text) is not None


_State = tuple[bool, int | None, tuple[bool, Line | None] | None, int]


class _Starts:
    """``ConsoleReader._boot_starts()`` one line at a time, with a state to put back (a dropped boot's lines
    are not among the lines it reads); and, for each start, ``iter_live_lines()``'s state before it (which
    no drop puts back: that pass reads every line)."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.resume: list[tuple[bool, Line | None]] = []
        self.in_section = False
        #: the first line of the run of lines stamped 0.0 that ends at the line before (None: no run),
        #: and the live state before it
        self.zero_from: int | None = None
        self.zero_live: tuple[bool, Line | None] | None = None
        #: iter_live_lines()'s own: in a section, and the latest live stamped line
        self.live_section = False
        self.latest: Line | None = None

    def state(self) -> _State:
        return self.in_section, self.zero_from, self.zero_live, len(self.starts)

    def restore(self, state: _State) -> None:
        self.in_section, self.zero_from, self.zero_live, n = state
        del self.starts[n:]
        del self.resume[n:]

    def see(self, ln: Line) -> None:
        t = ln.text
        live = (self.live_section, self.latest)
        if t[:5] in ("=====", "Linux"):
            if SECTION_BEGIN.match(t):
                self.in_section = self.live_section = True
                live = None  # a marker is no live line (below)
            elif SECTION_END.match(t):
                self.in_section = self.live_section = False
                live = None
            elif VERSION_LINE.match(t) and not (self.in_section and ln.ts is None):
                # arm64 prints "Booting Linux on physical CPU" before the version line
                if ln.ts == 0.0 and self.zero_from is not None:
                    self.starts.append(self.zero_from)
                    self.resume.append(self.zero_live)  # type: ignore[arg-type]
                else:
                    self.starts.append(ln.lineno)
                    self.resume.append(live)
        if ln.ts == 0.0:
            if self.zero_from is None:
                self.zero_from, self.zero_live = ln.lineno, live
        else:
            self.zero_from = None
        if live is not None and ln.ts is not None:
            self.latest = ln  # what iter_live_lines() yields stamped was live, and became its latest

    def see_run(self, run: PlainRun) -> None:
        # no marker, no banner in a run: only its last lines stamped 0.0 matter
        if run.last_line().ts == 0.0:
            for ln in run.lines():
                self.see(ln)
        else:
            self.zero_from = None
            self.latest = run.last_stamped_line() or self.latest


def scan(items: Iterable[Line | PlainRun | CallRun], raw_of: Callable[[int], str]) -> Boots:
    """Where the boots of the cleaned lines *items* (``capture.iter_live_lines()``'s) start, and which of
    them repeat an earlier one, every stamped line of it (stamp and text) printed already.  *raw_of*
    gives the raw text of a banner's line as the banner is read."""
    out = Boots()
    starts = _Starts()
    # each boot kept: its first line and the sorted hashes of its stamped lines (8 bytes a line)
    kept: list[tuple[int, array[int]]] = []
    block = array("q")  # hashes of the stamped lines of the boot being read
    first = last = -1  # its banner's line number (-1: before the second banner) and its last line's
    first_raw = ""
    banner_line = -1  # the first banner's line: the first boot's (with the lines before it)
    saved = starts.state()

    def owner(h: int) -> int:
        for line, hashes in kept:
            i = bisect_left(hashes, h)
            if i < len(hashes) and hashes[i] == h:
                return line
        return -1

    def close() -> None:
        if first >= 0 and all(owner(h) >= 0 for h in block):
            out.drops.append((first, last, owner(block[0])))
            out.drop_raws.append(first_raw)
            starts.restore(saved)
        else:
            kept.append((first if first >= 0 else banner_line, array("q", sorted(block))))

    for item in items:
        if item.__class__ is PlainRun:
            run: PlainRun = item  # type: ignore[assignment]
            block.extend(hash((float(m[1]), m[2])) for m in _RUN_STAMPED.finditer(run.text, run.start, run.end))
            last = run.lineno + run.count - 1
            starts.see_run(run)
            continue
        if item.__class__ is CallRun:
            # memblock call lines: no banner, no marker among them, but early ones are stamped 0.0
            for ln in item.lines:  # type: ignore[union-attr]
                block.append(hash((ln.ts, ln.text)))
                starts.see(ln)
            last = ln.lineno
            continue
        ln: Line = item  # type: ignore[assignment]
        if _banner(ln):
            if banner_line < 0:
                banner_line = ln.lineno
            else:
                close()
                block = array("q")
                first = ln.lineno
                first_raw = raw_of(first)
                saved = starts.state()
        if ln.ts is not None:
            block.append(hash((ln.ts, ln.text)))
        last = ln.lineno
        starts.see(ln)
    if first >= 0:
        close()
    out.starts, out.resume = starts.starts, starts.resume
    return out


def crop(items: Iterable[Line | PlainRun | CallRun], lo: int, hi: int | None,
         drops: list[tuple[int, int, int]]) -> Iterator[Line | PlainRun | CallRun]:
    """The lines of *items* numbered in ``[lo, hi)`` and in none of *drops* (hi None: to the end)."""
    end = hi if hi is not None else 1 << 62
    spans = sorted((a, b) for a, b, _ in drops if b >= lo and a < end)

    def dropped(n: int) -> bool:
        return any(a <= n <= b for a, b in spans)

    for item in items:
        if item.__class__ is PlainRun:
            run: PlainRun = item  # type: ignore[assignment]
            top = run.lineno + run.count - 1
            if top < lo:
                continue
            if run.lineno >= end:
                return
            if run.lineno >= lo and top < end and not any(a <= top and run.lineno <= b for a, b in spans):
                yield run
                continue
            for ln in run.lines():
                if lo <= ln.lineno < end and not dropped(ln.lineno):
                    yield ln
            continue
        if item.__class__ is CallRun:
            a = item.lineno  # type: ignore[union-attr]
            b = a + item.count - 1  # type: ignore[union-attr]
            if b < lo:
                continue
            if a >= end:
                return
            if a >= lo and b < end and not any(x <= b and a <= y for x, y in spans):
                yield item
            else:
                yield from (ln for ln in item.lines  # type: ignore[union-attr]
                            if lo <= ln.lineno < end and not dropped(ln.lineno))
            continue
        n = item.lineno  # type: ignore[union-attr]
        if n >= end:
            return
        if n >= lo and not (spans and dropped(n)):
            yield item
