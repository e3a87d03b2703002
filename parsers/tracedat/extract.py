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
import dataclasses
import json
import os
import re
import struct
from array import array
from collections.abc import Callable
from typing import Any

from kho_replay.replay.errors import FormatError, InputError, KhoReplayError, UnsupportedError
from kho_replay.replay.flags import Flag
from kho_replay.replay.ops import (
    ALLOC_APIS,
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
)

from .events import EventFormat, FieldKind
from .reader import TraceDat
from .structs import TraceCmdOption
from .symbols import Kallsyms

__all__ = ["KHO_REPLAY_OPTION", "PROBE_SUFFIXES", "read_tracedat", "stamp", "vmlinux_symbols"]

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
_VIRT_APIS = frozenset(a for a in ALLOC_APIS if not a.startswith("memblock_phys_") and a != "memblock_alloc_range_nid")
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

    def __init__(self, fmt: EventFormat, symbols: Callable[[], _Symbols], long_size: int) -> None:
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

    def function_at(self, values: tuple[Any, ...]) -> str:
        if self.named or self.ip_index is None:
            return self.function
        return self.symbols().name(values[self.ip_index]) or self.function


def _is_memblock(fn: str) -> bool:
    return fn.startswith(("memblock_", "__memblock_"))


class _Extractor:
    def __init__(self, td: TraceDat, path: str, strict: bool, vmlinux: Kallsyms | None) -> None:
        self.td = td
        self.path = path
        self.strict = strict
        self.vmlinux = vmlinux
        self._symbols: _Symbols | None = None
        # console text rebuilt, in joined chunks; per line, the record offset and timestamp (-1: not an event)
        self.parts: list[str] = []
        self.offs = array("q")
        self.tss = array("q")
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
        """One pass over the records: console text rebuilt, probe ops and function hits collected."""
        td = self.td
        side = meta.get("text", [])
        dec = td.decoder
        console = dec.find("printk", "console")
        # Probe formats are found by their own fields; a file may hold thousands of formats, parsed lazily.
        probe_ids = {*dec.ids_with(b" __probe_ip;"), *dec.ids_with(b" __probe_func;")}
        returns = {_function_of(f) for f in map(dec.format, probe_ids) if f is not None and "__probe_func" in f.index}
        handlers: dict[int, Callable[[Any], None] | None] = {}
        type_of = struct.Struct(">H" if td.big_endian else "<H").unpack_from
        loc_of = struct.Struct(">I" if td.big_endian else "<I").unpack_from
        cid = console.id if console is not None else None
        msg_field = console.fields[console.index["msg"]] if console is not None and "msg" in console.index else None
        # The usual layout (data_loc msg) is read in place; anything else goes through the general decoder.
        fast = msg_field is not None and msg_field.kind is FieldKind.DATA_LOC and msg_field.size == 4
        m_off = msg_field.offset if msg_field is not None else 0
        # Text in joined chunks and positions in int arrays: per-line objects would outgrow the file.
        parts, chunk, offs, tss = self.parts, [], self.offs, self.tss
        add, add_off, add_ts = chunk.append, offs.append, tss.append
        side_i, n_side = 0, len(side)
        count = 0
        decode = dec.decode
        # Only events that can carry memblock activity are decoded; the others are counted by type.
        function = dec.find("ftrace", "function")
        wanted = probe_ids | {f.id for f in (console, function) if f is not None}
        for rec in td.iter_records(types=wanted, dropped=self.dropped):
            payload = rec[2]
            if len(payload) < 2:
                decode(rec)  # raises: a record too short for its type
            eid = type_of(payload)[0]
            if eid == cid:
                while side_i < n_side and side[side_i][0] <= count:
                    add(side[side_i][1])
                    add_off(-1)
                    add_ts(-1)
                    side_i += 1
                if fast:
                    w = loc_of(payload, m_off)[0]
                    off, end = w & 0xFFFF, (w & 0xFFFF) + (w >> 16)
                    nul = payload.find(0, off, end)
                    msg = payload[off:end if nul < 0 else nul].decode("utf-8", "surrogateescape") \
                        if end <= len(payload) else ""
                else:
                    msg = decode(rec).get("msg", "")
                ts = rec[0]
                sec, frac = divmod(ts, 1_000_000_000)
                # stamp(), inlined: this runs once per console event
                if frac % 1000:
                    add(f"[{sec:5d}.{frac:09d}] {msg}\n")
                else:
                    add(f"[{sec:5d}.{frac // 1000:06d}] {msg}\n")
                add_off(rec[4])
                add_ts(ts)
                count += 1
                if len(chunk) >= 4096:
                    parts.append("".join(chunk))
                    chunk.clear()
                continue
            handler = handlers.get(eid, ...)
            if handler is ...:
                handler = handlers[eid] = self._handler(eid, returns)
            if handler is not None:
                handler(rec)
        for _, text in side[side_i:]:
            add(text)
            add_off(-1)
            add_ts(-1)
        for cpu_calls in self.open_calls.values():
            for call in cpu_calls:
                self._close(call, None)
        for text in _debugfs_sections(meta.get("debugfs", {})):
            add(text)
            add_off(-1)
            add_ts(-1)
        parts.append("".join(chunk))

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
            probe = _Probe(fmt, self.symbols, self.td.header_page.long_size)
            return lambda rec: self._probe(probe, decode(rec), returns)
        if fmt.system == "ftrace" and fmt.name == "function" and "ip" in names and "parent_ip" in names:
            return self._function_handler(fmt)
        key = f"{fmt.system}:{fmt.name} events carry no memblock activity"
        return lambda rec: self._skip(key, rec[4])

    # ------------------------------------------------------------ function tracer

    def _function_handler(self, fmt: EventFormat) -> Callable[[Any], None]:
        """A handler reading ``ip``/``parent_ip`` in place, naming each ip once (a trace hits few functions)."""
        ip_f, parent_f = fmt.fields[fmt.index["ip"]], fmt.fields[fmt.index["parent_ip"]]
        e = ">" if self.td.big_endian else "<"
        ip_of = struct.Struct(e + ("Q" if ip_f.size == 8 else "I")).unpack_from
        parent_of = struct.Struct(e + ("Q" if parent_f.size == 8 else "I")).unpack_from
        ip_at, parent_at, need = ip_f.offset, parent_f.offset, max(ip_f.offset + ip_f.size,
                                                                  parent_f.offset + parent_f.size)
        names: dict[int, str | None] = {}
        outside = "ftrace:function hits outside memblock_* functions"

        def handle(rec: Any) -> None:
            payload = rec[2]
            if len(payload) < need:
                self._skip("ftrace:function record too short for its format", rec[4])
                return
            ip = ip_of(payload, ip_at)[0]
            name = names.get(ip, ...)
            if name is ...:
                name = self.symbols().name(ip)
                name = names[ip] = name if name is not None and _is_memblock(name) else None
            if name is None:
                self._skip(outside, rec[4])
                return
            parent = self.symbols().caller(parent_of(payload, parent_at)[0])
            msg = KernelMessage(at=0, src=Src(self.path, offset=rec[4], timestamp=rec[0] / 1e9),
                                kind="function", text=f"{name} <- {parent}")
            self.probe_obs.append((rec[0], len(self.probe_obs), msg))

        return handle

    # ------------------------------------------------------------------- probes

    def _probe(self, probe: _Probe, ev: Any, returns: set[str]) -> None:
        fn = probe.function_at(ev.values)
        if not probe.named and not _is_memblock(fn):
            self._skip(f"probe {probe.fmt.system}:{probe.fmt.name} is not on a memblock_* function", ev.offset)
            return
        # Pair by task, not CPU: a task may migrate between its call and its return.
        calls = self.open_calls.setdefault(ev.pid, [])
        if probe.is_return:
            for i in range(len(calls) - 1, -1, -1):
                if calls[i][0] == fn:
                    ret = next(iter(probe.args.values()), None)
                    self._close(calls.pop(i), None if ret is None else ev.values[ret])
                    return
            self._skip(f"return probe of {fn} without its call", ev.offset)
            return
        if calls and any(c[2] is not None for c in calls):
            # An outer memblock call is still open (we saw its entry, its return will come): this one is part of it.
            outer = next(c[0] for c in reversed(calls) if c[2] is not None)
            self._skip(f"{fn} called inside {outer}", ev.offset)
            if fn in returns:
                calls.append([fn, None, None])
            return
        values = ev.values
        args = {name: values[i] for name, i in probe.arg_items}
        try:
            op = _op_for(fn, args, Src(self.path, offset=ev.offset, timestamp=ev.ts / 1e9))
        except KeyError as e:
            reason = f"probe on {fn} lacks the {e.args[0]}= fetch arg"
            if self.strict:
                raise FormatError(self.path, reason, offset=ev.offset) from None
            self._skip(reason, ev.offset)
            return
        if op is None:
            self._skip(f"probe on {fn}: not a memblock call we replay", ev.offset)
            return
        slot = len(self.probe_ops)
        self.probe_ops.append(op)
        self.probe_ts.append(ev.ts)
        if fn in returns:
            # Remember the open call: its return gives an allocation's result and closes the nesting window.
            calls.append([fn, slot, op])

    def _close(self, call: list[Any], value: int | None) -> None:
        fn, slot, op = call
        if slot is None or not isinstance(op, Alloc) or value is None:
            return
        if value == 0:
            expect: int | str | None = FAILED
        elif fn in _VIRT_APIS:
            return  # a virtual address: the physical one is not in the trace
        else:
            expect = value
        self.probe_ops[slot] = dataclasses.replace(op, expect=expect)

    # ------------------------------------------------------------------- result

    def _trace(self, meta: dict[str, Any]) -> Trace:
        from ..console import read_console_text

        td = self.td
        text = "".join(self.parts)
        self.parts.clear()
        # One regex pass over the whole text: the console parser's own MEMBLOCKISH/VERSION_LINE, stamped.
        if _MEMBLOCKISH_TEXT.search(text):
            first = 1  # line number of the first rebuilt line
            if not _VERSION_TEXT.search(text):
                # Captured after boot (trace-cmd record): the kernel's banner is not in the ring buffer.
                release, machine = _uname(td)
                if release is None:
                    raise UnsupportedError(self.path, "no 'Linux version' console line and no UNAME option: "
                                                      "cannot tell which kernel recorded this", offset=0)
                text = f"Linux version {release} ({machine}) [trace.dat UNAME]\n" + text
                first = 2
            t = read_console_text(text, self.path, strict=self.strict)
            t = _relocate(t, self.path, self.offs, self.tss, first)
        elif self.probe_ops or self.probe_obs:
            t = Trace(_context(td, self.path, meta), ())
        else:
            raise FormatError(self.path, "no memblock activity: no memblock=debug console lines and no "
                                         "memblock_* probe or function events", offset=0)
        ops, obs = _merge(t, self.probe_ops, self.probe_ts, self.probe_obs)
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
        return Trace(ctx, tuple(ops), tuple(obs), tuple(skipped))


