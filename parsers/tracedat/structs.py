# SPDX-License-Identifier: GPL-2.0-only
"""construct layouts of the trace-cmd ``trace.dat`` container, and nothing else.

Like pyelftools' ``ELFStructs``, :class:`TraceDatStructs` is a factory
parameterised by what the file's first bytes say: the byte order (the byte
after the version string) and the recording tool's ``sizeof(long)``.  The
reader identifies those by hand (:data:`MAGIC`, :func:`identify`), then asks the
factory for everything else.  Names follow trace-cmd's
(``header_page``, ``flyrecord``, ``TRACECMD_OPTION_BUFFER``); layouts are from
``Documentation/trace-cmd/trace-cmd.dat.v6.5.txt`` / ``v7.5.txt`` and, where
those are out of date, from what trace-cmd 3.1.6 writes.

Text payloads stay ``bytes`` (construct's ``CString`` refuses latin-1); the
reader decodes them.  Ring-buffer pages and event records are *not* here: they
are decoded with ``struct.Struct`` objects built once per file (``events.py``).
"""

from __future__ import annotations

import enum

import construct as C
from construct import this

__all__ = [
    "MAGIC",
    "TRACECMD_SEC_FL_COMPRESS",
    "TraceCmdOption",
    "TraceDatStructs",
]

#: ``17 08 44`` then ``"tracing"``, no NUL.
MAGIC = b"\x17\x08\x44tracing"

#: Section header flag: the body is one compression block (``trace-cmd.h``).
TRACECMD_SEC_FL_COMPRESS = 1


class TraceCmdOption(enum.IntEnum):
    """``enum tracecmd_option`` (trace-cmd-private.h); v7 section ids share the numbers."""

    TRACECMD_OPTION_DONE = 0
    TRACECMD_OPTION_DATE = 1
    TRACECMD_OPTION_CPUSTAT = 2
    TRACECMD_OPTION_BUFFER = 3
    TRACECMD_OPTION_TRACECLOCK = 4
    TRACECMD_OPTION_UNAME = 5
    TRACECMD_OPTION_HOOK = 6
    TRACECMD_OPTION_OFFSET = 7
    TRACECMD_OPTION_CPUCOUNT = 8
    TRACECMD_OPTION_VERSION = 9
    TRACECMD_OPTION_PROCMAPS = 10
    TRACECMD_OPTION_TRACEID = 11
    TRACECMD_OPTION_TIME_SHIFT = 12
    TRACECMD_OPTION_GUEST = 13
    TRACECMD_OPTION_TSC2NSEC = 14
    TRACECMD_OPTION_STRINGS = 15
    TRACECMD_OPTION_HEADER_INFO = 16
    TRACECMD_OPTION_FTRACE_EVENTS = 17
    TRACECMD_OPTION_EVENT_FORMATS = 18
    TRACECMD_OPTION_KALLSYMS = 19
    TRACECMD_OPTION_PRINTK = 20
    TRACECMD_OPTION_CMDLINES = 21
    TRACECMD_OPTION_BUFFER_TEXT = 22
    TRACECMD_OPTION_BTF_FILE = 23
    TRACECMD_OPTION_LAST_BOOT_INFO = 24
    TRACECMD_OPTION_MODULES_FILE = 25


#: Bytes up to a NUL, NUL consumed, kept as bytes.
CStr = C.NullTerminated(C.GreedyBytes)


