# SPDX-License-Identifier: GPL-2.0-only
"""Event formats and record decoding.

A format file (``events/<system>/<event>/format``, parsed as libtraceevent's event-parse.c does) becomes an
:class:`EventFormat`: its fields with offsets, sizes, signedness and kind
(scalar, fixed array, flexible tail, ``__data_loc``, ``__rel_loc``) and its
``print fmt``.  :class:`EventDecoder` indexes the formats by ID without parsing
them, parses a format the first time its ID is seen, and builds one
``struct.Struct`` per event ID for its fixed scalar fields (byte order and
kernel long size are the file's).  Decoding a record is one ``unpack_from``
plus a little work for strings and arrays.

Unknown IDs are not an error: the event comes back with ``format=None`` and
is counted in :attr:`EventDecoder.unknown` (the ``Skipped`` policy of
``replay/ops.py``).
"""

from __future__ import annotations

import enum
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from kho_replay.replay.errors import FormatError

from .reader import Record, TraceDat

__all__ = ["ConsoleLine", "Event", "EventDecoder", "EventFormat", "Field", "FieldKind", "iter_console",
           "parse_format"]

_NAME = re.compile(rb"^name:\s*(\S+)\s*$", re.MULTILINE)
_ID = re.compile(rb"^ID:\s*(\d+)\s*$", re.MULTILINE)
_FIELD = re.compile(
    rb"^\s*field:(?P<decl>[^;]*);\s*offset:(?P<offset>\d+);\s*size:(?P<size>\d+);\s*(?:signed:(?P<signed>\d+);)?",
    re.MULTILINE,
)
_PRINT_FMT = re.compile(rb"^print fmt:\s*(.*?)\s*$", re.MULTILINE | re.DOTALL)
_DECL = re.compile(r"^(?P<type>.*?)\s*\b(?P<name>\w+)\s*(?P<dims>(?:\[[^\]]*\])*)\s*$")

#: Element sizes of the C types that appear in format files; longs take the kernel's.
_TYPE_SIZES = {
    "char": 1, "signed char": 1, "unsigned char": 1, "u8": 1, "s8": 1, "bool": 1, "_Bool": 1, "__u8": 1,
    "short": 2, "unsigned short": 2, "u16": 2, "s16": 2, "__u16": 2, "__s16": 2,
    "int": 4, "unsigned int": 4, "unsigned": 4, "u32": 4, "s32": 4, "__u32": 4, "__s32": 4, "pid_t": 4,
    "long long": 8, "unsigned long long": 8, "u64": 8, "s64": 8, "__u64": 8, "__s64": 8,
}
_STRING_TYPES = {"char", "const char", "signed char"}


class FieldKind(enum.Enum):
    """How a field's bytes are laid out in the payload."""

    SCALAR = "scalar"
    ARRAY = "array"  # fixed element count, inline
    FLEX = "flex"  # size 0: runs to the end of the payload
    DATA_LOC = "data_loc"  # u32 (len << 16 | offset from payload start)
    REL_LOC = "rel_loc"  # like DATA_LOC, offset relative to the end of the field


@dataclass(frozen=True, slots=True)
class Field:
    """One ``field:`` line of a format file."""

    name: str
    type: str
    offset: int
    size: int
    signed: bool
    kind: FieldKind
    elem_size: int
    #: char element type: decoded to ``str`` up to the first NUL.
    is_string: bool
    #: element count for fixed arrays and multi-slot data_loc (``char[][2]``); else 1.
    count: int = 1
    #: declared as a pointer (``const char * fmt``): printed as an address.
    is_pointer: bool = False


@dataclass(frozen=True, slots=True)
class EventFormat:
    """A parsed format file: ``system``, ``name``, ``id``, fields and ``print fmt``."""

    system: str
    name: str
    id: int
    fields: tuple[Field, ...]
    print_fmt: str
    #: number of leading ``common_*`` fields.
    n_common: int
    index: dict[str, int] = field(compare=False, repr=False)

    def field_index(self, name: str) -> int | None:
        """Position of field *name* in :attr:`Event.values`, or None."""
        return self.index.get(name)


