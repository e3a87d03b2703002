# SPDX-License-Identifier: GPL-2.0-only
"""The trace.dat container walk: header, options, v6 blocks, v7 sections, CPU buffers, pages.

Opening a file (:class:`TraceDat`) reads the initial header and indexes the
metadata: for v6 the strictly sequential blocks up to the flyrecord CPU table,
for v7 the chain of options sections and the sections they point to.  Section
bodies are decompressed on first use; CPU buffers are decompressed chunk by
chunk and walked page by page only while :meth:`TraceDat.iter_records` is
consumed.  Records of all CPUs are merged by ``(timestamp, cpu)`` as
``trace-cmd report`` merges them.

Every construct, ``struct``, zlib and zstd call that touches file bytes goes
through :class:`_Source`, which knows the path and the offset and raises our
:class:`~kho_replay.replay.errors.InputError` subclasses ``from`` the library's
error.  The format is described in ``notes/tracedat-spec.md``; the section
numbers below refer to it.
"""

from __future__ import annotations

import array
import contextlib
import heapq
import io
import mmap
import os
import re
import struct
import sys
import zlib
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

import construct as C
import zstandard

from kho_replay.replay.errors import FormatError, TruncatedError, UnsupportedError
from kho_replay.replay.ops import Skipped

from .structs import MAGIC, TRACECMD_SEC_FL_COMPRESS, TraceCmdOption, TraceDatStructs

if TYPE_CHECKING:  # events.py imports this module; the names are needed for annotations only
    from .events import Event, EventDecoder

__all__ = ["Buffer", "CpuData", "HeaderPage", "Option", "Record", "TraceDat"]

Opt = TraceCmdOption

#: kbuffer's COMMIT_MASK and the two flag bits of the page's commit word (libtraceevent kbuffer-parse.c).
COMMIT_MASK = (1 << 27) - 1
RB_MISSED_EVENTS = 1 << 31
RB_MISSED_STORED = 1 << 30
#: ring_buffer event types (include/linux/ring_buffer.h).
RINGBUF_TYPE_PADDING = 29
RINGBUF_TYPE_TIME_EXTEND = 30
#: TIME_STAMP keeps the running timestamp's top 5 bits (kbuffer's TS_MSB).
TS_MSB = 0xF8 << 56
#: Missed-events count when the page says events were lost but not how many.
MISSED_UNKNOWN = -1
#: Sub-buffer sizes we accept: anything smaller cannot hold a page header, anything
#: larger than the 27-bit commit size cannot be described by the kernel.
MIN_PAGE_SIZE = 32
MAX_PAGE_SIZE = 1 << 27
#: Largest chunk a compressed CPU buffer may claim (trace-cmd writes 10 pages per chunk).
MAX_CHUNK_SIZE = 1 << 30

_HEADER_PAGE_FIELD = re.compile(
    rb"field:\s*([^;]*?)\s*(\w+)(?:\[\d*\])?;\s*offset:(\d+);\s*size:(\d+);\s*signed:(\d+);"
)
#: Options whose payload is the offset of a v7 section header (trace-cmd.dat.v7(5), OPTIONS SECTION).
_SECTION_POINTERS = frozenset({
    Opt.TRACECMD_OPTION_HEADER_INFO, Opt.TRACECMD_OPTION_FTRACE_EVENTS, Opt.TRACECMD_OPTION_EVENT_FORMATS,
    Opt.TRACECMD_OPTION_KALLSYMS, Opt.TRACECMD_OPTION_PRINTK, Opt.TRACECMD_OPTION_CMDLINES,
    Opt.TRACECMD_OPTION_BTF_FILE, Opt.TRACECMD_OPTION_MODULES_FILE,
})
_TAGS_V6 = {b"options", b"latency", b"flyrecord"}


#: Uncompressed CPU data is read this many pages at a time.
PAGES_PER_READ = 64


class Option(NamedTuple):
    """One option record as stored: ``id`` (a :class:`TraceCmdOption` when known), file
    ``offset`` of the record (of its section if compressed), raw ``data``."""

    id: int
    offset: int
    data: bytes


class CpuData(NamedTuple):
    """One CPU's ring-buffer pages: ``cpu`` id, absolute file ``offset``, stored ``size``."""

    cpu: int
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class Buffer:
    """A trace instance's flyrecord data (the top instance has ``name == ""``)."""

    name: str
    clock: str
    page_size: int
    cpus: tuple[CpuData, ...]
    #: CPU data is in trace-cmd's chunk container (trace-cmd.dat.v7(5), compressed flyrecord data), not raw pages.
    compressed: bool
    #: latency-format text instead of pages (v6 "latency" tag, v7 BUFFER_TEXT).
    latency: bool = False
    #: [start, end) of the v7 BUFFER section body holding the CPU data; None for v6.
    bounds: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class HeaderPage:
    """The kernel's ``events/header_page`` description (kernel/trace/ring_buffer.c: ring_buffer_print_page_header()).

    ``long_size`` is the *kernel's* long (size of ``commit``), which is what the
    pages use, whatever the file header's user-space long byte says.
    """

    timestamp_offset: int
    commit_offset: int
    long_size: int
    data_offset: int
    data_size: int


class Record(NamedTuple):
    """One data record from a ring-buffer page, before event decoding.

    ``ts`` is the (corrected) timestamp, ``payload`` the event bytes (common
    fields first), ``missed`` the events lost right before it (0 none,
    :data:`MISSED_UNKNOWN` for "some"), ``offset`` the file offset of the
    record (of its chunk in compressed files).
    """

    ts: int
    cpu: int
    payload: bytes
    missed: int
    offset: int


