# SPDX-License-Identifier: GPL-2.0-only
"""Write trace.dat files whose ``printk:console`` events carry given console lines.

:func:`write_tracedat` produces what ``trace-cmd extract`` would have written
for a kernel that traced ``printk:console`` only: v7 with zstd by default
(also none or zlib), or v6; either byte order; 4- or 8-byte kernel longs.
Layout follows trace-cmd.dat.v7(5) and trace-cmd 3.1.6's own
order: metadata sections, a first options section whose DONE points past the
BUFFER section to a second options section holding the BUFFER option, and
the STRINGS section last, all contiguous (trace-cmd finds STRINGS by walking
section headers).  CPU data is real ring-buffer pages: a page timestamp,
27-bit deltas, TIME_EXTEND records for longer gaps, type-0 records for
payloads over 112 bytes.

Every container layout comes from :mod:`.structs`; this module only fills them.

>>> import os, tempfile
>>> from kho_replay.parsers.tracedat import open_tracedat
>>> path = os.path.join(tempfile.mkdtemp(), "boot.dat")
>>> write_tracedat(path, [ConsoleLine(1_000_000_000, 0, 1, "memblock_reserve: [0x1000-0x1fff] x+0x1/0x2")])
>>> with open_tracedat(path) as td:
...     [(e.ts, e.get("msg")) for e in td.iter_events()]
[(1000000000, 'memblock_reserve: [0x1000-0x1fff] x+0x1/0x2')]
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import zstandard

from kho_replay.replay.errors import UnsupportedError

from .events import ConsoleLine
from .structs import MAGIC, TRACECMD_SEC_FL_COMPRESS, TraceCmdOption, TraceDatStructs

__all__ = ["CONSOLE_EVENT_ID", "CONSOLE_FORMAT", "FUNCTION_FORMAT", "ConsoleLine", "RawEvent", "probe_format",
           "write_tracedat"]

Opt = TraceCmdOption

#: The ID our console format declares (IDs are per boot; readers match by name).
CONSOLE_EVENT_ID = 411
#: trace-cmd compresses CPU data in chunks of 10 pages (tracecmd_compress_copy_from()).
PAGES_PER_CHUNK = 10
#: Largest payload a type_len 1..28 record holds (RB_MAX_SMALL_DATA).
RB_MAX_SMALL_DATA = 28 * 4
#: Time deltas are 27 bits; longer gaps take a TIME_EXTEND record.
TS_DELTA_LIMIT = 1 << 27

_HEADER_EVENT = (
    b"# compressed entry header\n\ttype_len    :    5 bits\n\ttime_delta  :   27 bits\n"
    b"\tarray       :   32 bits\n\n\tpadding     : type == 29\n\ttime_extend : type == 30\n"
    b"\ttime_stamp : type == 31\n\tdata max type_len  == 28\n"
)
#: ``events/printk/console/format`` as a 6.x kernel prints it in tracefs (``{id}`` to fill).
CONSOLE_FORMAT = (
    "name: console\nID: {id}\nformat:\n"
    "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
    "\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n"
    "\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n"
    "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n"
    "\tfield:__data_loc char[] msg;\toffset:8;\tsize:4;\tsigned:0;\n\n"
    'print fmt: "%s", __get_str(msg)\n'
)
_COMMON_FIELDS = (
    "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
    "\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n"
    "\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n"
    "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n"
)
#: ``events/ftrace/function/format`` of a 64-bit kernel (``{id}`` to fill).
FUNCTION_FORMAT = (
    "name: function\nID: {id}\nformat:\n" + _COMMON_FIELDS
    + "\tfield:unsigned long ip;\toffset:8;\tsize:8;\tsigned:0;\n"
    "\tfield:unsigned long parent_ip;\toffset:16;\tsize:8;\tsigned:0;\n\n"
    'print fmt: " %ps <-- %ps", (void *)REC->ip, (void *)REC->parent_ip\n'
)
_PROBE_TYPES = {"u": ("u", "%u", "%Lu"), "s": ("s", "%d", "%Ld"), "x": ("u", "0x%x", "0x%Lx")}


def probe_format(name: str, event_id: int, args: list[tuple[str, str]], *, is_return: bool = False,
                 long_size: int = 8) -> str:
    """A kprobe/kretprobe ``format`` file as the kernel's trace_probe.c prints it in tracefs.

    *args* are ``(name, fetch type)`` with types ``u8``..``u64``, ``s8``..``s64``,
    ``x8``..``x64`` or ``string``; fields are packed back to back after the
    probe's own (``__probe_ip``, or ``__probe_func`` and ``__probe_ret_ip``).

    >>> print(probe_format("memblock_add", 7, [("base", "x64")]).splitlines()[-1])
    print fmt: "(%lx) base=0x%Lx", REC->__probe_ip, REC->base
    """
    own = ["__probe_func", "__probe_ret_ip"] if is_return else ["__probe_ip"]
    lines = [f"name: {name}\nID: {event_id}\nformat:\n{_COMMON_FIELDS}"]
    off = 8
    for f in own:
        lines.append(f"\tfield:unsigned long {f};\toffset:{off};\tsize:{long_size};\tsigned:0;\n")
        off += long_size
    fmts, refs = [], [f"REC->{f}" for f in own]
    for arg, ftype in args:
        if ftype == "string":
            lines.append(f"\tfield:__data_loc char[] {arg};\toffset:{off};\tsize:4;\tsigned:1;\n")
            fmts.append(f'{arg}=\\"%s\\"')
            refs.append(f"__get_str({arg})")
            off += 4
            continue
        decl, short, wide = _PROBE_TYPES[ftype[0]]
        bits = int(ftype[1:])
        lines.append(f"\tfield:{decl}{bits} {arg};\toffset:{off};\tsize:{bits // 8};"
                     f"\tsigned:{int(ftype[0] == 's')};\n")
        fmts.append(f"{arg}={wide if bits == 64 else short}")
        refs.append(f"REC->{arg}")
        off += bits // 8
    head = "(%lx <- %lx)" if is_return else "(%lx)"
    lines.append(f'\nprint fmt: "{" ".join([head, *fmts])}", {", ".join(refs)}\n')
    return "".join(lines)


_TRACECLOCK = b"[local] global counter uptime perf mono mono_raw boot\n"
#: Section descriptions, in the order trace-cmd 3.1.6 adds them to its string table.
_DESCRIPTIONS = ("headers", "ftrace events", "events format", "kallsyms", "printk", "command lines",
                 "options", "buffer flyrecord ", "strings")


def _header_page(long_size: int, page_size: int) -> bytes:
    data = 8 + long_size
    return (
        f"\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n"
        f"\tfield: local_t commit;\toffset:8;\tsize:{long_size};\tsigned:1;\n"
        f"\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n"
        f"\tfield: char data;\toffset:{data};\tsize:{page_size - data};\tsigned:0;\n"
    ).encode()


class RawEvent(NamedTuple):
    """One event to write as given: time in ns, CPU, and its payload (common fields first)."""

    ts: int
    cpu: int
    payload: bytes


class _PageWriter:
    """Packs one CPU's records into ring-buffer pages, the way the kernel lays them out."""

    def __init__(self, big_endian: bool, long_size: int, page_size: int, path: str) -> None:
        e = ">" if big_endian else "<"
        self.big = big_endian
        self.u32 = struct.Struct(e + "I").pack
        self.hdr = struct.Struct(e + "Q" + ("Q" if long_size == 8 else "I")).pack
        self.payload_head = struct.Struct(e + "HBBiI").pack
        self.data_off = 8 + long_size
        self.page_size = page_size
        self.room = page_size - self.data_off
        self.path = path

    def _word(self, type_len: int, delta: int) -> bytes:
        # The bit-field is allocated from the least (LE) or most (BE) significant bit (as kbuffer-parse.c reads it).
        return self.u32((type_len << 27) | delta if self.big else (delta << 5) | type_len)

    def record(self, delta: int, payload: bytes) -> bytes:
        """One data record (with a TIME_EXTEND before it if *delta* needs more than 27 bits)."""
        out = b""
        if delta >= TS_DELTA_LIMIT:
            out = self._word(30, delta & (TS_DELTA_LIMIT - 1)) + self.u32(delta >> 27)
            delta = 0
        padded = payload + bytes(-len(payload) % 4)
        if len(padded) <= RB_MAX_SMALL_DATA:
            return out + self._word(len(padded) // 4, delta) + padded
        return out + self._word(0, delta) + self.u32(len(payload) + 4) + padded

    def console_payload(self, line: ConsoleLine, event_id: int) -> bytes:
        """The ``printk:console`` payload for *line*: common fields, data_loc word, msg."""
        msg = line.msg.encode("utf-8", "surrogateescape") + b"\0"
        if len(msg) > 0xFFFF:
            raise UnsupportedError(self.path, f"console line of {len(msg)} bytes exceeds data_loc's 64K")
        return self.payload_head(event_id, 0, 0, line.pid, (len(msg) << 16) | 12) + msg

    def pages(self, events: list[tuple[int, bytes]]) -> Iterator[bytes]:
        """Yield whole pages for *events*, ``(ts, payload)`` of one CPU with timestamps ascending."""
        page_ts = None
        body = bytearray()
        prev = 0
        for ts, payload in events:
            rec = self.record(0 if page_ts is None else ts - prev, payload)
            if page_ts is not None and len(body) + len(rec) > self.room:
                yield self._page(page_ts, body)
                page_ts, body = None, bytearray()
            if page_ts is None:
                page_ts = ts
                rec = self.record(0, payload)
                if len(rec) > self.room:
                    raise UnsupportedError(self.path, f"an event of {len(payload)} bytes does not fit a "
                                                      f"{self.page_size}-byte page")
            body += rec
            prev = ts
        if page_ts is not None:
            yield self._page(page_ts, body)

    def _page(self, ts: int, body: bytearray) -> bytes:
        return self.hdr(ts, len(body)) + bytes(body) + bytes(self.room - len(body))


class _Compressor:
    def __init__(self, algo: str, path: str) -> None:
        self.algo = algo
        if algo == "zstd":
            # trace-cmd's frames carry no content size; readers must cope, so we do the same.
            self._z = zstandard.ZstdCompressor(level=3, write_content_size=False)
            self.version = ".".join(map(str, zstandard.ZSTD_VERSION))
        elif algo == "zlib":
            self.version = zlib.ZLIB_VERSION
        elif algo == "none":
            self.version = ""
        else:
            raise UnsupportedError(path, f"compression {algo!r} (we write none, zstd, zlib)")

    def __call__(self, data: bytes) -> bytes:
        if self.algo == "zstd":
            return self._z.compress(data)
        return zlib.compress(data, 9)


def write_tracedat(
    path: str | os.PathLike[str],
    lines: Iterable[ConsoleLine],
    *,
    version: int = 7,
    compression: str = "zstd",
    big_endian: bool = False,
    long_size: int = 8,
    page_size: int = 4096,
    cpus: int | None = None,
    comms: dict[int, str] | None = None,
    options: Iterable[tuple[int, bytes]] = (),
    events: Iterable[RawEvent] = (),
    formats: Iterable[tuple[str, str]] = (),
    kallsyms: bytes = b"",
    uname: str | None = None,
) -> None:
    """Write *lines* as ``printk:console`` events into a new trace.dat at *path*.

    Models trace-cmd's ``tracecmd_output`` path for ``extract`` (trace-output.c).
    *compression* applies to v7 only (v6 has none).  *cpus* defaults to the
    highest CPU used plus one; CPUs without lines are left out, as trace-cmd
    leaves out empty CPUs.  *comms* fills saved_cmdlines (pid -> comm).
    *options* are extra ``(option id, payload)`` records for the first options
    list (e.g. ``TRACECMD_OPTION_OFFSET``), written as given.  *events* are
    other records written as given beside the console lines, *formats* their
    ``(system, format file text)`` as tracefs prints them (kprobes, function),
    *kallsyms* the ``/proc/kallsyms`` text and *uname* the UNAME option.

    :raises UnsupportedError: a version, compression, long size or line we cannot write.
    """
    out_path = os.fspath(path)
    if version not in (6, 7):
        raise UnsupportedError(out_path, f"cannot write trace.dat version {version}")
    if long_size not in (4, 8):
        raise UnsupportedError(out_path, f"kernel long size {long_size} (4 or 8)")
    if version == 6:
        compression = "none"
    comp = _Compressor(compression, out_path)
    s = TraceDatStructs(little_endian=not big_endian, long_size=long_size)
    s.create_section_structs(version)
    pw = _PageWriter(big_endian, long_size, page_size, out_path)
    records = [(line.cpu, line.ts, pw.console_payload(line, CONSOLE_EVENT_ID)) for line in lines]
    records += [(ev.cpu, ev.ts, ev.payload) for ev in events]
    per_cpu: dict[int, list[tuple[int, bytes]]] = {}
    # A stable sort: equal timestamps keep the order they were given in.
    for cpu, ts, payload in sorted(records, key=lambda r: (r[0], r[1])):
        per_cpu.setdefault(cpu, []).append((ts, payload))
    ncpus = cpus if cpus is not None else max(per_cpu, default=-1) + 1
    cpu_pages = {cpu: b"".join(pw.pages(evs)) for cpu, evs in sorted(per_cpu.items())}
    systems: dict[str, list[bytes]] = {"printk": [CONSOLE_FORMAT.format(id=CONSOLE_EVENT_ID).encode()]}
    ftrace: list[bytes] = []
    for system, text in formats:
        # The ftrace system's formats live in their own section (FTRACE_EVENTS), as trace-cmd stores them.
        (ftrace if system == "ftrace" else systems.setdefault(system, [])).append(text.encode())

    meta = {
        Opt.TRACECMD_OPTION_HEADER_INFO: s.header_info.build(
            {"header_page": _header_page(long_size, page_size), "header_event": _HEADER_EVENT}),
        Opt.TRACECMD_OPTION_FTRACE_EVENTS: s.ftrace_events.build(ftrace),
        Opt.TRACECMD_OPTION_EVENT_FORMATS: s.event_formats.build(
            [{"system": name.encode(), "formats": fmts} for name, fmts in systems.items()]),
        Opt.TRACECMD_OPTION_KALLSYMS: s.kallsyms.build(kallsyms),
        Opt.TRACECMD_OPTION_PRINTK: s.printk.build(b""),
        Opt.TRACECMD_OPTION_CMDLINES: s.cmdlines.build(
            "".join(f"{pid} {comm}\n" for pid, comm in sorted((comms or {}).items())).encode()),
    }
    head = MAGIC + f"{version}\0".encode() + s.file_header_tail.build(
        {"endian": int(big_endian), "long_size": long_size, "page_size": page_size})
    extra = [(int(oid), bytes(data)) for oid, data in options]
    if uname is not None:
        extra.insert(0, (int(Opt.TRACECMD_OPTION_UNAME), uname.encode("utf-8", "surrogateescape") + b"\0"))
    with open(out_path, "wb") as f:
        if version == 6:
            f.write(_v6(s, head, meta, cpu_pages, ncpus, page_size, extra))
        else:
            f.write(_v7(s, head, meta, cpu_pages, ncpus, page_size, comp, extra))


def _option_v7(s: TraceDatStructs, oid: int, data: bytes) -> bytes:
    return s.option_v7.build({"id": oid, "size": len(data), "data": data})


def _v6(s: TraceDatStructs, head: bytes, meta: dict[Opt, bytes], cpu_pages: dict[int, bytes],
        ncpus: int, page_size: int, extra: list[tuple[int, bytes]]) -> bytes:
    out = bytearray(head)
    for sec in (Opt.TRACECMD_OPTION_HEADER_INFO, Opt.TRACECMD_OPTION_FTRACE_EVENTS,
                Opt.TRACECMD_OPTION_EVENT_FORMATS, Opt.TRACECMD_OPTION_KALLSYMS, Opt.TRACECMD_OPTION_PRINTK,
                Opt.TRACECMD_OPTION_CMDLINES):
        out += meta[sec]
    out += s.v6_cpus.build(ncpus)
    out += b"options  \0"
    for oid, data in [(Opt.TRACECMD_OPTION_TRACECLOCK, _TRACECLOCK),
                      (Opt.TRACECMD_OPTION_CPUCOUNT, s.cpucount.build(ncpus)), *extra]:
        out += s.option_v6.build({"id": oid, "size": len(data), "data": data})
    out += s.option_v6.build({"id": 0, "size": None, "data": None})
    out += b"flyrecord\0"
    table_at = len(out)
    # The clock blob follows the table because TRACECLOCK is present (spec pitfall 12).
    clock = s.v6_clock.build(b"[local]")
    pos = table_at + 16 * ncpus + len(clock)
    entries = []
    data = bytearray()
    for cpu in range(ncpus):
        pages = cpu_pages.get(cpu, b"")
        if not pages:
            entries.append((0, 0))
            continue
        pad = -(pos + len(data)) % page_size
        data += bytes(pad)
        entries.append((pos + len(data), len(pages)))
        data += pages
    for off, size in entries:
        out += s.v6_cpu_entry.build({"offset": off, "size": size})
    out += clock
    out += data
    return bytes(out)


def _v7(s: TraceDatStructs, head: bytes, meta: dict[Opt, bytes], cpu_pages: dict[int, bytes],
        ncpus: int, page_size: int, comp: _Compressor, extra: list[tuple[int, bytes]]) -> bytes:
    compressed = comp.algo != "none"
    strings = bytearray()
    desc_of: dict[str, int] = {}
    for d in _DESCRIPTIONS:
        desc_of[d] = len(strings)
        strings += d.encode() + b"\0"

    def section(sid: int, desc: str, body: bytes, compress: bool) -> bytes:
        flags = 0
        if compress:
            z = comp(body)
            body = s.compression_header.build({"csize": len(z), "rsize": len(body)}) + z
            flags = TRACECMD_SEC_FL_COMPRESS
        return s.section_header.build(
            {"id": sid, "flags": flags, "description": desc_of[desc], "size": len(body)}) + body

    v7_fields = {"compression": comp.algo.encode(), "compression_version": comp.version.encode()}
    v7_head_len = len(head) + len(s.file_header_v7.build({**v7_fields, "options_offset": 0}))
    out = bytearray()
    pointers = []
    names = {Opt.TRACECMD_OPTION_HEADER_INFO: "headers", Opt.TRACECMD_OPTION_FTRACE_EVENTS: "ftrace events",
             Opt.TRACECMD_OPTION_EVENT_FORMATS: "events format", Opt.TRACECMD_OPTION_KALLSYMS: "kallsyms",
             Opt.TRACECMD_OPTION_PRINTK: "printk", Opt.TRACECMD_OPTION_CMDLINES: "command lines"}
    for sec, body in meta.items():
        pointers.append((sec, v7_head_len + len(out)))
        out += section(sec, names[sec], body, compressed)
    options1_at = v7_head_len + len(out)
    opts = b"".join(_option_v7(s, sec, s.section_pointer.build(off)) for sec, off in pointers)
    opts += _option_v7(s, Opt.TRACECMD_OPTION_TRACECLOCK, _TRACECLOCK)
    opts += _option_v7(s, Opt.TRACECMD_OPTION_CPUCOUNT, s.cpucount.build(ncpus))
    opts += b"".join(_option_v7(s, oid, data) for oid, data in extra)
    # DONE's payload (the next options section) is patched once the BUFFER section's size is known.
    done_len = len(_option_v7(s, Opt.TRACECMD_OPTION_DONE, s.done_v7.build(0)))
    options1_len = 16 + len(opts) + done_len
    buffer_at = options1_at + options1_len
    # BUFFER section body: per CPU, zero padding to a page-aligned file offset, then the data.
    body = bytearray()
    cpu_entries = []
    for cpu, pages in cpu_pages.items():
        if compressed:
            chunks = [pages[i:i + PAGES_PER_CHUNK * page_size]
                      for i in range(0, len(pages), PAGES_PER_CHUNK * page_size)]
            blob = bytearray(s.chunk_count.build(len(chunks)))
            for chunk in chunks:
                z = comp(chunk)
                blob += s.chunk_header.build({"zsize": len(z), "size": len(chunk)}) + z
            data = bytes(blob)
        else:
            data = pages
        pad = -(buffer_at + 16 + len(body)) % page_size
        body += bytes(pad)
        cpu_entries.append({"cpu": cpu, "offset": buffer_at + 16 + len(body), "size": len(data)})
        body += data
    buffer_sec = s.section_header.build({"id": Opt.TRACECMD_OPTION_BUFFER,
                                         "flags": TRACECMD_SEC_FL_COMPRESS if compressed else 0,
                                         "description": desc_of["buffer flyrecord "], "size": len(body)})
    options2_at = buffer_at + len(buffer_sec) + len(body)
    opts1 = opts + _option_v7(s, Opt.TRACECMD_OPTION_DONE, s.done_v7.build(options2_at))
    options1 = s.section_header.build({"id": 0, "flags": 0, "description": desc_of["options"],
                                       "size": len(opts1)}) + opts1
    buf_opt = s.buffer_option_v7.build({"offset": buffer_at, "name": b"", "clock": b"local",
                                        "page_size": page_size, "cpus": cpu_entries})
    opts2 = _option_v7(s, Opt.TRACECMD_OPTION_BUFFER, buf_opt) + _option_v7(
        s, Opt.TRACECMD_OPTION_DONE, s.done_v7.build(0))
    options2 = s.section_header.build({"id": 0, "flags": 0, "description": desc_of["options"],
                                       "size": len(opts2)}) + opts2
    header = head + s.file_header_v7.build({**v7_fields, "options_offset": options1_at})
    strings_sec = section(Opt.TRACECMD_OPTION_STRINGS, "strings", bytes(strings), compressed)
    return b"".join((header, bytes(out), options1, buffer_sec, bytes(body), options2, strings_sec))