class Event(NamedTuple):
    """A decoded event.

    ``values`` line up with ``format.fields`` (common fields first); ints for
    scalars, ``str`` for char arrays and strings, tuples of ints (or of str for
    ``char[][N]``) for other arrays.  ``format`` is None for an ID with no
    format in the file.
    """

    ts: int
    cpu: int
    pid: int
    format: EventFormat | None
    values: tuple[Any, ...]
    missed: int
    payload: bytes
    offset: int

    @property
    def name(self) -> str:
        """The event name (``console``), or ``""`` if its format is unknown."""
        return self.format.name if self.format else ""

    @property
    def system(self) -> str:
        """The event system (``printk``), or ``""`` if its format is unknown."""
        return self.format.system if self.format else ""

    def get(self, name: str, default: Any = None) -> Any:
        """Value of field *name*, or *default*.

        >>> from kho_replay.parsers.tracedat import open_tracedat
        >>> with open_tracedat("traces/tracedat/synthetic/v6.dat") as td:
        ...     ev = next(e for e in td.iter_events() if e.name == "console")
        >>> ev.get("msg")
        'memblock_reserve: [0x0000000001002000-0x0000000001002fff] setup_arch+0x1c2/0xd80'
        """
        if self.format is None:
            return default
        i = self.format.index.get(name)
        return default if i is None else self.values[i]


class ConsoleLine(NamedTuple):
    """One ``printk:console`` message: time in ns, CPU, pid, text (no level prefix or newline)."""

    ts: int
    cpu: int
    pid: int
    msg: str


def _type_size(ctype: str, long_size: int) -> int | None:
    t = " ".join(ctype.replace("const ", "").replace("volatile ", "").split())
    if "*" in t:
        return long_size
    if t in _TYPE_SIZES:
        return _TYPE_SIZES[t]
    if t in ("long", "unsigned long", "long int", "unsigned long int", "size_t", "ssize_t"):
        return long_size
    return None


