# SPDX-License-Identifier: GPL-2.0-only
"""What a trace argument means, for every command: one resolver.

A *trace directory* is one machine's capture.  It holds either the two
kernels of a KHO kexec as ``console-kernel1.log`` and ``console-kernel2.log``
(``.gz``/``.xz`` too), or one boot as ``console.log`` (with the debugfs
tables ``memblock/memory``, ``memblock-memory.txt``... read after it), or a
``trace.dat``, or the debugfs tables alone.  A file is one capture; a
``console-kernel1.log`` named on its own still has its second kernel beside
it, and a capture that holds both kernels of a kexec is a pair too.

``--boot N`` picks the N-th boot of a capture (1-based, -1 the last);
``--second FILE`` names the second kernel explicitly.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import KhoReplayError
from .ops import Trace

if TYPE_CHECKING:
    from .compare.validate import ValidationReport

__all__ = ["Source", "TraceInput", "boots", "load_source", "load_source_script", "resolve", "validate_source",
           "whatifs"]

_COMPRESSED = ("", ".gz", ".xz")
_KERNEL_LOG = re.compile(r"^console-kernel(?P<n>\d)\.log(?:\.gz|\.xz)?$")


@dataclass(frozen=True, slots=True)
class Source:
    """One boot to read: a file or directory and, for a capture holding several boots, which one."""

    path: Path
    boot: int | None = None

    def __str__(self) -> str:
        return str(self.path) + (f" (boot {self.boot})" if self.boot is not None else "")

    @property
    def scenario(self) -> bool:
        """True for ``scenario:NAME``, a synthesized op stream rather than a file."""
        return str(self.path).startswith("scenario:")


@dataclass(frozen=True, slots=True)
class TraceInput:
    """A trace argument resolved: the (cold) boot to read and, when the capture has one, the second kernel."""

    named: Path
    first: Source
    second: Source | None
    #: Why the second kernel is missing when one could be expected ('' otherwise).
    note: str = ""

    def files(self) -> tuple[Path, ...]:
        """The files this input reads (so that no output overwrites them)."""
        return tuple(s.path for s in (self.first, self.second) if s is not None and not s.scenario)


def _find(d: Path, stem: str) -> Path | None:
    return next((d / f"{stem}{z}" for z in _COMPRESSED if (d / f"{stem}{z}").is_file()), None)


def _count(path: Path) -> int:
    from kho_replay.parsers import boot_count

    return boot_count(path)


def _pick(captures: list[Path], boot: int, where: Path) -> Path:
    k = boot - 1 if boot > 0 else len(captures) + boot
    if not 0 <= k < len(captures):
        raise KhoReplayError(f"{where}: --boot {boot}: it holds {len(captures)} boots "
                             f"({', '.join(p.name for p in captures)})")
    return captures[k]


def resolve(path: Path, *, boot: int | None = None, second: Path | None = None, pair: bool = False) -> TraceInput:
    """Resolve a trace argument.  *pair*: the command can use a second kernel (a KHO boot).

    :raises KhoReplayError: for a missing path, a directory with nothing to read, or a --boot out of range.
    """
    second_src = Source(second) if second is not None else None
    if second is not None and not second.exists():
        raise KhoReplayError(f"{second}: no such file or directory")
    if str(path).startswith("scenario:") or _template_plus(path):
        return TraceInput(path, Source(path), second_src)
    if not path.exists():
        raise KhoReplayError(f"{path}: no such file or directory")
    if path.is_dir():
        k1, k2 = _find(path, "console-kernel1.log"), _find(path, "console-kernel2.log")
        if k1 is not None:
            captures = [k1] + ([k2] if k2 is not None else [])
            first = k1 if boot is None else _pick(captures, boot, path)
            if first == k1 and k2 is not None and second_src is None:
                second_src = Source(k2)
            note = "" if k2 is not None else f"{path} has no console-kernel2.log: no real second kernel"
            return TraceInput(path, Source(first), second_src, note)
        if next(path.glob("console.log*"), None) is None and (path / "trace.dat").is_file():
            return TraceInput(path, Source(path / "trace.dat", boot), second_src)
        return _capture(path, boot, second_src, pair)
    m = _KERNEL_LOG.match(path.name)
    if m is not None and m["n"] == "1" and boot in (None, 1):
        sib = _find(path.parent, "console-kernel2.log")
        note = "" if sib is not None else f"no console-kernel2.log beside {path}: no real second kernel"
        return TraceInput(path, Source(path), second_src or (Source(sib) if sib is not None else None), note)
    return _capture(path, boot, second_src, pair)


def _capture(path: Path, boot: int | None, second: Source | None, pair: bool) -> TraceInput:
    """One capture file (or a one-boot directory): a combined log of a kexec is a pair when one is wanted."""
    if boot is None and pair and second is None and _count(path) == 2:
        return TraceInput(path, Source(path, 1), Source(path, 2))
    return TraceInput(path, Source(path, boot), second)


def _template_plus(path: Path) -> bool:
    """``TEMPLATE+PLAIN`` (a host retargeted on the fly) rather than a file."""
    return "+" in str(path) and not path.exists()


def load_template_plus(spec: str) -> Trace:
    """``TEMPLATE+PLAIN``: the host of PLAIN retargeted from TEMPLATE (PLAIN a directory: its iomem.txt too).

    :raises InputError: when no split of *spec* at a ``+`` names two existing paths.
    """
    from .errors import InputError
    from .retarget import retarget_files

    for k in [i for i, c in enumerate(spec) if c == "+"]:
        t, p = Path(spec[:k]), Path(spec[k + 1:])
        if t.exists() and p.exists():
            return retarget_files(t, p, iomem="auto" if p.is_dir() else None).trace
    raise InputError(spec, "no such file (nor TEMPLATE+PLAIN with both existing)")


def boots(path: Path, boot: int | None = None) -> list[Source]:
    """Every boot a capture holds (both kernels of a KHO directory), or just the one *boot* picks."""
    t = resolve(path, boot=boot)
    if boot is not None:
        return [t.first]
    if path.is_dir() and t.second is not None:
        return [t.first, t.second]
    n = _count(t.first.path)
    return [t.first] if n <= 1 else [Source(t.first.path, b) for b in range(1, n + 1)]


#: The what-ifs (``--image-at`` address, ``--set`` pairs) of the command running, for :func:`load_source`.
_WHATIF: ContextVar[tuple[int | None, tuple[tuple[str, str], ...]] | None] = ContextVar("whatif", default=None)


@contextlib.contextmanager
def whatifs(image_at: int | None, sets: tuple[tuple[str, str], ...]) -> Iterator[None]:
    """While the block runs, every cold boot :func:`load_source` reads passes through :func:`.whatif.whatif`."""
    token = _WHATIF.set((image_at, sets) if image_at is not None or sets else None)
    try:
        yield
    finally:
        _WHATIF.reset(token)


def load_source_script(src: Source, *, strict: bool = False, vmlinux: Path | None = None, kernel: str | None = None,
                       arch: str | None = None) -> tuple[Trace, Iterable[str]] | None:
    """:func:`load_source` for the op script's text alone (``parse``), its ops never all held (see
    :func:`kho_replay.parsers.load_script`); None: read it with :func:`load_source`."""
    if src.scenario or _template_plus(src.path) or _WHATIF.get() is not None:
        return None
    from kho_replay.parsers import load_script

    got = load_script(src.path, strict=strict, boot=src.boot, vmlinux=vmlinux, kernel=kernel, arch=arch)
    _warn(src, got[0])
    return got


def validate_source(src: Source, *, strict: bool = False, kernel: str | None = None,
                    arch: str | None = None) -> tuple[Trace, ValidationReport]:
    """:func:`load_source` and :func:`~.compare.validate.validate` of one boot (``validate``): a console log's ops
    are replayed as the reader hands them out, never all held (:class:`~.compare.validate.OpStream`).  The
    Trace holds its ops when the report has a mismatch (its context is shown from them), else maybe none."""
    from .compare.validate import OpStream, _Unstreamable, validate

    if src.scenario or _template_plus(src.path) or _WHATIF.get() is not None:
        trace = load_source(src, strict=strict, kernel=kernel, arch=arch)
        return trace, validate(trace)
    from functools import partial

    from kho_replay.parsers import load

    read = partial(load, src.path, strict=strict, boot=src.boot, kernel=kernel, arch=arch)
    stream = OpStream()
    try:
        trace = read(sink=stream)
    except _Unstreamable:
        trace = load_source(src, strict=strict, kernel=kernel, arch=arch)
        return trace, validate(trace)
    finally:
        # the reader and the stream hold each other (its sink, their view): the collector may be paused
        stream.view = None
    _warn(src, trace)
    try:
        report = stream.finish(trace)
    except _Unstreamable:
        trace = read()  # warned already
        return trace, validate(trace)
    if (report.first_mismatch is not None or report.panic is not None) and stream.count:
        # the report quotes ops' Srcs, which the stream's ops lack (OpStream.srcs), and the context table of
        # the first mismatch replays the ops up to it: read them again, all held, and validate them whole
        trace = read()
        return trace, validate(trace)
    return trace, report


def _warn(src: Source, trace: Trace) -> None:
    """The one warning line of what reading *trace* assumed, if anything."""
    from kho_replay.parsers import assumptions

    note = assumptions(trace)
    if note:
        print(f"kho-replay: warning: {src}: {note}", file=sys.stderr)


def load_source(src: Source, *, strict: bool = False, vmlinux: Path | None = None, kernel: str | None = None,
                arch: str | None = None, handed_over: bool = False) -> Trace:
    """Read one boot: a scenario's op stream, or whatever :func:`kho_replay.parsers.load` reads.

    *kernel* and *arch* are the user's ``--kernel``/``--arch``; what the trace made us assume without
    them is printed as one ``kho-replay: warning:`` line on stderr.  Inside :func:`whatifs` the boot is
    replayed as the what-if makes it, unless it is *handed_over* (the second kernel of a kexec, which
    booted where kexec put it; a ``console-kernel2`` log counts as one).
    """
    if src.scenario:
        from .kho.scenarios import scenario

        return scenario(str(src.path))
    if _template_plus(src.path):
        trace = load_template_plus(str(src.path))
    else:
        from kho_replay.parsers import load

        trace = load(src.path, strict=strict, boot=src.boot, vmlinux=vmlinux, kernel=kernel, arch=arch)
        _warn(src, trace)
    what = _WHATIF.get()
    if what is None or handed_over or "kernel2" in src.path.name:
        return trace
    from .whatif import whatif

    return whatif(trace, image_at=what[0], sets=what[1])
