# SPDX-License-Identifier: GPL-2.0-only
"""The ``kho-replay`` command: thin commands behind one error boundary.

Each command reads its inputs through :mod:`.inputs` (one meaning of a trace
argument), checks its options in :func:`_options` before any work, and
writes through :mod:`.output` (atomic, never over an input).  Errors go to
stderr as one line, ``kho-replay: error: <what>``, from :func:`guarded`
(a command's own errors) or :func:`.cli_app.run_cli` (a bad option).  Exit codes are an
interface:

* 0 — done, and (for comparisons) nothing diverged;
* 1 — a comparison diverged;
* 2 — bad input or an error.

This module is the entry point and what the commands share; the commands and their options are a
typer app (:mod:`.cli_app`, whose names read here too: ``cli.app``, ``cli.run_cli``), imported only
for a command line that needs it.  ``parse FILE`` and ``validate FILE`` with no option run here
without it: importing typer and building the app is most of a short command's start-up.
"""

from __future__ import annotations

import enum
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import KhoReplayError

if TYPE_CHECKING:
    from rich.console import Console

    from .compare.validate import ValidationReport
    from .inputs import TraceInput
    from .memblock.regions import Region
    from .ops import Trace

__all__ = ["ExitCode", "guarded", "main", "print_script", "validate_boots"]


class ExitCode(enum.IntEnum):
    """Process exit codes."""

    SAME = 0
    DIVERGED = 1
    ERROR = 2


class Format(enum.StrEnum):
    """Output formats."""

    text = "text"
    json = "json"
    html = "html"


class TextJson(enum.StrEnum):
    """Output formats of the commands that have no HTML report."""

    text = "text"
    json = "json"


class _Stderr:
    """rich's Console on stderr, made when first used (importing rich costs a short command a tenth of
    a second); reads as the Console itself, and ``.console`` is the Console."""

    _console: Console | None = None

    @property
    def console(self) -> Console:
        if _Stderr._console is None:
            from rich.console import Console

            _Stderr._console = Console(stderr=True, highlight=False, soft_wrap=True)
        return _Stderr._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)


err = _Stderr()


# ------------------------------------------------------------------ the error boundary and the writer

def error_line(e: KhoReplayError) -> None:
    """The one line on stderr an error is."""
    err.print(f"kho-replay: error: {e}", markup=False)


def _pipe_closed() -> None:
    """The reader of stdout went away (``| head``): stop quietly, as cat does, and let nothing flush later."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (tests): nothing will flush into a pipe
        pass


def guarded(f: Callable[..., int | None], *args: Any, **kwargs: Any) -> int:
    """Run a command's work: its exit code (None is 0); every error it raises on purpose, or the OS raises,
    is one line on stderr and exit 2."""
    try:
        return f(*args, **kwargs) or ExitCode.SAME
    except KhoReplayError as e:
        error_line(e)
    except BrokenPipeError:
        _pipe_closed()
        return ExitCode.SAME
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        error_line(KhoReplayError(f"{where}{e.strerror or e}"))
    return ExitCode.ERROR


def _emit(text: str | Iterable[str], output: Path | None, inputs: Iterable[Path] = ()) -> None:
    from .output import write_output

    write_output(output, text, tuple(inputs))


def _options(*, output: Path | None = None, inputs: Iterable[Path] = (), kexec: bool | None = None,
             **kexec_only: object) -> None:
    """Check options that only mean something together, and the output, before any work is done.

    *kexec_only*: options (by their flag name) that need ``--kexec``; None means not given.
    """
    if kexec is False:
        given = [f"--{k.replace('_', '-')}" for k, v in kexec_only.items() if v is not None]
        if given:
            raise KhoReplayError(f"{', '.join(given)} only mean{'s' if len(given) == 1 else ''} something with "
                                 "--kexec (the KHO boot after the cold boot): add --kexec or drop "
                                 f"{'it' if len(given) == 1 else 'them'}")
    if output is not None:
        from .output import check_output

        check_output(output, tuple(inputs))


def _format(fmt: enum.StrEnum | None, output: Path | None, allowed: Iterable[str]) -> Format:
    """The format asked for; without -f, the one -o's suffix names (.json, .html) when the command has it."""
    if fmt is not None:
        return Format(fmt.value)
    suffix = output.suffix[1:] if output is not None else ""
    return Format(suffix) if suffix in set(allowed) else Format.text


# ------------------------------------------------------------------ the work of parse and validate

def print_script(ti: TraceInput, output: Path | None, *, strict: bool = False, vmlinux: Path | None = None,
                 kernel: str | None = None, arch: str | None = None) -> None:
    """``parse``'s op script of *ti*'s (first) boot, printed from its ops as they are made where the input
    allows (a console log, a trace.dat: they are never all held)."""
    from .gcpause import gc_paused
    from .inputs import load_source, load_source_script

    # an op and its records per line, no cycle among them: the collector would walk them again and again
    with gc_paused():
        streamed = load_source_script(ti.first, strict=strict, vmlinux=vmlinux, kernel=kernel, arch=arch)
        if streamed is not None:
            _emit(streamed[1], output, ti.files())
            return
        t = load_source(ti.first, strict=strict, vmlinux=vmlinux, kernel=kernel, arch=arch)
    from .ops import format_script_chunks

    _emit(format_script_chunks(t.ops), output, ti.files())  # a chunk of lines at a time: millions of ops