def _parse_field(m: re.Match[bytes], long_size: int) -> Field:
    decl = m.group("decl").decode("utf-8", "replace").strip()
    offset, size = int(m.group("offset")), int(m.group("size"))
    signed = m.group("signed") == b"1"
    kind = FieldKind.SCALAR
    for prefix, k in (("__data_loc ", FieldKind.DATA_LOC), ("__rel_loc ", FieldKind.REL_LOC)):
        if decl.startswith(prefix):
            decl, kind = decl[len(prefix):], k
    d = _DECL.match(decl)
    if d is None:
        name, ctype, dims = decl, "", ""
    else:
        name, ctype, dims = d.group("name"), d.group("type"), d.group("dims")
    # __data_loc char[] name: the brackets sit on the type, before the name.
    t = re.match(r"^(.*?)((?:\[[^\]]*\])*)$", ctype)
    if t and t.group(2):
        ctype, dims = t.group(1).strip(), t.group(2) + dims
    base = " ".join(ctype.split())
    is_pointer = "*" in base
    is_string = base in _STRING_TYPES
    elem = _type_size(base, long_size)
    count = 1
    if kind in (FieldKind.DATA_LOC, FieldKind.REL_LOC):
        # char[][2] with size 8: two data_loc words (probe "string[2]").
        count = max(size // 4, 1) if size >= 4 else 1
    elif dims:
        inner = re.findall(r"\[([^\]]*)\]", dims)[0].strip()
        if size == 0:
            kind = FieldKind.FLEX
        else:
            kind = FieldKind.ARRAY
            if inner.isdigit() and int(inner) > 0:
                count = int(inner)
                elem = size // count
            else:  # [] with a size, or a macro: derive the count from the element type
                elem = elem or 1
                count = max(size // elem, 1)
    return Field(name, base, offset, size, signed, kind, elem or 1, is_string, count, is_pointer)


def parse_format(text: bytes, system: str, long_size: int) -> EventFormat:
    """Parse one format file.

    Models libtraceevent's ``tep_parse_format()`` for the parts replay needs.
    Never raises: a format without a name or ID yields ``name == ""`` / ``id == -1``,
    and lines that are not ``field:`` lines are ignored.

    >>> fmt = parse_format(b"name: console\\nID: 7\\nformat:\\n\\tfield:__data_loc char[] msg;\\toffset:8;"
    ...                    b"\\tsize:4;\\tsigned:0;\\n", "printk", 8)
    >>> fmt.id, fmt.fields[0].name, fmt.fields[0].kind, fmt.fields[0].is_string
    (7, 'msg', <FieldKind.DATA_LOC: 'data_loc'>, True)
    """
    name_m = _NAME.search(text)
    id_m = _ID.search(text)
    fields = []
    n_common = 0
    for m in _FIELD.finditer(text):
        f = _parse_field(m, long_size)
        fields.append(f)
        if f.name.startswith("common_"):
            n_common += 1
    pm = _PRINT_FMT.search(text)
    return EventFormat(
        system=system,
        name=name_m.group(1).decode("utf-8", "replace") if name_m else "",
        id=int(id_m.group(1)) if id_m else -1,
        fields=tuple(fields),
        print_fmt=pm.group(1).decode("utf-8", "surrogateescape") if pm else "",
        n_common=n_common,
        index={f.name: i for i, f in enumerate(fields)},
    )


_INT_CODES = {(1, False): "B", (1, True): "b", (2, False): "H", (2, True): "h",
              (4, False): "I", (4, True): "i", (8, False): "Q", (8, True): "q"}


def _cstring(b: bytes) -> str:
    n = b.find(b"\0")
    return (b if n < 0 else b[:n]).decode("utf-8", "surrogateescape")


class EventDecoder:
    """Decodes :class:`~.reader.Record` payloads of one file into :class:`Event`.

    >>> from kho_replay.parsers.tracedat import open_tracedat
    >>> with open_tracedat("traces/tracedat/synthetic/v7le32.dat") as td:
    ...     dec = EventDecoder(td)
    ...     sorted({e.name for e in map(dec.decode, td.iter_records())})[:3]
    ['bprint', 'console', 'function']
    """

    def __init__(self, td: TraceDat) -> None:
        self.td = td
        self.long_size = td.header_page.long_size
        self.endian = ">" if td.big_endian else "<"
        self._texts: dict[int, tuple[str, bytes]] | None = None
        #: event ID -> decoder, built on first sight (read by TraceDat.iter_events()).
        self.decoders: dict[int, Callable[[Record], Event]] = {}
        self._formats: dict[int, EventFormat] = {}
        #: ID -> number of records whose ID has no format in the file.
        self.unknown: dict[int, int] = {}
        self._type_struct = struct.Struct(self.endian + "H")

    def _index(self) -> dict[int, tuple[str, bytes]]:
        if self._texts is None:
            texts: dict[int, tuple[str, bytes]] = {}
            for text in self.td.ftrace_formats:
                m = _ID.search(text)
                if m:
                    texts[int(m.group(1))] = ("ftrace", text)
            for system, blobs in self.td.event_formats:
                for text in blobs:
                    m = _ID.search(text)
                    if m:
                        texts[int(m.group(1))] = (system, text)
            self._texts = texts
        return self._texts

    def format(self, event_id: int) -> EventFormat | None:
        """The format of *event_id*, parsed on first request; None if the file has none."""
        fmt = self._formats.get(event_id)
        if fmt is None:
            entry = self._index().get(event_id)
            if entry is None:
                return None
            fmt = parse_format(entry[1], entry[0], self.long_size)
            self._formats[event_id] = fmt
        return fmt

    def ids_with(self, needle: bytes) -> list[int]:
        """IDs whose format text contains *needle* (e.g. ``b"__probe_ip;"``), found without parsing every format."""
        return [eid for eid, (_, text) in self._index().items() if needle in text]

    def find(self, system: str | None, name: str) -> EventFormat | None:
        """The format named *name* (in *system*, if given); event IDs are per boot (given at registration)."""
        for eid, (sys_, text) in self._index().items():
            m = _NAME.search(text)
            if m and m.group(1).decode("utf-8", "replace") == name and system in (None, sys_):
                return self.format(eid)
        return None

    def formats(self) -> Iterator[EventFormat]:
        """Every format in the file (parses them all)."""
        for eid in sorted(self._index()):
            fmt = self.format(eid)
            if fmt is not None:
                yield fmt

    def decode(self, rec: Record) -> Event:
        """Decode one record; dispatch by ``common_type``."""
        payload = rec.payload
        if len(payload) < 2:
            raise FormatError(self.td.path, f"CPU {rec.cpu} record of {len(payload)} bytes has no "
                                            "common_type", offset=rec.offset)
        eid = self._type_struct.unpack_from(payload)[0]
        dec = self.decoders.get(eid)
        if dec is None:
            dec = self.decoders[eid] = self._build(eid)
        return dec(rec)

    def _build(self, eid: int) -> Callable[[Record], Event]:
        fmt = self.format(eid)
        if fmt is None:
            unknown = self.unknown

            def decode_unknown(rec: Record) -> Event:
                unknown[eid] = unknown.get(eid, 0) + 1
                pid = int.from_bytes(rec.payload[4:8], "big" if self.endian == ">" else "little", signed=True)
                return Event(rec.ts, rec.cpu, pid, None, (), rec.missed, rec.payload, rec.offset)

            return decode_unknown
        return self._build_known(fmt)

    def scalar_struct(self, fmt: EventFormat) -> struct.Struct | None:
        """The Struct that unpacks every field of *fmt* in format order, when all are plain
        integers of 1, 2, 4 or 8 bytes (kprobe fetch args, function hits); else None.

        Events of such a format can be decoded many at a time (``iter_unpack``).
        """
        st, in_struct = self._layout(fmt)
        n = len(fmt.fields)
        if in_struct == list(range(n)) and all(f.kind is FieldKind.SCALAR for f in fmt.fields):
            return st
        return None

    def _layout(self, fmt: EventFormat) -> tuple[struct.Struct, list[int]]:
        """One Struct for every scalar of size 1/2/4/8 (and the data_loc words); the fields it holds."""
        codes = []
        cursor = 0
        in_struct: list[int] = []
        for i, f in sorted(enumerate(fmt.fields), key=lambda x: x[1].offset):
            if f.kind is FieldKind.SCALAR:
                code = _INT_CODES.get((f.size, f.signed))
            elif f.kind in (FieldKind.DATA_LOC, FieldKind.REL_LOC) and f.size in (2, 4):
                code = "H" if f.size == 2 else "I"
            else:
                code = None
            if code is None or f.offset < cursor:
                continue
            if f.offset > cursor:
                codes.append(f"{f.offset - cursor}x")
            codes.append(code)
            cursor = f.offset + f.size
            in_struct.append(i)
        return struct.Struct(self.endian + "".join(codes)), in_struct

    def _build_known(self, fmt: EventFormat) -> Callable[[Record], Event]:
        # Fast path: every scalar of size 1/2/4/8 (and the data_loc words) in one Struct.
        st, in_struct = self._layout(fmt)
        fixed_len = st.size
        unpack = st.unpack_from
        n = len(fmt.fields)
        pid_i = fmt.index.get("common_pid")
        path = self.td.path
        simple = self.scalar_struct(fmt) is not None
        new_event = tuple.__new__
        if simple:
            # Every field came out of the Struct already, in format order.
            def decode_simple(rec: Record) -> Event:
                payload = rec.payload
                if len(payload) < fixed_len:
                    raise FormatError(path, f"{fmt.name} record of {len(payload)} bytes, format needs "
                                            f"{fixed_len}", offset=rec.offset)
                vals = unpack(payload)
                ts, cpu, _, missed, offset = rec
                return new_event(Event, (ts, cpu, vals[pid_i] if pid_i is not None else 0, fmt, vals,
                                         missed, payload, offset))

            return decode_simple
        in_order = in_struct == list(range(n))
        locs = [(i, f) for i, f in enumerate(fmt.fields) if f.kind is not FieldKind.SCALAR]
        if in_order and all(f.size == 4 and f.is_string for _, f in locs):
            return self._build_strings(fmt, unpack, fixed_len, pid_i, locs)
        slow = [i for i in range(n) if i not in set(in_struct)]
        post = [(i, fmt.fields[i]) for i in in_struct if fmt.fields[i].kind is not FieldKind.SCALAR]
        extra = [(i, fmt.fields[i]) for i in slow]
        decode_field = self._decode_field

        def decode_general(rec: Record) -> Event:
            payload = rec.payload
            if len(payload) < fixed_len:
                raise FormatError(path, f"{fmt.name} record of {len(payload)} bytes, format needs "
                                        f"{fixed_len}", offset=rec.offset)
            vals: list[Any] = [None] * n
            for i, v in zip(in_struct, unpack(payload), strict=True):
                vals[i] = v
            for i, f in post:
                vals[i] = self._dynamic(f, payload, vals[i])
            for i, f in extra:
                vals[i] = decode_field(f, payload)
            return Event(rec.ts, rec.cpu, vals[pid_i] if pid_i is not None else 0, fmt, tuple(vals),
                         rec.missed, payload, rec.offset)

        return decode_general

    def _build_strings(self, fmt: EventFormat, unpack: Callable[[bytes], tuple[Any, ...]], fixed_len: int,
                       pid_i: int | None, locs: list[tuple[int, Field]]) -> Callable[[Record], Event]:
        """Decoder for the common shape "scalars plus ``__data_loc char[]`` strings" (console, probes)."""
        path = self.td.path
        # (value index, extra offset): __rel_loc counts from the end of its own field.
        slots = [(i, f.offset + f.size if f.kind is FieldKind.REL_LOC else 0) for i, f in locs]
        new_event = tuple.__new__

        def decode_strings(rec: Record) -> Event:
            payload = rec.payload
            size = len(payload)
            if size < fixed_len:
                raise FormatError(path, f"{fmt.name} record of {size} bytes, format needs {fixed_len}",
                                  offset=rec.offset)
            vals = list(unpack(payload))
            for i, rel in slots:
                w = vals[i]
                off = (w & 0xFFFF) + rel
                end = off + (w >> 16)
                if end > size:
                    vals[i] = ""  # libtraceevent prints nothing for a location outside the record
                    continue
                nul = payload.find(0, off, end)
                vals[i] = payload[off:end if nul < 0 else nul].decode("utf-8", "surrogateescape")
            ts, cpu, _, missed, offset = rec
            return new_event(Event, (ts, cpu, vals[pid_i] if pid_i is not None else 0, fmt, tuple(vals),
                                     missed, payload, offset))

        return decode_strings

    def _ints(self, raw: bytes, elem: int, signed: bool) -> tuple[int, ...]:
        code = _INT_CODES.get((elem, signed))
        if code is None:
            return tuple(raw)
        k = len(raw) // elem
        return struct.unpack_from(f"{self.endian}{k}{code}", raw) if k else ()

    def _dynamic(self, f: Field, payload: bytes, word: int) -> Any:
        """Resolve a ``__data_loc``/``__rel_loc`` word (as event-parse.c does); out-of-range data reads as empty."""
        if f.size == 2:  # very old kernels: offset only, data runs to the end of the record
            off, length = word, len(payload) - word
        else:
            off, length = word & 0xFFFF, word >> 16
        if f.kind is FieldKind.REL_LOC:
            off += f.offset + f.size
        raw = b"" if off + length > len(payload) or length < 0 else payload[off:off + length]
        return _cstring(raw) if f.is_string else self._ints(raw, f.elem_size, f.signed)

    def _decode_field(self, f: Field, payload: bytes) -> Any:
        if f.kind is FieldKind.FLEX:
            raw = payload[f.offset:]
        elif f.kind in (FieldKind.DATA_LOC, FieldKind.REL_LOC):
            # Multi-slot data_loc (char[][2]): one word per slot.
            words = self._ints(payload[f.offset:f.offset + 4 * f.count], 4, False)
            single = Field(f.name, f.type, f.offset, 4, f.signed, f.kind, f.elem_size, f.is_string)
            return tuple(self._dynamic(single, payload, w) for w in words)
        else:
            raw = payload[f.offset:f.offset + f.size]
        if f.is_string:
            return _cstring(raw)
        if f.kind is FieldKind.SCALAR:
            return int.from_bytes(raw, "big" if self.endian == ">" else "little", signed=f.signed)
        return self._ints(raw, f.elem_size, f.signed)


def iter_events(td: TraceDat, instance: str = "", decoder: EventDecoder | None = None) -> Iterator[Event]:
    """Decode every record of *instance* in report order."""
    dec = decoder or EventDecoder(td)
    decode = dec.decode
    for rec in td.iter_records(instance):
        yield decode(rec)


def iter_console(td: TraceDat, instance: str = "") -> Iterator[ConsoleLine]:
    """Yield the ``printk:console`` messages of *instance* in report order.

    The fast path for memblock_dbg lines: only console records are looked at,
    and only their pid and ``msg``; field offsets come from the file's format.

    >>> from kho_replay.parsers.tracedat import open_tracedat
    >>> with open_tracedat("traces/tracedat/synthetic/v6be32.dat") as td:
    ...     line = next(iter_console(td))
    >>> line.ts, line.cpu, line.pid, line.msg[:16]
    (1000003039, 1, 42, 'memblock_reserve')
    """
    dec = td.decoder
    fmt = dec.find("printk", "console")
    if fmt is None:
        return
    type_i, pid_i, msg_i = (fmt.field_index(n) for n in ("common_type", "common_pid", "msg"))
    if type_i is None or pid_i is None or msg_i is None:
        yield from (ConsoleLine(e.ts, e.cpu, e.pid, e.get("msg", "")) for e in td.iter_events(
            instance, only=[("printk", "console")]))
        return
    ftype, fpid, fmsg = fmt.fields[type_i], fmt.fields[pid_i], fmt.fields[msg_i]
    if (ftype.offset, ftype.size, fpid.size, fmsg.size, fmsg.kind) != (0, 2, 4, 4, FieldKind.DATA_LOC):
        # An unusual layout: let the general decoder handle it.
        yield from (ConsoleLine(e.ts, e.cpu, e.pid, e.get("msg", "")) for e in td.iter_events(
            instance, only=[("printk", "console")]))
        return
    e = ">" if td.big_endian else "<"
    pid_of = struct.Struct(e + "i").unpack_from
    loc_of = struct.Struct(e + "I").unpack_from
    # The usual layout (pid at 4, msg's data_loc word right after it) is read with one unpack.
    pid_loc_of = struct.Struct(e + "iI").unpack_from if fmsg.offset == fpid.offset + 4 else None
    need = max(ftype.offset + 2, fpid.offset + 4, fmsg.offset + 4)
    eid, p_off, m_off = fmt.id, fpid.offset, fmsg.offset
    new = tuple.__new__

    def console_line(ts: int, cpu: int, page: bytes, start: int, size: int) -> ConsoleLine | None:
        # Decoded in the page, in the walk: no payload copy, no Record.
        if size < need:
            return None
        if pid_loc_of is not None:
            pid, w = pid_loc_of(page, start + p_off)
        else:
            pid, w = pid_of(page, start + p_off)[0], loc_of(page, start + m_off)[0]
        off = w & 0xFFFF
        end = off + (w >> 16)
        if end > size:
            return new(ConsoleLine, (ts, cpu, pid, ""))  # a location outside the record reads as empty
        nul = page.find(0, start + off, start + end)
        return new(ConsoleLine, (ts, cpu, pid, page[start + off:start + end if nul < 0 else nul].decode(
            "utf-8", "surrogateescape")))

    # Other events are dropped inside the page walk, before they cost a record.
    yield from td.iter_records(instance, types=frozenset((eid,)), project=console_line)