class _Source:
    """The one choke point between file bytes and the libraries that decode them."""

    def __init__(self, path: str, data: bytes | mmap.mmap) -> None:
        self.path = path
        self.data = data
        self.size = len(data)
        self._zstd: zstandard.ZstdDecompressor | None = None

    def format_error(self, offset: int | None, message: str) -> FormatError:
        return FormatError(self.path, message, offset=offset)

    def truncated(self, offset: int | None, message: str) -> TruncatedError:
        return TruncatedError(self.path, message, offset=offset)

    def unsupported(self, offset: int | None, message: str) -> UnsupportedError:
        return UnsupportedError(self.path, message, offset=offset)

    def parse(self, con: C.Construct, offset: int, what: str, *, buf: bytes | None = None,
              pos: int = 0) -> tuple[Any, int]:
        """Parse *con* at file *offset* (or at *pos* of the section body *buf*, reported at
        *offset*); return the value and the end position (file offset, or position in *buf*)."""
        if buf is None:
            stream: Any = self.data if isinstance(self.data, mmap.mmap) else io.BytesIO(self.data)
            start = offset
        else:
            stream = io.BytesIO(buf)
            start = pos
        if start > (self.size if buf is None else len(buf)):
            where = f"file (0x{self.size:x} bytes)" if buf is None else "section"
            raise self.truncated(offset, f"{what} lies beyond the end of the {where}")
        try:
            stream.seek(start)
            value = con.parse_stream(stream)
            end = stream.tell()
        except C.StreamError as e:
            raise self.truncated(offset, f"file ends inside {what}") from e
        except (C.ConstructError, ValueError, OverflowError) as e:
            raise self.format_error(offset, f"bad {what}: {_one_line(e)}") from e
        return value, end

    def read(self, offset: int, size: int, what: str) -> bytes:
        """Return exactly *size* bytes at *offset*, or raise TruncatedError naming *what*."""
        if offset < 0 or size < 0 or offset > self.size:
            raise self.format_error(offset, f"{what} lies outside the file ({self.size} bytes)")
        if offset + size > self.size:
            raise self.truncated(offset, f"file ends inside {what} ({size} bytes, "
                                         f"{self.size - offset} present)")
        try:
            return bytes(self.data[offset:offset + size])
        except ValueError as e:  # the mapping was closed under a live iterator
            raise self.format_error(offset, f"cannot read {what}: the file was closed") from e

    def decompress(self, algo: str, blob: bytes, rsize: int, offset: int, what: str) -> bytes:
        """Decompress one zstd frame or zlib stream that must yield *rsize* bytes."""
        try:
            if algo == "zstd":
                # trace-cmd writes frames without a content size (3.1.6 trace-compress-zstd.c); streaming never
                # allocates more than the frame really holds, whatever rsize claims.
                if self._zstd is None:
                    self._zstd = zstandard.ZstdDecompressor()  # one context for every chunk of the file
                out = self._zstd.decompressobj().decompress(blob)
            elif algo == "zlib":
                out = zlib.decompressobj().decompress(blob, rsize)
            else:
                raise self.unsupported(offset, f"compression {algo!r} is not supported")
        except (zstandard.ZstdError, zlib.error) as e:
            raise self.format_error(offset, f"{what}: {algo} data is corrupt: {_one_line(e)}") from e
        if len(out) != rsize:
            raise self.format_error(offset, f"{what}: {algo} gave {len(out)} bytes, header says {rsize}")
        return out


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:200]


def _cstr(b: bytes) -> str:
    return b.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


