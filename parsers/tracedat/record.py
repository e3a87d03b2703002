# SPDX-License-Identifier: GPL-2.0-only
"""``kho-replay record``: a boot's console output as a trace.dat, from a log or the running kernel.

Each kernel line of one boot (a ``[    0.021033]``-stamped line outside the
capture's ``===== BEGIN ... =====`` sections, stamps not going backwards)
becomes a ``printk:console`` event at its timestamp, with the message as
``trace_console()`` records it: no level prefix, stamp or newline.  The other
lines (firmware noise, debugfs and /proc sections a capture script printed)
ride in kho-replay's own option (``KHO_REPLAY_OPTION``, JSON) with their
place among the events, beside the kernel command line, debugfs files given
with ``--debugfs`` and the kho-replay version.  Reading the file back
(:func:`~.extract.read_tracedat`) rebuilds the boot's text, so it gives the
same Trace as the log.

One file holds one boot, as the kernel's ring buffer does: a capture across a
kexec is recorded boot by boot (``boot=``).

The live mode reads ``/dev/kmsg`` (or ``dmesg`` text), the memblock and KHO
debugfs directories and ``uname`` of the running machine; ``root`` points all
of these at another tree (tests).
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

from kho_replay.replay.errors import InputError, UnsupportedError

from ..console import boot_lines, read_console_text
from ..console.grammar import SECTION_BEGIN, SECTION_END
from ..console.prefixes import clean_line
from .extract import KHO_REPLAY_OPTION
from .writer import ConsoleLine, write_tracedat

__all__ = ["read_debugfs_dir", "record_live", "record_text"]

#: debugfs directories whose files ride along (``memblock/memory``, ``kho/out/...``).
DEBUGFS_DIRS = ("memblock", "kho")
#: A debugfs file larger than this is not a table we read (KHO's fdt blobs are binary anyway).
_MAX_DEBUGFS_FILE = 1 << 20


def _version() -> str:
    from kho_replay import __version__

    return __version__


def read_debugfs_dir(root: str | os.PathLike[str]) -> dict[str, str]:
    """Text files under ``<root>/memblock`` and ``<root>/kho`` as ``{"memblock/memory": text}``.

    Binary files (KHO's FDTs) are left out; an unreadable directory is an error.

    :raises InputError: *root* is missing or unreadable.
    """
    base = Path(root)
    if not base.is_dir():
        raise InputError(str(base), "no such debugfs directory")
    out: dict[str, str] = {}
    for sub in DEBUGFS_DIRS:
        top = base / sub
        if not top.is_dir():
            continue
        try:
            files = sorted(p for p in top.rglob("*") if p.is_file())
        except PermissionError:
            raise InputError(str(top), "permission denied (debugfs needs root)") from None
        for f in files:
            try:
                data = f.read_bytes()[:_MAX_DEBUGFS_FILE]
            except PermissionError:
                raise InputError(str(f), "permission denied (debugfs needs root)") from None
            except OSError:
                continue  # debugfs files that refuse reads (write-only knobs) carry nothing
            if b"\0" in data:
                continue
            out[f.relative_to(base).as_posix()] = data.decode("utf-8", "replace")
    return out


def _split(lines: list[str]) -> tuple[list[ConsoleLine], list[tuple[int, str]]]:
    """Kernel lines as console events; every other line with the number of events before it."""
    events: list[ConsoleLine] = []
    side: list[tuple[int, str]] = []
    in_section = False
    last = 0
    for raw in lines:
        ts, text = clean_line(raw)
        if SECTION_BEGIN.match(text):
            in_section = True
        elif in_section and SECTION_END.match(text):
            in_section = False
        elif ts is not None and not in_section:
            ns = round(ts * 1_000_000_000)
            if ns >= last:
                events.append(ConsoleLine(ns, 0, 0, text))
                last = ns
                continue
        # The ring buffer cannot hold this line (not a kernel message, or a stamp going back): keep it aside.
        side.append((len(events), raw if raw.endswith("\n") else raw + "\n"))
    return events, side


def _uname(release: str | None, arch: str | None) -> str:
    machine = {"arm64": "aarch64"}.get(arch or "", arch or "unknown")
    return f"Linux kho-replay {release or 'unknown'} #1 {machine}"


def record_text(text: str, source: str, out: str | os.PathLike[str], *, boot: int | None = None,
                debugfs: dict[str, str] | None = None, version: int = 7, compression: str = "zstd",
                uname: str | None = None) -> int:
    """Write one boot of console *text* (named *source* in errors) as a trace.dat at *out*.

    Returns the number of ``printk:console`` events written.

    :raises InputError: the text is not a ``memblock=debug`` log, or *boot* is needed / out of range.
    """
    lines = boot_lines(text, source, boot)
    # Parse first: a log we cannot read would make a file we cannot read back.
    trace = read_console_text("".join(lines), source)
    events, side = _split(lines)
    meta: dict[str, Any] = {"tool": f"kho-replay {_version()}", "source": os.path.basename(source),
                            "cmdline": trace.context.cmdline, "text": side}
    if debugfs:
        meta["debugfs"] = debugfs
    payload = json.dumps(meta, sort_keys=True).encode("utf-8", "surrogateescape") + b"\0"
    write_tracedat(out, events, version=version, compression=compression, cpus=1, comms={0: "<idle>"},
                   options=[(KHO_REPLAY_OPTION, payload)],
                   uname=uname or _uname(trace.context.release, trace.context.arch))
    return len(events)


def _read_kmsg(path: Path) -> str:
    """``/dev/kmsg`` records (``pri,seq,usec,flags;text``) as dmesg lines; a plain file may hold dmesg text."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except PermissionError:
        raise InputError(str(path), "permission denied (reading the kernel log needs root or "
                                    "kernel.dmesg_restrict=0)") from None
    except FileNotFoundError:
        raise InputError(str(path), "no such file (no kernel log to read)") from None
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            records = b"".join(chunks).decode("utf-8", "replace").splitlines()
        else:
            records = []
            while True:
                try:
                    records.append(os.read(fd, 8192).decode("utf-8", "replace"))
                except BlockingIOError:
                    break  # the end of the log buffer
                except OSError as e:
                    if e.errno == errno.EPIPE:
                        continue  # records were overwritten while we read: the next read resyncs
                    raise
    finally:
        os.close(fd)
    out = []
    for rec in records:
        head, sep, msg = rec.partition(";")
        fields = head.split(",")
        if sep and len(fields) >= 3 and fields[2].isdigit():
            usec = int(fields[2])
            # Continuation lines (" KEY=value") are device metadata, not text.
            msg = msg.split("\n", 1)[0]
            out.append(f"[{usec // 1_000_000:5d}.{usec % 1_000_000:06d}] {msg}\n")
        elif rec.strip():
            out.append(rec if rec.endswith("\n") else rec + "\n")
    return "".join(out)


def record_live(out: str | os.PathLike[str], *, root: str | os.PathLike[str] = "/", version: int = 7,
                compression: str = "zstd") -> int:
    """Record the running kernel: its log, memblock/KHO debugfs and uname, into a trace.dat at *out*.

    :raises InputError: no permission, or the kernel printed no ``memblock=debug`` lines.
    """
    base = Path(root)
    kmsg = base / "dev" / "kmsg"
    text = _read_kmsg(kmsg)
    if "memblock_" not in text:
        raise UnsupportedError(str(kmsg), "the running kernel printed no memblock debug lines "
                                          "(boot it with memblock=debug, and log_buf_len= large enough)")
    debug = base / "sys" / "kernel" / "debug"
    # Kernels without ARCH_KEEP_MEMBLOCK (x86) have no memblock debugfs: the log alone is recorded.
    tables = read_debugfs_dir(debug) if debug.is_dir() else {}
    if os.path.realpath(base) == "/":
        u = os.uname()
        uname = f"{u.sysname} {u.nodename} {u.release} {u.version} {u.machine}"
    else:
        uname = None
    return record_text(text, str(kmsg), out, debugfs=tables, version=version, compression=compression,
                       uname=uname)
