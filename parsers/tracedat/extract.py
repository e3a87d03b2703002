# SPDX-License-Identifier: GPL-2.0-only
"""A trace.dat's memblock activity as a :class:`~kho_replay.replay.ops.Trace`.

Three kinds of events carry memblock activity (README "trace.dat" lists the conventions):

* ``printk:console`` messages (``memblock=debug`` output) are rebuilt into
  console text and read by the console parser, so a trace.dat gives the same
  ops, observations and context as the log it came from.  Positions become
  ``trace.dat@0x...`` (the record's file offset) with the event's timestamp;
* probe events (kprobe ``p:``/``r:``, fprobe ``f:``) on ``memblock_*``
  functions become ops from their fetch args, a call paired with its return
  for the result.  Conventions (README.md, "trace.dat input"): the event is
  named after the function (``memblock_alloc_try_nid``, or perf probe's
  ``<fn>__return`` / fprobe's ``<fn>__entry``/``<fn>__exit``), else the
  function is found from ``__probe_ip`` in kallsyms; fetch args use the
  kernel's parameter names (``base size align nid min_addr max_addr exact_nid
  flags``); the return probe's one fetch arg is the return value;
* ``ftrace:function`` hits on memblock functions become ``KernelMessage``
  observations (kind ``function``, ``name <- parent``), symbols from kallsyms
  or a ``vmlinux`` (KASLR offset learned from ``_stext``).

Every other event is counted in ``Trace.skipped``, one record per event type.
kho-replay's own option (``KHO_REPLAY_OPTION``, written by ``kho-replay
record``) carries the capture's lines that were not kernel messages (debugfs
sections, firmware noise) in their place between the console events.

>>> t = read_tracedat("traces/tracedat/synthetic/v6.dat")
>>> t.ops[1]
Reserve(caller='setup_arch+0x1c2/0xd80', inferred=None, base=16785408, size=4096, nid=None, flags=None)
>>> str(t.ops[1].src), t.ops[1].src.timestamp
('traces/tracedat/synthetic/v6.dat@0x00005010', 1.000003039)
>>> t.ops[2].api, hex(t.ops[2].expect)   # a kprobe paired with its kretprobe
('memblock_alloc_range_nid', '0x1018000')
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import dataclasses
import functools
import gc
import heapq
import itertools
import json
import operator
import os
import re
import struct
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from kho_replay.parsers import _Spool
from kho_replay.replay.errors import FormatError, InputError, UnsupportedError
from kho_replay.replay.flags import Flag
from kho_replay.replay.ops import (
    ALLOC_APIS,
    ALLOCATORS,
    FAILED,
    Add,
    Alloc,
    AllowResize,
    Clear,
    Context,
    Free,
    KernelMessage,
    Mark,
    Op,
    Remove,
    Reserve,
    ReserveKern,
    SetBottomUp,
    SetCurrentLimit,
    Skipped,
    Src,
    Trace,
    fast_new,
    fast_new_many,
    fast_new_rows,
    format_op,
    format_script_chunks,
)

from .events import _INT_CODES, EventFormat, FieldKind
from .reader import COMMIT_MASK, Record, TraceDat
from .structs import TraceCmdOption
from .symbols import Kallsyms

__all__ = ["KHO_REPLAY_OPTION", "PROBE_SUFFIXES", "read_tracedat", "stamp", "stream_tracedat", "vmlinux_symbols"]

#: Option id of kho-replay's own record (JSON): trace-cmd skips ids it does not know.
KHO_REPLAY_OPTION = 0x4B52
#: Event-name suffixes of probe events: perf probe's return name, fprobe's defaults, a short return name.
PROBE_SUFFIXES = ("__return", "__entry", "__exit", "__ret")
#: Fetch-arg aliases accepted for the kernel's parameter names.
_ALIASES = {"start": "min_addr", "min": "min_addr", "end": "max_addr", "max": "max_addr", "exact": "exact_nid",
            "addr": "base", "phys": "base", "enable": "enable", "limit": "limit", "nid": "nid"}
#: Functions whose probe becomes Mark/Clear: memblock_<mark|clear>_<name> -> flag.
_MARK_FLAGS = {"hotplug": Flag.MEMBLOCK_HOTPLUG, "mirror": Flag.MEMBLOCK_MIRROR, "nomap": Flag.MEMBLOCK_NOMAP,
               "kho_scratch": Flag.MEMBLOCK_KHO_SCRATCH}
#: Allocation APIs that return ``void *``: their result is virtual, so not a recorded address.
_VIRT_APIS = frozenset(name for name, api in ALLOCATORS.items() if not api.phys)

_T = TypeVar("_T")


def _expect(value: int | None, virt: bool) -> int | str | None:
    """What an allocation's return *value* says of its result: None when there is none or it is a virtual
    address (*virt*: the physical one is not in the trace), FAILED for 0, else the address."""
    if value is None or (virt and value):
        return None
    return value if value else FAILED


#: _expect() by a C-level lookup: ``get(v)`` for a virtual result, ``get(v, v)`` for a physical one.
_FAILED_AT_0: dict[int | None, str] = {0: FAILED}


def _expects(values: Iterable[int | None], virt: bool) -> Iterator[int | str | None]:
    """_expect() of each of *values*, with no Python call per value."""
    if virt:
        return map(_FAILED_AT_0.get, values)
    got = list(values)
    return map(_FAILED_AT_0.get, got, got)
#: Lines the console parser reads as memblock output (its MEMBLOCKISH), after an optional stamp.
_MEMBLOCKISH_TEXT = re.compile(r"^(?:\[[^\]\n]*\] )?\s*(?:__)?(?:memblock_\w+:|memblock: |MEMBLOCK |"
                               r"(?:memory|reserved|physmem)[.\[])", re.M)
_VERSION_TEXT = re.compile(r"^(?:\[[^\]\n]*\] )?Linux version ", re.M)
#: Common fields and the probe's own fields are not fetch args.
_PROBE_FIELDS = frozenset({"__probe_ip", "__probe_func", "__probe_ret_ip"})


def stamp(ns: int) -> str:
    """A dmesg timestamp for *ns*: six decimals, nine when the time is finer than a microsecond.

    >>> stamp(1_500_000_000), stamp(12)
    ('[    1.500000]', '[    0.000000012]')
    """
    sec, frac = divmod(ns, 1_000_000_000)
    if frac % 1000:
        return f"[{sec:5d}.{frac:09d}]"
    return f"[{sec:5d}.{frac // 1000:06d}]"


def vmlinux_symbols(path: str | os.PathLike[str]) -> Kallsyms:
    """Function and object symbols of an ELF ``vmlinux`` as a :class:`Kallsyms` table (link-time addresses).

    :raises FormatError: the file is not an ELF with a symbol table.
    """
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    p = os.fspath(path)
    try:
        with open(p, "rb") as f:
            elf = ELFFile(f)
            symtab = elf.get_section_by_name(".symtab")
            if symtab is None:
                raise FormatError(p, "no .symtab section (a stripped vmlinux names nothing)")
            lines = []
            for sym in symtab.iter_symbols():
                kind = sym["st_info"]["type"]
                if sym.name and kind in ("STT_FUNC", "STT_OBJECT", "STT_NOTYPE") and sym["st_value"]:
                    letter = "T" if kind == "STT_FUNC" else "D"
                    lines.append(f"{sym['st_value']:016x} {letter} {sym.name}\n")
    except FileNotFoundError:
        raise InputError(p, "no such file") from None
    except (ELFError, OSError, struct.error) as e:
        raise FormatError(p, f"not a readable ELF file ({e})") from None
    return Kallsyms("".join(lines).encode())


class _Symbols:
    """Names for kernel addresses: the vmlinux's symbols shifted by the KASLR offset, else kallsyms."""

    def __init__(self, kallsyms: Kallsyms, vmlinux: Kallsyms | None) -> None:
        self.table = kallsyms
        self.offset = 0
        if vmlinux is not None and len(vmlinux):
            self.table = vmlinux
            run = next((s.addr for s in kallsyms.symbols if s.name == "_stext" and s.addr), None)
            link = next((s.addr for s in vmlinux.symbols if s.name == "_stext"), None)
            if run is not None and link is not None:
                self.offset = run - link  # KASLR: kallsyms shows where _stext ran, the ELF where it was linked

    def name(self, addr: int) -> str | None:
        hit = self.table.lookup(addr - self.offset)
        return None if hit is None else hit[0].name

    def caller(self, addr: int) -> str:
        hit = self.table.lookup(addr - self.offset)
        if hit is None:
            return f"0x{addr:x}"
        sym, off = hit
        i = bisect.bisect_right(self.table._addrs, sym.addr)
        size = (self.table._addrs[i] - sym.addr) if i < len(self.table._addrs) else 0
        return f"{sym.name}+0x{off:x}/0x{size:x}" if size else f"{sym.name}+0x{off:x}"


class _HitCount:
    """A CPU's memblock function hits for the op script alone (a lazy read): counted and their times checked
    to ascend, none kept.  Takes what the walk does to its list of hits: append, ``+=``, len() as a mark
    and ``del hits[mark:]`` back to it (a page given up to the general walk)."""

    __slots__ = ("_mark", "ascending", "last", "n")

    def __init__(self) -> None:
        self.n, self.last, self.ascending = 0, -(1 << 64), True
        self._mark = (0, self.last, True)

    def append(self, hit: tuple[int, int, str, int]) -> None:
        self.n += 1
        if hit[0] < self.last:
            self.ascending = False
        self.last = hit[0]

    def __iadd__(self, hits: Iterable[tuple[int, int, str, int]]) -> _HitCount:
        for hit in hits:
            self.append(hit)
        return self

    def __len__(self) -> int:
        self._mark = (self.n, self.last, self.ascending)
        return self.n

    def __delitem__(self, cut: slice) -> None:
        if cut.start != self._mark[0] or cut.stop is not None:
            raise IndexError("only back to the last mark")
        self.n, self.last, self.ascending = self._mark


def _function_of(fmt: EventFormat) -> str:
    name = fmt.name
    for suffix in PROBE_SUFFIXES:
        name = name.removesuffix(suffix)
    return name


def _s32(value: int) -> int:
    """A fetched int as the kernel's ``int`` (``%r8`` reads 64 bits; nid -1 reads 0xffff...)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


class _Probe:
    """How to read one probe event: its function, whether it is a return, its fetch args."""

    def __init__(self, fmt: EventFormat, symbols: Callable[[], _Symbols]) -> None:
        self.fmt = fmt
        names = {f.name for f in fmt.fields}
        self.is_return = "__probe_func" in names
        self.ip_index = fmt.field_index("__probe_func" if self.is_return else "__probe_ip")
        self.function = _function_of(fmt)
        self.symbols = symbols
        self.args = {_ALIASES.get(f.name, f.name): i for i, f in enumerate(fmt.fields)
                     if i >= fmt.n_common and f.name not in _PROBE_FIELDS}
        self.arg_items = tuple(self.args.items())
        #: named after a memblock function: no symbol lookup or name check per event
        self.named = _is_memblock(self.function)
        #: the fetch arg holding a return probe's value
        self.ret_index = next(iter(self.args.values()), None)
        self._builders: dict[str, Callable[..., Op] | str | None] = {}
        self._lean: dict[str, tuple[Any, ...]] = {}

    def builder(self, fn: str) -> Callable[..., Op] | str | None:
        """How to build the op for a hit on *fn*: a function, the name of a missing fetch arg, or None."""
        got = self._builders.get(fn, ...)
        if got is ...:
            try:
                got = _op_builder(fn, self.args)
            except KeyError as e:
                got = str(e.args[0])
            self._builders[fn] = got
        return got

    def lean(self, st: struct.Struct) -> tuple[struct.Struct, Callable[..., Op] | None, Callable[..., list[Op]] | None,
                                               int | None]:
        """For the bulk paths: a Struct of *st*'s size that unpacks the fetch args alone (no common field, no
        probe address: fewer int objects per record), the one-by-one and column builders of this function's
        op over its tuples, and where a return's value lands in them; *st* itself and the full builders when
        a fetch arg is not a plain integer.  The ops are those of the full tuples."""
        got = self._lean.get(st.format)
        if got is not None:
            return got
        fields = sorted(self.args.items(), key=lambda kv: self.fmt.fields[kv[1]].offset)
        codes, cursor, at = [], 0, {}
        for k, (name, i) in enumerate(fields):
            f = self.fmt.fields[i]
            code = _INT_CODES.get((f.size, f.signed)) if f.kind is FieldKind.SCALAR else None
            if code is None or f.offset < cursor:
                at = None
                break
            codes.append(f"{f.offset - cursor}x{code}" if f.offset > cursor else code)
            cursor = f.offset + f.size
            at[name] = k
        if at is None or cursor > st.size:
            one, lean, at = self.builder(self.function), st, self.args
        else:
            lean = struct.Struct(st.format[0] + "".join(codes) + (f"{st.size - cursor}x" if st.size > cursor else ""))
            try:
                one = _op_builder(self.function, at)
            except KeyError:
                one = None
        ret = None if self.ret_index is None else at[next(iter(self.args))]
        many = None
        if callable(one):
            # the rows' loop where each fetch arg is a plain int (a lean Struct), else the columns
            many = _op_rows(self.function, at, len(fields), self._narrow()) if lean is not st else None
            many = many or _op_columns(self.function, at)
        got = self._lean[st.format] = (lean, one if callable(one) else None, many, ret)
        return got

    def _narrow(self) -> frozenset[str]:
        """The fetch args whose values are already C ``int``s (no _s32() needed): signed and at most 4
        bytes, or at most 2."""
        fields = self.fmt.fields
        return frozenset(name for name, i in self.args.items()
                         if fields[i].size <= 2 or (fields[i].size <= 4 and fields[i].signed))

    def function_at(self, values: tuple[Any, ...]) -> str:
        if self.named or self.ip_index is None:
            return self.function
        return self.symbols().name(values[self.ip_index]) or self.function


def _is_memblock(fn: str) -> bool:
    return fn.startswith(("memblock_", "__memblock_"))


class _Heavy(Exception):
    """A light walk's file that the bulk probe path does not take: read it again keeping the payloads."""


