# SPDX-License-Identifier: GPL-2.0-only
"""Parsers: what real machines produce, read into a :class:`~kho_replay.replay.ops.Trace`.

:func:`load` sniffs the format of one input (a ``memblock=debug`` console
log, a memblock debugfs file or directory, an op script, a trace-cmd trace.dat) and
reads ``.gz``/``.xz`` transparently.  Every problem with the input is one
:class:`~kho_replay.replay.errors.InputError` naming the file and line.
"""

from __future__ import annotations

import codecs
import contextlib
import gzip
import itertools
import lzma
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, BinaryIO

from kho_replay.replay.errors import FormatError, InputError, TruncatedError, UnsupportedError
from kho_replay.replay.ops import Context, DebugfsTable, Op, Trace, format_script_chunks, parse_script

__all__ = ["TextFile", "assumptions", "boot_count", "load", "load_ops", "load_script", "read_bytes", "read_text"]

_GZIP = b"\x1f\x8b"
_XZ = b"\xfd7zXZ\x00"
_TRACEDAT = b"\x17\x08\x44tracing"


def _input_error(p: Path, e: OSError) -> InputError:
    """The one-line error for *p* that the OS refused to open or read."""
    if isinstance(e, FileNotFoundError):
        return InputError(str(p), "no such file")
    if isinstance(e, IsADirectoryError):
        return InputError(str(p), "is a directory")
    return InputError(str(p), e.strerror or str(e))


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes, gunzipped or unxz'ed when it is compressed.

    :raises InputError: for a missing file; TruncatedError for a cut archive.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise _input_error(p, e) from None
    try:
        if data.startswith(_GZIP):
            return gzip.decompress(data)
        if data.startswith(_XZ):
            return lzma.decompress(data)
    except (EOFError, lzma.LZMAError) as e:
        raise TruncatedError(str(p), f"compressed data ends early or is corrupt ({e})") from None
    except gzip.BadGzipFile as e:
        raise FormatError(str(p), f"bad gzip data ({e})") from None
    return data


#: How much a streamed read takes at a time (bytes, decompressed); a file this long or shorter is read whole.
_PIECE = 1 << 20


