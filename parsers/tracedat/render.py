# SPDX-License-Identifier: GPL-2.0-only
"""``trace-cmd report``-style text for decoded events.

:func:`render_report` gives, line by line, what ``trace-cmd report -t``
(trace-cmd 3.1.6, libtraceevent 1.7) prints: ``cpus=N``, then per event
``comm-pid [cpu] secs.nsecs: name: body``, with ``CPU:N [X EVENTS DROPPED]``
before the first event after a loss.

The body comes from the event's ``print fmt``, compiled once per format into
literal text and conversions whose arguments are simple expressions
(``REC->field``, casts, ``__get_str()``, ``__get_dynamic_array()``).  C printf
semantics (length modifiers truncating the value, ``%#x`` of zero, ``%p``
extensions resolved through kallsyms) are reproduced here.  Two events are
special in libtraceevent and here: ``ftrace:bprint`` (arguments packed in
``buf`` after the kernel's ``vbin_printf()``, format looked up in
printk_formats) and ``ftrace:function`` (trace-cmd's function plugin:
the name only, indented by the per-CPU call stack it infers from parents).
A ``print fmt`` we cannot compile falls back to ``name=value`` pairs.
"""

from __future__ import annotations

import functools
import re
import struct
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

from kho_replay.replay.errors import FormatError

from .events import Event, EventFormat, FieldKind
from .reader import MISSED_UNKNOWN, TraceDat
from .symbols import Kallsyms, parse_cmdlines, parse_printk_formats

__all__ = ["Renderer", "c_printf", "render_report"]

_SPEC = re.compile(
    r"%(?P<flags>[-+ #0]*)(?P<width>\*|\d+)?(?:\.(?P<prec>\*|\d*))?"
    r"(?P<len>hh|h|ll|l|L|z|Z|j|t|q)?(?P<conv>[diouxXcspn%])"
)
_C_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'", "r": "\r", "a": "\a", "b": "\b",
              "f": "\f", "v": "\v", "0": "\0"}
#: What trace-cmd prints in every column of an event whose ID has no format.
UNKNOWN_EVENT = "[UNKNOWN EVENT]"
#: Widths and precisions beyond this are clamped: a fuzzed "%99999999d" must not eat memory.
MAX_FIELD_WIDTH = 4096
#: %p extensions the kernel saves as a pointer value (vbin_printf()); others are rendered to text.
_PTR_VALUE_EXT = set("SsFfxKe")


def _c_string_literal(text: str) -> tuple[str, int] | None:
    """Parse the leading C string literal(s) of *text*; return (value, end) or None."""
    i = 0
    n = len(text)
    out = []
    seen = False
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n or text[i] != '"':
            break
        seen = True
        i += 1
        while i < n and text[i] != '"':
            c = text[i]
            if c == "\\" and i + 1 < n:
                nxt = text[i + 1]
                out.append(_C_ESCAPES.get(nxt, nxt))
                i += 2
                continue
            out.append(c)
            i += 1
        if i >= n:
            return None
        i += 1
    return ("".join(out), i) if seen else None


def _split_args(text: str) -> list[str]:
    args, depth, cur = [], 0, []
    quote = False
    for c in text:
        if quote:
            cur.append(c)
            if c == '"':
                quote = False
            continue
        if c == '"':
            quote = True
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            args.append("".join(cur).strip())
            cur = []
            continue
        cur.append(c)
    if "".join(cur).strip():
        args.append("".join(cur).strip())
    return args


_CAST = re.compile(r"^\(\s*(?:const\s+|unsigned\s+|signed\s+|struct\s+)*\w+(?:\s+\w+)*\s*\**\s*\)\s*")
_REC = re.compile(r"^REC\s*->\s*(\w+)$")
_GET = re.compile(r"^__get_(?:rel_)?(?:str|dynamic_array)\s*\(\s*(\w+)\s*\)$")
_NUM = re.compile(r"^(0[xX][0-9a-fA-F]+|\d+)[uUlL]*$")