class _Extractor:
    def __init__(self, td: TraceDat, path: str, strict: bool, vmlinux: Kallsyms | None, lazy: bool = False,
                 light: bool = False) -> None:
        self.td = td
        self.path = path
        self.strict = strict
        self.vmlinux = vmlinux
        #: for the op script alone (:func:`stream_tracedat`): the ops made as they are read, without a
        #: position; no observation made (function hits are only counted)
        self.lazy = lazy
        #: (lazy only) keep no probe payload: the walk keeps each probe record's event id and task, enough
        #: for the bulk path's checks, and the ops are made by a second walk (:meth:`_light_stream`); raises
        #: :class:`_Heavy` when the bulk path does not take the file
        self.light = lazy and light
        #: (light) each probe record's event as a byte, CPU after CPU: the k-th of light_ids is byte k + 1
        self.light_codes = bytearray()
        self.light_ids: list[int] = []
        #: (light) the bulk path's task checks, made as the walk goes (_light_tasks()): whether each return's
        #: task is its call's, and per CPU the tasks of its probe records; the tasks of paired calls
        self.light_ok = True
        self.light_cpu_tasks: list[set[int]] = []
        self.light_pairing: set[int] = set()
        #: (light) each paired function's call and return events (_light_functions())
        self._paired_functions: dict[str, tuple[list[int], list[int]]] | None = None
        #: the ops of the bulk probe path, a window at a time (lazy only), and how many it holds
        self.probe_stream: Iterator[tuple[list[Op], array[int]]] | None = None
        self.n_lazy = 0
        self._symbols: _Symbols | None = None
        # console text rebuilt, in joined chunks; per line, the index of its record in offs and tss (file offset
        # and timestamp of each console record, CPU after CPU), -1 for a line that is no event
        self.parts: Iterator[str] = iter(())  # made as they are taken (_console_text())
        self.lines = array("i")  # an int array, not a list: no int object per line kept for the parse
        #: some console record's page holds "Linux version" (a banner, maybe: the text is then read whole)
        self.banner = False
        self.offs = array("q")
        self.tss = array("q")
        #: the rebuilt text's line number of lines[0] (2 when a banner from the UNAME option goes first)
        self.first_line = 1
        self.probe_ops: list[Op] = []
        self.probe_ts = array("q")  # each probe op's timestamp (ns), beside it: no tuple per op
        self.probe_obs: list[tuple[int, int, KernelMessage]] = []
        self.skipped: dict[str, list[Any]] = {}
        #: records of other event types, counted by event id in the page walk
        self.dropped: dict[int, int] = {}
        self.open_calls: dict[int, list[list[Any]]] = {}

    def symbols(self) -> _Symbols:
        if self._symbols is None:
            self._symbols = _Symbols(Kallsyms(self.td.kallsyms_text), self.vmlinux)
        return self._symbols

    # ----------------------------------------------------------------- walk

    def run(self) -> Trace:
        meta = self._meta()
        self.walk(meta)
        return self._trace(meta)

    def walk(self, meta: dict[str, Any]) -> None:
        """One pass over the records: console text rebuilt, probe ops and function hits collected (see _walk)."""
        # The walk makes hundreds of thousands of objects that all live on (ops, messages) and form no
        # cycles: the cyclic collector would only traverse them again and again as they pile up.
        enabled = gc.isenabled()
        gc.disable()
        try:
            self._walk(meta)
        finally:
            if enabled:
                gc.enable()

    def _walk(self, meta: dict[str, Any]) -> None:
        """One pass over the records: console text rebuilt, probe ops and function hits collected.

        Each CPU's pages are walked in turn and its records sorted into three
        kinds as they are met: console messages go into one byte buffer with
        int arrays beside it, memblock function hits into a short list, probe
        records (and anything unusual) are kept for the handlers.  The CPUs are
        then merged by ``(timestamp, cpu)`` per kind, as ``trace-cmd report``
        merges them, with one sort instead of a heap step per record.
        """
        td = self.td
        side = meta.get("text", [])
        dec = td.decoder
        console = dec.find("printk", "console")
        # Probe formats are found by their own fields; a file may hold thousands of formats, parsed lazily.
        probe_ids = {*dec.ids_with(b" __probe_ip;"), *dec.ids_with(b" __probe_func;")}
        returns = {_function_of(f) for f in map(dec.format, probe_ids) if f is not None and "__probe_func" in f.index}
        e = ">" if td.big_endian else "<"
        type_of = struct.Struct(e + "H").unpack_from
        loc_of = struct.Struct(e + "I").unpack_from
        cid = console.id if console is not None else None
        msg_field = console.fields[console.index["msg"]] if console is not None and "msg" in console.index else None
        # The usual layout (data_loc msg) is read in place; anything else goes through the general decoder.
        fast = msg_field is not None and msg_field.kind is FieldKind.DATA_LOC and msg_field.size == 4
        m_off = msg_field.offset if msg_field is not None else 0
        decode = dec.decode
        # Only events that can carry memblock activity are looked at; the others are counted by type.
        function = dec.find("ftrace", "function")
        wanted = probe_ids | {f.id for f in (console, function) if f is not None}
        fid, ip_of, parent_of, ip_at, parent_at, need = None, None, None, 0, 0, 0
        if function is not None and {"ip", "parent_ip"} <= function.index.keys():
            ip_f, parent_f = function.fields[function.index["ip"]], function.fields[function.index["parent_ip"]]
            fid = function.id
            ip_of = struct.Struct(e + ("Q" if ip_f.size == 8 else "I")).unpack_from
            parent_of = struct.Struct(e + ("Q" if parent_f.size == 8 else "I")).unpack_from
            ip_at, parent_at = ip_f.offset, parent_f.offset
            need = max(ip_f.offset + ip_f.size, parent_f.offset + parent_f.size)
        names: dict[int, str | None] = {}
        buf = td.buffer("")
        cpus = sorted(buf.cpus, key=lambda c: c.cpu)
        compressed = buf.compressed
        # Positions in 4 bytes when the file is smaller than 4 GiB (the usual): held for every console record.
        c_tss, c_offs = array("q"), array("I" if td._src.size < 1 << 32 else "q")
        c_bounds = [0]  # where each CPU's console lines start in the arrays
        hits: list[list[tuple[int, int, str, int]]] = []  # memblock function hits per CPU
        outside: list[tuple[int, int, int] | None] = []  # per CPU: first non-memblock function hit, and count
        n_outside = 0
        # Probe events (and anything unusual): one sequence, CPU after CPU, of time, file position, event id
        # and index: into that id's payloads, kept back to back (one Struct decodes them) when the format
        # is plain integers, else into ``rest`` (records for the handlers).
        p_ts, p_pos, p_eid = array("q"), array("q"), array("q")
        p_bounds = [0]
        bulk: dict[int, list[Any]] = {}  # event id -> [Struct, payloads, size]
        for eid in sorted(probe_ids):
            fmt = dec.format(eid)
            st = dec.scalar_struct(fmt) if fmt is not None else None
            if st is not None:
                bulk[eid] = [st, bytearray(), st.size]
        rest: list[Record] = []
        dropped = self.dropped
        in_order = True
        new_record = tuple.__new__
        # Where each console message sits in its page, CPU after CPU: its data_loc bytes' start and end, the end
        # before the last byte when that is a NUL (cut at any other NUL when written out: _stamped()); 0 and 0
        # when they overrun the record.  The pages are read again as the text is made (_Messages): no message is
        # held for the whole file.  c_side: a message decoded here (not data_loc), by record index.  c_pages: per
        # CPU, the index of each page's first console record.
        c_starts, c_ends = (array("H"), array("H")) if buf.page_size <= 0xFFFF else (array("I"), array("I"))
        c_side: dict[int, bytes] = {}
        c_pages: list[array[int]] = []
        native = td.big_endian == (sys.byteorder == "big")
        # The data_loc word of msg read as the record's n-th 32-bit word when it sits on the word grid (it does).
        m_word = m_off >> 2 if fast and m_off % 4 == 0 else None
        # Wanted records that are neither console nor whole function hits: probes, kept in ring-buffer order.
        ordered = wanted - {cid, fid}
        cpu_id = -1
        c_hits: list[tuple[int, int, str, int]] = []
        first_out: tuple[int, int] | None = None
        banner = False  # some page with console records holds "Linux version"

        def memblock_name(ip: int) -> str | None:
            """The memblock function holding *ip*, None for any other; remembered in ``names``."""
            name = self.symbols().name(ip)
            name = names[ip] = name if name is not None and _is_memblock(name) else None
            return name

        def one_by_one(poff: int, page: bytes, recs: list[Any]) -> None:
            """A page the bulk path does not take (a record too short, console not data_loc), record by record."""
            nonlocal n_outside, first_out
            for ts, start, length, p in recs:
                pos = poff if compressed else poff + p
                if length < 2:
                    decode(new_record(Record, (ts, cpu_id, page[start:start + length], 0, pos)))  # raises
                eid = type_of(page, start)[0]
                if eid not in wanted:
                    dropped[eid] = dropped.get(eid, 0) + 1
                    continue
                if eid == cid:
                    if fast:
                        w = loc_of(page, start + m_off)[0]
                        off = start + (w & 0xFFFF)
                        end = off + (w >> 16)
                        ok = end <= start + length
                        c_starts.append(off if ok else 0)
                        c_ends.append(end - (not page[end - 1]) if ok else 0)
                    else:
                        rec = new_record(Record, (ts, cpu_id, page[start:start + length], 0, pos))
                        c_side[len(c_tss)] = str(decode(rec).get("msg", "")).encode("utf-8", "surrogateescape")
                        c_starts.append(0)
                        c_ends.append(0)
                    c_tss.append(ts)
                    c_offs.append(pos)
                elif eid == fid and length >= need:
                    ip = ip_of(page, start + ip_at)[0]
                    name = names.get(ip, ...)
                    if name is ...:
                        name = memblock_name(ip)
                    if name is None:
                        n_outside += 1
                        if first_out is None:
                            first_out = (ts, pos)
                    else:
                        c_hits.append((ts, pos, name, parent_of(page, start + parent_at)[0]))
                else:
                    keep(ts, start, length, pos, eid, page)

        def keep(ts: int, start: int, length: int, pos: int, eid: int, page: bytes) -> None:
            b = bulk.get(eid)
            if b is not None and length >= b[0].size:
                b[1] += page[start:start + b[0].size]
            else:
                rest.append(new_record(Record, (ts, cpu_id, page[start:start + length], 0, pos)))
                eid = -1
            p_ts.append(ts)
            p_pos.append(pos)
            p_eid.append(eid)

        hp = td.header_page
        hdr = hp.data_offset
        u64 = struct.Struct(e + "Q").unpack_from
        ulong = struct.Struct(e + ("Q" if hp.long_size == 8 else "I")).unpack_from
        # The one-pass walk below reads little-endian pages through memoryviews on a little-endian host, with
        # no time correction to apply (TSC2NSEC, OFFSET) and records on the 32-bit grid; else the general walk.
        one_pass = not td.big_endian and sys.byteorder == "little" and td._ts_correction() is None and hdr % 4 == 0

        def in_place(poff: int, page: bytes, c_hits: list[tuple[int, int, str, int]]) -> bool:
            """Walk one page and sort its records in the same pass (the usual record kinds only).

            Returns False, having kept nothing, at the first thing it does not handle (an absolute time
            stamp, a record overrunning the page, a short record): the general walk then reads the page
            and names any error.
            """
            nonlocal first_out, n_outside
            n = len(page)
            words = memoryview(page)[:n & ~3].cast("I")
            halves = memoryview(page)[:n & ~1].cast("H")
            ts = u64(page, 0)[0]
            end = hdr + (ulong(page, 8)[0] & COMMIT_MASK)
            if end > n or end % 4:
                return False
            e4 = end >> 2
            i = hdr >> 2
            marks = len(c_hits), len(rest)
            b_marks = [(b, len(b[1])) for b in bulk.values()]
            # The page's int columns in lists, put in their arrays at once (_extend_q()): an array's append
            # parses its argument (PyArg_Parse), a list's does not.
            l_tss: list[int] = []
            l_offs: list[int] = []
            l_starts: list[int] = []
            l_ends: list[int] = []
            l_pts: list[int] = []
            l_ppos: list[int] = []
            l_peid: list[int] = []
            at_start, at_end, at_ts, at_off, hit = l_starts.append, l_ends.append, l_tss.append, l_offs.append, \
                c_hits.append
            add_ts, add_pos, add_eid = l_pts.append, l_ppos.append, l_peid.append
            # Locals for the loop: the console id only when its msg is read in place, the record's position.
            con, fn_id, mw, probes_ = (cid if m_word is not None else -1), fid, m_word, ordered
            step = 0 if compressed else 4
            skip: list[int] = []
            out, first = 0, None
            ok = True
            while i < e4:
                w = words[i]
                tl = w & 31
                if tl and tl < 29:
                    ts += w >> 5
                    s = i + 1
                    nxt = s + tl
                    ln = tl << 2
                elif tl == 30 and i + 2 <= e4:  # time extend
                    ts += (words[i + 1] << 27) + (w >> 5)
                    i += 2
                    continue
                elif tl == 0 and i + 2 <= e4:  # a record too long for type_len: its length in the next word
                    ln = words[i + 1] - 4
                    s = i + 2
                    nxt = s + ((ln + 3) >> 2)
                    ts += w >> 5
                    if ln < 2:
                        ok = False
                        break
                elif tl == 29 and not w >> 5:
                    break  # null padding: the rest of the page is unused
                elif tl == 29 and i + 2 <= e4 and not words[i + 1] % 4:  # a discarded record keeps its delta
                    ts += w >> 5
                    i += 1 + (words[i + 1] >> 2)
                    if i > e4:
                        ok = False
                        break
                    continue
                else:
                    ok = False
                    break
                if nxt > e4:
                    ok = False
                    break
                eid = halves[s << 1]
                if eid == con:
                    lw = words[s + mw]  # type: ignore[operator]
                    mlen = lw >> 16
                    lo = lw & 0xFFFF
                    if lo + mlen <= ln:
                        o = (s << 2) + lo
                        at_start(o)
                        at_end(o + mlen - (not page[o + mlen - 1]))
                    else:
                        at_start(0)
                        at_end(0)
                    at_ts(ts)
                    at_off(poff + step * i)
                elif eid == fn_id and ln >= need:
                    ip = ip_of(page, (s << 2) + ip_at)[0]  # type: ignore[misc]
                    name = names.get(ip, ...)
                    if name is ...:
                        name = memblock_name(ip)
                    if name is None:
                        out += 1
                        if first is None:
                            first = (ts, poff + step * i)
                    else:
                        hit((ts, poff + step * i, name,
                             parent_of(page, (s << 2) + parent_at)[0]))  # type: ignore[misc]
                elif eid in probes_:
                    b = bulk.get(eid)
                    if b is not None and ln >= b[2]:  # keep(), inlined
                        o = s << 2
                        b[1] += page[o:o + b[2]]
                        add_ts(ts)
                        add_pos(poff + step * i)
                        add_eid(eid)
                    else:  # keep(), for a record the bulk path does not take
                        o = s << 2
                        rest.append(new_record(Record, (ts, cpu_id, page[o:o + ln], 0, poff + step * i)))
                        add_ts(ts)
                        add_pos(poff + step * i)
                        add_eid(-1)
                elif eid in (cid, fid):
                    ok = False  # a console record not in data_loc form, a function record cut short
                    break
                else:
                    skip.append(eid)
                i = nxt
            if not ok:
                del c_hits[marks[0]:], rest[marks[1]:]
                for b, size in b_marks:
                    del b[1][size:]
                return False
            for arr, col in ((c_tss, l_tss), (c_offs, l_offs), (c_starts, l_starts), (c_ends, l_ends), (p_ts, l_pts),
                             (p_pos, l_ppos), (p_eid, l_peid)):
                _extend_q(arr, col)
            if out:
                n_outside += out
                if first_out is None:
                    first_out = first
            for eid in set(skip):
                dropped[eid] = dropped.get(eid, 0) + skip.count(eid)
            return True

        light = self.light
        squeezed = 0  # probe records let go by squeeze() (light)
        cpu_last = -(1 << 64)  # the last time squeeze() saw on this CPU

        # (light) per probe event: whether it is a return, whether it is a call paired with a return
        is_ret = {eid: f is not None and "__probe_func" in f.index for eid, f in zip(
            probe_ids, map(dec.format, probe_ids), strict=True)} if light else {}
        paired_call = {eid: not is_ret[eid] and f is not None and _function_of(f) in returns for eid, f in zip(
            probe_ids, map(dec.format, probe_ids), strict=True)} if light else {}
        local: dict[int, int] = {}  # event id -> its byte in light_codes
        cpu_tasks: set[int] = set()
        prev_task: list[Any] = [None]  # the task of this CPU's last probe record squeezed

        def squeeze() -> None:
            """(light) The probe records kept so far reduced to a byte each, their tasks checked (see
            _light_tasks()), the rest let go (their times checked to ascend first)."""
            nonlocal squeezed, cpu_last, in_order
            if not p_ts:
                return
            in_order = in_order and p_ts[0] >= cpu_last and _ascending(p_ts, 0)
            cpu_last = p_ts[-1]
            eids = p_eid.tolist()
            for eid in set(eids).difference(local):
                if eid < 0 or len(local) == 255:
                    self.light_ok = False  # a record for the handlers, or too many events for a byte each
                    local[eid] = 0
                else:
                    self.light_ids.append(eid)
                    local[eid] = len(local) + 1
            chunk = bytes(map(local.__getitem__, eids))
            self.light_codes += chunk
            squeezed += len(eids)
            if self.light_ok:
                self._light_tasks(chunk, local, bulk, is_ret, paired_call, cpu_tasks, prev_task)
            for b in bulk.values():
                del b[1][:]
            del p_ts[:], p_pos[:], p_eid[:]

        for c in cpus:
            walk = td.page_walker(buf, c)
            cpu_id = c.cpu
            c_hits = _HitCount() if self.lazy else []  # type: ignore[assignment]
            first_out = None
            cpu_last = -(1 << 64)
            cpu_tasks, prev_task[0] = set(), None
            c0, p0 = len(c_tss), len(p_ts)
            pages_at: list[int] = []
            for poff, page in td.iter_pages(buf, c):
                pages_at.append(len(c_tss))
                if light and len(p_ts) >= 4096:
                    squeeze()
                if not banner and cid is not None and b"Linux version" in page:
                    banner = True  # a console message may hold a banner: _console_trace() reads the text whole
                if one_pass and in_place(poff, page, c_hits):
                    continue
                _, recs = walk(poff, page)
                if not recs:
                    continue
                # Per page, each event type in bulk: its records picked out by id, their fields read by
                # list comprehensions over 16- and 32-bit views of the page, not a Python step per field.
                lmin = min(map(_LENGTH, recs))
                if lmin < 2:
                    one_by_one(poff, page, recs)
                    continue
                halves, words = _views(page, native)
                eids = [halves[r[1] >> 1] for r in recs]
                kinds = set(eids)
                if (cid in kinds and m_word is None) or (lmin < need and fid in kinds and min(
                        r[2] for r, e in zip(recs, eids, strict=True) if e == fid) < need):
                    one_by_one(poff, page, recs)
                    continue
                one = len(kinds) == 1
                for eid in kinds.difference(wanted):
                    dropped[eid] = dropped.get(eid, 0) + (len(eids) if one else eids.count(eid))
                if cid in kinds:
                    sel = recs if one else [r for r, e in zip(recs, eids, strict=True) if e == cid]
                    locs = [words[(r[1] >> 2) + m_word] for r in sel]  # type: ignore[operator]
                    ends = [s + (w & 0xFFFF) + (w >> 16) if (w & 0xFFFF) + (w >> 16) <= ln else 0
                            for (_, s, ln, _), w in zip(sel, locs, strict=True)]
                    _extend_q(c_starts, [e - (w >> 16) if e else 0 for e, w in zip(ends, locs, strict=True)])
                    _extend_q(c_ends, [e - (not page[e - 1]) if e else 0 for e in ends])
                    c_tss.extend([r[0] for r in sel])
                    c_offs.extend([poff] * len(sel) if compressed else [poff + r[3] for r in sel])
                if fid in kinds:
                    sel = recs if one else [r for r, e in zip(recs, eids, strict=True) if e == fid]
                    ips = [ip_of(page, r[1] + ip_at)[0] for r in sel]  # type: ignore[misc]
                    for ip in set(ips).difference(names):
                        memblock_name(ip)
                    nm = list(map(names.__getitem__, ips))
                    no = nm.count(None)
                    if no:
                        n_outside += no
                        if first_out is None:
                            r = sel[nm.index(None)]
                            first_out = (r[0], poff if compressed else poff + r[3])
                    if no < len(nm):
                        c_hits += [(r[0], poff if compressed else poff + r[3], n,
                                    parent_of(page, r[1] + parent_at)[0])  # type: ignore[misc]
                                   for r, n in zip(sel, nm, strict=True) if n is not None]
                if not kinds.isdisjoint(ordered):
                    sel = [(r, e) for r, e in zip(recs, eids, strict=True) if e in ordered]
                    if all(e in bulk and r[2] >= bulk[e][2] for r, e in sel):
                        # keep() for the lot: each id's payloads in one join, the record columns in one extend
                        for eid in kinds.intersection(ordered):
                            size = bulk[eid][2]
                            bulk[eid][1] += b"".join([page[r[1]:r[1] + size] for r, e in sel if e == eid])
                        p_ts.extend([r[0] for r, _ in sel])
                        p_pos.extend([poff] * len(sel) if compressed else [poff + r[3] for r, _ in sel])
                        p_eid.extend([e for _, e in sel])
                    else:
                        for (ts, s, ln, p), eid in sel:
                            keep(ts, s, ln, poff if compressed else poff + p, eid, page)
            if light:
                squeeze()
                self.light_cpu_tasks.append(cpu_tasks)
            in_order = in_order and _ascending(c_tss, c0) and _ascending(p_ts, p0) \
                and (c_hits.ascending if self.lazy else _ascending([h[0] for h in c_hits], 0))  # type: ignore[attr-defined]
            c_bounds.append(len(c_tss))
            c_pages.append(array("q", pages_at))
            hits.append(c_hits)
            outside.append(first_out)
            p_bounds.append(squeezed + len(p_ts))
        # The text is made as the console parser reads it (_console_trace()): here only what it is made of.
        self.offs, self.tss, self.banner = c_offs, c_tss, banner
        messages = _Messages(td, c_starts, c_ends, c_side, c_pages, c_bounds)
        self.parts = self._console_text(side, meta, len(c_tss), _console_windows(messages, c_tss, c_bounds, in_order))
        # Function hits: ordered as the merged stream would meet them.
        callers: dict[int, str] = {}
        # One text per (function, caller) pair, shared by its hits: a few distinct texts for thousands of hits.
        texts: dict[tuple[str, int], str] = {}
        if self.lazy:
            # The op script has no observations: the hits only say the file holds memblock activity.
            self.n_lazy += sum(map(len, hits))
            hits.clear()
        merged_hits = _merge_lists(hits, in_order)
        hits.clear()
        for i, (ts, pos, name, parent) in enumerate(merged_hits):
            merged_hits[i] = None  # each hit's tuple let go as its message is made: not both held at the end
            text = texts.get((name, parent))
            if text is None:
                caller = callers.get(parent)
                if caller is None:
                    caller = callers[parent] = self.symbols().caller(parent)
                text = texts[name, parent] = f"{name} <- {caller}"
            msg = KernelMessage(at=0, src=_new_src(self.path, pos, ts / 1e9), kind="function", text=text)
            self.probe_obs.append((ts, len(self.probe_obs), msg))
        del merged_hits
        firsts = [(o[0], ci, o[1]) for ci, o in enumerate(outside) if o is not None]
        order: dict[str, tuple[int, int, int]] = {}
        if firsts:
            key = "ftrace:function hits outside memblock_* functions"
            first = min(firsts)
            self.skipped[key] = [first[2], n_outside, ""]
            order[key] = first
        handlers: dict[int, Callable[[Any], None] | None] = {}
        # Each probe's values unpacked when its turn comes: a tuple per event for the whole file would
        # outgrow the file many times over.
        unpack = {eid: (b[0].unpack_from, b[1], b[0].size) for eid, b in bulk.items()}
        probes = {eid: _Probe(dec.format(eid), self.symbols) for eid in unpack}  # type: ignore[arg-type]
        pids = {eid: p.fmt.index.get("common_pid") for eid, p in probes.items()}
        probe = self._probe
        # The usual hit, in one step: a probe named after its function, whose task has no call open (or,
        # for a return, whose last open call is this function's); anything else goes through _probe().
        plans: dict[int, tuple[Any, ...]] = {}
        for eid, p in probes.items():
            build = p.builder(p.function) if p.named else None
            if p.named and pids[eid] is not None and (p.is_return or callable(build)):
                plans[eid] = (*unpack[eid], pids[eid], p.is_return, p.function, build, p.function in returns,
                              p.ret_index, p.function in _VIRT_APIS)
        ops, ops_add, ts_add = self.probe_ops, self.probe_ops.append, self.probe_ts.append
        open_calls, path, new_src = self.open_calls, self.path, _new_src
        # The usual file, all at once (each task's calls and returns adjacent on one CPU); else one by one.
        # A light walk takes a CPU whose time goes down too (its ops sorted as _merge() sorts them).
        self.light_in_order = in_order
        in_bulk = (in_order or light) and not rest and self._probes_in_bulk(plans, probes, bulk, p_ts, p_pos,
                                                                           p_eid,
                                                                           p_bounds)
        if light and not in_bulk:
            raise _Heavy  # the console text is made as the parser reads it: the read again makes it once
        p_idx = array("q")  # each record's place among its id's payloads (rest's for id -1), for the loop below
        if not in_bulk:
            counts: dict[int, int] = {}
            for eid in p_eid:
                n = counts.get(eid, 0)
                p_idx.append(n)
                counts[eid] = n + 1
        for g in () if in_bulk else _merged(p_ts, p_bounds, in_order):
            eid = p_eid[g]
            plan = plans.get(eid)
            if plan is not None:
                unpack_from, payloads, size, pid_i, is_return, fn, build, paired, ret_i, virt = plan
                v = unpack_from(payloads, p_idx[g] * size)
                calls = open_calls.get(v[pid_i])
                if is_return:
                    if calls and calls[-1][0] == fn:
                        _, slot, pending = calls.pop()
                        if slot is not None:  # as _close(): no result, a virtual address, a failure, an address
                            value = None if ret_i is None else v[ret_i]
                            b, values, src = pending
                            ops[slot] = b(values, src, _expect(value, virt))
                        continue
                elif not calls:
                    ts = p_ts[g]
                    src = new_src(path, p_pos[g], ts / 1e9)
                    ts_add(ts)
                    if paired:
                        # Built when its return gives an allocation's result; meanwhile it closes the nesting window.
                        if calls is None:
                            open_calls[v[pid_i]] = [[fn, len(ops), (build, v, src)]]
                        else:
                            calls.append([fn, len(ops), (build, v, src)])
                        ops_add(None)
                    else:
                        ops_add(build(v, src, None))
                    continue
            known = len(self.skipped)
            if eid >= 0:
                fn, payloads, size = unpack[eid]
                v = fn(payloads, p_idx[g] * size)
                pid_i = pids[eid]
                probe(probes[eid], v, 0 if pid_i is None else v[pid_i], p_ts[g], p_pos[g], returns)
            else:
                rec = rest[p_idx[g]]
                eid = type_of(rec[2])[0]
                handler = handlers.get(eid, ...)
                if handler is ...:
                    handler = handlers[eid] = self._handler(eid, returns)
                if handler is not None:
                    handler(rec)
            if len(self.skipped) != known:  # a new reason: remember where the merged stream met it first
                ci = bisect.bisect_right(p_bounds, g) - 1
                order[next(reversed(self.skipped))] = (p_ts[g], ci, p_pos[g])
        if len(order) > 1:
            # Reasons listed in the order the merged stream met them, as one pass over it would.
            self.skipped = dict(sorted(self.skipped.items(), key=lambda kv: order.get(kv[0], (0, 0, 0))))
        for cpu_calls in self.open_calls.values():
            for call in cpu_calls:
                self._close(call, None)

    def _probes_in_bulk(self, plans: dict[int, tuple[Any, ...]], probes: dict[int, _Probe], bulk: dict[int, list[Any]],
                        p_ts: array[int], p_pos: array[int], p_eid: array[int], p_bounds: list[int]) -> bool:
        """Every probe record at once, when the merged one-by-one walk would take its usual step for each.

        That holds when every record has a plan, each paired function has one call and one return
        event, on each CPU every paired call is followed at once by its return from the same task (the
        last one may stay open), and a task that makes paired calls is seen on one CPU only: then each
        task's records come in the same order merged or not, no call is open when another comes, and
        pairing is by position.  The ops are then built a window at a time from columns of values
        (C-level loops), and put in merged order by one stable sort of the calls by time.  Returns
        False, having changed nothing, when any condition fails (the caller walks one by one).
        """
        light = self.light
        if light:
            if not self.light_ok:
                return False
            present = {self.light_ids[k - 1] for k in set(self.light_codes)}
        else:
            present = set(p_eid)
        if not present.issubset(plans):
            return False
        # One code byte per event id: unpaired calls first, then the call and the return of each paired function.
        calls_of: dict[str, list[int]] = {}
        rets_of: dict[str, list[int]] = {}
        unpaired: list[int] = []
        for eid in sorted(present):
            plan = plans[eid]
            if plan[4]:
                rets_of.setdefault(plan[5], []).append(eid)
            elif plan[7]:
                calls_of.setdefault(plan[5], []).append(eid)
            else:
                unpaired.append(eid)
        fns = sorted(calls_of.keys() | rets_of.keys())
        if len(unpaired) + 2 * len(fns) > 255 or any(len(calls_of.get(f, ())) > 1 or len(rets_of.get(f, ())) > 1
                                                    for f in fns):
            return False
        code = {eid: k for k, eid in enumerate(unpaired, 1)}
        pairs: list[tuple[int, int | None]] = []  # (call eid, its return's eid)
        for j, f in enumerate(fns):
            ret = rets_of.get(f, [None])[0]
            for eid in calls_of.get(f, ()):
                code[eid] = len(unpaired) + 2 * j + 1
                pairs.append((eid, ret))
            if ret is not None:
                code[ret] = len(unpaired) + 2 * j + 2
        one = [re.escape(bytes([code[eid]])) for eid in unpaired]
        two = [re.escape(bytes([code[c], code[r]])) for c, r in pairs if r is not None]
        last = [re.escape(bytes([code[c]])) for c, _ in pairs]
        usual = re.compile(b"(?:" + b"|".join(one + two or [b"(?!)"]) + b")*+(?:" + b"|".join(last or [b"(?!)"]) +
                           b")?", re.S)
        # Each record's task, a column per event id (CPU after CPU, as the payloads are kept).
        tasks: dict[int, list[int]] = {}
        native = "<" if sys.byteorder == "little" else ">"
        # unpaired calls alone: no call is ever open, any task goes.  A light walk has checked the tasks.
        for eid in present if pairs and not light else ():
            st, payloads = bulk[eid][0], bulk[eid][1]
            f = self.td.decoder.format(eid).fields[plans[eid][3]]  # type: ignore[union-attr]
            if f.size not in (1, 2, 4, 8):
                return False
            letter = {1: "b", 2: "h", 4: "i", 8: "q"}[f.size]
            letter = letter if f.signed else letter.upper()
            if f.size == 4 and f.offset % 4 == 0 and st.size % 4 == 0 and st.format[0] == native:
                # The field every size/4-th word of the payloads: a strided view, no tuple per record.
                tasks[eid] = memoryview(payloads).cast(letter)[f.offset // 4::st.size // 4].tolist()
                continue
            one_field = struct.Struct(f"{st.format[0]}{f.offset}x{letter}{st.size - f.offset - f.size}x")
            tasks[eid] = list(map(operator.itemgetter(0), one_field.iter_unpack(payloads)))
        spans: list[dict[int, tuple[int, int]]] = []  # per CPU: event id -> [lo, hi) of its records
        seen: dict[int, int] = dict.fromkeys(present, 0)
        on_cpus: dict[int, set[int]] = {}
        pairing: set[int] = set()  # tasks of paired calls
        if light:
            codes = self.light_codes.translate(bytes([0, *(code[e] for e in self.light_ids)]).ljust(256, b"\0"))
        else:
            codes = bytes(map(code.__getitem__, p_eid))  # counted and picked from by C loops below

        for ci, (a, b) in enumerate(itertools.pairwise(p_bounds)):
            if usual.fullmatch(codes, a, b) is None:
                return False
            span = {}
            for eid in present:
                lo = seen[eid]
                seen[eid] = hi = lo + codes.count(code[eid], a, b)
                span[eid] = (lo, hi)
                for t in set(tasks[eid][lo:hi]) if pairs and not light else ():
                    on_cpus.setdefault(t, set()).add(ci)
            for c, r in () if light else pairs:
                clo, chi = span[c]
                pairing.update(tasks[c][clo:chi])
                if r is not None:
                    rlo, rhi = span[r]
                    if tasks[c][clo:clo + rhi - rlo] != tasks[r][rlo:rhi]:
                        return False  # a return of another task right after a call
            spans.append(span)
        if light and pairs:
            on_cpus = {t: {ci for ci, ts in enumerate(self.light_cpu_tasks) if t in ts} for t in self.light_pairing}
            pairing = self.light_pairing
        if any(len(on_cpus[t]) > 1 for t in pairing):
            return False
        del tasks, on_cpus, pairing
        if light:
            self.light_cpu_tasks.clear()
            n_calls = sum(codes.count(code[c]) for c in [*unpaired, *(c for c, _ in pairs)])
            self.n_lazy += n_calls
            if n_calls:  # else no second walk
                calls = {*unpaired, *(c for c, _ in pairs)}
                runs = None if self.light_in_order else self._light_runs(calls)
                self.probe_stream = self._light_stream(plans, probes, bulk, pairs, unpaired, runs)
            return True
        if self.lazy:
            self._stream_bulk(plans, probes, bulk, pairs, unpaired, code, codes, spans, p_ts, p_eid, p_bounds)
            return True
        # Checked.  The calls in merged order: each CPU's ascend, so one stable sort by time (CPU after CPU);
        # done before the ops exist (its key per call never adds to their peak), which then land at their
        # record's place.
        n = len(p_eid)
        call_codes = [code[c] for c in [*unpaired, *(c for c, _ in pairs)]]
        # The calls' records in merged order: picked in ascending order, so the sort by time is stable.
        order = array("q")  # an int array: no int object per call held while the ops are made
        _extend_q(order, sorted(itertools.compress(range(n), _only(codes, call_codes)), key=p_ts.__getitem__))
        path = self.path
        op_at: list[Op | None] = [None] * n
        window = 8192  # value tuples of one window at a time: the whole file's would outgrow it
        for c, r in [(eid, None) for eid in unpaired] + pairs:
            at = itertools.compress(range(n), _only(codes, [code[c]]))  # the event's records, a window at a time
            payloads, size = memoryview(bulk[c][1]), bulk[c][2]
            st, build, many, _ = probes[c].lean(bulk[c][0])
            if r is not None:
                rpay, rsize = memoryview(bulk[r][1]), bulk[r][2]
                rst, _, _, ret_i = probes[r].lean(bulk[r][0])
                virt = plans[r][9]
            for span in spans:
                clo, chi = span[c]
                for lo in range(clo, chi, window):
                    hi = min(lo + window, chi)
                    values = list(st.iter_unpack(payloads[lo * size:hi * size]))
                    expects: Iterable[Any] = itertools.repeat(None)
                    if r is not None and ret_i is not None:
                        rlo, rhi = span[r]
                        first = rlo + lo - clo
                        got = map(operator.itemgetter(ret_i),
                                  rst.iter_unpack(rpay[first * rsize:min(rhi, first + hi - lo) * rsize]))
                        expects = itertools.chain(_expects(got, virt), itertools.repeat(None))
                    where = list(itertools.islice(at, hi - lo))
                    srcs = _src_rows(zip(itertools.repeat(path), map(p_pos.__getitem__, where),
                                         map(operator.truediv, map(p_ts.__getitem__, where), itertools.repeat(1e9))))
                    ops = list(map(build, values, srcs, expects)) if many is None else many(values, srcs, expects)
                    collections.deque(map(op_at.__setitem__, where, ops), 0)
        self.probe_ops.extend(map(op_at.__getitem__, order))  # type: ignore[arg-type]
        for lo in range(0, len(order), 65536):  # a window of int objects at a time, not one per op at the peak
            _extend_q(self.probe_ts, list(map(p_ts.__getitem__, order[lo:lo + 65536])))
        return True

    def _light_tasks(self, chunk: bytes, local: dict[int, int], bulk: dict[int, list[Any]], is_ret: dict[int, bool],
                     paired_call: dict[int, bool], cpu_tasks: set[int], prev_task: list[Any]) -> None:
        """(light) :meth:`_probes_in_bulk`'s task checks for one CPU's next probe records (*chunk*, a byte each,
        their payloads in *bulk*), made now so that no task is kept: each return's task is that of the call
        it pairs with, the CPU's tasks are added to *cpu_tasks* and the paired calls' to
        :attr:`light_pairing`.  Clears :attr:`light_ok` when one fails or a task is not a plain int.

        The bulk path takes a file only when each return comes right after a call of its function, one
        call event and one return event a function (both checked later): a function's k-th return then
        pairs with its k-th call, the record before it.  So the returns' tasks are compared with the calls'
        by position, a column against a column, with no task per record; *prev_task* carries, per
        function, the tasks of its calls whose return is still to come (the pattern leaves at most one) to
        the next chunk.  A file that breaks the pattern is declined whatever this finds."""
        del chunk, local  # each event's column holds its records in order: no record's place is needed
        waiting: dict[str, list[int]] = prev_task[0] if prev_task[0] is not None else {}
        cols: dict[int, list[int]] = {}
        for eid, b in bulk.items():
            if not b[1]:
                continue
            col = self._task_column(eid, b[0], b[1])
            if col is None:
                self.light_ok = False
                return
            cols[eid] = col
            cpu_tasks.update(col)
            if paired_call[eid]:
                self.light_pairing.update(col)
        for fn, (calls, rets) in self._light_functions(is_ret, paired_call).items():
            got_c = [cols[eid] for eid in calls if eid in cols]
            got_r = [cols[eid] for eid in rets if eid in cols]
            if not got_c and not got_r:
                continue
            if len(got_c) > 1 or len(got_r) > 1:
                self.light_ok = False  # two call or return events of one function: the bulk path declines it
                return
            pending = waiting.get(fn, []) + (got_c[0] if got_c else [])
            col = got_r[0] if got_r else []
            if pending[:len(col)] != col or len(pending) > len(col) + 1:
                self.light_ok = False  # a return of another task after a call, or calls with no return between
                return
            waiting[fn] = pending[len(col):]
        prev_task[0] = waiting

    def _light_functions(self, is_ret: dict[int, bool], paired_call: dict[int, bool]) -> dict[str, tuple[list[int],
                                                                                                          list[int]]]:
        """(light) The paired functions: each one's call events and return events (as :meth:`_probes_in_bulk`
        names functions)."""
        got = self._paired_functions
        if got is None:
            got = {}
            dec = self.td.decoder
            for eid in sorted(is_ret):
                f = dec.format(eid)
                if f is not None and (is_ret[eid] or paired_call[eid]):
                    got.setdefault(_function_of(f), ([], []))[1 if is_ret[eid] else 0].append(eid)
            self._paired_functions = got
        return got

    def _task_column(self, eid: int, st: struct.Struct, payloads: bytearray) -> list[int] | None:
        """The task (``common_pid``) of each of *eid*'s *payloads* (as :meth:`_probes_in_bulk` reads it); None
        when the field is not a plain int."""
        fmt = self.td.decoder.format(eid)
        i = None if fmt is None else fmt.index.get("common_pid")
        if i is None or fmt is None:
            return None
        f = fmt.fields[i]
        if f.size not in (1, 2, 4, 8):
            return None
        letter = {1: "b", 2: "h", 4: "i", 8: "q"}[f.size]
        letter = letter if f.signed else letter.upper()
        if f.size == 4 and f.offset % 4 == 0 and st.size % 4 == 0 and st.format[0] == ("<" if sys.byteorder ==
                                                                                          "little" else ">"):
            # The field every size/4-th word of the payloads: a strided view, no tuple per record.
            return memoryview(payloads).cast(letter)[f.offset // 4::st.size // 4].tolist()
        one_field = struct.Struct(f"{st.format[0]}{f.offset}x{letter}{st.size - f.offset - f.size}x")
        return list(map(operator.itemgetter(0), one_field.iter_unpack(payloads)))

    def _probe_records(self, cpu: Any) -> Iterator[tuple[int, int, bytes, int]]:
        """(light) One CPU's probe records, ``(ts, event id, page, payload start)``, by the general page walk."""
        td = self.td
        buf = td.buffer("")
        walk = td.page_walker(buf, cpu)
        type_of = struct.Struct(">H" if td.big_endian else "<H").unpack_from
        probe = set(self.light_ids)
        for poff, page in td.iter_pages(buf, cpu):
            _, recs = walk(poff, page)
            for ts, s, _, _ in recs:
                eid = type_of(page, s)[0]
                if eid in probe:
                    yield ts, eid, page, s

    def _light_runs(self, calls: set[int]) -> tuple[list[array[int]], list[tuple[int, int, int]]]:
        """(light) For a file with a CPU whose time goes down: each call's place in the merged order of the
        probe records (as :func:`_merged` gives it, CPU by CPU), and the calls' runs of ascending time on
        each CPU ``(cpu index, first call, end)``.  The runs merged by (time, place) is the stable sort by
        time of the merged calls, which :func:`_merge` makes.  Raises :class:`_Heavy` past 64 runs (each
        is read from its CPU's start)."""
        cpus = sorted(self.td.buffer("").cpus, key=lambda c: c.cpu)

        def marks(ci: int, cpu: Any) -> Iterator[tuple[int, int, bool]]:
            for ts, eid, _, _ in self._probe_records(cpu):
                yield ts, ci, eid in calls

        places = [array("q") for _ in cpus]
        starts: list[list[int]] = [[0] for _ in cpus]
        last: list[int | None] = [None] * len(cpus)
        merged = heapq.merge(*(marks(ci, c) for ci, c in enumerate(cpus)), key=operator.itemgetter(0))
        for m, (ts, ci, call) in enumerate(merged):
            if call:
                prev = last[ci]
                if prev is not None and ts < prev:
                    starts[ci].append(len(places[ci]))
                    if sum(map(len, starts)) > 64:
                        raise _Heavy
                last[ci] = ts
                places[ci].append(m)
        runs = [(ci, lo, hi) for ci, st in enumerate(starts) for lo, hi in itertools.pairwise([*st, len(places[ci])])
                if hi > lo]
        return places, runs

    def _light_stream(self, plans: dict[int, tuple[Any, ...]], probes: dict[int, _Probe], bulk: dict[int, list[Any]],
                      pairs: list[tuple[int, int | None]], unpaired: list[int],
                      runs: tuple[list[array[int]], list[tuple[int, int, int]]] | None = None,
                      ) -> Iterator[tuple[list[Op], array[int]]]:
        """:meth:`_bulk_ops` for a light walk (checked by :meth:`_probes_in_bulk`): the probe records read
        again, each CPU's as they come, and the CPUs merged by time (a tie to the lower CPU, as the stable
        sort of :func:`_merged_chunks` puts them); the ops a window at a time with their times (ns)."""
        td = self.td
        buf = td.buffer("")
        cpus = sorted(buf.cpus, key=lambda c: c.cpu)
        ret_of = dict(pairs)
        # Per call event: unpack, column builder, one-by-one builder; and its return's event (None: no result).
        kinds: dict[int, tuple[Any, ...]] = {}
        returns: dict[int, tuple[Any, ...]] = {}  # return event -> unpack, index of the value, virtual
        for c in [*unpaired, *ret_of]:
            r = ret_of.get(c)
            if r is not None and plans[r][8] is not None:
                rst, _, _, ret_i = probes[r].lean(bulk[r][0])
                returns[r] = (rst.unpack_from, ret_i, plans[r][9])
            st, build, many, _ = probes[c].lean(bulk[c][0])
            kinds[c] = (st.unpack_from, many, build)
        window = max(128, 2048 // max(1, len(cpus)))  # calls of one CPU at a time: each CPU's window is held
        type_of = struct.Struct(">H" if td.big_endian else "<H").unpack_from

        hp = td.header_page
        hdr = hp.data_offset
        u64 = struct.Struct("<Q").unpack_from
        ulong = struct.Struct("<Q" if hp.long_size == 8 else "<I").unpack_from
        # As the first walk's in_place(): little-endian pages on a little-endian host, no time correction.
        lean = not td.big_endian and sys.byteorder == "little" and td._ts_correction() is None and hdr % 4 == 0

        def cpu_ops(cpu: Any) -> Iterator[tuple[list[Op], list[int]]]:
            """One CPU's probe ops in its ring-buffer order, a window at a time, with their times."""
            walk = td.page_walker(buf, cpu)
            c_eid: list[int] = []
            c_ts: list[int] = []
            c_vals: list[tuple[Any, ...]] = []
            c_exp: list[Any] = []
            add_eid, add_ts, add_val, add_exp = c_eid.append, c_ts.append, c_vals.append, c_exp.append
            for poff, page in td.iter_pages(buf, cpu):
                n = len(page)
                end = hdr + (ulong(page, 8)[0] & COMMIT_MASK) if lean else 1
                if lean and end <= n and not end % 4:
                    # The records' headers read in place (the first walk took this file whole, so each is
                    # well formed); a page with an absolute time stamp goes to the general walk.
                    words = memoryview(page)[:n & ~3].cast("I")
                    halves = memoryview(page)[:n & ~1].cast("H")
                    ts = u64(page, 0)[0]
                    i, e4 = hdr >> 2, end >> 2
                    mark = len(c_eid)
                    while i < e4:
                        w = words[i]
                        tl = w & 31
                        if tl and tl < 29:
                            ts += w >> 5
                            s = i + 1
                            i = s + tl
                        elif tl == 30:  # time extend
                            ts += (words[i + 1] << 27) + (w >> 5)
                            i += 2
                            continue
                        elif tl == 0:  # the length in the next word
                            ts += w >> 5
                            s = i + 2
                            i = s + ((words[i + 1] - 1) >> 2)
                        elif tl == 29 and not w >> 5:
                            break  # null padding
                        elif tl == 29:  # a discarded record keeps its delta
                            ts += w >> 5
                            i += 1 + (words[i + 1] >> 2)
                            continue
                        else:
                            del c_eid[mark:], c_ts[mark:], c_vals[mark:], c_exp[mark:]
                            break
                        eid = halves[s << 1]
                        k = kinds.get(eid)
                        if k is not None:
                            add_eid(eid)
                            add_ts(ts)
                            add_val(k[0](page, s << 2))
                            add_exp(None)  # no return (yet): no result
                            continue
                        r = returns.get(eid)
                        if r is not None:  # the return of the call just before (checked)
                            v = r[0](page, s << 2)[r[1]]
                            c_exp[-1] = (None if r[2] else v) if v else FAILED  # _expect(), inlined
                    else:
                        i = -1  # the page read whole
                    if i < 0 or tl == 29:
                        if len(c_eid) >= window:
                            # a call's return may come on the next page: the last call waits for it
                            yield build(c_eid[:-1], c_vals[:-1], c_exp[:-1]), c_ts[:-1]
                            del c_eid[:-1], c_ts[:-1], c_vals[:-1], c_exp[:-1]
                        continue
                _, recs = walk(poff, page)
                for ts, s, _, _ in recs:
                    eid = type_of(page, s)[0]
                    k = kinds.get(eid)
                    if k is not None:
                        add_eid(eid)
                        add_ts(ts)
                        add_val(k[0](page, s))
                        add_exp(None)
                        continue
                    r = returns.get(eid)
                    if r is not None:
                        c_exp[-1] = _expect(r[0](page, s)[r[1]], r[2])
                if len(c_eid) >= window:
                    yield build(c_eid[:-1], c_vals[:-1], c_exp[:-1]), c_ts[:-1]
                    del c_eid[:-1], c_ts[:-1], c_vals[:-1], c_exp[:-1]
            if c_eid:
                yield build(c_eid, c_vals, c_exp), c_ts

        def build(eids: list[int], values: list[tuple[Any, ...]], expects: list[Any]) -> list[Op]:
            """The ops of a window of calls, each event's at once (as _bulk_ops() builds them)."""
            present = set(eids)
            if len(present) == 1:
                _, many, one = kinds[eids[0]]
                return list(map(one, values, itertools.repeat(None), expects)) if many is None else \
                    many(values, itertools.repeat(None), expects)  # type: ignore[arg-type]
            out: list[Any] = [None] * len(eids)
            for eid in present:
                _, many, one = kinds[eid]
                mask = list(map(operator.eq, eids, itertools.repeat(eid)))  # C-level picks: no Python step each
                sel = list(itertools.compress(range(len(eids)), mask))
                vals = list(itertools.compress(values, mask))
                exps = list(itertools.compress(expects, mask))
                ops = list(map(one, vals, itertools.repeat(None), exps)) if many is None else \
                    many(vals, itertools.repeat(None), exps)  # type: ignore[arg-type]
                collections.deque(map(out.__setitem__, sel, ops), 0)
            return out

        if runs is not None:
            yield from self._sorted_runs(runs, cpus, kinds, returns, build)
            return
        streams = [cpu_ops(c) for c in cpus]
        if len(streams) == 1:
            for ops, times in streams[0]:
                yield ops, array("q", times)
            return
        yield from _merged_windows(streams)

    def _sorted_runs(self, runs: tuple[list[array[int]], list[tuple[int, int, int]]], cpus: list[Any],
                     kinds: dict[int, tuple[Any, ...]], returns: dict[int, tuple[Any, ...]],
                     build: Callable[[list[int], list[tuple[Any, ...]], list[Any]], list[Op]],
                     ) -> Iterator[tuple[list[Op], array[int]]]:
        """(light) The ops of a file with a CPU whose time goes down: each run of :meth:`_light_runs` read
        from its CPU on its own, the runs merged by (time, place in the merged order)."""
        places, spans = runs
        window = max(64, 2048 // len(spans))

        def run_ops(ci: int, lo: int, hi: int) -> Iterator[tuple[tuple[int, int], Op]]:
            """Calls lo..hi-1 of CPU ci (counted from its start), with their results, keyed."""
            c_eid: list[int] = []
            c_ts: list[int] = []
            c_vals: list[tuple[Any, ...]] = []
            c_exp: list[Any] = []
            k, kept, done = -1, False, lo
            for ts, eid, page, s in self._probe_records(cpus[ci]):
                if len(c_eid) > window:  # the last call may wait for its return
                    ops = build(c_eid[:-1], c_vals[:-1], c_exp[:-1])
                    yield from zip(zip(c_ts[:-1], places[ci][done:done + len(ops)], strict=True), ops, strict=True)
                    done += len(ops)
                    del c_eid[:-1], c_ts[:-1], c_vals[:-1], c_exp[:-1]
                kd = kinds.get(eid)
                if kd is not None:
                    k += 1
                    if k >= hi:
                        break
                    kept = k >= lo
                    if kept:
                        c_eid.append(eid)
                        c_ts.append(ts)
                        c_vals.append(kd[0](page, s))
                        c_exp.append(None)
                    continue
                r = returns.get(eid)
                if r is not None and kept:  # the return of the call just before (checked)
                    c_exp[-1] = _expect(r[0](page, s)[r[1]], r[2])
            if c_eid:
                ops = build(c_eid, c_vals, c_exp)
                yield from zip(zip(c_ts, places[ci][done:done + len(ops)], strict=True), ops, strict=True)

        merged = heapq.merge(*(run_ops(*span) for span in spans), key=operator.itemgetter(0))
        while True:
            chunk = list(itertools.islice(merged, 2048))
            if not chunk:
                return
            yield [op for _, op in chunk], array("q", [key[0] for key, _ in chunk])

    def _stream_bulk(self, plans: dict[int, tuple[Any, ...]], probes: dict[int, _Probe], bulk: dict[int, list[Any]],
                     pairs: list[tuple[int, int | None]], unpaired: list[int], code: dict[int, int], codes: bytes,
                     spans: list[dict[int, tuple[int, int]]], p_ts: array[int], p_eid: array[int],
                     p_bounds: list[int]) -> None:
        """:meth:`_probes_in_bulk`'s ops for a lazy read, checked: in merged order, made a window at a time as
        they are taken (:attr:`probe_stream`), never all held."""
        n = len(p_eid)
        call_codes = [code[c] for c in [*unpaired, *(c for c, _ in pairs)]]
        calls = array("q", itertools.compress(range(n), _only(codes, call_codes)))
        call_ts = array("q", map(p_ts.__getitem__, calls))
        # The calls' merged order, a window at a time (_merged_chunks): a sort key per call for the whole file
        # would outgrow the file.
        call_bounds = [bisect.bisect_left(calls, b) for b in p_bounds]
        order = array("q", map(calls.__getitem__,
                               itertools.chain.from_iterable(_merged_chunks(call_ts, call_bounds, 8192))))
        del calls, call_ts
        # Each call record's place among its event's payloads, and its return's (-1: none came): by position,
        # CPU by CPU.  Int arrays, not an int object per record.
        k_at, r_at = array("i", bytes(4 * n)), array("i", bytes(4 * n))  # 4 bytes: a file holds < 2**31 records
        for c, r in [(eid, None) for eid in unpaired] + pairs:
            at = array("q", itertools.compress(range(n), _only(codes, [code[c]])))
            collections.deque(map(k_at.__setitem__, at, range(len(at))), 0)
            for span in spans:
                clo, chi = span[c]
                rlo, rhi = span[r] if r is not None else (0, 0)
                got = min(chi - clo, rhi - rlo)
                collections.deque(map(r_at.__setitem__, at[clo:clo + got], range(rlo, rlo + got)), 0)
                collections.deque(map(r_at.__setitem__, at[clo + got:chi], itertools.repeat(-1)), 0)
        self.n_lazy += len(order)
        self.probe_stream = self._bulk_ops(order, codes, k_at, r_at, plans, probes, bulk, pairs, code, p_ts)

    def _bulk_ops(self, order: array[int], codes: bytes, k_at: array[int], r_at: array[int],
                  plans: dict[int, tuple[Any, ...]], probes: dict[int, _Probe], bulk: dict[int, list[Any]],
                  pairs: list[tuple[int, int | None]], code: dict[int, int],
                  p_ts: array[int]) -> Iterator[tuple[list[Op], array[int]]]:
        """The ops of :meth:`_probes_in_bulk`'s calls (*order*: their records in merged order), a window
        at a time with their times: built from columns of values (C-level loops), each window's calls
        of one event at once; only one window's ops and value tuples exist at a time.  No ``src`` (an op
        script prints no position)."""
        ret_of = dict(pairs)
        # Per call code: how to build its ops (struct, payloads, column builder or one-by-one builder), its return.
        kinds: dict[int, tuple[Any, ...]] = {}
        for c in code:
            if c in ret_of or not plans[c][4]:  # a call (a return's ops are made with its call's)
                r = ret_of.get(c)
                ret = None
                if r is not None and plans[r][8] is not None:
                    rst, _, _, ret_i = probes[r].lean(bulk[r][0])
                    ret = (rst.unpack_from, bulk[r][1], bulk[r][2], ret_i, plans[r][9])
                st, build, many, _ = probes[c].lean(bulk[c][0])
                kinds[code[c]] = (st.unpack_from, bulk[c][1], bulk[c][2], many, build, ret)
        window = 8192  # value tuples of one window at a time: the whole file's would outgrow it
        for w in range(0, len(order), window):
            gs = order[w:w + window]
            wcodes = bytes(map(codes.__getitem__, gs))
            present = set(wcodes)
            out: list[Any] = [None] * len(gs)
            for cc in present:
                unpack_from, payloads, size, many, build, ret = kinds[cc]
                if len(present) == 1:
                    sel: Sequence[int] = range(len(gs))
                    where: Sequence[int] = gs
                else:
                    sel = list(itertools.compress(range(len(gs)), wcodes.translate(_SELECT[cc])))
                    where = list(map(gs.__getitem__, sel))
                values = list(map(unpack_from, itertools.repeat(payloads),
                                  map(operator.mul, map(k_at.__getitem__, where), itertools.repeat(size))))
                expects: Iterable[Any] = itertools.repeat(None)
                if ret is not None:
                    r_unpack, r_payloads, r_size, ret_i, virt = ret
                    # no return came: no result
                    got = [None if k < 0 else r_unpack(r_payloads, k * r_size)[ret_i] for k in map(r_at.__getitem__,
                                                                                                   where)]
                    expects = list(_expects(got, virt))
                srcs = itertools.repeat(None)
                ops = list(map(build, values, srcs, expects)) if many is None else many(values, srcs, expects)
                if len(present) == 1:
                    out = ops
                else:
                    collections.deque(map(out.__setitem__, sel, ops), 0)
            yield out, array("q", map(p_ts.__getitem__, gs))

    def _console_text(self, side: list[Any], meta: dict[str, Any], n: int,
                      windows: Iterator[tuple[list[int], list[int], list[bytes]]]) -> Iterator[str]:
        """The console text rebuilt in merged order (of the *n* console records, *windows* of their indices, times
        and messages, read as they are merged: see _console_windows()), the capture's kept-aside lines in their
        places: its parts, made one at a time as they are taken (each line's record index goes to ``lines`` as
        its part is made)."""
        lines = self.lines
        gs: list[int] = []
        ts: list[int] = []
        ms: list[bytes] = []
        pos = 0  # in the window
        done = 0
        # Runs of console lines between the kept-aside lines, 4096 lines to a joined part (or a window's rest).
        for at, text in [*side, (n, None)]:
            while done < at:
                if pos == len(gs):
                    window = next(windows, None)
                    if window is None:
                        break
                    gs, ts, ms = window
                    pos = 0
                end = pos + min(4096, at - done, len(gs) - pos)
                part = _stamped(ts[pos:end], ms[pos:end])
                _extend_q(lines, gs[pos:end])
                done += end - pos
                pos = end
                yield part
            if text is not None:
                lines.append(-1)
                yield text
        gs, ts, ms = [], [], []
        for text in _debugfs_sections(meta.get("debugfs", {})):
            lines.append(-1)
            yield text

    def console_text(self) -> list[str]:
        """The rebuilt console text's parts, all made now (after :meth:`walk`; for tests and benchmarks)."""
        self.parts = iter(parts := list(self.parts))
        return parts

    def _meta(self) -> dict[str, Any]:
        opt = self.td.option(KHO_REPLAY_OPTION)
        if opt is None:
            return {}
        try:
            meta = json.loads(opt.data.rstrip(b"\0").decode("utf-8"))
            if not isinstance(meta, dict):
                raise ValueError("not an object")
            for k, text in meta.get("text", []):
                if not isinstance(k, int) or not isinstance(text, str):
                    raise ValueError("bad text entry")
        except (ValueError, UnicodeDecodeError) as e:
            raise FormatError(self.path, f"kho-replay option is not valid JSON ({e})", offset=opt.offset) from None
        return meta

    def _skip(self, key: str, offset: int, raw: str = "") -> None:
        entry = self.skipped.get(key)
        if entry is None:
            self.skipped[key] = [offset, 1, raw]
        else:
            entry[1] += 1

    def _handler(self, eid: int, returns: set[str]) -> Callable[[Any], None] | None:
        dec = self.td.decoder
        fmt = dec.format(eid)
        if fmt is None:
            return lambda rec: self._skip(f"event id {eid} has no format", rec[4])
        names = fmt.index
        decode = dec.decode
        if "__probe_ip" in names or "__probe_func" in names:
            probe = _Probe(fmt, self.symbols)

            def handle(rec: Any) -> None:
                ev = decode(rec)
                self._probe(probe, ev.values, ev.pid, ev.ts, ev.offset, returns)

            return handle
        if fmt.system == "ftrace" and fmt.name == "function" and "ip" in names and "parent_ip" in names:
            # walk() reads every whole function hit in place; what reaches here is cut short.
            return lambda rec: self._skip("ftrace:function record too short for its format", rec[4])
        key = f"{fmt.system}:{fmt.name} events carry no memblock activity"
        return lambda rec: self._skip(key, rec[4])

    # ------------------------------------------------------------------- probes

    def _probe(self, probe: _Probe, values: tuple[Any, ...], pid: int, ts: int, pos: int,
               returns: set[str]) -> None:
        """One probe hit (*values* line up with its format's fields), in merged order."""
        if probe.named:
            fn = probe.function
        else:
            fn = probe.function_at(values)
            if not _is_memblock(fn):
                self._skip(f"probe {probe.fmt.system}:{probe.fmt.name} is not on a memblock_* function", pos)
                return
        # Pair by task, not CPU: a task may migrate between its call and its return.
        calls = self.open_calls.get(pid)
        if calls is None:
            calls = self.open_calls[pid] = []
        if probe.is_return:
            for i in range(len(calls) - 1, -1, -1):
                if calls[i][0] == fn:
                    ret = probe.ret_index
                    self._close(calls.pop(i), None if ret is None else values[ret])
                    return
            self._skip(f"return probe of {fn} without its call", pos)
            return
        if calls and any(c[2] is not None for c in calls):
            # An outer memblock call is still open (we saw its entry, its return will come): this one is part of it.
            outer = next(c[0] for c in reversed(calls) if c[2] is not None)
            self._skip(f"{fn} called inside {outer}", pos)
            if fn in returns:
                calls.append([fn, None, None])
            return
        build = probe.builder(fn)
        if isinstance(build, str):
            reason = f"probe on {fn} lacks the {build}= fetch arg"
            if self.strict:
                raise FormatError(self.path, reason, offset=pos)
            self._skip(reason, pos)
            return
        if build is None:
            self._skip(f"probe on {fn}: not a memblock call we replay", pos)
            return
        src = Src(self.path, offset=pos, timestamp=ts / 1e9)
        slot = len(self.probe_ops)
        self.probe_ts.append(ts)
        if fn in returns:
            # Built when its return gives an allocation's result; meanwhile it closes the nesting window.
            self.probe_ops.append(None)  # type: ignore[arg-type]
            calls.append([fn, slot, (build, values, src)])
        else:
            self.probe_ops.append(build(values, src, None))

    def _close(self, call: list[Any], value: int | None) -> None:
        fn, slot, pending = call
        if slot is None:
            return
        build, values, src = pending
        self.probe_ops[slot] = build(values, src, _expect(value, fn in _VIRT_APIS))

    # ------------------------------------------------------------------- result

    def _trace(self, meta: dict[str, Any]) -> Trace:
        t, skipped = self._console_trace(meta)
        ops, obs = _merge(t, self.probe_ops, self.probe_ts, self.probe_obs)
        return Trace(t.context, tuple(ops), tuple(obs), skipped)

    def stream(self) -> tuple[Trace, Iterator[Op]]:
        """:meth:`run` for the op script alone (``lazy``): the Trace without its ops and observations, and
        its ops, made a window at a time as they are taken (the console parser's are held whole).  Every
        error of the read is raised here, before the first op."""
        meta = self._meta()
        self.walk(meta)
        t, skipped = self._console_trace(meta)
        head = Trace(t.context, (), (), skipped)
        stream = self.probe_stream
        if stream is None:
            return head, iter(_merge(t, self.probe_ops, self.probe_ts, [])[0])
        self.probe_stream = None
        if not t.ops:
            # the bulk path's ops: in merged order, their times ascending
            return head, itertools.chain.from_iterable(ops for ops, _ in stream)
        ctimes = _console_times(t.ops)
        if not _ascending(ctimes, 0):
            # The console ops out of time order: the whole-list sort of _merge(), on every op.
            ptimes = array("q")
            ops: list[Op] = []
            for chunk, times in stream:
                ops += chunk
                ptimes += times
            return head, iter(_merge(t, ops, ptimes, [])[0])
        # Two ascending runs: merged by time, console first on ties (heapq.merge takes the first run's first).
        timed = itertools.chain.from_iterable(zip(map(operator.truediv, times, itertools.repeat(1e9)), ops, strict=True)
                                              for ops, times in stream)
        merged = heapq.merge(zip(ctimes, t.ops, strict=True), timed, key=operator.itemgetter(0))
        return head, map(operator.itemgetter(1), merged)

    def stream_script(self) -> tuple[Trace, Iterator[str]]:
        """:meth:`stream` for the op script's text: the console parser hands its ops out as it makes them, and
        each is kept as its script line (with its time, when probe ops go among them), not as an op."""
        meta = self._meta()
        self.walk(meta)
        stream = self.probe_stream
        if stream is None and self.probe_ops:
            # probes read one by one: the console ops' places among them come from the whole lists (_merge)
            t, skipped = self._console_trace(meta)
            ops = _merge(t, self.probe_ops, self.probe_ts, [])[0]
            return Trace(t.context, (), (), skipped), format_script_chunks(ops)
        # The console ops' script lines, past 1 MiB in a temporary file: a trace.dat's parse holds little else.
        spool = _Spool(1 << 20)
        ctimes = array("d")  # each one's time, as _console_times() gives it from the relocated op
        timed = stream is not None
        last = 0.0

        def sink(ops: list[Op]) -> None:
            nonlocal last
            spool(ops)
            if timed:
                time_of = self._time_of
                for op in ops:
                    ts = time_of(op.src)
                    if ts is not None:
                        last = ts
                    ctimes.append(last)

        t, skipped = self._console_trace(meta, sink)
        head = Trace(t.context, (), (), skipped)
        if stream is None:
            return head, spool.drain()
        self.probe_stream = None
        if not ctimes:
            return head, format_script_chunks(itertools.chain.from_iterable(ops for ops, _ in stream))
        merged: Iterator[Any]
        lines = _script_lines(spool.drain())
        if not _ascending(ctimes, 0):
            # The console ops out of time order: the stable sort by time of every op, console first, as _merge()'s.
            ptimes = array("q")
            items: list[Any] = list(lines)
            for chunk, times in stream:
                items += chunk
                ptimes += times
            every = ctimes + array("d", map(operator.truediv, ptimes, itertools.repeat(1e9)))
            del ptimes
            merged = map(items.__getitem__, sorted(range(len(items)), key=every.__getitem__))
        else:
            # Two ascending runs: merged by time, console first on ties, as stream() merges them.
            timed_ops = itertools.chain.from_iterable(
                zip(map(operator.truediv, times, itertools.repeat(1e9)), ops, strict=True) for ops, times in stream)
            console = zip(ctimes, lines, strict=True)
            merged = map(operator.itemgetter(1), heapq.merge(console, timed_ops, key=operator.itemgetter(0)))
        return head, _script_chunks(merged)

    def _time_of(self, s: Src | None) -> float | None:
        """The timestamp _relocate() gives an op whose console parser's src is *s*."""
        if s is None or s.line is None:
            return None if s is None else s.timestamp
        i = s.line - self.first_line
        lines = self.lines
        if not 0 <= i < len(lines) or lines[i] < 0:
            return None
        return self.tss[lines[i]] / 1e9

    def _console_trace(self, meta: dict[str, Any],
                       sink: Callable[[list[Op]], None] | None = None) -> tuple[Trace, tuple[Skipped, ...]]:
        """The console parser's Trace of the rebuilt text (relocated), or an empty one with the file's context;
        and every skipped record of the read.  *sink*: takes the console parser's ops as it makes them (see
        ConsoleReader.sink), with their positions in the rebuilt text (not relocated)."""
        from ..console import read_console_pieces, read_console_text

        td = self.td
        made: list[str] = []  # the parts made so far and not yet read
        rest = self.parts

        def made_as_taken() -> Iterator[str]:
            for part in rest:
                made.append(part)
                yield part

        # The console parser's own MEMBLOCKISH/VERSION_LINE, stamped, over each part (each is whole lines, and
        # neither regex spans lines but for blank ones): the parts are made up to the first memblock line.
        if any(map(_MEMBLOCKISH_TEXT.search, made_as_taken())):
            first = 1  # line number of the first rebuilt line
            banner = self.banner or any("Linux version" in text for _, text in meta.get("text", [])) \
                or "Linux version" in "".join(_debugfs_sections(meta.get("debugfs", {})))
            parts: list[str] | Iterator[str]
            if banner:
                # The text may hold a banner or several: made whole, and looked at as the parser will read it.
                parts = made + list(rest)
                made.clear()
            else:
                # No "Linux version" anywhere (the usual capture after boot): no banner, one boot, and the
                # parts are made as the parser reads them, each let go once read.
                parts = itertools.chain(_taken(made), rest)
            if not banner or not any(map(_VERSION_TEXT.search, parts)):  # type: ignore[arg-type]
                # Captured after boot (trace-cmd record): the kernel's banner is not in the ring buffer.
                release, machine = _uname(td)
                if release is None:
                    raise UnsupportedError(self.path, "no 'Linux version' console line and no UNAME option: "
                                                      "cannot tell which kernel recorded this", offset=0)
                head = f"Linux version {release} ({machine}) [trace.dat UNAME]\n"
                parts = [head, *parts] if banner else itertools.chain((head,), parts)
                first = 2
            self.first_line = first
            if not banner:
                t = read_console_pieces(parts, self.path, strict=self.strict, sink=sink)
            elif sum(p.count("Linux version") for p in parts) <= 1:
                # One boot (the usual): the parts go to the parser one by one, let go as it reads them.
                t = read_console_pieces(parts, self.path, strict=self.strict, sink=sink)  # type: ignore[arg-type]
            else:
                text = "".join(parts)
                parts.clear()  # type: ignore[union-attr]
                t = read_console_text(text, self.path, strict=self.strict, sink=sink)
                del text  # read: not held while the ops are relocated and merged
            collections.deque(rest, 0)  # every part made (a parser that stopped early): every line's record known
            t = _relocate(t, self.path, self.offs, self.tss, self.lines, first)
        elif self.probe_ops or self.probe_obs or self.n_lazy:
            made.clear()
            t = Trace(_context(td, self.path, meta), ())
        else:
            raise FormatError(self.path, "no memblock activity: no memblock=debug console lines and no "
                                         "memblock_* probe or function events", offset=0)
        skipped = list(t.skipped)
        skipped += [s for s in td.skipped() if s.reason != f"unknown option {KHO_REPLAY_OPTION}"]
        skipped += [Skipped(self.path, f"@0x{off:08x}", f"{n} x {reason}" if n > 1 else reason, raw)
                    for reason, (off, n, raw) in self.skipped.items()]
        for eid, n in sorted(self.dropped.items()):
            fmt = td.decoder.format(eid)
            what = f"{fmt.system}:{fmt.name} events carry" if fmt else f"records of event id {eid} (no format) carry"
            skipped.append(Skipped(self.path, f"event id {eid}", f"{n} x {what} no memblock activity", ""))
        ctx = t.context
        if not ctx.cmdline and meta.get("cmdline"):
            ctx = dataclasses.replace(ctx, cmdline=meta["cmdline"])
        return Trace(ctx, t.ops, t.observations, ()), tuple(skipped)


_new_src = fast_new(Src, "path", "offset", "timestamp")
_new_src_text = fast_new(Src, "path", "offset", "timestamp", "text")
_new_alloc = fast_new(Alloc, "api", "size", "align", "nid", "min_addr", "max_addr", "exact", "expect", "src")
_new_simple = {cls: fast_new(cls, "base", "size", "src") for cls in (Remove, Reserve, ReserveKern, Free)}
_src_rows = fast_new_rows(Src, "path", "offset", "timestamp")
_many_alloc = fast_new_many(Alloc, "api", "size", "align", "nid", "min_addr", "max_addr", "exact", "expect", "src")
_many_simple = {cls: fast_new_many(cls, "base", "size", "src") for cls in (Remove, Reserve, ReserveKern, Free)}
#: Probed functions whose op is just (base, size).
_SIMPLE: dict[str, type[Op]] = {"memblock_remove": Remove, "memblock_reserve": Reserve,
                                "memblock_reserve_kern": ReserveKern, "memblock_phys_free": Free}


def _op_builder(fn: str, a: dict[str, int]) -> Callable[[tuple[Any, ...], Src, Any], Op] | None:
    """How to build the op a probe hit on memblock function *fn* stands for, from the event's values.

    *a* maps the kernel's parameter names to value indices.  The result takes
    ``(values, src, expect)``; *expect* is the paired return's result (used by
    allocations only).  None: not a memblock call we replay.  KeyError: a fetch
    arg the op needs is missing.
    """
    if fn in ("memblock_add", "memblock_add_node"):
        if fn == "memblock_add_node":
            n, f, b, s = a["nid"], a["flags"], a["base"], a["size"]
            return lambda v, src, _: Add(v[b], v[s], _s32(v[n]), Flag(v[f]), src=src)
        b, s = a["base"], a["size"]
        return lambda v, src, _: Add(v[b], v[s], None, Flag.MEMBLOCK_NONE, src=src)
    if fn in _SIMPLE:
        new, b, s = _new_simple[_SIMPLE[fn]], a["base"], a["size"]
        return lambda v, src, _: new(v[b], v[s], src)
    if fn == "__memblock_reserve":
        b, s, n, f = a["base"], a["size"], a["nid"], a["flags"]
        return lambda v, src, _: Reserve(v[b], v[s], _s32(v[n]), Flag(v[f]), src=src)
    if fn == "memblock_set_current_limit":
        lim = a["limit"]
        return lambda v, src, _: SetCurrentLimit(v[lim], src=src)
    if fn == "memblock_set_bottom_up":
        on = a["enable"]
        return lambda v, src, _: SetBottomUp(bool(v[on]), src=src)
    if fn == "memblock_allow_resize":
        return lambda v, src, _: AllowResize(src=src)
    for verb, mcls in (("mark", Mark), ("clear", Clear)):
        flag = _MARK_FLAGS.get(fn.removeprefix(f"memblock_{verb}_"))
        if fn.startswith(f"memblock_{verb}_") and flag is not None:
            b, s = a["base"], a["size"]
            return lambda v, src, _, mcls=mcls, flag=flag: mcls(flag, v[b], v[s], src=src)
    if fn == "memblock_reserved_mark_noinit":
        b, s = a["base"], a["size"]
        return lambda v, src, _: Mark(Flag.MEMBLOCK_RSRV_NOINIT, v[b], v[s], src=src)
    accepted = ALLOC_APIS.get(fn)
    if accepted is None:
        return None
    size, align, nid, lo, hi, exact = _alloc_fetch(a, accepted)

    def alloc(v: tuple[Any, ...], src: Src, expect: Any) -> Op:
        return _new_alloc(fn, v[size], None if align is None else v[align], None if nid is None else _s32(v[nid]),
                          None if lo is None else v[lo], None if hi is None else v[hi],
                          False if exact is None else bool(v[exact]), expect, src)

    return alloc


def _alloc_fetch(a: dict[str, int], accepted: Any) -> tuple[int, int | None, int | None, int | None, int | None,
                                                           int | None]:
    """Where an alloc hit's size, align, nid, min_addr, max_addr and exact_nid are in its fetch args
    (None: the function has no such argument, see ALLOC_APIS)."""
    return (a["size"], a["align"] if "align" in accepted else None, a["nid"] if "nid" in accepted else None,
            a["min_addr"] if "min" in accepted else None, a["max_addr"] if "max" in accepted else None,
            a.get("exact_nid") if "exact" in accepted else None)


def _s32_column(col: Sequence[int]) -> Sequence[int]:
    """_s32() of every value; the column itself when all are already in the ``int`` range (the usual)."""
    if not col or (min(col) >= -0x80000000 and max(col) <= 0x7FFFFFFF):
        return col
    return list(map(_s32, col))


def _op_columns(fn: str, a: dict[str, int]) -> Callable[[list[tuple[Any, ...]], list[Src], Iterable[Any]],
                                                      list[Op]] | None:
    """As :func:`_op_builder`, for many hits on *fn* at once: ``build(values, srcs, expects)`` makes one op
    per values tuple, each field a column (see fast_new_many()).  None: no column form, build one by one.
    The fetch args must all be there (the caller has a one-by-one builder for *fn*).
    """
    if fn in _SIMPLE:
        new, b, s = _many_simple[_SIMPLE[fn]], a["base"], a["size"]

        def simple(values: list[tuple[Any, ...]], srcs: list[Src], expects: Iterable[Any]) -> list[Op]:
            return new(len(values), map(operator.itemgetter(b), values), map(operator.itemgetter(s), values), srcs)

        return simple
    accepted = ALLOC_APIS.get(fn)
    if accepted is None or fn in ("memblock_add", "memblock_add_node", "__memblock_reserve"):
        return None
    size, align, nid, lo, hi, exact = _alloc_fetch(a, accepted)

    def alloc(values: list[tuple[Any, ...]], srcs: list[Src], expects: Iterable[Any]) -> list[Op]:
        # A column per field by itemgetter: cheaper than transposing every tuple with zip(*values).
        def col(i: int | None) -> Iterable[Any]:
            return itertools.repeat(None) if i is None else map(operator.itemgetter(i), values)

        nids = col(nid) if nid is None else _s32_column(list(col(nid)))
        return _many_alloc(len(values), itertools.repeat(fn), col(size), col(align), nids, col(lo), col(hi),
                           itertools.repeat(False) if exact is None else map(bool, col(exact)), expects, srcs)

    return alloc


def _op_rows(fn: str, a: dict[str, int], width: int, narrow: frozenset[str]) -> Callable[
        [Iterable[tuple[Any, ...]], Iterable[Src | None], Iterable[Any]], list[Op]] | None:
    """:func:`_op_columns`'s builder as one loop over the hits' rows (fast_new_rows()): *a* maps the fetch
    args to their place in each values tuple of *width* items, plain ints all; *narrow* names those that
    need no _s32().  None: no row form."""
    convert: dict[str, Callable[[Any], Any]] = {}
    fixed: dict[str, Any] = {}
    if fn in _SIMPLE:
        cls, at = _SIMPLE[fn], {a["base"]: "base", a["size"]: "size"}
    else:
        accepted = ALLOC_APIS.get(fn)
        if accepted is None or fn in ("memblock_add", "memblock_add_node", "__memblock_reserve"):
            return None
        cls, fixed["api"] = Alloc, fn
        size, align, nid, lo, hi, exact = _alloc_fetch(a, accepted)
        at = {i: name for i, name in ((size, "size"), (align, "align"), (nid, "nid"), (lo, "min_addr"),
                                      (hi, "max_addr"), (exact, "exact")) if i is not None}
        if nid is not None and "nid" not in narrow:
            convert["nid"] = _s32
        if exact is not None:
            convert["exact"] = bool
    make = fast_new_rows(cls, tuple(at.get(k, "_") for k in range(width)), "expect" if cls is Alloc else "_", "src",
                         convert=convert, **fixed)

    def rows(values: Iterable[tuple[Any, ...]], srcs: Iterable[Src | None], expects: Iterable[Any]) -> list[Op]:
        return make(zip(values, expects, srcs, strict=False))  # expects and srcs may repeat without end

    return rows


def _merged_windows(streams: list[Iterator[tuple[list[Op], list[int]]]]) -> Iterator[tuple[list[Op], array[int]]]:
    """Streams of ``(ops, times)`` windows, each ascending in time, merged by time, a tie to the earlier
    stream (the lower CPU, as the stable sort by time does): a batch at a time, each batch every item before
    the time all streams have reached, put in order by one stable sort (no heap step per op)."""
    ops_of: list[list[Op]] = [[] for _ in streams]
    ts_of: list[list[int]] = [[] for _ in streams]
    live = list(range(len(streams)))

    def pull(i: int) -> None:
        # the stream's next windows, until it has one item (or is done)
        while not ts_of[i]:
            got = next(streams[i], None)
            if got is None:
                live.remove(i)
                return
            ops_of[i] += got[0]
            ts_of[i] += got[1]

    for i in list(live):
        pull(i)
    while True:
        # Every item before *bound* is in hand: each live stream's next ones come at its last time or later.
        bound = min(ts_of[i][-1] for i in live) if live else None
        times: list[int] = []
        ops: list[Op] = []
        for i in range(len(streams)):
            cut = len(ts_of[i]) if bound is None else bisect.bisect_left(ts_of[i], bound)
            if cut:
                times += ts_of[i][:cut]
                ops += ops_of[i][:cut]
                del ts_of[i][:cut], ops_of[i][:cut]
        if ops:
            order = sorted(range(len(times)), key=times.__getitem__)
            yield list(map(ops.__getitem__, order)), array("q", map(times.__getitem__, order))
        if bound is None:
            return
        for i in list(live):
            if not ts_of[i]:
                pull(i)
            elif ts_of[i][-1] == bound:  # it holds the bound back: its next window
                got = next(streams[i], None)
                if got is None:
                    live.remove(i)
                else:
                    ops_of[i] += got[0]
                    ts_of[i] += got[1]


_LENGTH = operator.itemgetter(2)
#: bytes.translate() tables: code c -> 1, every other byte -> 0 (a selector for itertools.compress)
_SELECT = [bytes(c) + b"\1" + bytes(255 - c) for c in range(256)]  # no generator step per byte at import


def _only(codes: bytes, ks: Iterable[int]) -> bytes:
    """*codes* as 1 where the code is one of *ks*, else 0 (a selector for itertools.compress)."""
    picked = set(ks)
    return codes.translate(bytes(int(k in picked) for k in range(256)))
#: A console line's format: stamp() (six decimals, nine when the time is finer than a microsecond), message,
#: newline; its seconds are written in first (_stamped()), the fraction and message left to format.
_LINE6, _LINE9 = b"[%5d.%%06d] %%s\n", b"[%5d.%%09d] %%s\n"


def _extend_q(arr: array[int], col: list[int]) -> None:
    """``arr.extend(col)`` for an array of C long longs (or unsigned ints), by one ``struct.pack``: the array's
    own extend parses each int (PyArg_Parse), several times the cost of packing it."""
    if col:
        arr.frombytes(struct.pack(f"{len(col)}{arr.typecode}", *col))


def _views(page: bytes, native: bool) -> tuple[Any, Any]:
    """The page as 16- and 32-bit words in the file's byte order (memoryviews, or swapped arrays)."""
    if native:
        view = memoryview(page)
        return view[:len(page) & ~1].cast("H"), view[:len(page) & ~3].cast("I")
    halves, words = array("H", page[:len(page) & ~1]), array("I", page[:len(page) & ~3])
    halves.byteswap()
    words.byteswap()
    return halves, words


def _ascending(a: Any, start: int) -> bool:
    """Whether ``a[start:]`` never goes down (a CPU's records in time order)."""
    # An int or float array read through memoryview slices (no copy, no islice step per item); the views
    # are gone on return, so the array can grow again.
    s = memoryview(a)[start:] if isinstance(a, array) else a[start:]
    return all(map(operator.le, s, s[1:]))


def _stamped(tss: Sequence[int], msgs: Sequence[bytes]) -> str:
    """Console lines ``[stamp] msg``, each message cut at its NUL, formatted by one ``%`` over the lot."""
    if len(msgs) != len(tss):
        raise ValueError("one message per timestamp")
    # Each line's format with its seconds written in (key: the seconds, ~ them for nine decimals): the
    # seconds change every few thousand lines, so one int fewer to format a line.
    keys = [t // 1_000_000_000 if not t % 1000 else ~(t // 1_000_000_000) for t in tss]
    lines = {k: _LINE6 % k if k >= 0 else _LINE9 % ~k for k in set(keys)}
    fmt = b"".join(map(lines.__getitem__, keys))
    # Fraction and message interleaved by slice assignment: no tuple per line.
    values: list[Any] = [None] * (2 * len(keys))
    values[0::2] = [t % 1_000_000_000 // 1000 if not t % 1000 else t % 1_000_000_000 for t in tss]
    values[1::2] = msgs
    text = fmt % tuple(values)
    # Messages come with their trailing NULs stripped; one with a NUL inside is cut there, as trace-cmd prints it.
    if b"\0" in text:
        values[1::2] = [m.split(b"\0", 1)[0] for m in msgs]
        text = fmt % tuple(values)
    return text.decode("utf-8", "surrogateescape")


def _taken(parts: list[str]) -> Iterator[str]:
    """The items of *parts*, each let go as it is taken."""
    parts.reverse()
    while parts:
        yield parts.pop()


def _merged(tss: array[int], bounds: list[int], in_order: bool) -> Iterable[int]:
    """Indices into *tss* (CPU after CPU, each CPU's slice ``bounds[i]:bounds[i+1]``) in report order.

    When every CPU's times ascend, a stable sort by time is the merge by ``(ts, cpu)``;
    otherwise the heap merge that trace-cmd's report does, step by step.
    """
    if in_order:
        return itertools.chain.from_iterable(_merged_chunks(tss, bounds))
    runs = [zip(tss[a:b], range(a, b), strict=True) for a, b in itertools.pairwise(bounds)]
    return (g for _, g in heapq.merge(*runs, key=lambda tg: tg[0]))


def _merged_chunks(tss: array[int], bounds: list[int], step: int = 65536) -> Iterable[list[int]]:
    """The stable sort by time of ascending per-CPU runs, a window at a time: each window takes every
    record up to a time no run passes within *step* records, so the sort keys (an int object per
    record) never exist for the whole file at once."""
    for picks in _window_ranges(tss, bounds, step):
        yield sorted(itertools.chain.from_iterable(range(a, b) for _, a, b in picks), key=tss.__getitem__)


def _window_ranges(tss: array[int], bounds: list[int], step: int) -> Iterator[list[tuple[int, int, int]]]:
    """_merged_chunks()' windows as each CPU's run in it: ``(cpu index, start, end)``."""
    at, ends = bounds[:-1], bounds[1:]
    while True:
        live = [c for c, a in enumerate(at) if a < ends[c]]
        if not live:
            return
        cut = min(tss[min(at[c] + step, ends[c]) - 1] for c in live)
        picks = []
        for c in live:
            hi = bisect.bisect_right(tss, cut, at[c], ends[c])
            picks.append((c, at[c], hi))
            at[c] = hi
        yield picks


def _console_windows(messages: _Messages, tss: array[int], bounds: list[int], in_order: bool,
                     step: int = 1024) -> Iterator[tuple[list[int], list[int], list[bytes]]]:
    """The console records in :func:`_merged`'s order, a window at a time: their indices, times and messages
    (read from their pages as the windows go: *step* records a CPU, a few MB of messages at a time)."""
    if in_order:
        for picks in _window_ranges(tss, bounds, step):
            if len(picks) == 1:
                c, a, b = picks[0]
                yield list(range(a, b)), tss[a:b].tolist(), messages.read(c, a, b)
                continue
            # The window's records CPU after CPU, then stably sorted by time: the merge by (ts, cpu).
            gl = list(itertools.chain.from_iterable(range(a, b) for _, a, b in picks))
            wts = array("q")
            wm: list[bytes] = []
            for c, a, b in picks:
                wts += tss[a:b]
                wm += messages.read(c, a, b)
            perm = sorted(range(len(gl)), key=wts.__getitem__)
            yield list(map(gl.__getitem__, perm)), list(map(wts.__getitem__, perm)), list(map(wm.__getitem__, perm))
        return
    order = _merged(tss, bounds, False)
    while seg := list(itertools.islice(order, step)):
        # A heap merge keeps each CPU's order: each CPU's records in seg are one run of its records.
        ordered = sorted(seg)
        pool: dict[int, bytes] = {}
        lo = 0
        for c in range(len(bounds) - 1):
            hi = bisect.bisect_left(ordered, bounds[c + 1], lo)
            if hi > lo:
                a, b = ordered[lo], ordered[hi - 1] + 1
                pool.update(zip(range(a, b), messages.read(c, a, b), strict=True))
            lo = hi
        yield seg, list(map(tss.__getitem__, seg)), list(map(pool.__getitem__, seg))


class _Messages:
    """The console messages of a walk, read from their pages again as the text is made (issue 15: memory),
    each CPU's in order (:meth:`read`).

    *starts*, *ends*: where each message sits in its page (see _Extractor._walk()); *side*: messages decoded
    in the walk, by record index; *pages*: per CPU, the index of each page's first console record; *bounds*:
    where each CPU's records start.
    """

    def __init__(self, td: TraceDat, starts: array[int], ends: array[int], side: dict[int, bytes],
                 pages: list[array[int]], bounds: list[int]) -> None:
        self.td = td
        self.buf = td.buffer("")
        self.cpus = sorted(self.buf.cpus, key=lambda c: c.cpu)
        self.starts, self.ends, self.side, self.pages, self.bounds = starts, ends, side, pages, bounds
        n = len(self.cpus)
        #: per CPU: the messages of its pages read and not yet given, the record index of the first, the next page
        self.got: list[list[bytes]] = [[] for _ in range(n)]
        self.got_at = bounds[:-1]
        self.next_page = [0] * n
        self.feeds: list[Iterator[tuple[int, bytes]] | None] = [None] * n

    def read(self, c: int, a: int, b: int) -> list[bytes]:
        """The messages of CPU *c*'s records ``a:b``, *a* where its last read ended (or its first record)."""
        got, at = self.got[c], self.got_at[c]
        if at + len(got) < b:
            feed = self.feeds[c]
            if feed is None:
                feed = self.feeds[c] = self.td.iter_pages(self.buf, self.cpus[c])
            pages, k, end = self.pages[c], self.next_page[c], self.bounds[c + 1]
            last = len(pages) - 1
            starts, ends, side = self.starts, self.ends, self.side
            while at + len(got) < b:
                page = next(feed)[1]
                pa = pages[k]
                pe = pages[k + 1] if k < last else end
                k += 1
                if pa < pe:
                    got += map(page.__getitem__, map(slice, starts[pa:pe], ends[pa:pe]))
                    if side:
                        for g in side.keys() & range(pa, pe):
                            got[g - at] = side.pop(g)
            self.next_page[c] = k
        out = got[:b - a]
        del got[:b - a]
        self.got_at[c] = b
        return out


def _merge_lists(per_cpu: list[list[Any]], in_order: bool) -> list[Any]:
    """Per-CPU lists of tuples starting with the timestamp, merged by ``(ts, cpu)``."""
    if in_order:
        return sorted(itertools.chain.from_iterable(per_cpu), key=operator.itemgetter(0))
    return list(heapq.merge(*per_cpu, key=operator.itemgetter(0)))


def _debugfs_sections(tables: dict[str, str]) -> list[str]:
    """Debugfs files carried by ``record --debugfs``, as the capture sections the console parser reads."""
    out = []
    for name, text in sorted(tables.items()):
        out.append(f"===== BEGIN {name.replace('/', '-')} =====\n")
        out += [ln + "\n" for ln in text.splitlines()]
        out.append("===== END =====\n")
    return out


def _relocate(t: Trace, path: str, offs: array[int], tss: array[int], lines: array[int], first: int) -> Trace:
    """Turn the rebuilt text's line numbers into record offsets and timestamps (line *first* is ``lines[0]``,
    each line's record ``offs[g]``, ``tss[g]`` with ``g = lines[line - first]``, -1 for no record)."""
    n = len(lines)

    def src(s: Src | None) -> Src | None:
        if s is None or s.line is None:
            return s
        i = s.line - first
        if not 0 <= i < n or lines[i] < 0:
            return Src(path)  # a line that was no event: the capture's text kho-replay kept aside
        g = lines[i]
        return _new_src_text(path, offs[g], tss[g] / 1e9, s.text)

    def position(p: str) -> str:
        i = int(p) - first if p.isdigit() else -1
        return f"@0x{offs[lines[i]]:08x}" if 0 <= i < n and lines[i] >= 0 else p

    # The console parser's ops are ours alone, just made: set their frozen src in place (replace() is slow).
    for item in itertools.chain(t.ops, t.observations):  # no tuple of every op and observation
        object.__setattr__(item, "src", src(item.src))
    ops, obs = t.ops, t.observations
    skipped = tuple(dataclasses.replace(s, position=position(s.position)) for s in t.skipped)
    return Trace(t.context, ops, obs, skipped)


def _script_lines(pieces: Iterable[str]) -> Iterator[str]:
    """The lines of the op-script text of *pieces* (each newline-ended), without their newlines."""
    rest = ""

    def cut(piece: str) -> list[str]:
        nonlocal rest
        lines = (rest + piece if rest else piece).split("\n")
        rest = lines.pop()
        return lines

    return itertools.chain.from_iterable(map(cut, pieces))


def _script_chunks(items: Iterator[Any], lines: int = 4096) -> Iterator[str]:
    """format_script_chunks() of ops and op-script lines (str) mixed."""
    while chunk := list(itertools.islice(items, lines)):
        yield "\n".join([x if x.__class__ is str else format_op(x) for x in chunk]) + "\n"


def _console_times(ops: Sequence[Op]) -> array[float]:
    """Each console op's time: its line's, else the last one before it (0.0 before any)."""
    ctimes = array("d")
    last = 0.0
    for op in ops:
        s = op.src
        if s is not None and s.timestamp is not None:
            last = s.timestamp
        ctimes.append(last)
    return ctimes


def _merge(t: Trace, probe_ops: list[Op], probe_ts: array[int],
           probe_obs: list[tuple[int, int, KernelMessage]]) -> tuple[list[Op], list[Any]]:
    """Interleave probe ops and function observations with the console's by timestamp (console first on ties)."""
    if not probe_ops and not probe_obs:
        return list(t.ops), list(t.observations)
    if not t.ops and not t.observations:
        # Probes and function hits alone, their times ascending (the usual): the order stays; each hit's
        # ``at`` is where its time falls among the ops'.
        times = array("d", map(operator.truediv, probe_ts, itertools.repeat(1e9)))
        hit_times = array("d", [ts / 1e9 for ts, _, _ in probe_obs])
        if _ascending(times, 0) and _ascending(hit_times, 0):
            msgs = [msg for _, _, msg in probe_obs]
            # Our messages alone, just made in the walk: set their frozen ``at`` in place (replace() is slow).
            collections.deque(map(object.__setattr__, msgs, itertools.repeat("at"),
                                  map(bisect.bisect_right, itertools.repeat(times), hit_times)), 0)
            return list(probe_ops), msgs
    # One float per op in arrays, and each op's place found from them: no key tuple per op (issue 15: memory).
    n_c = len(t.ops)
    ctimes = _console_times(t.ops)
    ptimes = array("d", [ts / 1e9 for ts in probe_ts])
    n = n_c + len(ptimes)
    new_index: Sequence[int]
    # One run after the other (a probe-only file): already in order if each run is.
    if (not n_c or not ptimes or ctimes[-1] <= ptimes[0]) and _ascending(ctimes + ptimes, 0):
        ops: list[Any] = [*t.ops, *probe_ops]
        op_times = ctimes + ptimes
        new_index = range(n_c)
    elif _ascending(ctimes, 0) and _ascending(ptimes, 0):
        # Two ascending runs (the usual file): a console op goes after the probe ops strictly earlier, a probe
        # op after the console ops not later (console first on ties), as a sort by (time, kind, index) puts them.
        cpos = array("q", map(operator.add, range(n_c), map(functools.partial(bisect.bisect_left, ptimes), ctimes)))
        ppos = array("q", map(operator.add, range(len(ptimes)),
                              map(functools.partial(bisect.bisect_right, ctimes), ptimes)))
        ops = [None] * n
        op_times = array("d", bytes(8 * n))
        for pos, items, times in ((cpos, t.ops, ctimes), (ppos, probe_ops, ptimes)):
            any(map(ops.__setitem__, pos, items))
            any(map(op_times.__setitem__, pos, times))
        del ppos
        new_index = cpos
    else:
        # A run out of order: a stable sort of indices by time alone, console ops first, is the sort by
        # (time, kind, index).
        times = ctimes + ptimes
        order = sorted(range(n), key=times.__getitem__)
        every = [*t.ops, *probe_ops]
        ops = list(map(every.__getitem__, order))
        del every
        op_times = array("d", map(times.__getitem__, order))
        index = array("q", bytes(8 * n_c))
        for at, g in enumerate(order):
            if g < n_c:
                index[g] = at
        new_index = index
    # The observations were made for this read alone (the console parser's, relocated, and ours): set in place.
    setat = object.__setattr__
    obs: list[Any] = list(t.observations)
    # All new indices read before any is set: an observation listed twice must not be moved twice.
    # Each console op's new index; an observation after the last op (or anywhere else) goes to the end.
    ats = [new_index[o.at] if 0 <= o.at < n_c else n for o in obs]
    for o, at in zip(obs, ats, strict=True):
        setat(o, "at", at)
    for ts, _, msg in probe_obs:
        setat(msg, "at", bisect.bisect_right(op_times, ts / 1e9))
        obs.append(msg)
    obs.sort(key=lambda o: o.at)
    return ops, obs


def _uname(td: TraceDat) -> tuple[str | None, str | None]:
    """(release, machine) from the UNAME option, ``sysname nodename release version... machine``."""
    opt = td.option(TraceCmdOption.TRACECMD_OPTION_UNAME)
    if opt is None:
        return None, None
    words = opt.data.rstrip(b"\0").decode("utf-8", "replace").split()
    return (words[2] if len(words) >= 3 else None), (words[-1] if len(words) >= 4 else None)


def _context(td: TraceDat, path: str, meta: dict[str, Any]) -> Context:
    """Context from the UNAME option (``Linux host release version machine``) when no console text says more."""
    from kho_replay.replay.profile import arch_for

    release, machine = _uname(td)
    arch = {"aarch64": "arm64"}.get(machine or "", machine) if machine in ("x86_64", "aarch64", "arm64") else None
    page_size = arch_for(arch).page_size if arch else None
    return Context(source=path, release=release, arch=arch, page_size=page_size, cmdline=meta.get("cmdline", ""))


def stream_tracedat(path: str | os.PathLike[str], *, strict: bool = False,
                    vmlinux: str | os.PathLike[str] | None = None) -> tuple[Trace, Iterator[Op]]:
    """:func:`read_tracedat` for the op script alone (``parse``): the Trace without ops or observations
    (its context and skipped records), and the ops, in the same order, made as they are taken.

    Probe ops come without their position (``src`` None: an op script prints none); every error is
    raised before this returns.  The file stays open until the ops are all taken.

    >>> t, ops = stream_tracedat("traces/tracedat/synthetic/v6.dat")
    >>> [op.api for op in ops if hasattr(op, "api")][:1]
    ['memblock_alloc_range_nid']
    """
    return _lazy(path, strict, vmlinux, _Extractor.stream)


def stream_script(path: str | os.PathLike[str], *, strict: bool = False,
                  vmlinux: str | os.PathLike[str] | None = None) -> tuple[Trace, Iterator[str]]:
    """:func:`stream_tracedat`'s op script as text, a chunk of lines at a time: the console parser's ops are
    never all held either (kept as their lines).  Every error is raised before this returns.

    >>> t, script = stream_script("traces/tracedat/synthetic/v6.dat")
    >>> "memblock_alloc_range_nid" in "".join(script)
    True
    """
    return _lazy(path, strict, vmlinux, _Extractor.stream_script)


def _lazy(path: str | os.PathLike[str], strict: bool, vmlinux: str | os.PathLike[str] | None,
          take: Callable[[_Extractor], tuple[Trace, Iterator[_T]]]) -> tuple[Trace, Iterator[_T]]:
    """*take* of a lazy extractor of *path* (:meth:`_Extractor.stream` or :meth:`_Extractor.stream_script`): the
    Trace, then what it gives, the file open until that is all taken.  The probe payloads are read twice rather
    than held (a light walk, memory: issue 15) unless the bulk probe path does not take the file."""
    p = os.fspath(path)
    syms = vmlinux_symbols(vmlinux) if vmlinux is not None else None
    td = TraceDat(p)
    try:
        with _garbled(p):
            try:
                head, out = take(_Extractor(td, p, strict, syms, lazy=True, light=True))
                heavy = False
            except _Heavy:
                heavy = True  # out of the handler: its traceback would hold the first walk's state
            if heavy:
                head, out = take(_Extractor(td, p, strict, syms, lazy=True))
    except BaseException:
        td.close()
        raise
    return head, _closing(td, out)


@contextlib.contextmanager
def _garbled(path: str) -> Iterator[None]:
    """Event data a decoder trips on (a struct too short, an index past a payload, bad UTF-8) as the
    FormatError of a garbled file."""
    try:
        yield
    except (struct.error, IndexError, UnicodeDecodeError) as e:
        raise FormatError(path, f"garbled event data ({e})", offset=0) from None


def _closing(td: TraceDat, items: Iterator[_T]) -> Iterator[_T]:
    """*items*, then *td* closed (also when the taker stops early)."""
    with td:
        yield from items


def read_tracedat(path: str | os.PathLike[str], *, strict: bool = False,
                  vmlinux: str | os.PathLike[str] | None = None) -> Trace:
    """Read a trace.dat's memblock activity into a Trace (see the module docs for what is read).

    :param strict: memblock-looking lines and probes we do not understand are errors.
    :param vmlinux: an ELF with symbols, to name function-tracer and probe addresses.
    :raises InputError: (FormatError, TruncatedError, UnsupportedError) with the byte offset.
    """
    p = os.fspath(path)
    syms = vmlinux_symbols(vmlinux) if vmlinux is not None else None
    with TraceDat(p) as td, _garbled(p):
        return _Extractor(td, p, strict, syms).run()
