# SPDX-License-Identifier: GPL-2.0-only
"""What a capture puts before the printk text, and how to take it off.

dmesg, ``dmesg -T``/``-x``, ``journalctl -k``, syslog priorities, serial
stamps, caller ids, terminal escapes and CR: :func:`clean_line` leaves the
kernel's own text and its timestamp.

Excerpts pasted in mails and bug reports add their own layer, which
:func:`excerpt_lines` takes off: ``> `` quote marks (any depth), ``#``
commentary, cut marks (``[...]``, ``...``, ``# [cut: ...]``, scissors) and
hard wraps (a kernel line broken across two or more lines is joined back
when the joined text is a line the grammar understands).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple, Protocol

from kho_replay.replay.errors import FormatError

__all__ = ["NOTED", "BlankCuts", "CallRun", "Chunks", "Line", "PlainRun", "clean_line", "excerpt_lines",
           "iter_excerpt_lines", "unquote"]

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
#: The common case, ``[    0.000000] text``: every other prefix would start differently (fast path).
#: (no caller id after it, one line of text)
_PLAIN_STAMP = re.compile(r"\[ *([0-9]+\.[0-9]+)\] (?!\[| \[)([^\n]*)\n?\Z")

# Mail layers: quote marks of any depth, commentary, the marks people leave where they cut a log.
_QUOTE = re.compile(r"^[ \t]*>(?:[ \t]?>)*[ \t]?")
_CUT = re.compile(
    r"^\s*(?:\[\s*(?:\.{2,}|\u2026|snip\w*|cut\w*)\s*\]|\.{3,}|\u2026|<snip\w*>|-*\s*(?:8<|>8|%<|>%)[-%<>8 ]*"
    r"|-{3,}\s*(?:cut here|snip)\s*-{3,}|#\s*\[(?:cut|\.{3})[^\]]*\]?.*|#\s*={3,}.*)\s*$",
    re.IGNORECASE,
)

# --------------------------------------------------------------------------
# Line cleaning


class Line(NamedTuple):
    """One printk line: where it was, its timestamp and text without prefixes.

    A named tuple, not a frozen dataclass: one is made per line of a capture of millions, and a tuple
    is built several times faster."""

    lineno: int
    ts: float | None
    text: str
    raw: str
    #: "" for a kernel line; "cut" where an excerpt left lines out, "comment" for ``#`` commentary,
    #: "joined" for a hard-wrapped piece now part of the line before it (text "" for all three).
    note: str = ""


def clean_line(raw: str) -> tuple[float | None, str]:
    """Strip escapes, CR, syslog/journal/dmesg prefixes, timestamp and caller id.

    >>> clean_line("\\x1b[2J[    0.021033] memblock_add: [0x1000-0x9fbff] f+0x1/0x2\\r")
    (0.021033, 'memblock_add: [0x1000-0x9fbff] f+0x1/0x2')
    >>> clean_line("<6>[    1.5][    T0] Memory: 1K/2K available (x)")
    (1.5, 'Memory: 1K/2K available (x)')
    """
    plain = _plain_stamped(raw)
    if plain is not None:
        return plain
    # each substitution only where its prefix can be (the tests are cheap, the regexes are not)
    text = raw.replace("\r", "")
    if "\x1b" in text:
        text = _ESCAPE.sub("", text)
    if not text.isprintable():
        text = _CONTROL.sub("", text)
    if text[:1] == "<":
        text = _SYSLOG_PRI.sub("", text)
    if "kernel: " in text:
        text = _JOURNAL.sub("", text)
    if text[:3] in _DMESG_X_START:
        text = _DMESG_X.sub("", text)
    if text[:1] == "<":
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


def _plain_stamped(raw: str) -> tuple[float, str] | None:
    """``[    0.000000] text`` with printable text: nothing else to take off (no escape, CR, caller id,
    quote mark or cut mark); None for any other line."""
    m = _PLAIN_STAMP.match(raw)
    if m is None:
        return None
    ts, text = m.groups()
    return (float(ts), text) if text.isprintable() else None


#: What the first characters of a line with a prefix clean_line() takes off (syslog, journal, dmesg -x,
#: stamps, caller ids) can be; a line starting otherwise, without "] " or "kernel: ", has none.
_PREFIX_START = frozenset("<[")
_DMESG_X_START = frozenset(("ker", "use", "mai", "dae", "aut", "sys", "lpr", "new"))


def _plain_unstamped(raw: str) -> str | None:
    """The text of a printable line no prefix, quote mark, cut mark or commentary starts (userspace
    output on a console, mostly): the line itself; None for any other line."""
    body = raw[:-1] if raw[-1:] == "\n" else raw
    if (not body.isprintable() or body[:1] in _PREFIX_START or body[1:2] == "[" or "] " in body
            or "kernel: " in body or body[:3] in _DMESG_X_START or ">" in body[:8]):
        return None
    first = body.lstrip()[:1]
    return None if first in _MARK_START or first == "#" else body


_MARK_START = frozenset("[.#-<>%8\u2026")


def unquote(raw: str) -> str:
    """The line without mail quote marks (``> ``, ``>> ``, ``> > ``)."""
    m = _QUOTE.match(raw)
    return raw[m.end():] if m else raw


def excerpt_lines(
    raw_lines: Iterable[str],
    understood: Callable[[str], bool],
    wrapped: Callable[[str], bool],
) -> list[Line]:
    """One :class:`Line` per raw line, mail layers taken off and hard wraps joined.

    :param understood: whether a cleaned text is a complete line of the grammar.
    :param wrapped: whether a cleaned text looks like the start of a line that the mail broke.
    Lines consumed by a join, commentary and cut marks keep their place (text "") so that
    line numbers and indices stay those of the file.
    """
    blanks = BlankCuts()
    lines = list(iter_excerpt_lines(raw_lines, understood, wrapped, blanks))
    for k in blanks.cuts():
        lines[k] = blanks.cut(lines[k])
    return lines


def iter_excerpt_lines(
    raw_lines: Iterable[str | PlainRun | CallRun],
    understood: Callable[[str], bool],
    wrapped: Callable[[str], bool],
    blanks: BlankCuts,
    lineno: int = 1,
) -> Iterator[Line | PlainRun | CallRun]:
    """:func:`excerpt_lines` one line at a time (a join looks three lines ahead), for captures of
    millions of lines; which blank lines are cut marks is known at the end only: *blanks* says.
    A :class:`PlainRun` or :class:`CallRun` among *raw_lines* is passed on whole (their lines can
    join nothing), but to a line waiting for pieces.  The first raw line is numbered *lineno*."""
    # a line that may start a broken line waits (in window) for the three after it
    window: list[Line] = []
    see = blanks.see
    i = lineno - 1
    for raw in raw_lines:
        if raw.__class__ is CallRun:
            if window:
                # a waiting line may take pieces: its lines one by one (none of them waits itself)
                for ln in raw.lines:  # type: ignore[union-attr]
                    see(ln)
                    window.append(ln)
                    while window and (len(window) == 4 or not _may_join(window[0], wrapped)):
                        yield _join_first(window, understood, wrapped)
            else:
                blanks.see_calls(raw.count)  # type: ignore[union-attr]
                yield raw
            i = raw.lineno + raw.count - 1  # type: ignore[union-attr]
            continue
        if raw.__class__ is PlainRun:
            run: PlainRun | None = raw  # type: ignore[assignment]
            # pieces for a waiting line are read one by one (three at most: none of them waits)
            while window and run is not None:
                ln, run = run.pop_first()
                see(ln)
                window.append(ln)
                while window and (len(window) == 4 or not _may_join(window[0], wrapped)):
                    yield _join_first(window, understood, wrapped)
            if run is not None:
                blanks.see_run(run)
                yield run
            i = raw.lineno + raw.count - 1  # type: ignore[union-attr]
            continue
        i += 1
        ln = _excerpt_line(i, raw)  # type: ignore[arg-type]
        see(ln)
        if not window and not _may_join(ln, wrapped):
            yield ln  # the common case
            continue
        window.append(ln)
        while window and (len(window) == 4 or not _may_join(window[0], wrapped)):
            yield _join_first(window, understood, wrapped)
    while window:
        yield _join_first(window, understood, wrapped)


def _may_join(ln: Line, wrapped: Callable[[str], bool]) -> bool:
    """Can pieces after *ln* join it (a banner, or what looks like the start of a broken memblock line)?"""
    t = ln.text
    return bool(t) and not ln.note and ((ln.ts is not None and t[:14] == "Linux version ") or wrapped(t))


#: Line's own constructor without the Python-level __new__ of a named tuple (one per line of a capture)
_new = tuple.__new__


def _excerpt_line(i: int, raw: str) -> Line:
    # the two common lines, a plain stamp or plain userspace text, without the general rules
    if raw[:1] == "[":
        plain = _plain_stamped(raw)
        if plain is not None:
            return _new(Line, (i, plain[0], plain[1], raw, ""))
    else:
        body = _plain_unstamped(raw)
        if body is not None:
            return _new(Line, (i, None, body, raw, ""))
    body = unquote(raw) if ">" in raw[:8] else raw
    stripped = body.strip()
    # cut marks and commentary start with one of these (the test is cheap; the regex is not)
    if stripped[:1] in _MARK_START and _CUT.match(stripped):
        return Line(i, None, "", raw, "cut")
    if stripped.startswith("#"):
        return Line(i, None, "", raw, "comment")
    ts, text = clean_line(body)
    return Line(i, ts, text, raw)


def _join_first(window: list[Line], understood: Callable[[str], bool], wrapped: Callable[[str], bool]) -> Line:
    """Join the pieces after ``window[0]`` to it, if it is a broken line; take it out of *window*."""
    ln = window[0]
    if ln.note or not ln.text:
        pass
    elif len(window) > 1 and ln.ts is not None and window[1].ts is not None and ln.text[:1] != "L":
        pass  # a stamped line before a stamped one: no piece to join (the banner's test is below)
    elif ln.ts is not None and ln.text.startswith("Linux version "):
        _join_banner(window, 0)
    elif wrapped(ln.text) and not understood(ln.text):
        _join(window, 0, understood)
    return window.pop(0)


#: How a stamped line of a PlainRun starts (its other lines hold no '[' before a digit)
_STAMPED = re.compile(r"\[ *[0-9]")
_STAMPED_LINE = re.compile(r"\n\[ *[0-9]")


class PlainRun:
    """Whole lines ``text[start:end]``, the first numbered *lineno*, each a plain line no pass reads:
    stamped (``[    1.0] text``) or not, printable ASCII (a CR before the newline taken off as
    clean_line() does), no prefix, mark or memblock text, blank (a bare newline) only
    after an unstamped line (see reader._plain_runs).  The line stages pass it on whole and count its
    lines; one whose state needs them one by one reads :meth:`lines`."""

    __slots__ = ("count", "end", "lineno", "start", "text")

    def __init__(self, text: str, start: int, end: int, lineno: int) -> None:
        self.text, self.start, self.end, self.lineno = text, start, end, lineno
        #: each line ends with a newline (CR only before it), the only line break among printable ASCII
        self.count = text.count("\n", start, end)

    def lines(self) -> list[Line]:
        """Its lines, as :func:`iter_excerpt_lines` makes them."""
        raws = self.text[self.start:self.end].splitlines(keepends=True)
        return [_excerpt_line(i, raw) for i, raw in enumerate(raws, self.lineno)]

    def pop_first(self) -> tuple[Line, PlainRun | None]:
        """Its first line, and the run of the others (None: there were none)."""
        nl = self.text.index("\n", self.start) + 1
        first = _excerpt_line(self.lineno, self.text[self.start:nl])
        return first, (PlainRun(self.text, nl, self.end, self.lineno + 1) if nl < self.end else None)

    def stamped(self) -> int:
        """How many of its lines are stamped (those start with '[ 1', no other holds it)."""
        return len(_STAMPED_LINE.findall(self.text, self.start, self.end)) + self.first_stamped

    def _last_start(self) -> int:
        p = self.text.rfind("\n", self.start, self.end - 1)
        return self.start if p < 0 else p + 1

    @property
    def first_stamped(self) -> bool:
        return _STAMPED.match(self.text, self.start) is not None

    @property
    def last_stamped(self) -> bool:
        return _STAMPED.match(self.text, self._last_start()) is not None

    def last_line(self) -> Line:
        return _excerpt_line(self.lineno + self.count - 1, self.text[self._last_start():self.end])

    def last_stamped_line(self) -> Line | None:
        """Its last stamped line, None if it has none."""
        text, hi = self.text, self.end
        while True:
            p = text.rfind("\n[", self.start, hi)
            if p < 0:
                if not self.first_stamped:
                    return None
                p = self.start
                break
            if _STAMPED.match(text, p + 1):
                p += 1
                break
            hi = p + 1
        nl = text.index("\n", p) + 1
        after = self.text.count("\n", nl, self.end)  # lines after it
        return _excerpt_line(self.lineno + self.count - 1 - after, self.text[p:nl])


class CallRun:
    """Consecutive memblock call lines ``text[start:end]``, the first numbered *lineno*, each made into
    the :class:`Line` :func:`_excerpt_line` makes of it only when a stage asks (:attr:`lines`): each
    ``[    1.0] (__)memblock_fn: ... caller+0x1/0x2`` in printable ASCII, so stamped, complete
    (the caller's offset ends it: no piece joins it, it waits for none), read by the walk (RELEVANT
    matches it) and holding no section marker; between two of them maybe one quiet line, another
    stamped printable message no pass reads (kept as the line after a kept one, read by no handler, no
    marker, no piece).  A dense memblock=debug log is mostly such runs: the line stages pass the run on
    whole, and the walk reads its fields from the text (reader._call_block), so most runs never make
    their Lines; one whose state needs them one by one reads :attr:`lines`.

    Given *chunks* (*text* is their chunk number *chunk*), the run holds its place in them, not its
    text: ``chunks.get(chunk)`` gives the text again (read from the capture again once let go), so a
    capture of millions of call lines is never held whole between its reading and its walk.
    """

    __slots__ = ("_lines", "chunk", "chunks", "count", "end", "lineno", "noted", "pieces", "start")

    def __init__(self, text: str, start: int, end: int, lineno: int, chunks: Chunks | None = None,
                 chunk: int = -1) -> None:
        self.lineno = lineno
        #: each line ends with a newline, the only line break among printable ASCII
        self.count = text.count("\n", start, end)
        self.chunks, self.chunk, self.start, self.end = chunks, chunk, start, end
        if chunks is None:
            #: its text, cut in pieces the interpreter's small-object allocator holds: the capture's chunk goes at
            #: once, and the memory of a walked run serves the ops made after it (a string of its own would
            #: leave a hole in the C heap that small objects never reuse: peak RSS one capture's size higher)
            self.pieces: list[str] | None = [text[i:i + _PIECE if i + _PIECE < end else end]
                                             for i in range(start, end, _PIECE)]
            self.noted: tuple[str, ...] = ()
        else:
            self.pieces = None
            #: which of NOTED it holds (asked before the walk: the text is not read again for it)
            self.noted = tuple(s for s in NOTED if text.find(s, start, end) >= 0)
        self._lines: list[Line] | None = None

    def text(self) -> str:
        """Its lines' text, newlines kept (made anew: let it go after use).

        :raises FormatError: when the capture read again no longer holds it (it changed meanwhile).
        """
        if self.pieces is not None:
            return "".join(self.pieces)
        text = self.chunks.get(self.chunk)[self.start:self.end]  # type: ignore[union-attr]
        if self.chunks.held:  # type: ignore[union-attr]
            return text
        if len(text) != self.end - self.start or text.count("\n") != self.count or text[:1] != "[":
            raise FormatError(self.chunks.path, "the file changed while it was read",  # type: ignore[union-attr]
                              line=self.lineno)
        return text

    def holds(self, s: str) -> bool:
        """Does a line of it hold *s*?"""
        if self.pieces is None and s in NOTED:
            return s in self.noted
        return s in self.text()

    @property
    def lines(self) -> list[Line]:
        """Its Lines (made on the first call, each by :func:`call_line`)."""
        if self._lines is None:
            self._lines = list(map(call_line, itertools.count(self.lineno), self.text().splitlines(keepends=True)))
        return self._lines

    def last_line(self) -> Line:
        """Its last line (alone, when its Lines are not made)."""
        if self._lines is not None:
            return self._lines[-1]
        if self.pieces is None:
            tail = self.chunks.get(self.chunk)[max(self.start, self.end - 3 * _PIECE):self.end]  # type: ignore[union-attr]
        else:
            tail = "".join(self.pieces[-3:])  # a call line is shorter than two pieces
        p = tail.rfind("\n", 0, len(tail) - 1)
        if p < 0:
            return self.lines[-1]
        return call_line(self.lineno + self.count - 1, tail[p + 1:])


def call_line(lineno: int, raw: str) -> Line:
    """The :class:`Line` of a call run's line *raw* (``"[stamp] text\\n"``), numbered *lineno*: the first
    ``"] "`` ends its stamp (float() takes the spaces before it), a newline alone ends it."""
    k = raw.index("] ")
    return _new_line(Line, (lineno, float(raw[1:k]), raw[k + 2:-1], raw, ""))


class Chunks(Protocol):
    """Where a :class:`CallRun` finds its text again: the capture's chunks by number (reader._Chunks)."""

    path: str
    #: the chunks are the very text read (held), not read again: nothing can have changed
    held: bool

    def get(self, k: int) -> str: ...