def _compile_arg(expr: str, fmt: EventFormat) -> Callable[[Event], Any] | None:
    e = expr.strip()
    while True:
        m = _CAST.match(e)
        if not m or m.end() == len(e):
            break
        e = e[m.end():].strip()
    while e.startswith("(") and e.endswith(")") and _split_args(e[1:-1]) == [e[1:-1].strip()]:
        e = e[1:-1].strip()
    m = _REC.match(e) or _GET.match(e)
    if m:
        i = fmt.field_index(m.group(1))
        if i is None:
            return None
        return lambda ev: ev.values[i]
    m = _NUM.match(e)
    if m:
        v = int(m.group(1), 0)
        return lambda ev: v
    return None


def _int_bits(length: str | None, conv: str, long_size: int) -> int:
    if conv == "p":
        return long_size * 8
    if length in ("ll", "L", "q", "j"):
        return 64
    if length in ("l", "z", "Z", "t"):
        return long_size * 8
    if length == "h":
        return 16
    if length == "hh":
        return 8
    return 32


class _Ctx:
    """What conversions need besides their argument: long size and symbol tables."""

    def __init__(self, long_size: int, kallsyms: Callable[[], Kallsyms],
                 printk: Callable[[], dict[int, str]]) -> None:
        self.long_size = long_size
        self._kallsyms = kallsyms
        self._printk = printk

    @property
    def kallsyms(self) -> Kallsyms:
        return self._kallsyms()

    @property
    def printk(self) -> dict[int, str]:
        return self._printk()


def _fmt_int(value: int, flags: str, width: str, prec: str | None, bits: int, conv: str) -> str:
    mask = (1 << bits) - 1
    v = value & mask
    if conv in "di":
        if v >> (bits - 1):
            v -= 1 << bits
        pconv = "d"
    elif conv == "u":
        pconv = "d"
    else:
        pconv = conv
    if "#" in flags and (v == 0 or conv == "o"):
        # C prints 0 (no 0x) for %#x of zero, and a single leading 0 for %#o.
        flags = flags.replace("#", "")
        if conv == "o" and v:
            digits = "0" + format(v, "o")
            return _pad(digits, flags, width)
    spec = "%" + flags + (width or "") + (f".{prec or 0}" if prec is not None else "") + pconv
    return spec % v


def _clamp(n: str | None) -> str | None:
    if n is None or n == "":
        return n
    v = int(n)
    return str(max(-MAX_FIELD_WIDTH, min(v, MAX_FIELD_WIDTH)))


def _pad(text: str, flags: str, width: str | None) -> str:
    w = int(width) if width else 0
    return text.ljust(w) if "-" in flags else text.rjust(w)


def _symbol(ctx: _Ctx, addr: int, ext: str) -> str:
    found = ctx.kallsyms.lookup(addr) if addr else None
    if found is None:
        return f"0x{addr:x}"
    sym, off = found
    if ext in "SF":
        return f"{sym.name}+0x{off:x}"
    return sym.name


class _Spec(NamedTuple):
    """One parsed conversion: the literal text before it and its parts."""

    literal: str
    flags: str
    width: str | None
    prec: str | None
    length: str | None
    conv: str
    ext: str
    raw: str


@functools.lru_cache(maxsize=4096)
def _parse_printf(fmt: str) -> tuple[tuple[_Spec, ...], str]:
    """Split a C format into conversions (with ``%p`` extension letters) and the tail text."""
    specs = []
    pos = 0
    while True:
        m = _SPEC.search(fmt, pos)
        if not m:
            break
        literal = fmt[pos:m.start()]
        pos = m.end()
        conv = m.group("conv")
        if conv == "%":
            specs.append(_Spec(literal + "%", "", None, None, None, "", "", ""))
            continue
        ext = ""
        if conv == "p" and pos < len(fmt) and fmt[pos].isalnum():
            ext = fmt[pos]
            pos += 1
            # Extensions like %pI4 carry more letters; the kernel rendered those already.
            while pos < len(fmt) and fmt[pos].isalnum() and ext not in _PTR_VALUE_EXT:
                pos += 1
        specs.append(_Spec(literal, m.group("flags"), m.group("width"), m.group("prec"), m.group("len"),
                           conv, ext, fmt[m.start():pos]))
    return tuple(specs), fmt[pos:]