class TraceDatStructs:
    """Layouts for one file's byte order and user-space long size.

    Models the records trace-cmd's ``trace-input.c`` reads and
    ``trace-output.c`` writes.  Phase one (:meth:`create_header_structs`) needs
    only the byte order; phase two (:meth:`create_section_structs`) the file
    version.

    >>> s = TraceDatStructs(little_endian=True, long_size=8)
    >>> s.create_section_structs(file_version=7)
    >>> s.section_header.parse(bytes([16, 0, 1, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]))["size"]
    5
    """

    def __init__(self, little_endian: bool, long_size: int) -> None:
        self.little_endian = little_endian
        self.long_size = long_size
        if little_endian:
            self.u16, self.u32, self.u64, self.s32 = C.Int16ul, C.Int32ul, C.Int64ul, C.Int32sl
        else:
            self.u16, self.u32, self.u64, self.s32 = C.Int16ub, C.Int32ub, C.Int64ub, C.Int32sb
        self.create_header_structs()

    def create_header_structs(self) -> None:
        """The initial header after the version string, and the metadata blobs (v6 order)."""
        u32, u64 = self.u32, self.u64
        #: after "<version>\0": endian byte, long size byte, page size.
        self.file_header_tail = C.Struct("endian" / C.Int8ub, "long_size" / C.Int8ub, "page_size" / u32)
        #: v7 only, right after the page size.
        self.file_header_v7 = C.Struct(
            "compression" / CStr, "compression_version" / CStr, "options_offset" / u64
        )
        self.header_info = C.Struct(
            C.Const(b"header_page\0"),
            "header_page" / C.Prefixed(u64, C.GreedyBytes),
            C.Const(b"header_event\0"),
            "header_event" / C.Prefixed(u64, C.GreedyBytes),
        )
        self.ftrace_events = C.PrefixedArray(u32, C.Prefixed(u64, C.GreedyBytes))
        self.event_formats = C.PrefixedArray(
            u32, C.Struct("system" / CStr, "formats" / C.PrefixedArray(u32, C.Prefixed(u64, C.GreedyBytes)))
        )
        self.kallsyms = C.Prefixed(u32, C.GreedyBytes)
        self.printk = C.Prefixed(u32, C.GreedyBytes)
        self.cmdlines = C.Prefixed(u64, C.GreedyBytes)

    def create_section_structs(self, file_version: int) -> None:
        """Options, v6 flyrecord tables, v7 section headers, compression blocks and chunks."""
        u16, u32, u64, s32 = self.u16, self.u32, self.u64, self.s32
        self.file_version = file_version
        # v6 and v7 options differ only in DONE: v6's has no size field (spec pitfall 11).
        self.option_v6 = C.Struct(
            "id" / u16,
            "size" / C.If(this.id != 0, u32),
            "data" / C.If(this.id != 0, C.Bytes(this.size)),
        )
        self.option_v7 = C.Struct("id" / u16, "size" / u32, "data" / C.Bytes(this.size))
        self.option_header_v7 = C.Struct("id" / u16, "size" / u32)
        #: v6: "options  \0", "latency  \0" or "flyrecord\0".
        self.v6_tag = C.Bytes(10)
        self.v6_cpus = u32
        self.v6_cpu_entry = C.Struct("offset" / u64, "size" / u64)
        self.v6_clock = C.Prefixed(u64, C.GreedyBytes)
        self.buffer_option_v6 = C.Struct("offset" / u64, "name" / CStr)
        self.section_header = C.Struct("id" / u16, "flags" / u16, "description" / s32, "size" / u64)
        self.compression_header = C.Struct("csize" / u32, "rsize" / u32)
        self.chunk_count = u32
        self.chunk_header = C.Struct("zsize" / u32, "size" / u32)
        self.buffer_option_v7 = C.Struct(
            "offset" / u64,
            "name" / CStr,
            "clock" / CStr,
            "page_size" / u32,
            "cpus" / C.PrefixedArray(u32, C.Struct("cpu" / u32, "offset" / u64, "size" / u64)),
        )
        self.buffer_text_option = C.Struct("offset" / u64, "name" / CStr, "clock" / CStr)
        self.section_pointer = u64
        self.done_v7 = u64
        self.cpucount = u32
        self.traceid = u64
        self.tsc2nsec = C.Struct("mult" / u32, "shift" / u32, "offset" / u64)