#: The texts a reader asks a CallRun about before the walk (:meth:`CallRun.holds`; reader._prescan)
NOTED = ("kho_preserved_memory_reserve",)
#: CallRun's piece of text: a string of this many characters takes 512 bytes at most (the largest size the
#: interpreter's small-object allocator serves)
_PIECE = 448
_new_line = tuple.__new__


class BlankCuts:
    """In a stamped log, a rare blank line is where someone cut it: printk stamps every line it prints.

    (A mail that double-spaces every line has blanks everywhere; those mean nothing.)  Fed every
    line in order (:meth:`see`); :meth:`cuts` gives the indices of the blank lines that are cuts.
    """

    def __init__(self) -> None:
        self.stamped = 0
        self.blanks = 0
        #: blank lines between two stamped lines (only those can be cuts: at either end or inside
        #: unstamped text a blank line is layout)
        self.between: list[int] = []
        self._k = -1
        self._prev_stamped = False
        self._waiting = -1

    def see(self, ln: Line) -> None:
        self._k += 1
        stamped = ln.ts is not None
        if self._waiting >= 0:
            if stamped:
                self.between.append(self._waiting)
            self._waiting = -1
        if stamped:
            self.stamped += 1
        elif not ln.note and (not ln.text or ln.text.isspace()) and not ln.raw.strip():
            self.blanks += 1
            if self._prev_stamped:
                self._waiting = self._k
        self._prev_stamped = stamped

    def see_run(self, run: PlainRun) -> None:
        """:meth:`see` of each line of *run* (no blank line in it follows a stamped one)."""
        self._k += run.count
        if self._waiting >= 0:
            if run.first_stamped:
                self.between.append(self._waiting)
            self._waiting = -1
        self.stamped += run.stamped()
        self.blanks += run.text.count("\n\n", run.start, run.end) + (run.text[run.start] == "\n")
        self._prev_stamped = run.last_stamped

    def see_calls(self, count: int) -> None:
        """:meth:`see` of *count* stamped lines (a :class:`CallRun`)."""
        self._k += count
        if self._waiting >= 0:
            self.between.append(self._waiting)
            self._waiting = -1
        self.stamped += count
        self._prev_stamped = True

    @staticmethod
    def cut(ln: Line) -> Line:
        """The blank line *ln* as a cut mark."""
        return Line(ln.lineno, None, "", ln.raw, "cut")

    def cuts(self) -> list[int]:
        if self.stamped < 10 or not self.blanks or self.blanks * 20 > self.stamped:
            return []
        return self.between