def _op_for(fn: str, a: dict[str, int], src: Src) -> Op | None:
    """The op a probe hit on memblock function *fn* with fetch args *a* stands for (KeyError: an arg missing)."""
    kw: dict[str, Any] = {"src": src}
    if fn in ("memblock_add", "memblock_add_node"):
        nid = _s32(a["nid"]) if fn == "memblock_add_node" else None
        flags = Flag(a["flags"]) if fn == "memblock_add_node" else Flag.MEMBLOCK_NONE
        return Add(a["base"], a["size"], nid, flags, **kw)
    if fn == "memblock_remove":
        return Remove(a["base"], a["size"], **kw)
    if fn == "memblock_reserve":
        return Reserve(a["base"], a["size"], **kw)
    if fn == "__memblock_reserve":
        return Reserve(a["base"], a["size"], _s32(a["nid"]), Flag(a["flags"]), **kw)
    if fn == "memblock_reserve_kern":
        return ReserveKern(a["base"], a["size"], **kw)
    if fn == "memblock_phys_free":
        return Free(a["base"], a["size"], **kw)
    if fn == "memblock_set_current_limit":
        return SetCurrentLimit(a["limit"], **kw)
    if fn == "memblock_set_bottom_up":
        return SetBottomUp(bool(a["enable"]), **kw)
    if fn == "memblock_allow_resize":
        return AllowResize(**kw)
    for verb, cls in (("mark", Mark), ("clear", Clear)):
        flag = _MARK_FLAGS.get(fn.removeprefix(f"memblock_{verb}_"))
        if fn.startswith(f"memblock_{verb}_") and flag is not None:
            return cls(flag, a["base"], a["size"], **kw)
    if fn == "memblock_reserved_mark_noinit":
        return Mark(Flag.MEMBLOCK_RSRV_NOINIT, a["base"], a["size"], **kw)
    accepted = ALLOC_APIS.get(fn)
    if accepted is None:
        return None
    return Alloc(
        fn, a["size"],
        align=a["align"] if "align" in accepted else None,
        nid=_s32(a["nid"]) if "nid" in accepted else None,
        min_addr=a["min_addr"] if "min" in accepted else None,
        max_addr=a["max_addr"] if "max" in accepted else None,
        exact=bool(a.get("exact_nid", 0)) if "exact" in accepted else False,
        **kw,
    )