def validate_boots(trace: Path, fmt: TextJson | None = None, output: Path | None = None, boot: int | None = None,
                   strict: bool = False, kernel: str | None = None, arch: str | None = None) -> int:
    """``validate``: its report printed; the exit code (1 on a mismatch)."""
    from .gcpause import gc_paused
    from .inputs import boots, validate_source

    sources = boots(trace, boot)
    _options(output=output, inputs=[s.path for s in sources])
    # an op and its records per line, no cycle among them: the collector would walk them again and again
    with gc_paused():
        # each boot replayed as it is read (its ops never all held)
        checked = [validate_source(s, strict=strict, kernel=kernel, arch=arch) for s in sources]
        for t, r in checked:
            if not r.ops and not t.observations:
                raise KhoReplayError(f"{t.context.source}: no memblock operations to replay (a debugfs dump "
                                     "alone?): give the boot's console log, or a directory holding both")
        traces = [t for t, _ in checked]
        reports = [r for _, r in checked]
    notes, notes_ok = retarget_notes(traces)  # a retargeted trace: its host's printed facts too
    several = len(sources) > 1
    labels = [s.boot if s.boot is not None else (i + 1 if several else None) for i, s in enumerate(sources)]
    if _format(fmt, output, ("json",)) is Format.json:
        from .report.json import dumps, validate_document

        _emit(dumps(validate_document(reports, labels)), output)
    else:
        parts = []
        for r, b, t in zip(reports, labels, traces, strict=True):
            text = (f"boot {b}: " if b is not None else "") + r.summary() + "\n"
            if r.first_mismatch is not None:
                text += _context_table(r, t) + "\n"
            parts.append(text)
        _emit("".join(parts + notes), output)
    if not all(r.ok for r in reports) or not notes_ok:
        return ExitCode.DIVERGED
    return ExitCode.SAME


def retarget_notes(traces: list[Trace]) -> tuple[list[str], bool]:
    """For ``validate``: the printed-fact check of every retargeted trace (text lines, all matched)."""
    notes, ok = [], True
    for t in traces:
        if any(k == "retarget_template" for k, _ in t.context.facts):
            # imported here: a trace read from its own log (most) needs no retarget code
            from .retarget.check import check

            rep = check(t)
            notes.append(rep.summary() + "\n")
            ok = ok and rep.ok
    return notes, ok


def _context_table(report: ValidationReport, t: Trace) -> str:
    """The model's reserved regions around the first mismatch, as they stood just before its op."""
    from .breakpoint import model_before

    m = report.first_mismatch
    if m is None:
        return ""
    addrs = list(m.addrs)
    at = next((i for i, op in enumerate(t.ops) if m.src is not None and op.src == m.src), None)
    if not addrs or at is None:
        return ""
    mb = model_before(t, at)
    lo, hi = min(addrs), max(addrs)

    def distance(r: Region) -> int:
        return max(r.base - hi, lo - (r.base + r.size), 0)

    regions = sorted(sorted(mb.reserved, key=distance)[:8], key=lambda r: r.base)
    lines = [f"  reserved regions nearest to it (model just before op {at}, {m.src}; "
             f"`kho-replay run --stop-at {at}` prints all the tables there):"]
    for r in regions:
        lines.append(f"    [{r.base:#018x}-{r.base + r.size - 1:#018x}] flags={r.flags:#x} nid={r.nid}")
    return "\n".join(lines)


# ------------------------------------------------------------------ entry point

def _parse_plain(trace: Path) -> None:
    """``parse TRACE``, as the app's parse runs it with no option."""
    from .inputs import resolve

    ti = resolve(trace)
    _options(inputs=ti.files())
    print_script(ti, None)


#: the commands :func:`_plain` runs without the app, given one readable path and no option
_PLAIN: dict[str, Callable[[Path], int | None]] = {"parse": _parse_plain, "validate": validate_boots}


def _plain(args: list[str]) -> int | None:
    """The exit code of ``parse TRACE`` or ``validate TRACE`` (no option, TRACE readable: the app would take
    it as it is), run without typer; None for any other command line (the app's)."""
    if len(args) != 2 or args[0] not in _PLAIN or not args[1] or args[1][0] == "-" or not os.access(args[1], os.R_OK):
        return None
    return guarded(_PLAIN[args[0]], Path(args[1]))


def main() -> None:
    """Console-script entry point: ``kho-replay TRACE ...`` runs the hidden ``compare`` command."""
    args = sys.argv[1:]
    code = _plain(args)
    if code is None:
        from .cli_app import run_cli

        code = run_cli(args)
    sys.exit(code)


def __getattr__(name: str) -> Any:
    """The app's names (``app``, ``run_cli``, ``dispatch``, its commands and options), loaded on first use."""
    if name.startswith("__"):
        raise AttributeError(name)
    from . import cli_app

    return getattr(cli_app, name)