def _join_banner(lines: list[Line], k: int) -> None:
    """A stamped ``Linux version`` banner broken by a mail: its stampless continuation lines."""
    first = lines[k]
    text, raw = first.text, first.raw.rstrip("\r\n")
    for j in range(k + 1, min(k + 3, len(lines))):
        nxt = lines[j]
        if nxt.note or nxt.ts is not None or not nxt.text.strip() or nxt.text.startswith("====="):
            break
        text += " " + nxt.text.strip()
        raw += " " + nxt.raw.strip()
        lines[j] = Line(nxt.lineno, None, "", nxt.raw, "joined")
    lines[k] = Line(first.lineno, first.ts, text, raw + "\n")


def _join(lines: list[Line], k: int, understood: Callable[[str], bool]) -> None:
    """Join up to three stampless pieces after ``lines[k]`` when that makes a line the grammar reads."""
    pieces: list[Line] = []
    for nxt in lines[k + 1: k + 4]:
        if nxt.note or nxt.ts is not None or not nxt.text.strip():
            break
        pieces.append(nxt)
        head = lines[k].text.rstrip()
        # a break between words lost a space; a break inside a number or symbol lost nothing
        for seps in _separators(len(pieces)):
            text = head
            for sep, p in zip(seps, pieces, strict=True):
                text += sep + p.text.strip()
            if understood(text):
                first = lines[k]
                raw = first.raw.rstrip("\r\n") + "".join(" " + p.raw.strip() for p in pieces) + "\n"
                lines[k] = Line(first.lineno, first.ts, text, raw)
                for j, p in enumerate(pieces, k + 1):
                    lines[j] = Line(p.lineno, None, "", p.raw, "joined")
                return


def _separators(n: int) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = [()]
    for _ in range(n):
        out = [(*s, sep) for s in out for sep in (" ", "")]
    return out