def _debugfs_sections(tables: dict[str, str]) -> list[str]:
    """Debugfs files carried by ``record --debugfs``, as the capture sections the console parser reads."""
    out = []
    for name, text in sorted(tables.items()):
        out.append(f"===== BEGIN {name.replace('/', '-')} =====\n")
        out += [ln + "\n" for ln in text.splitlines()]
        out.append("===== END =====\n")
    return out


def _relocate(t: Trace, path: str, offs: array[int], tss: array[int], first: int) -> Trace:
    """Turn the rebuilt text's line numbers into record offsets and timestamps (line *first* is ``offs[0]``)."""
    n = len(offs)

    def src(s: Src | None) -> Src | None:
        if s is None or s.line is None:
            return s
        i = s.line - first
        if not 0 <= i < n or offs[i] < 0:
            return Src(path)  # a line that was no event: the capture's text kho-replay kept aside
        return Src(path, offset=offs[i], timestamp=tss[i] / 1e9, text=s.text)

    def position(p: str) -> str:
        i = int(p) - first if p.isdigit() else -1
        return f"@0x{offs[i]:08x}" if 0 <= i < n and offs[i] >= 0 else p

    # The console parser's ops are ours alone, just made: set their frozen src in place (replace() is slow).
    for item in (*t.ops, *t.observations):
        object.__setattr__(item, "src", src(item.src))
    ops, obs = t.ops, t.observations
    skipped = tuple(dataclasses.replace(s, position=position(s.position)) for s in t.skipped)
    return Trace(t.context, ops, obs, skipped)