def c_printf(fmt: str, args: Sequence[Any], ctx: _Ctx) -> str:
    """Format *args* with the C format string *fmt* the way libtraceevent does.

    ``%p`` takes an address (``%ps``/``%pS``/``%pF``/``%pf`` resolve it through
    kallsyms); ``%s`` of an integer is a kernel string address looked up in
    printk_formats.
    """
    specs, tail = _parse_printf(fmt)
    out = []
    ai = 0
    nargs = len(args)
    for sp in specs:
        out.append(sp.literal)
        conv = sp.conv
        if not conv:  # "%%"
            continue
        flags, width, prec = sp.flags, sp.width, sp.prec
        if width == "*":
            width = str(args[ai]) if ai < nargs else ""
            ai += 1
        if prec == "*":
            prec = str(args[ai]) if ai < nargs else "0"
            ai += 1
        if width or prec:
            width, prec = _clamp(width), _clamp(prec)
            if width and width.startswith("-"):  # a negative * width means left-justify in C
                flags, width = flags + "-", width[1:]
            if prec and prec.startswith("-"):  # a negative * precision is as if omitted
                prec = None
        if ai >= nargs:
            out.append(sp.raw)
            continue
        arg = args[ai]
        ai += 1
        if conv == "s":
            if isinstance(arg, int):
                arg = ctx.printk.get(arg, f"0x{arg:x}")
            elif isinstance(arg, tuple):
                arg = ",".join(map(str, arg))
            text = arg if prec is None else arg[: int(prec or 0)]
            out.append(_pad(text, flags, width) if width else text)
            continue
        if isinstance(arg, tuple):
            arg = arg[0] if arg else 0
        if conv == "p":
            ext = sp.ext
            if isinstance(arg, str):
                out.append(_pad(arg, flags, width))
            elif ext in ("s", "S", "f", "F"):
                out.append(_pad(_symbol(ctx, int(arg), ext), flags, width))
            else:
                v = int(arg) & ((1 << (ctx.long_size * 8)) - 1)
                out.append(_pad(f"{v:x}" if ext in ("x", "X") else f"0x{v:x}", flags, width))
            continue
        if conv == "c":
            ch = arg if isinstance(arg, str) else chr(int(arg) & 0xFF)
            out.append(_pad(ch[:1], flags, width))
            continue
        if conv == "n":
            continue
        if isinstance(arg, str):
            out.append(_pad(arg, flags, width))
            continue
        out.append(_fmt_int(int(arg), flags, width, prec, _int_bits(sp.length, conv, ctx.long_size), conv))
    out.append(tail)
    return "".join(out)


def bprint_args(fmt: str, buf: bytes, long_size: int, big_endian: bool) -> list[Any]:
    """Unpack ``trace_printk()`` arguments stored by the kernel's ``vbin_printf()``.

    Models libtraceevent's ``make_bprint_args()``: numeric arguments
    4-byte aligned (8 bytes for ``ll``, a long for ``l``/``z`` and pointer
    values), ``%s`` and rendered ``%p`` extensions inline as NUL-terminated
    strings.  A short buffer ends the list.

    >>> bprint_args("%d %s %llx", b"\\x05\\0\\0\\0ab\\0\\0\\x10\\0\\0\\0\\0\\0\\0\\0", 8, False)
    [5, 'ab', 16]
    """
    e = ">" if big_endian else "<"
    args: list[Any] = []
    p = 0
    n = len(buf)
    pos = 0
    while True:
        m = _SPEC.search(fmt, pos)
        if not m:
            break
        pos = m.end()
        conv, length = m.group("conv"), m.group("len")
        if conv == "%":
            continue
        for star in (m.group("width"), m.group("prec")):
            if star == "*":
                p = (p + 3) & ~3
                if p + 4 > n:
                    return args
                args.append(struct.unpack_from(e + "i", buf, p)[0])
                p += 4
        inline = conv == "s"
        if conv == "p" and pos < len(fmt) and fmt[pos].isalnum() and fmt[pos] not in _PTR_VALUE_EXT:
            inline = True
        if inline:
            end = buf.find(b"\0", p)
            if end < 0:
                end = n
            args.append(buf[p:end].decode("utf-8", "surrogateescape"))
            p = end + 1
            continue
        if conv == "p" or length in ("l", "z", "Z", "t"):
            size = long_size
        elif length in ("ll", "L", "q", "j"):
            size = 8
        else:
            size = 4
        p = (p + 3) & ~3
        if p + size > n:
            return args
        code = {4: "I", 8: "Q"}[size]
        args.append(struct.unpack_from(e + code, buf, p)[0])
        p += size
    return args