class TraceDat:
    """An open trace.dat file (v6 or v7), read lazily.

    Models trace-cmd's ``tracecmd_open()`` / ``tracecmd_read_headers()``: opening
    reads the header, the options and the metadata index; formats, kallsyms,
    printk formats and cmdlines are decoded on first use; CPU data only while
    iterating.  Use as a context manager or call :meth:`close`.

    >>> with TraceDat("traces/tracedat/synthetic/v7zstd.dat") as td:
    ...     (td.file_version, td.compression, td.header_page.long_size, td.cpu_count)
    (7, 'zstd', 8, 3)
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._file = None
        self._mmap: mmap.mmap | None = None
        try:
            self._file = open(self.path, "rb")  # noqa: SIM115 - kept open for the mmap's lifetime
            size = os.fstat(self._file.fileno()).st_size
            data: bytes | mmap.mmap = (
                mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
            )
        except OSError as e:
            self.close()
            raise FormatError(self.path, f"cannot read: {e.strerror or e}") from e
        if isinstance(data, mmap.mmap):
            self._mmap = data
        self._src = _Source(self.path, data)
        self.options: list[Option] = []
        self.buffers: list[Buffer] = []
        self._sections: dict[int, int] = {}
        self._v6_blobs: dict[str, Any] = {}
        self.ts_offset = 0
        self.tsc2nsec: tuple[int, int] | None = None
        self._cpucount: int | None = None
        #: ``(what, file offset)`` of each v6 block or v7 section, in file order.
        self.layout: list[tuple[str, int]] = []
        try:
            self._identify()
            if self.file_version >= 7:
                self._read_v7()
            else:
                self._read_v6()
        except BaseException:
            self.close()
            raise

    # -- life cycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Release the file and its mapping; records already yielded stay valid."""
        if self._mmap is not None:
            self._mmap.close()
            self._mmap = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> TraceDat:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- initial header (trace-cmd.dat.v7(5)) -----------------------------------------------

    def _identify(self) -> None:
        # Like ELFFile._identify_file(): byte order must be known before any struct is built.
        src = self._src
        head = bytes(src.data[:32])
        if len(head) < len(MAGIC) and MAGIC.startswith(head):
            raise src.truncated(0, "file ends inside the trace.dat magic")
        if not head.startswith(MAGIC):
            raise src.format_error(0, "not a trace.dat file (bad magic)")
        nul = head.find(b"\0", len(MAGIC))
        if nul < 0:
            if len(head) < 32:
                raise src.truncated(len(MAGIC), "file ends inside the version string")
            raise src.format_error(len(MAGIC), "version string is not terminated")
        vtext = head[len(MAGIC):nul]
        if not vtext.isdigit():
            raise src.format_error(len(MAGIC), f"version {vtext!r} is not a number")
        self.file_version = int(vtext)
        # trace-cmd's tracecmd_is_version_supported() rejects only versions above 7.
        if self.file_version > 7:
            raise src.unsupported(len(MAGIC), f"trace.dat version {self.file_version} (we read 6 and 7)")
        pos = nul + 1
        if len(head) < pos + 1:
            raise src.truncated(pos, "file ends inside the file header")
        endian = head[pos]
        if endian not in (0, 1):
            raise src.format_error(pos, f"endianness byte is {endian}, not 0 or 1")
        self.big_endian = endian == 1
        self.structs = TraceDatStructs(little_endian=not self.big_endian, long_size=8)
        tail, pos = src.parse(self.structs.file_header_tail, pos, "the file header")
        self.long_size = tail.long_size
        self.structs.long_size = tail.long_size
        self.page_size = tail.page_size
        self._check_page_size(self.page_size, pos - 4)
        self.structs.create_section_structs(self.file_version)
        self.compression = "none"
        self.compression_version = ""
        self._meta_offset = pos
        if self.file_version >= 7:
            v7, self._meta_offset = src.parse(self.structs.file_header_v7, pos, "the v7 file header")
            self.compression = _cstr(v7.compression)
            self.compression_version = _cstr(v7.compression_version)
            if self.compression not in ("none", "zstd", "zlib"):
                raise src.unsupported(pos, f"compression {self.compression!r} (we read none, zstd, zlib)")
            self._options_offset = v7.options_offset

    def _check_page_size(self, page_size: int, offset: int) -> None:
        if not MIN_PAGE_SIZE <= page_size <= MAX_PAGE_SIZE:
            raise self._src.format_error(offset, f"page size {page_size} is not plausible")

    # -- v7 sections (trace-cmd.dat.v7(5)) --------------------------------------------------

    def _section(self, offset: int, expect_id: int, what: str) -> tuple[int, int, int]:
        """Parse a section header; return (flags, body offset, body size)."""
        hdr, body = self._src.parse(self.structs.section_header, offset, f"the {what} section header")
        if hdr.id != expect_id:
            raise self._src.format_error(offset, f"expected section {expect_id} ({what}), found id {hdr.id}")
        return hdr.flags, body, hdr.size

    def _section_body(self, offset: int, expect_id: int, what: str) -> bytes:
        """Return a metadata section's body, decompressed if its flag says so (TRACECMD_SEC_FL_COMPRESS)."""
        flags, body, size = self._section(offset, expect_id, what)
        raw = self._src.read(body, size, f"the {what} section")
        if not flags & TRACECMD_SEC_FL_COMPRESS:
            return raw
        if self.compression == "none":
            raise self._src.format_error(offset, f"{what} section is compressed, the file says none")
        hdr, pos = self._src.parse(self.structs.compression_header, offset, f"the {what} block", buf=raw)
        if hdr.csize > len(raw) - pos:
            raise self._src.format_error(offset, f"{what} block of {hdr.csize} bytes overruns its section")
        # Pre-3.1 writers padded the block to the compression bound (trace-cmd < 3.1): ignore what follows csize.
        return self._src.decompress(self.compression, raw[pos:pos + hdr.csize], hdr.rsize, offset, what)

    def _read_v7(self) -> None:
        src = self._src
        # Walk first: a cut file is then reported in the section it ends in, not at a pointer past EOF.
        self._walk_sections()
        seen: set[int] = set()
        offset = self._options_offset
        while offset:
            if offset in seen:
                raise src.format_error(offset, "options sections form a loop")
            seen.add(offset)
            flags, body_off, _ = self._section(offset, Opt.TRACECMD_OPTION_DONE, "options")
            body = self._section_body(offset, Opt.TRACECMD_OPTION_DONE, "options")
            compressed = bool(flags & TRACECMD_SEC_FL_COMPRESS)
            offset = self._read_options_v7(body, body_off, offset, compressed)
        if Opt.TRACECMD_OPTION_HEADER_INFO not in self._sections:
            raise src.format_error(self._options_offset, "no header_page: HEADER_INFO option missing")
        self._parse_header_info(self._section_blob(Opt.TRACECMD_OPTION_HEADER_INFO))

    def _walk_sections(self) -> None:
        """Walk the section headers end to end, as trace-cmd's read_metadata_strings() does.

        Pointers alone would not notice a file cut inside a section nobody points
        at (STRINGS, written last); like trace-cmd, stop quietly at a gap of junk.
        """
        src = self._src
        pos = self._meta_offset
        known = {int(o) for o in Opt}
        while pos < src.size:
            if src.size - pos < 16:
                raise src.truncated(pos, "file ends inside a section header")
            hdr, body = src.parse(self.structs.section_header, pos, "a section header")
            if hdr.id not in known:
                return
            what = "options" if hdr.id == 0 else Opt(hdr.id).name.removeprefix("TRACECMD_OPTION_")
            if body + hdr.size > src.size:
                raise src.truncated(pos, f"file ends inside section {what} "
                                         f"({hdr.size} bytes, {src.size - body} present)")
            self.layout.append((what, pos))
            pos = body + hdr.size

    def _read_options_v7(self, body: bytes, body_off: int, sec_off: int, compressed: bool) -> int:
        """Handle one options section's list; return the next section's offset (0 = end)."""
        src = self._src
        s = self.structs
        pos = 0
        while True:
            at = sec_off if compressed else body_off + pos
            if pos == len(body):
                raise src.format_error(at, "options section ends without DONE")
            opt, pos = src.parse(s.option_v7, at, "an option", buf=body, pos=pos)
            if opt.id == Opt.TRACECMD_OPTION_DONE:
                nxt, _ = src.parse(s.done_v7, at, "the DONE option", buf=opt.data)
                return nxt
            self._handle_option(opt.id, opt.data, at)

    def _section_blob(self, sec: int) -> bytes:
        return self._section_body(self._sections[sec], sec, Opt(sec).name.removeprefix("TRACECMD_OPTION_"))

    # -- v6 blocks (trace-cmd.dat.v6(5)) ----------------------------------------------------

    def _read_v6(self) -> None:
        src, s = self._src, self.structs
        pos = self._meta_offset
        start = pos
        self.layout.append(("header_page", pos))
        hi, pos = src.parse(s.header_info, pos, "header_page/header_event")
        self._parse_header_info_parsed(hi, start)
        for key, con in (("ftrace_events", s.ftrace_events), ("event_formats", s.event_formats),
                         ("kallsyms", s.kallsyms), ("printk", s.printk), ("cmdlines", s.cmdlines)):
            self.layout.append((key, pos))
            self._v6_blobs[key], pos = src.parse(con, pos, key)
        self.layout.append(("cpus", pos))
        cpus, pos = src.parse(s.v6_cpus, pos, "the CPU count")
        self._cpucount = cpus
        tag_at = pos
        tag, pos = src.parse(s.v6_tag, pos, "the flyrecord tag")
        tag = self._v6_tag(tag, tag_at)
        if tag == b"options":
            self.layout.append(("options", tag_at))
            while True:
                at = pos
                opt, pos = src.parse(s.option_v6, pos, "an option")
                if opt.id == Opt.TRACECMD_OPTION_DONE:
                    break
                self._handle_option(opt.id, opt.data, at)
            tag_at = pos
            tag, pos = src.parse(s.v6_tag, pos, "the flyrecord tag")
            tag = self._v6_tag(tag, tag_at)
        clock = self._clock_name()
        if tag == b"latency":
            self.buffers.insert(0, Buffer("", clock, self.page_size, (CpuData(0, pos, src.size - pos),),
                                          compressed=False, latency=True))
            return
        if tag != b"flyrecord":
            raise src.format_error(tag_at, f"expected 'flyrecord', found {tag!r}")
        self.layout.append(("flyrecord", tag_at))
        table, _ = self._v6_cpu_table(pos, cpus)
        self.layout.extend((f"cpu{c.cpu}", c.offset) for c in table)
        self.buffers.insert(0, Buffer("", clock, self.page_size, table, compressed=False))

    def _v6_tag(self, raw: bytes, at: int) -> bytes:
        word = raw.split(b"\0", 1)[0].rstrip(b" ")
        if word not in _TAGS_V6:
            raise self._src.format_error(at, f"expected options/latency/flyrecord, found {raw!r}")
        return word

    def _v6_cpu_table(self, pos: int, cpus: int) -> tuple[tuple[CpuData, ...], int]:
        src = self._src
        if cpus * 16 > src.size - pos:
            raise src.truncated(pos, f"file ends inside the flyrecord table of {cpus} CPUs")
        table = []
        for cpu in range(cpus):
            ent, pos = src.parse(self.structs.v6_cpu_entry, pos, "the flyrecord table")
            if ent.size:  # (0, 0) = a CPU without data (spec pitfall 9)
                table.append(CpuData(cpu, ent.offset, ent.size))
        return tuple(table), pos

    # -- options (trace-cmd-private.h: enum tracecmd_option) --------------------------------

    def _handle_option(self, oid: int, data: bytes, at: int) -> None:
        """Models trace-cmd's handle_options(): remember what matters, keep everything."""
        src, s = self._src, self.structs
        # Unknown ids are skipped by size, as trace-cmd does, and kept in self.options.
        with contextlib.suppress(ValueError):
            oid = Opt(oid)
        self.options.append(Option(oid, at, data))
        if oid in _SECTION_POINTERS:
            if self.file_version >= 7:
                self._sections[oid], _ = src.parse(s.section_pointer, at, "a section pointer", buf=data)
        elif oid == Opt.TRACECMD_OPTION_BUFFER:
            self._buffer_option(data, at)
        elif oid == Opt.TRACECMD_OPTION_BUFFER_TEXT:
            opt, _ = src.parse(s.buffer_text_option, at, "a BUFFER_TEXT option", buf=data)
            self.buffers.append(Buffer(_cstr(opt.name), _cstr(opt.clock), self.page_size,
                                       (CpuData(0, opt.offset, 0),), compressed=False, latency=True))
        elif oid == Opt.TRACECMD_OPTION_CPUCOUNT:
            self._cpucount, _ = src.parse(s.cpucount, at, "a CPUCOUNT option", buf=data)
        elif oid in (Opt.TRACECMD_OPTION_DATE, Opt.TRACECMD_OPTION_OFFSET):
            # DATE is in microseconds; both are added to every timestamp (timestamp_calc()).
            text = _cstr(data).strip()
            try:
                value = int(text, 0)
            except ValueError:
                raise src.format_error(at, f"option {oid.name} is not a number: {text!r}") from None
            self.ts_offset += value * 1000 if oid == Opt.TRACECMD_OPTION_DATE else value
        elif oid == Opt.TRACECMD_OPTION_TSC2NSEC:
            t, _ = src.parse(s.tsc2nsec, at, "a TSC2NSEC option", buf=data)
            self.tsc2nsec = (t.mult, t.shift)

    def _buffer_option(self, data: bytes, at: int) -> None:
        src, s = self._src, self.structs
        if self.file_version < 7:
            # v6: an extra instance; its offset points at its own "flyrecord\0" tag (trace-cmd.dat.v6(5)).
            opt, _ = src.parse(s.buffer_option_v6, at, "a BUFFER option", buf=data)
            tag, pos = src.parse(s.v6_tag, opt.offset, "an instance's flyrecord tag")
            if self._v6_tag(tag, opt.offset) != b"flyrecord":
                raise src.format_error(opt.offset, "instance data is not flyrecord")
            table, _ = self._v6_cpu_table(pos, self._cpucount or 0)
            self.buffers.append(Buffer(_cstr(opt.name), self._clock_name(), self.page_size, table,
                                       compressed=False))
            return
        opt, _ = src.parse(s.buffer_option_v7, at, "a BUFFER option", buf=data)
        self._check_page_size(opt.page_size, at)
        flags, body, size = self._section(opt.offset, Opt.TRACECMD_OPTION_BUFFER, "buffer flyrecord")
        cpus = tuple(CpuData(c.cpu, c.offset, c.size) for c in opt.cpus)
        for c in cpus:
            # Cross-check the option against its section: CPU data must start inside it.
            if not body <= c.offset < body + size:
                raise src.format_error(at, f"CPU {c.cpu} data at 0x{c.offset:x} is outside its BUFFER "
                                           f"section [0x{body:x}, 0x{body + size:x})")
        self.buffers.append(Buffer(_cstr(opt.name), _cstr(opt.clock), opt.page_size, cpus,
                                   compressed=bool(flags & TRACECMD_SEC_FL_COMPRESS),
                                   bounds=(body, body + size)))

    def _clock_name(self) -> str:
        for opt in self.options:
            if opt.id == Opt.TRACECMD_OPTION_TRACECLOCK:
                m = re.search(rb"\[(\w[\w-]*)\]", opt.data)
                if m:
                    return m.group(1).decode("ascii")
        return "local"

    def option(self, oid: int) -> Option | None:
        """The last option with id *oid*, or None (trace-cmd lets later ones win)."""
        for opt in reversed(self.options):
            if opt.id == oid:
                return opt
        return None

    # -- metadata: header_page, event formats, kallsyms, printk formats ---------------------

    def _parse_header_info(self, body: bytes) -> None:
        off = self._sections[Opt.TRACECMD_OPTION_HEADER_INFO]
        hi, _ = self._src.parse(self.structs.header_info, off, "header_page/header_event", buf=body)
        self._parse_header_info_parsed(hi, off)

    def _parse_header_info_parsed(self, hi: Any, at: int) -> None:
        fields = {m.group(2): (int(m.group(3)), int(m.group(4)))
                  for m in _HEADER_PAGE_FIELD.finditer(hi.header_page)}
        self.header_page_text = bytes(hi.header_page)
        self.header_event_text = bytes(hi.header_event)
        try:
            ts_off, _ = fields[b"timestamp"]
            commit_off, long_size = fields[b"commit"]
            data_off, data_size = fields[b"data"]
        except KeyError as e:
            raise self._src.format_error(at, f"header_page lacks the {e.args[0].decode()} field") from None
        # kbuffer hard-codes these; a header_page that disagrees is not one we can decode.
        if (ts_off, commit_off) != (0, 8) or long_size not in (4, 8) or data_off != 8 + long_size:
            raise self._src.unsupported(
                at, f"header_page layout timestamp@{ts_off} commit@{commit_off}/{long_size} data@{data_off}")
        self.header_page = HeaderPage(ts_off, commit_off, long_size, data_off, data_size)

    @cached_property
    def ftrace_formats(self) -> tuple[bytes, ...]:
        """Format files of the ``ftrace`` system (function, print, bprint, ...), raw text."""
        if self.file_version < 7:
            return tuple(bytes(b) for b in self._v6_blobs["ftrace_events"])
        if Opt.TRACECMD_OPTION_FTRACE_EVENTS not in self._sections:
            return ()
        body = self._section_blob(Opt.TRACECMD_OPTION_FTRACE_EVENTS)
        at = self._sections[Opt.TRACECMD_OPTION_FTRACE_EVENTS]
        blobs, _ = self._src.parse(self.structs.ftrace_events, at, "the ftrace formats", buf=body)
        return tuple(bytes(b) for b in blobs)

    @cached_property
    def event_formats(self) -> tuple[tuple[str, tuple[bytes, ...]], ...]:
        """``(system, (format text, ...))`` for every other event system in the file."""
        if self.file_version < 7:
            systems = self._v6_blobs["event_formats"]
        elif Opt.TRACECMD_OPTION_EVENT_FORMATS not in self._sections:
            systems = []
        else:
            body = self._section_blob(Opt.TRACECMD_OPTION_EVENT_FORMATS)
            at = self._sections[Opt.TRACECMD_OPTION_EVENT_FORMATS]
            systems, _ = self._src.parse(self.structs.event_formats, at, "the event formats", buf=body)
        return tuple((_cstr(sys_.system), tuple(bytes(f) for f in sys_.formats)) for sys_ in systems)

    def _text_section(self, key: str, sec: int, con: C.Construct) -> bytes:
        if self.file_version < 7:
            return bytes(self._v6_blobs[key])
        if sec not in self._sections:
            return b""
        body = self._section_blob(sec)
        value, _ = self._src.parse(con, self._sections[sec], key, buf=body)
        return bytes(value)

    @cached_property
    def kallsyms_text(self) -> bytes:
        """The ``/proc/kallsyms`` text the recorder saved (may be empty)."""
        return self._text_section("kallsyms", Opt.TRACECMD_OPTION_KALLSYMS, self.structs.kallsyms)

    @cached_property
    def printk_text(self) -> bytes:
        """The ``printk_formats`` text the recorder saved (may be empty)."""
        return self._text_section("printk", Opt.TRACECMD_OPTION_PRINTK, self.structs.printk)

    @cached_property
    def cmdlines_text(self) -> bytes:
        """The ``saved_cmdlines`` text the recorder saved (may be empty)."""
        return self._text_section("cmdlines", Opt.TRACECMD_OPTION_CMDLINES, self.structs.cmdlines)

    def skipped(self) -> list[Skipped]:
        """What this reader kept but did not understand, as ``replay.ops.Skipped`` records.

        Unknown option ids (seen on open) and event IDs without a format (counted
        while events are decoded, so call this after iterating).
        """
        out = [Skipped(self.path, f"@0x{o.offset:08x}", f"unknown option {int(o.id)}", o.data.hex()[:64])
               for o in self.options if not isinstance(o.id, TraceCmdOption)]
        if "decoder" in self.__dict__:
            out += [Skipped(self.path, f"event id {eid}", f"no format for event id {eid} ({n} records)", "")
                    for eid, n in sorted(self.decoder.unknown.items())]
        return out

    @property
    def cpu_count(self) -> int:
        """CPU count as ``trace-cmd report`` prints it (``cpus=N``): CPUCOUNT, else max id + 1."""
        if self._cpucount is not None:
            return self._cpucount
        return max((c.cpu + 1 for b in self.buffers for c in b.cpus), default=0)

    def buffer(self, name: str = "") -> Buffer:
        """The flyrecord buffer of instance *name* (``""`` = top instance)."""
        for b in self.buffers:
            if b.name == name:
                return b
        # Name where the instances were read, so a damaged BUFFER option is found by offset.
        where = min((o.offset for o in self.options if o.id == TraceCmdOption.TRACECMD_OPTION_BUFFER), default=0)
        names = ", ".join(repr(b.name) for b in self.buffers) or "none"
        raise self._src.unsupported(where, f"no trace instance named {name!r} in the file (instances: {names})")

    # -- CPU data and ring-buffer pages (libtraceevent kbuffer-parse.c) ---------------------

    def iter_pages(self, buffer: Buffer, cpu: CpuData) -> Iterator[tuple[int, bytes]]:
        """Yield ``(file offset, page bytes)`` for one CPU, decompressing chunk by chunk.

        For compressed buffers the offset is that of the chunk holding the page.
        """
        src = self._src
        psize = buffer.page_size
        if buffer.latency:
            raise src.unsupported(cpu.offset, "latency-format data (text, not ring-buffer pages)")
        last = cpu.offset + (0 if buffer.compressed else cpu.size)
        if buffer.bounds is not None and last > buffer.bounds[1]:
            raise src.format_error(cpu.offset, f"CPU {cpu.cpu} data runs past its BUFFER section")
        if not buffer.compressed:
            if cpu.size % psize:
                raise src.format_error(cpu.offset, f"CPU {cpu.cpu} data size {cpu.size} is not a whole "
                                                   f"number of {psize}-byte pages")
            end = cpu.offset + cpu.size
            fd = self._file.fileno() if self._file is not None else None
            step = psize * PAGES_PER_READ
            for block in range(cpu.offset, end, step):
                want = min(step, end - block)
                # pread, not the mapping: mapped pages would stay in our RSS, and a trace can outgrow memory.
                data = os.pread(fd, want, block) if fd is not None and block + want <= src.size else b""
                if len(data) != want:
                    data = src.read(block, want, f"a CPU {cpu.cpu} page")  # names the truncation
                for p in range(0, want, psize):
                    if self._file is None:
                        src.read(block + p, psize, f"a CPU {cpu.cpu} page")  # closed meanwhile: our error
                    yield block + p, data[p:p + psize]
            return
        yield from self._iter_chunk_pages(cpu, psize, buffer.bounds[1] if buffer.bounds else src.size)

    def _iter_chunk_pages(self, cpu: CpuData, psize: int, limit: int) -> Iterator[tuple[int, bytes]]:
        src, s = self._src, self.structs
        # trace-cmd <= 3.1 writes data_size 4 bytes short (fixed in 3.2, 4b921329): walk the chunks.
        count, pos = src.parse(s.chunk_count, cpu.offset, f"CPU {cpu.cpu} chunk count")
        if count * 8 > src.size - pos:
            # <= 3.1.x wrote the count in host order (spec pitfall 4): try the other byte order.
            swapped = int.from_bytes(count.to_bytes(4, "little"), "big")
            if swapped * 8 > src.size - pos:
                raise src.format_error(cpu.offset, f"CPU {cpu.cpu} claims {count} chunks, more than fit")
            count = swapped
        carry = b""
        for _ in range(count):
            at = pos
            hdr, pos = src.parse(s.chunk_header, at, f"a CPU {cpu.cpu} chunk header")
            if hdr.size > MAX_CHUNK_SIZE:
                raise src.format_error(at, f"chunk claims {hdr.size} uncompressed bytes")
            if pos + hdr.zsize > limit and limit < src.size:
                raise src.format_error(at, f"CPU {cpu.cpu} chunk runs past its BUFFER section")
            blob = src.read(pos, hdr.zsize, f"a CPU {cpu.cpu} chunk")
            pos += hdr.zsize
            data = carry + src.decompress(self.compression, blob, hdr.size, at, f"CPU {cpu.cpu} chunk")
            whole = len(data) - len(data) % psize
            for p in range(0, whole, psize):
                yield at, data[p:p + psize]
            carry = data[whole:]
        if carry:
            raise src.format_error(pos, f"CPU {cpu.cpu} data ends with a partial page ({len(carry)} bytes)")

    def page_walker(self, buffer: Buffer, cpu: CpuData) -> Callable[[int, bytes], tuple[int, list[Any]]]:
        """A function ``walk(offset, page) -> (missed, records)`` for one CPU's pages.

        Models libtraceevent's kbuffer walk (``kbuffer_next_event()``): time
        extends, absolute time stamps, padding with and without delta, type-0
        "big" records and the missed-events bits of the commit word (libtraceevent
        kbuffer-parse.c, kernel/trace/ring_buffer.c).  *records* is one ``(ts, start, length, position)`` tuple per data
        record of the page, in ring-buffer order: the payload is
        ``page[start:start + length]`` and *position* the record's offset in the
        page.  *missed* is the events lost before the page (0 none, a count, or
        :data:`MISSED_UNKNOWN`).  A whole page at a time, so that callers that
        want one event type decode it in bulk instead of paying a generator
        step per record.
        """
        hp = self.header_page
        big = self.big_endian
        e = ">" if big else "<"
        u64 = struct.Struct(e + "Q").unpack_from
        ulong = struct.Struct(e + ("Q" if hp.long_size == 8 else "I")).unpack_from
        hdr = hp.data_offset
        cpu_id = cpu.cpu
        src = self._src
        correct = self._ts_correction()
        compressed_page = buffer.compressed

        def bad(poff: int, p: int, message: str) -> FormatError:
            return src.format_error(poff + (0 if compressed_page else p), message)

        # Header words read as 32-bit ints of a memoryview (or a byte-swapped array): no struct call per record.
        native = big == (sys.byteorder == "big")

        def walk(poff: int, page: bytes) -> tuple[int, list[Any]]:
            ts = u64(page, 0)[0]
            commit = ulong(page, 8)[0]
            size = commit & COMMIT_MASK
            end = hdr + size
            if end > len(page):
                raise src.format_error(poff, f"CPU {cpu_id} page commit size {size} overruns the page")
            missed = 0
            if commit & RB_MISSED_EVENTS:
                if commit & RB_MISSED_STORED and end + hp.long_size <= len(page):
                    missed = ulong(page, end)[0]
                else:
                    missed = MISSED_UNKNOWN
            out: list[Any] = []
            add = out.append
            if hdr % 4:
                raise src.format_error(poff, f"CPU {cpu_id} page data starts off the 32-bit word grid")
            whole = page if len(page) % 4 == 0 else page[:len(page) & ~3]  # no record starts in a last partial word
            if native:
                words: Any = memoryview(whole).cast("I")
            else:
                words = array.array("I", whole)
                words.byteswap()
            i, e4 = hdr >> 2, end >> 2  # record headers are 4-byte aligned (ring_buffer.c rb_event_length())
            tail = (end - hdr) % 4  # a commit size off the word grid: its last partial word is no record
            if tail:
                e4 += 1
            while i < e4:
                if 4 * i + 4 > end:
                    raise bad(poff, 4 * i, "record overruns page")
                w = words[i]
                if big:
                    tl, delta = w >> 27, w & 0x7FFFFFF
                else:
                    tl, delta = w & 31, w >> 5
                if tl and tl < RINGBUF_TYPE_PADDING:
                    ts += delta
                    nxt = i + 1 + tl
                    if 4 * nxt > end:
                        raise bad(poff, 4 * i, "record overruns page")
                    add((ts, 4 * i + 4, tl * 4, 4 * i))
                    i = nxt
                    continue
                p = 4 * i
                if tl == RINGBUF_TYPE_PADDING and delta == 0:
                    break  # null padding: the rest of the page is unused
                if p + 8 > end:
                    raise bad(poff, p, "record overruns page")
                arg = words[i + 1]
                if tl == 0:
                    ts += delta
                    length = arg - 4
                    nxt = p + 8 + ((length + 3) & ~3)
                    if length < 0 or nxt > end:
                        raise bad(poff, p, f"big record length {length + 4} overruns page")
                    add((ts, p + 8, length, p))
                elif tl == RINGBUF_TYPE_PADDING:
                    ts += delta  # kbuffer keeps a discarded event's delta (kbuffer-parse.c)
                    nxt = p + 4 + arg
                    if nxt > end:
                        raise bad(poff, p, "padding record overruns page")
                    if nxt % 4:
                        raise bad(poff, p, "padding record ends off the 32-bit word grid")
                elif tl == RINGBUF_TYPE_TIME_EXTEND:
                    ts += (arg << 27) + delta
                    nxt = p + 8
                else:
                    ts = ((arg << 27) | delta) | (ts & TS_MSB)
                    nxt = p + 8
                i = nxt >> 2
            if correct is not None:
                out = [(correct(t), a, b, c) for t, a, b, c in out]
            return missed, out

        return walk

    def iter_cpu_records(self, buffer: Buffer, cpu: CpuData, *, types: Container[int] | None = None,
                         dropped: dict[int, int] | None = None,
                         project: Callable[[int, int, bytes, int, int], Any] | None = None) -> Iterator[Any]:
        """Yield one CPU's records in ring-buffer order (timestamps ascending), as :meth:`page_walker` reads them.

        With *types*, only records whose ``common_type`` is in it are yielded
        (their time still counts); *dropped* then counts the others by type.
        A missed-events count waits for the next record yielded.  With
        *project*, ``project(ts, cpu, page, start, length)`` is yielded instead
        of a Record (decoding in place, without copying the payload); None
        results are left out.
        """
        walk = self.page_walker(buffer, cpu)
        cpu_id = cpu.cpu
        compressed_page = buffer.compressed
        # tuple.__new__ skips the NamedTuple's Python-level __new__: one frame less per record.
        new_record = tuple.__new__
        pending_missed = 0
        type_of = struct.Struct(">H" if self.big_endian else "<H").unpack_from
        for poff, page in self.iter_pages(buffer, cpu):
            missed, recs = walk(poff, page)
            if missed:
                pending_missed = missed
            for ts, start, length, p in recs:
                if types is not None and length >= 2:
                    eid = type_of(page, start)[0]
                    if eid not in types:
                        # Filtered before the payload is copied: most of a record's cost is never paid.
                        if dropped is not None:
                            dropped[eid] = dropped.get(eid, 0) + 1
                        continue
                if project is not None:
                    item = project(ts, cpu_id, page, start, length)
                    if item is not None:
                        yield item
                    continue
                yield new_record(Record, (ts, cpu_id, page[start:start + length], pending_missed,
                                          poff + (0 if compressed_page else p)))
                pending_missed = 0

    def _ts_correction(self) -> Any:
        """Models trace-cmd's timestamp_calc() minus guest sync: TSC2NSEC, then DATE/OFFSET."""
        tsc, off = self.tsc2nsec, self.ts_offset
        if tsc is None and not off:
            return None
        if tsc is None:
            return lambda ts: ts + off
        mult, shift = tsc
        return lambda ts: ((ts * mult) >> shift) + off

    @cached_property
    def decoder(self) -> EventDecoder:
        """The file's :class:`~.events.EventDecoder` (formats parsed as IDs are met)."""
        from .events import EventDecoder  # events.py builds on this module: import late, one way

        return EventDecoder(self)

    def iter_events(self, instance: str = "", *,
                    only: Iterable[tuple[str | None, str]] | None = None) -> Iterator[Event]:
        """Yield decoded :class:`~.events.Event` records of *instance* in report order.

        *only*, a list of ``(system, name)`` pairs (system may be None), keeps
        just those events; the others are skipped before their bodies are decoded.

        >>> with TraceDat("traces/tracedat/synthetic/v7zstd.dat") as td:
        ...     sum(1 for _ in td.iter_events()), sum(1 for _ in td.iter_events(only=[("printk", "console")]))
        (200, 29)
        """
        dec = self.decoder
        decode = dec.decode
        # Inline the ID dispatch: the decoder table is filled by decode() on first sight.
        table = dec.decoders
        type_of = struct.Struct(">H" if self.big_endian else "<H").unpack_from
        wanted = None
        if only is not None:
            wanted = {fmt.id for fmt in (dec.find(system, name) for system, name in only) if fmt is not None}
            if not wanted:
                return
        for rec in self.iter_records(instance):
            payload = rec[2]
            if len(payload) < 2:
                yield decode(rec)  # reports the record as garbled
                continue
            eid = type_of(payload)[0]
            if wanted is not None and eid not in wanted:
                continue
            fn = table.get(eid)
            yield fn(rec) if fn is not None else decode(rec)

    def iter_records(self, instance: str = "", *, types: Container[int] | None = None,
                     dropped: dict[int, int] | None = None,
                     project: Callable[[int, int, bytes, int, int], Any] | None = None) -> Iterator[Any]:
        """Yield the records of *instance* in timestamp order across CPUs.

        Ties go to the lower CPU, as in trace-cmd's report merge (trace-input.c).  *types*,
        *dropped* and *project* as in :meth:`iter_cpu_records`; projections must
        start with ``(ts, cpu)`` to merge in order.
        """
        buf = self.buffer(instance)
        streams = [self.iter_cpu_records(buf, c, types=types, dropped=dropped, project=project)
                   for c in sorted(buf.cpus, key=lambda c: c.cpu)]
        if len(streams) == 1:
            return streams[0]
        # Record starts with (ts, cpu): unique across streams, so payloads are never compared.
        return heapq.merge(*streams)