class TextFile:
    """A text file (maybe compressed) read a piece at a time: what :func:`read_text` gives, never all held.

    The first piece (:attr:`head`) is read and checked at once as :func:`read_text` checks the whole
    text; :attr:`whole` says whether it is the whole text.  :meth:`pieces` gives the text piece by piece
    (a stream open again each time); a compressed file's errors are :func:`read_bytes`'s, raised when
    its end is reached.

    :raises InputError: as :func:`read_text` does.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        it = self.pieces()
        self.head = next(it, "")
        self.whole = next(it, None) is None
        it.close()

    def identity(self) -> tuple[str, int, int, int]:
        """What tells this file from another or a changed one: path, size, mtime, inode."""
        st = self.path.stat()
        return (str(self.path), st.st_size, st.st_mtime_ns, st.st_ino)

    def text(self) -> str:
        """The whole text (:func:`read_text`'s)."""
        return self.head if self.whole else "".join(self.pieces())

    def pieces(self) -> Iterator[str]:
        """The decoded text a piece at a time (whole characters; the first checked as read_text() checks)."""
        p = self.path
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        first = True
        for data in _byte_pieces(p):
            if first:
                first = False
                _check_text(p, data)
            text = decoder.decode(data)
            if text:
                yield text
        if first:
            raise FormatError(str(p), "empty file")
        rest = decoder.decode(b"", final=True)
        if rest:
            yield rest


def _byte_pieces(p: Path) -> Iterator[bytes]:
    """The file's bytes (decompressed) a piece of :data:`_PIECE` at a time; errors as :func:`read_bytes`'s."""
    try:
        raw = p.open("rb")
    except OSError as e:
        raise _input_error(p, e) from None
    with contextlib.ExitStack() as stack:
        stack.enter_context(raw)
        magic = raw.read(len(_XZ))
        raw.seek(0)
        f: BinaryIO = raw
        if magic.startswith(_GZIP):
            f = stack.enter_context(gzip.GzipFile(fileobj=raw))  # type: ignore[arg-type]
        elif magic.startswith(_XZ):
            f = stack.enter_context(lzma.LZMAFile(raw))  # type: ignore[arg-type]
        try:
            while True:
                data = f.read(_PIECE)
                yield data
                if len(data) < _PIECE:
                    return
        except EOFError as e:
            # lzma.decompress() (read_bytes()) says "data" where LZMAFile says "file"
            why = str(e).replace("Compressed file", "Compressed data") if f is not raw and magic.startswith(_XZ) else e
            raise TruncatedError(str(p), f"compressed data ends early or is corrupt ({why})") from None
        except lzma.LZMAError as e:
            raise TruncatedError(str(p), f"compressed data ends early or is corrupt ({e})") from None
        except gzip.BadGzipFile as e:
            raise FormatError(str(p), f"bad gzip data ({e})") from None
        except OSError as e:
            raise InputError(str(p), e.strerror or str(e)) from None


def read_text(path: str | Path) -> str:
    """The file as text (UTF-8, undecodable bytes replaced); refuses binary data.

    :raises FormatError: for an empty file or one holding binary data.
    """
    data = read_bytes(path)
    _check_text(path, data)
    return data.decode("utf-8", errors="replace")


def _check_text(path: str | Path, data: bytes) -> None:
    """Refuse *data*, the start of *path*, when it is empty, a trace.dat or binary (a NUL in its first 64 KiB)."""
    if not data:
        raise FormatError(str(path), "empty file")
    if data.startswith(_TRACEDAT):
        raise UnsupportedError(str(path), "a trace.dat is binary: read it with load() or read_tracedat()")
    head = data[:65536]
    if b"\x00" in head:
        offset = head.index(b"\x00")
        line = head[:offset].count(b"\n") + 1
        raise FormatError(str(path), "binary data, not a text log", line=line)


#: The first word of an op script's first meaningful line.
_OPS_WORDS = frozenset({
    "add", "remove", "reserve", "reserve_kern", "free", "mark", "clear", "set_node", "set_current_limit",
    "set_bottom_up", "allow_resize", "kho_scratch_only", "movable_node", "mirrored_kernelcore", "trim_memory",
    "enforce_memory_limit", "cap_memory_range", "phase", "alloc"})


def _sniff(text: str) -> str:
    """'console', 'debugfs' or 'ops' from the first meaningful lines."""
    from .debugfs import DEBUGFS_LINE, TABLE_HEADER

    if text.startswith("# kho-replay retarget"):
        return "ops"
    meaningful = [ln for ln in _head(text, 200).splitlines()[:200] if ln.strip() and not ln.lstrip().startswith("#")]
    # debugfs tables pasted as text: every line a row or a header naming the table
    if any(DEBUGFS_LINE.match(ln) for ln in meaningful[:50]) and all(
            DEBUGFS_LINE.match(ln) or TABLE_HEADER.match(ln) for ln in text.splitlines()
            if ln.strip() and not ln.lstrip().startswith("#")):
        return "debugfs"
    if meaningful and meaningful[0].split()[0] in _OPS_WORDS:
        return "ops"
    if "Linux version" in text or _memblockish(text.splitlines()):
        return "console"
    return "unknown"


def _sniff_head(head: str) -> str | None:
    """'console' when :func:`_sniff` of any text starting with *head* says so, else None (the whole text
    decides): a long capture is known from its start, and read as a stream.

    >>> _sniff_head("[    0.000000] Linux version 7.2.13 (x)\\n" * 300), _sniff_head("add 0x0 1M\\n" * 300)
    ('console', None)
    """
    if len(_head(head, 200)) == len(head):
        return None  # not 200 whole lines to sniff
    # _sniff() of the head's whole lines: the rest of the text can only add lines after them; a banner
    # cut in two at the head's end is still a banner
    kind = _sniff(head[:head.rfind("\n") + 1])
    return "console" if kind == "console" or (kind == "unknown" and "Linux version" in head) else None


def _memblockish(lines: list[str]) -> bool:
    """Does any of *lines* look like a memblock call's debug line (prefixes taken off)?"""
    from .console.grammar import MEMBLOCKISH
    from .console.prefixes import clean_line, unquote

    return any(MEMBLOCKISH.match(clean_line(unquote(ln))[1]) for ln in lines)


def _head(text: str, n: int) -> str:
    """The start of *text* holding at least its first *n* lines (a script of a million lines is not split
    to read its first few)."""
    pos = -1
    for _ in range(n):
        pos = text.find("\n", pos + 1)
        if pos < 0:
            return text
    return text[:pos + 1]


def _console_of(d: Path) -> Path | None:
    """The one console capture of a boot directory (``console.log[.gz|.xz]``), if any."""
    found = sorted(d.glob("console.log*"))
    return found[0] if len(found) == 1 else None


def _load_dir(d: Path, *, strict: bool, boot: int | None, kernel: str | None = None,
              arch: str | None = None, sink: Callable[[list[Op]], None] | None = None) -> Trace:
    """A directory: its console capture with the debugfs tables read after that boot, or the tables alone."""
    from dataclasses import replace

    from .console import read_console_file, read_console_text
    from .debugfs import read_debugfs

    log = _console_of(d)
    if log is None:
        return read_debugfs(d, strict=strict)
    counted = sink if sink is None else _Counted(sink)
    sink = counted
    f = TextFile(log)
    if f.whole:
        trace = read_console_text(f.head, str(log), strict=strict, boot=boot, kernel=kernel, arch=arch, sink=sink)
    else:
        trace = read_console_file(f, strict=strict, boot=boot, kernel=kernel, arch=arch, sink=sink)
    if any(isinstance(o, DebugfsTable) for o in trace.observations):
        return trace  # the capture printed its own tables after boot
    try:
        tables = read_debugfs(d, strict=strict)
    except FormatError:
        return trace
    at = len(trace.ops) + (counted.count if counted is not None else 0)  # after the last op, given or held
    extra = tuple(replace(o, at=at) for o in tables.observations)
    return replace(trace, observations=trace.observations + extra, skipped=trace.skipped + tables.skipped)


class _Counted:
    """A sink (see :func:`load`) that counts the ops it passes on; its ``watch`` is the sink's."""

    def __init__(self, sink: Callable[[list[Op]], None]) -> None:
        self.sink = sink
        self.count = 0
        watch = getattr(sink, "watch", None)
        if watch is not None:
            self.watch = watch
        self.srcs = getattr(sink, "srcs", True)

    def __call__(self, ops: list[Op]) -> None:
        self.count += len(ops)
        self.sink(ops)


def boot_count(path: str | Path) -> int:
    """How many boots *path* holds: several for a console capture across a kexec, else 1."""
    from .console import count_boots, count_boots_file
    from .console.reader import newline_chunks

    p = Path(path)
    if p.is_dir():
        log = _console_of(p)
        if log is None:
            return 1
        p = log
    if _is_tracedat(p):
        return 1
    f = TextFile(p)
    if not f.whole and _sniff_head(f.head) == "console":
        # every boot starts at a banner (no chunk ends inside one: they end at newlines)
        if sum(chunk.count("Linux version ") for chunk in newline_chunks(f.pieces())) < 2:
            return 1
        return max(1, count_boots_file(f))
    text = f.text()
    if text.count("Linux version ") < 2:
        return 1  # every boot starts at a banner: one at most, one boot (no need to read the lines)
    return max(1, count_boots(text, str(p))) if _sniff(text) == "console" else 1


def _is_tracedat(p: Path) -> bool:
    try:
        with p.open("rb") as f:
            return f.read(len(_TRACEDAT)) == _TRACEDAT
    except OSError:
        return False  # read_text() names the problem


def assumptions(trace: Trace) -> str | None:
    """What reading and replaying *trace* assumed because it does not say, as one line (None: nothing).

    >>> from kho_replay.replay.ops import Context, Trace
    >>> assumptions(Trace(Context(facts=(("assumed", "a"), ("other", "b"), ("assumed", "c"))), ()))
    'a; c'
    """
    notes = [v for k, v in trace.context.facts if k == "assumed"]
    return "; ".join(dict.fromkeys(notes)) if notes else None


def _with_model(trace: Trace, kernel: str | None, arch: str | None) -> Trace:
    """The user's ``--kernel``/``--arch`` on the context, and the model's own assumptions noted."""
    from dataclasses import replace

    from kho_replay.replay.profile import arch_for, describe_arch, profile_or_oldest

    ctx = trace.context
    release = kernel or ctx.release
    name = arch or ctx.arch
    notes: list[str] = []
    if release is not None:
        notes += [n for n in (profile_or_oldest(release)[1],) if n]
    if name is not None and arch_for(name).generic:
        notes.append(describe_arch(arch_for(name)))
    if release == ctx.release and name == ctx.arch and not notes:
        return trace
    facts = ctx.facts + tuple(("assumed", n) for n in notes)
    return replace(trace, context=replace(ctx, release=release, arch=name, facts=facts))


def load(path: str | Path, *, strict: bool = False, boot: int | None = None,
         vmlinux: str | Path | None = None, kernel: str | None = None, arch: str | None = None,
         sink: Callable[[list[Op]], None] | None = None) -> Trace:
    """Read any supported input into a Trace; see :func:`_load` for the formats.

    :param kernel: the kernel release that printed it (``--kernel``); default: the trace's banner,
        else inferred from its line formats.  A release older than every profile is replayed on the
        oldest; :func:`assumptions` gives the one warning line saying what was assumed.
    :param arch: the machine's arch (``--arch``, overrides as ``mips,page=16K,bottom-up``); default:
        what the trace names.  Arches without a measured profile replay on a generic one.
    :param sink: for a console log, takes the ops in order, a list at a time, as the reader makes them,
        and the Trace holds none of those (see :attr:`~.console.ConsoleReader.sink`).
    """
    trace = _load(path, strict=strict, boot=boot, vmlinux=vmlinux, kernel=kernel, arch=arch, sink=sink)
    return _with_model(trace, kernel, arch)


def load_ops(path: str | Path, *, strict: bool = False, boot: int | None = None,
             vmlinux: str | Path | None = None, kernel: str | None = None,
             arch: str | None = None) -> tuple[Trace, Iterator[Op]] | None:
    """:func:`load` for the op script alone, when that can be read as it is taken (a trace.dat file): the
    Trace without ops or observations, and the ops; None for any other input (read it with :func:`load`).

    The ops are those of :func:`load`, in its order, but a probe op has no ``src``.
    """
    p = Path(path)
    if p.is_dir() or not _is_tracedat(p):
        return None
    from .tracedat.extract import stream_tracedat

    _tracedat_boot(p, boot)
    head, ops = stream_tracedat(p, strict=strict, vmlinux=vmlinux)
    return _with_model(head, kernel, arch), ops


def load_script(path: str | Path, *, strict: bool = False, boot: int | None = None,
                vmlinux: str | Path | None = None, kernel: str | None = None,
                arch: str | None = None) -> tuple[Trace, Iterator[str]]:
    """:func:`load` for the op script's text alone (``parse``): the Trace, which may hold none of its ops,
    and the script, a chunk of lines at a time.  A trace.dat's probe ops are made as they are printed
    (:func:`load_ops`); a console log's ops are kept as their lines, as the reader hands them out, until
    the read ends (an error then prints nothing): the ops are never all held.

    >>> from pathlib import Path
    >>> t, script = load_script(Path(__file__).parent.parent / "traces/arm64-debian-7.2.13-4G")
    >>> t.ops, next(script).split("\\n", 1)[0].split("  #")[0]
    ((), 'add 0x40000000 4G')
    """
    p = Path(path)
    if not p.is_dir() and _is_tracedat(p):
        from .tracedat.extract import stream_script

        _tracedat_boot(p, boot)
        head, script = stream_script(p, strict=strict, vmlinux=vmlinux)
        return _with_model(head, kernel, arch), script
    spool = _Spool()
    trace = load(path, strict=strict, boot=boot, vmlinux=vmlinux, kernel=kernel, arch=arch, sink=spool)
    return trace, itertools.chain(spool.drain(), format_script_chunks(trace.ops))


#: How many characters of op script :class:`_Spool` holds in memory before it moves them to a file.
_SPOOL = 1 << 23


class _Spool:
    """The op script of the ops a read hands out, held until the read ends (an error then prints nothing):
    past :data:`_SPOOL` characters (or *limit*) in a temporary file, so that memory does not grow with the
    log.  The sink (see :func:`load`) is the spool itself."""

    #: the op script prints no op's ``src``: the reader need not make them (see ConsoleReader.sink)
    srcs = False

    def __init__(self, limit: int | None = None) -> None:
        self.limit = _SPOOL if limit is None else limit
        self.chunks: list[str] = []
        self.size = 0
        self.file: IO[str] | None = None

    def __call__(self, ops: list[Op]) -> None:
        """*ops* as their op-script lines."""
        for chunk in format_script_chunks(ops):
            self.chunks.append(chunk)
            self.size += len(chunk)
        if self.size > self.limit:
            if self.file is None:
                import tempfile

                # held across the read, closed by drain() (unlinked already: an error leaves nothing behind)
                self.file = tempfile.TemporaryFile(  # noqa: SIM115
                    "w+", encoding="utf-8", errors="surrogatepass", newline="")
            self.file.writelines(self.chunks)
            self.chunks, self.size = [], 0

    def drain(self) -> Iterator[str]:
        """The script in order, a chunk at a time, each let go once given."""
        f, self.file = self.file, None
        if f is not None:
            with f:
                f.seek(0)
                while True:
                    piece = f.read(_PIECE)
                    if not piece:
                        break
                    yield piece
        yield from _drain(self.chunks)


def _drain(chunks: list[str]) -> Iterator[str]:
    """*chunks* in order, each let go once given."""
    chunks.reverse()
    while chunks:
        yield chunks.pop()


def _tracedat_boot(p: Path, boot: int | None) -> None:
    """A trace.dat holds one boot: the kernel's ring buffer does not survive a reboot."""
    if boot not in (None, 1, -1):
        raise UnsupportedError(str(p), f"boot {boot} asked, a trace.dat holds one boot")


def _load(path: str | Path, *, strict: bool = False, boot: int | None = None,
          vmlinux: str | Path | None = None, kernel: str | None = None, arch: str | None = None,
          sink: Callable[[list[Op]], None] | None = None) -> Trace:
    """Read any supported input into a Trace, choosing the reader from the content.

    A directory is one boot: its console capture with the debugfs tables read
    after it, or the tables alone.

    >>> from pathlib import Path
    >>> from kho_replay.replay.ops import DebugfsTable
    >>> t = load(Path(__file__).parent.parent / "traces/arm64-debian-7.2.13-4G")
    >>> len(t.ops) > 2000, sorted(o.name for o in t.observations if isinstance(o, DebugfsTable))
    (True, ['memory', 'reserved'])

    :param strict: unknown memblock-looking lines are errors instead of Skipped records.
    :param boot: for a console log holding several boots, which one (1-based, -1 the last).
    :param vmlinux: for a trace.dat, an ELF whose symbols name traced addresses.
    :param sink: for a console log, takes its ops as they are made (see :func:`load_script`).
    :raises InputError: (FormatError, TruncatedError, UnsupportedError) naming file and line.
    """
    p = Path(path)
    if p.is_dir():
        return _load_dir(p, strict=strict, boot=boot, kernel=kernel, arch=arch, sink=sink)
    if _is_tracedat(p):
        from .tracedat.extract import read_tracedat

        _tracedat_boot(p, boot)
        return read_tracedat(p, strict=strict, vmlinux=vmlinux)
    f = TextFile(p)
    if not f.whole and _sniff_head(f.head) == "console":
        from .console import read_console_file

        return read_console_file(f, strict=strict, boot=boot, kernel=kernel, arch=arch, sink=sink)
    text = f.text()
    kind = _sniff(text)
    if kind == "debugfs":
        from .debugfs import read_debugfs

        return read_debugfs(p, strict=strict)
    if kind == "ops":
        if "\ufffd" in text:
            # Op scripts are ours: a byte that is not UTF-8 is damage, not firmware noise.
            line = text[: text.index("\ufffd")].count("\n") + 1
            raise FormatError(str(p), "not valid UTF-8 text", line=line)
        if text.startswith("# kho-replay retarget"):
            from .retargeted import parse_retargeted

            return parse_retargeted(text, str(p))
        ops = parse_script(text, str(p))
        return Trace(Context(source=str(p)), ops)
    if kind == "console":
        from .console import read_console_text

        return read_console_text(text, str(p), strict=strict, boot=boot, kernel=kernel, arch=arch, sink=sink)
    first = next((i for i, ln in enumerate(text.splitlines(), 1) if ln.strip()), None)
    if first is None:
        raise FormatError(str(p), "empty file (only blank lines)")
    raise FormatError(str(p), "not a console log, debugfs dump or op script (no memblock lines)", line=first)