class Renderer:
    """Renders :class:`~.events.Event` bodies and report lines for one file."""

    def __init__(self, td: TraceDat, *, nsec: bool = True) -> None:
        self.td = td
        #: timestamps in ns (``report -t``); False: microseconds as plain ``report`` prints them.
        self.nsec = nsec
        self._kallsyms: Kallsyms | None = None
        self._printk: dict[int, str] | None = None
        self._cmdlines: dict[int, str] | None = None
        self.ctx = _Ctx(td.header_page.long_size, self.kallsyms, self.printk)
        self._compiled: dict[int, Callable[[Event], str]] = {}
        # trace-cmd's function plugin keeps, per CPU, the chain of callers it has seen.
        self._fstack: dict[int, list[str]] = {}
        # Per-line constant parts, formatted once: "comm-pid [cpu] " and the padded "name:".
        self._heads: dict[tuple[int, int], str] = {}
        self._names: dict[int, str] = {}

    def kallsyms(self) -> Kallsyms:
        """The file's kallsyms table, parsed on first use."""
        if self._kallsyms is None:
            self._kallsyms = Kallsyms(self.td.kallsyms_text)
        return self._kallsyms

    def printk(self) -> dict[int, str]:
        """The file's printk_formats, parsed on first use."""
        if self._printk is None:
            self._printk = parse_printk_formats(self.td.printk_text)
        return self._printk

    def comm(self, pid: int) -> str:
        """The comm of *pid* from saved_cmdlines, as trace-cmd shows it."""
        if self._cmdlines is None:
            self._cmdlines = parse_cmdlines(self.td.cmdlines_text)
        if pid == 0:
            return "<idle>"
        return self._cmdlines.get(pid, "<...>")

    def body(self, ev: Event) -> str:
        """The text after ``name: `` for one event."""
        fmt = ev.format
        if fmt is None:
            return UNKNOWN_EVENT
        fn = self._compiled.get(fmt.id)
        if fn is None:
            fn = self._compiled[fmt.id] = self._compile(fmt)
        try:
            return fn(ev)
        except (TypeError, ValueError, OverflowError, KeyError, IndexError) as e:
            # The renderer's choke point: a garbled record or format is our error, not a traceback.
            raise FormatError(self.td.path, f"cannot render {fmt.system}:{fmt.name}: {e}",
                              offset=ev.offset) from e

    def _compile(self, fmt: EventFormat) -> Callable[[Event], str]:
        ctx = self.ctx
        if fmt.system == "ftrace" and fmt.name == "function" and fmt.field_index("ip") is not None:
            return self._function
        if fmt.system == "ftrace" and fmt.name == "bprint" and fmt.field_index("fmt") is not None:
            return self._bprint(fmt)
        lit = _c_string_literal(fmt.print_fmt)
        if lit is not None:
            text, end = lit
            rest = fmt.print_fmt[end:].strip()
            exprs = _split_args(rest[1:]) if rest.startswith(",") else ([] if not rest else None)
            if exprs is not None:
                getters = [_compile_arg(x, fmt) for x in exprs]
                if all(g is not None for g in getters):
                    gs: list[Callable[[Event], Any]] = getters  # type: ignore[assignment]
                    return lambda ev: c_printf(text, [g(ev) for g in gs], ctx)
        return self._raw_fields

    def _raw_fields(self, ev: Event) -> str:
        """Fallback body for a print fmt we cannot compile: ``name=value`` per event field."""
        fmt = ev.format
        if fmt is None:
            return ""
        parts = []
        for f, v in zip(fmt.fields[fmt.n_common:], ev.values[fmt.n_common:], strict=True):
            hexed = isinstance(v, int) and f.kind is FieldKind.SCALAR and not f.signed
            parts.append(f"{f.name}=0x{v:x}" if hexed else f"{f.name}={v}")
        return " ".join(parts)

    def _function(self, ev: Event) -> str:
        """trace-cmd's function plugin: callee name, indented 3 per level of inferred depth."""
        ip = ev.get("ip")
        parent_ip = ev.get("parent_ip")
        ks = self.kallsyms()
        f = ks.lookup(ip) if ip else None
        func = f[0].name if f else None
        p = ks.lookup(parent_ip) if parent_ip else None
        parent = p[0].name if p else None
        index = 0
        if parent is not None and func is not None:
            stack = self._fstack.setdefault(ev.cpu, [])
            if parent in stack:
                # The parent's depth is the indent; the callee becomes the next level.
                index = stack.index(parent)
                del stack[index + 1:]
                stack.append(func)
            else:
                stack[:] = [parent, func]
        text = func if func is not None else f"0x{ip:x}"
        return " " * (index * 3) + text

    def _bprint(self, fmt: EventFormat) -> Callable[[Event], str]:
        ctx = self.ctx
        buf_i = fmt.field_index("buf")
        buf_off = fmt.fields[buf_i].offset if buf_i is not None else len(b"")
        long_size = ctx.long_size
        big = self.td.big_endian

        def render(ev: Event) -> str:
            ip = ev.get("ip") or 0
            addr = ev.get("fmt") or 0
            head = _symbol(ctx, ip, "s")
            text = ctx.printk.get(addr)
            if text is None:
                return f"{head}: [UNKNOWN FORMAT 0x{addr:x}]"
            args = bprint_args(text, ev.payload[buf_off:], long_size, big)
            return f"{head}: {c_printf(text, args, ctx)}"

        return render

    def line(self, ev: Event) -> str:
        """One ``trace-cmd report -t`` line (without the dropped-events line)."""
        fmt = ev.format
        if fmt is None:
            # libtraceevent has no comm, pid or time columns for an ID without a format.
            return f"{UNKNOWN_EVENT}{UNKNOWN_EVENT} {'(NULL):':<21} {UNKNOWN_EVENT}"
        key = (ev.pid, ev.cpu)
        head = self._heads.get(key)
        if head is None:
            head = self._heads[key] = f"{self.comm(ev.pid):>16}-{ev.pid:<5} [{ev.cpu:03d}] "
        name = self._names.get(fmt.id)
        if name is None:
            name = self._names[fmt.id] = f"{fmt.name + ':':<21}"
        secs, nsecs = divmod(ev.ts, 1_000_000_000)
        body = self.body(ev)
        if body.endswith("\n"):
            body = body[:-1]  # trace-cmd adds no newline of its own after one the event printed
        if not self.nsec:
            # Without -t, libtraceevent rounds to the microsecond, half up, carrying into the seconds.
            usecs = (nsecs + 500) // 1000
            if usecs >= 1_000_000:
                secs, usecs = secs + 1, usecs - 1_000_000
            return f"{head}{secs:5d}.{usecs:06d}: {name} {body}"
        return f"{head}{secs:5d}.{nsecs:09d}: {name} {body}"


def render_report(td: TraceDat, instance: str = "", *, nsec: bool = True) -> Iterator[str]:
    """Yield the lines ``trace-cmd report -t`` prints for *td* (no trailing newlines).

    With ``nsec=False``, the lines of plain ``trace-cmd report`` (microseconds).

    >>> from kho_replay.parsers.tracedat import open_tracedat
    >>> with open_tracedat("traces/tracedat/synthetic/v7zstd.dat") as td:
    ...     lines = list(render_report(td))
    >>> lines[0], lines[3][:60]
    ('cpus=3', '   memblock-test-42    [001]     1.000003039: console:      ')
    """
    r = Renderer(td, nsec=nsec)
    yield f"cpus={td.cpu_count}"
    for ev in td.iter_events(instance):
        if ev.missed:
            if ev.missed == MISSED_UNKNOWN:
                yield f"CPU:{ev.cpu} [EVENTS DROPPED]"
            else:
                yield f"CPU:{ev.cpu} [{ev.missed} EVENTS DROPPED]"
        yield r.line(ev)