def _merge(t: Trace, probe_ops: list[Op], probe_ts: array[int],
           probe_obs: list[tuple[int, int, KernelMessage]]) -> tuple[list[Op], list[Any]]:
    """Interleave probe ops and function observations with the console's by timestamp (console first on ties)."""
    if not probe_ops and not probe_obs:
        return list(t.ops), list(t.observations)

    def ts_of(s: Src | None, default: float) -> float:
        return s.timestamp if s is not None and s.timestamp is not None else default

    keyed: list[tuple[float, int, int, Any]] = []
    last = 0.0
    for i, op in enumerate(t.ops):
        last = ts_of(op.src, last)
        keyed.append((last, 0, i, op))
    keyed += [(ts / 1e9, 1, order, op) for order, (ts, op) in enumerate(zip(probe_ts, probe_ops, strict=True))]
    keyed.sort(key=lambda k: (k[0], k[1], k[2]))
    ops = [k[3] for k in keyed]
    new_index = {k[2]: n for n, k in enumerate(keyed) if k[1] == 0}
    new_index[len(t.ops)] = len(ops)
    obs: list[Any] = [dataclasses.replace(o, at=new_index.get(o.at, len(ops))) for o in t.observations]
    op_times = [k[0] for k in keyed]
    for ts, _, msg in probe_obs:
        obs.append(dataclasses.replace(msg, at=bisect.bisect_right(op_times, ts / 1e9)))
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


def read_tracedat(path: str | os.PathLike[str], *, strict: bool = False,
                  vmlinux: str | os.PathLike[str] | None = None) -> Trace:
    """Read a trace.dat's memblock activity into a Trace (see the module docs for what is read).

    :param strict: memblock-looking lines and probes we do not understand are errors.
    :param vmlinux: an ELF with symbols, to name function-tracer and probe addresses.
    :raises InputError: (FormatError, TruncatedError, UnsupportedError) with the byte offset.
    """
    p = os.fspath(path)
    syms = vmlinux_symbols(vmlinux) if vmlinux is not None else None
    with TraceDat(p) as td:
        try:
            return _Extractor(td, p, strict, syms).run()
        except KhoReplayError:
            raise
        except (struct.error, IndexError, UnicodeDecodeError) as e:
            raise FormatError(p, f"garbled event data ({e})", offset=0) from None
