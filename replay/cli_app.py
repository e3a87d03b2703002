# SPDX-License-Identifier: GPL-2.0-only
"""The ``kho-replay`` commands and their options, a typer app (:data:`app`, run by :func:`run_cli`).

What the commands share, the exit codes and the entry point are :mod:`.cli`, which runs ``parse FILE``
and ``validate FILE`` without this module."""

from __future__ import annotations

import enum
import functools
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer._click import exceptions as click_exc

from .cli import (
    ExitCode,
    Format,
    TextJson,
    _emit,
    _format,
    _options,
    _pipe_closed,
    err,
    error_line,
    guarded,
    print_script,
    validate_boots,
)
from .errors import InputError, KhoReplayError, UnsupportedError
from .inputs import Source, TraceInput, load_source, resolve
from .ops import Alloc, Trace, format_op
from .output import joined_lines

# Imported where a command needs them: `kho-replay run` on an op script starts in a fraction of the
# time when it does not load the comparison, report and what-if machinery (or rich) first.
if TYPE_CHECKING:
    from .report.html import Map
    from .report.text import Report

__all__ = ["ExitCode", "app", "dispatch", "run_cli"]


HELP = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    name="kho-replay",
    help="Replay real Linux boots on a bit-exact model of memblock and compare KHO/hugetlb designs.",
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    context_settings=HELP,
)

F = TypeVar("F", bound=Callable[..., Any])

# ------------------------------------------------------------------ options, one definition each

TraceArg = Annotated[
    Path,
    typer.Argument(help="A trace: memblock=debug console log (.gz/.xz too), trace directory, debugfs dump, "
                        "op script, or trace-cmd trace.dat."),
]
KernelOpt = Annotated[
    str | None, typer.Option("--kernel", "-k", help="Kernel release to model (default: the trace's, else 7.3).")
]
ArchOpt = Annotated[
    str | None, typer.Option("--arch", help="x86_64, arm64, harness, or any other arch on a generic profile, with "
                                            "overrides: mips,page=16K,cache=32,bottom-up,phys=32 (default: the "
                                            "trace's, else x86_64).")
]
TextJsonOpt = Annotated[TextJson | None, typer.Option(
    "--format", "-f", help="text or json (default: from -o's suffix, else text).")]
FormatOpt = Annotated[Format | None, typer.Option(
    "--format", "-f", help="text, json or html (default: from -o's suffix, else text).")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write the report here, not stdout.")]
BootOpt = Annotated[
    int | None, typer.Option("--boot", help="For a capture holding several boots: which one (1-based, -1 the last).")
]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Unknown memblock-looking lines are errors.")]
VmlinuxOpt = Annotated[
    Path | None, typer.Option("--vmlinux", help="For a trace.dat: an ELF whose symbols name traced addresses.")
]
StrategyOpt = Annotated[list[str] | None, typer.Option(
    "--strategy", "-s",
    help="Design to run (repeatable); NAME+OPTION adds an option, e.g. inverted-ext+protect-scratch.")]
OptionOpt = Annotated[list[str] | None, typer.Option("--option", help="Strategy option, e.g. protect-scratch.")]
KexecOpt = Annotated[bool, typer.Option("--kexec", help="Also run the KHO boot that follows the cold boot.")]
PreserveOpt = Annotated[str | None, typer.Option(
    "--preserve", help="With --kexec: hugetlb (default), memfd:SIZE[:FOLIO], log or debugfs.")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="With --kexec: seed for memfd:SIZE scattering.")]
SecondOpt = Annotated[Path | None, typer.Option(
    "--second", help="The real second kernel's log (default: console-kernel2.log beside the trace).")]
ScratchFromOpt = Annotated[str | None, typer.Option(
    "--scratch-from", help="With --kexec: take the KHO boot's scratch from this design's cold boot.")]
KhoOpt = Annotated[bool | None, typer.Option(
    "--kho/--no-kho", help="Force kho on/off (default: the trace's kho= parameter).")]
ThresholdOpt = Annotated[str, typer.Option(
    "--threshold", help="Hide byte deltas and moves smaller than this size (4K, 2M, 2MiB, 0x1000).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No report on stdout and no progress: exit code only.")]
FixturesOpt = Annotated[Path, typer.Option("--fixtures", help="Directory holding the fixtures.")]


class Compression(enum.StrEnum):
    """trace.dat v7 compression."""

    none = "none"
    zlib = "zlib"
    zstd = "zstd"


def _version(value: bool) -> None:
    if value:
        from kho_replay import __version__

        typer.echo(f"kho-replay {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Replay real Linux boots on a bit-exact model of memblock and compare KHO/hugetlb designs."""


# ------------------------------------------------------------------ the error boundary and the writer

def _fail(e: KhoReplayError) -> typer.Exit:
    error_line(e)
    return typer.Exit(ExitCode.ERROR)


def _boundary(f: F) -> F:
    """Run a command: every error it raises on purpose, or the OS raises, is one line on stderr and exit 2
    (:func:`.cli.guarded`)."""
    @functools.wraps(f)
    def command(*args: Any, **kwargs: Any) -> None:
        code = guarded(f, *args, **kwargs)
        if code != ExitCode.SAME:
            raise typer.Exit(code)
    return command  # type: ignore[return-value]


def _threshold(text: str) -> int:
    from .report.units import parse_size

    try:
        return parse_size(text)
    except ValueError as e:
        raise KhoReplayError(f"--threshold: {e}") from None


def _load(path: Path, *, strict: bool = False, boot: int | None = None, vmlinux: Path | None = None,
          kernel: str | None = None, arch: str | None = None) -> Trace:
    return load_source(resolve(path, boot=boot).first, strict=strict, vmlinux=vmlinux, kernel=kernel, arch=arch)


def _load_trace(path: Path) -> Trace:
    return _load(path)


def _trace_files(path: Path) -> tuple[Path, Path | None]:
    """(first, second kernel) of a trace argument, for commands registered from other modules.

    Prefer :func:`.inputs.resolve`, which also carries ``--boot`` and a combined capture's boots.
    """
    ti = resolve(path, pair=True)
    return ti.first.path, None if ti.second is None else ti.second.path


def _pair(ti: TraceInput, kexec: bool, *, kernel: str | None = None,
          arch: str | None = None) -> tuple[Trace, Trace | None]:
    """The cold boot of *ti* and, with --kexec, its real second kernel when there is one (or a note why not)."""
    t = load_source(ti.first, kernel=kernel, arch=arch)
    if not kexec:
        return t, None
    if ti.second is None:
        if ti.note:
            err.print(f"kho-replay: note: {ti.note}", markup=False)
        return t, None
    return t, load_source(ti.second, kernel=kernel, arch=arch, handed_over=True)


# ------------------------------------------------------------------ run, validate, parse, record

@app.command()
@_boundary
def run(
    trace: TraceArg,
    kernel: KernelOpt = None,
    arch: ArchOpt = None,
    fmt: TextJsonOpt = None,
    output: OutputOpt = None,
    boot: BootOpt = None,
    stop_at: Annotated[str | None, typer.Option(
        "--stop-at", help="Stop before this op (index, :LINE of the log, or caller function) and print the "
                          "tables there.")] = None,
) -> None:
    """Execute a trace or op script on the memblock model and print each allocation's
    result and the memory/reserved tables as memblock_dump_all() does, at the end
    or (--stop-at) before any op."""
    from .gcpause import gc_paused
    from .kho.model import memblock_for

    ti = resolve(trace, boot=boot)
    _options(output=output, inputs=ti.files())
    with gc_paused():  # millions of acyclic objects: the collector would only walk them again and again
        t = load_source(ti.first, kernel=kernel, arch=arch)
        mb = memblock_for(t, kernel=kernel, arch=arch)
        if stop_at is not None:
            from .breakpoint import stop_index

            stop = stop_index(t, stop_at)
        else:
            stop = len(t.ops)
        ops = t.ops if stop == len(t.ops) else t.ops[:stop]
        res = mb.run(ops)
        if _format(fmt, output, ("json",)) is Format.json:
            from .report.json import dumps, run_document

            doc = run_document(mb, res)
            if stop_at is not None:
                doc["stopped_at"] = stop
            _emit(dumps(doc), output, ti.files())
            return
        # Each result names its op: a panic ends the list early.
        lines = [f"{format_op(ops[r.op_index])}  -> {'failed' if r.addr is None else f'{r.addr:#018x}'}"
                 for r in res.results]
        lines += [m.text for m in res.messages if m.level != "dbg"]
        if res.panic is not None:
            lines.append(f"Kernel panic - not syncing: {res.panic}")
        if stop < len(t.ops):
            nxt = t.ops[stop]
            lines.append(f"stopped before op {stop}" + (f" ({nxt.src})" if nxt.src else "") + f": {format_op(nxt)}")
        lines += mb.dump_all()
        _emit(joined_lines(lines), output, ti.files())


@app.command()
@_boundary
def validate(
    trace: TraceArg,
    fmt: TextJsonOpt = None,
    output: OutputOpt = None,
    boot: BootOpt = None,
    strict: StrictOpt = False,
    kernel: KernelOpt = None,
    arch: ArchOpt = None,
) -> None:
    """Replay baseline on a real boot and check every recorded allocation, failure,
    MEMBLOCK configuration dump, debugfs table and Memory: total against the model.
    A capture holding several boots (both kernels of a kexec) is checked boot by boot.
    Exit 0 only when everything matches, 1 on a mismatch."""
    code = validate_boots(trace, fmt, output, boot, strict, kernel, arch)
    if code != ExitCode.SAME:
        raise typer.Exit(code)


@app.command()
@_boundary
def parse(
    trace: TraceArg,
    fmt: Annotated[TextJson | None, typer.Option("--format", "-f", help="text (op script) or json.")] = None,
    output: OutputOpt = None,
    boot: BootOpt = None,
    strict: StrictOpt = False,
    skipped: Annotated[bool, typer.Option("--skipped", help="List the lines the parser did not understand.")] = False,
    events: Annotated[
        bool, typer.Option("--events", help="For a trace.dat: print its events as 'trace-cmd report' does.")
    ] = False,
    nsec: Annotated[bool, typer.Option("-t", help="With --events: times in ns, as 'trace-cmd report -t'.")] = False,
    vmlinux: VmlinuxOpt = None,
    kernel: KernelOpt = None,
    arch: ArchOpt = None,
) -> None:
    """Print the operation stream a trace parses to, as an op script (or JSON);
    --skipped lists every memblock-looking line that was not understood;
    --events prints a trace.dat's events as trace-cmd report does."""
    if nsec and not events:
        raise KhoReplayError("-t only means something with --events")
    ti = resolve(trace, boot=boot)
    _options(output=output, inputs=ti.files())
    if events:
        if fmt is Format.json:
            raise KhoReplayError("--events prints trace-cmd report text: --format json does not apply")
        _events_report(ti.first.path, output, nsec=nsec)
        return
    if not skipped and _format(fmt, output, ("json",)) is not Format.json:
        print_script(ti, output, strict=strict, vmlinux=vmlinux, kernel=kernel, arch=arch)
        return
    from .gcpause import gc_paused

    # an op and its records per line, no cycle among them: the collector would walk them again and again
    with gc_paused():
        t = load_source(ti.first, strict=strict, vmlinux=vmlinux, kernel=kernel, arch=arch)
    if skipped:
        lines = [f"{s.path}:{s.position}: {s.reason}: {s.raw}" for s in t.skipped]
        lines.append(f"{len(t.skipped)} line(s) skipped")
        _emit("\n".join(lines) + "\n", output, ti.files())
        return
    from .report.json import dumps, parse_document

    _emit(dumps(parse_document(t)), output, ti.files())


def _events_report(trace: Path, output: Path | None, *, nsec: bool) -> None:
    """``trace-cmd report`` lines of a trace.dat, streamed (a trace.dat can hold millions of events)."""
    from kho_replay.parsers.tracedat import open_tracedat
    from kho_replay.parsers.tracedat.render import render_report

    try:
        td_cm = open_tracedat(trace)
    except OSError as e:
        raise InputError(str(trace), e.strerror or str(e)) from None
    with td_cm as td:
        # An OSError while writing is the output's (OutputError) or a closed pipe, never the input's.
        _emit((f"{line}\n" for line in render_report(td, nsec=nsec)), output, (trace,))


@app.command()
@_boundary
def record(
    log: Annotated[
        Path | None, typer.Argument(help="memblock=debug console log (.gz/.xz too); omit with --live.")
    ] = None,
    *,
    output: Annotated[Path, typer.Option("--output", "-o", help="The trace.dat to write.")],
    debugfs: Annotated[
        Path | None, typer.Option("--debugfs", help="A copy of /sys/kernel/debug: memblock/ and kho/ ride along.")
    ] = None,
    boot: BootOpt = None,
    live: Annotated[bool, typer.Option("--live", help="Record the running kernel (dmesg, debugfs).")] = False,
    compression: Annotated[
        Compression | None, typer.Option("--compression", help="none, zlib or zstd (v7 only; default zstd).")
    ] = None,
    file_version: Annotated[int, typer.Option("--version", help="trace.dat version: 7 or 6.")] = 7,
    root: Annotated[Path, typer.Option("--root", hidden=True, help="Where --live finds /dev and /sys.")] = Path("/"),
) -> None:
    """Write a boot's console output as a trace.dat (v7, zstd by default) whose
    printk:console events carry the kernel's lines with their timestamps; the
    capture's other lines, the command line and debugfs tables ride along, so
    reading it back gives the same trace as the log.  --live records the
    running kernel from /dev/kmsg and /sys/kernel/debug."""
    from kho_replay.parsers import read_text
    from kho_replay.parsers.tracedat.record import read_debugfs_dir, record_live, record_text

    from .output import atomic_path

    if file_version not in (6, 7):
        raise UnsupportedError(str(output), f"trace.dat version {file_version} (we write 6 or 7)")
    if file_version == 6 and compression not in (None, Compression.none):
        raise KhoReplayError(f"--compression {compression.value}: a version 6 trace.dat has no compression "
                             "(use --version 7, or drop --compression)")
    comp = compression or (Compression.zstd if file_version == 7 else Compression.none)
    if live and log is not None:
        raise InputError(str(log), "give a console log or --live, not both")
    if not live and log is None:
        raise InputError("record", "give a console log to record, or --live")
    inputs = [p for p in (log, debugfs) if p is not None]
    _options(output=output, inputs=inputs)
    with atomic_path(output, inputs) as tmp:
        if live:
            n = record_live(tmp, root=root, version=file_version, compression=comp.value)
        else:
            tables = read_debugfs_dir(debugfs) if debugfs is not None else None
            n = record_text(read_text(log), str(log), tmp, boot=boot, debugfs=tables, version=file_version,
                            compression=comp.value)
    err.print(f"kho-replay: wrote {n} printk:console events to {output}", markup=False)


# ------------------------------------------------------------------ KHO designs

@app.command()
@_boundary
def strategies() -> None:
    """List the designs kho-replay can run: name, what it does, and the source it follows."""
    from .strategies import available

    lines = []
    for name, s in available().items():
        lines.append(f"{name:18} {s.description}")
        lines.append(f"{'':18}   source: {s.source}")
        for opt, why in s.known_options:
            lines.append(f"{'':18}   --option {opt}: {why}")
    _emit("\n".join(lines) + "\n", None)


def _check_specs(specs: Iterable[str], preserve: str | None) -> None:
    """Unknown strategies, options and --preserve specs are refused before anything runs."""
    from .kho.preserve import check_preserve
    from .strategies import get

    if preserve is not None:
        check_preserve(preserve)
    for spec in specs:
        name, *opts = spec.split("+")
        get(name, tuple(opts))


@app.command()
@_boundary
def kho(
    trace: Annotated[Path, typer.Argument(
        help="A console log, a trace directory, an op script, or scenario:NAME.")],
    strategy: StrategyOpt = None,
    option: OptionOpt = None,
    kexec: KexecOpt = False,
    preserve: PreserveOpt = None,
    seed: SeedOpt = None,
    second: SecondOpt = None,
    boot: BootOpt = None,
    scratch_from: ScratchFromOpt = None,
    force_kho: KhoOpt = None,
    kernel: KernelOpt = None,
    arch: ArchOpt = None,
    fmt: TextJsonOpt = None,
    output: OutputOpt = None,
) -> None:
    """Re-execute a boot under each design: KHO scratch, gigantic pages, accounting, messages.
    With --kexec, also the KHO boot that inherits the cold boot's scratch and a preserved set."""
    from .kho.boot import run_cold, run_kexec
    from .report.json import dumps, kho_document
    from .report.text import format_outcome

    ti = resolve(trace, boot=boot, second=second, pair=True)
    _options(output=output, inputs=ti.files(), kexec=kexec, preserve=preserve, seed=seed, second=second,
             scratch_from=scratch_from)
    specs = strategy or ["baseline"]
    _check_specs(specs, preserve)
    t, t2 = _pair(ti, kexec, kernel=kernel, arch=arch)
    outcomes = []
    for spec in specs:
        name, *more = spec.split("+")
        opts = tuple(option or ()) + tuple(more)
        if kexec:
            outcomes += run_kexec(t, name, preserve=preserve or "hugetlb", options=opts, kernel=kernel,
                                  seed=seed or 0, second=t2, scratch_from=scratch_from, kho=force_kho)
        else:
            outcomes.append(run_cold(t, name, options=opts, kernel=kernel, kho=force_kho))
    if _format(fmt, output, ("json",)) is Format.json:
        _emit(dumps(kho_document(outcomes)), output, ti.files())
        return
    _emit("\n".join(line for o in outcomes for line in format_outcome(o)) + "\n", output, ti.files())


@app.command()
@_boundary
def matrix(
    traces: Annotated[list[Path], typer.Argument(help="Trace directories or logs.")],
    strategy: StrategyOpt = None,
    preserve: PreserveOpt = None,
    force_kho: KhoOpt = None,
    boot: BootOpt = None,
    second: SecondOpt = None,
    output: OutputOpt = None,
    kernel: KernelOpt = None,
    arch: ArchOpt = None,
) -> None:
    """One line per trace and design: cold-boot scratch reserved?, gigantic pages placed (cold;
    KHO boot and how many inside kho_scratch[]), max_threads (cold; KHO boot)."""
    from .kho.boot import run_kexec
    from .strategies import available

    if second is not None and len(traces) > 1:
        raise KhoReplayError("--second names one trace's second kernel: give one trace with it")
    inputs = [resolve(p, boot=boot, second=second, pair=True) for p in traces]
    _options(output=output, inputs=[f for ti in inputs for f in ti.files()])
    names = strategy or list(available())
    _check_specs(names, preserve)
    rows = [("trace", "strategy", "scratch", "cold pages", "kexec pages/in scratch", "max_threads cold/kexec")]
    for path, ti in zip(traces, inputs, strict=True):
        t, t2 = _pair(ti, True, kernel=kernel, arch=arch)
        label = path.name if path.is_dir() else str(path)
        for spec in names:
            name, *opts = spec.split("+")
            c, k = run_kexec(t, name, preserve=preserve or "hugetlb", kho=force_kho, options=opts, second=t2)
            sc = ("yes" if c.scratch.enabled else
                  (f"FAIL {c.scratch.failed}" if c.scratch.failed else "KHO off"))
            kx = (f"{k.gigantic.allocated}/{k.gigantic.requested} in {k.gigantic.in_scratch}" if k.kho_boot
                  else "no KHO boot")
            rows.append((label, spec, sc, f"{c.gigantic.allocated}/{c.gigantic.requested}", kx,
                         f"{c.max_threads}/{k.max_threads if k.kho_boot else '-'}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    text = "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows)
    _emit(text + "\n", output)


# ------------------------------------------------- compare (default), diff, fixture

app.info.epilog = ("Without a command: kho-replay TRACE [--strategy S]... [--kexec] [--preserve SPEC] replays TRACE "
                   "under each strategy and diffs it against baseline (its options: kho-replay TRACE --help).")

_COMPARE = "compare"


def _commands() -> set[str]:
    """Every command and command group registered on the app (so commands added later dispatch too)."""
    names = {g.name for g in app.registered_groups if g.name}
    for c in app.registered_commands:
        if c.name:
            names.add(c.name)
        elif c.callback is not None:
            names.add(c.callback.__name__.replace("_", "-"))
    return names


def _progress(quiet: bool):  # type: ignore[no-untyped-def]
    """A rich progress bar on stderr when it is a terminal, else nothing."""
    from contextlib import nullcontext

    from rich.progress import Progress

    if quiet or not err.is_terminal:
        return nullcontext(None)
    return Progress(console=err.console, transient=True)


def _report(rep: Report, fmt: Format, output: Path | None, quiet: bool, maps: dict[str, Map] | None = None,
            inputs: Iterable[Path] = ()) -> None:
    from .report.json import diff_document, dumps
    from .report.text import report_text

    if quiet and output is None:
        return
    if fmt is Format.json:
        text = dumps(diff_document(rep))
    elif fmt is Format.html:
        from .report.html import report_html

        text = report_html(rep, maps or {})
    else:
        color = output is None and sys.stdout.isatty()
        text = report_text(rep, color=color, width=err.width if color else 120)
    _emit(text, output, inputs)


def _check_trace(t: Trace, src: Source) -> None:
    if not any(isinstance(op, Alloc) for op in t.ops):
        raise KhoReplayError(f"{src}: no allocation requests (not a memblock=debug boot log?)")


class _DefaultCommand(typer.core.TyperCommand):
    """The hidden default command: its help says ``kho-replay TRACE``, not the name dispatch gave it."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        # the usage line then reads "kho-replay TRACE [OPTIONS] ..."
        return super().make_context("TRACE", args, parent=parent, **extra)


@app.command(name=_COMPARE, hidden=True, cls=_DefaultCommand)
@_boundary
def compare(
    trace: TraceArg,
    strategy: StrategyOpt = None,
    kexec: KexecOpt = False,
    preserve: PreserveOpt = None,
    threshold: ThresholdOpt = "0",
    seed: SeedOpt = None,
    boot: BootOpt = None,
    second: SecondOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    quiet: QuietOpt = False,
    kernel: KernelOpt = None,
    arch: ArchOpt = None,
) -> None:
    """Replay TRACE under each strategy (default: all) and diff each against baseline.
    Exit 0 when no strategy diverges, 1 when one does, 2 on bad input."""
    from .compare.diff import diff
    from .kho.boot import Replayed, replay_cold, replay_kexec
    from .report.text import Comparison, Report
    from .strategies import available

    ti = resolve(trace, boot=boot, second=second, pair=True)
    _options(output=output, inputs=ti.files(), kexec=kexec, preserve=preserve, seed=seed, second=second)
    form = _format(fmt, output, ("json", "html"))
    limit = _threshold(threshold)
    names = strategy or [n for n in available() if n != "baseline"]
    _check_specs(names, preserve)
    t, t2 = _pair(ti, kexec, kernel=kernel, arch=arch)
    _check_trace(t, ti.first)
    comparisons = []
    maps = {}
    with _progress(quiet) as bar:
        task = bar.add_task("replaying", total=len(names) + 1) if bar else None

        def one(spec: str) -> list[Replayed]:
            name, *opts = spec.split("+")
            if bar is not None:
                bar.update(task, description=spec, advance=1)
            if kexec:
                return list(replay_kexec(t, name, preserve=preserve or "hugetlb", options=opts, seed=seed or 0,
                                         second=t2))
            return [replay_cold(t, name, options=opts)]

        base = one("baseline")
        maps["baseline"] = base
        for spec in names:
            got = one(spec)
            maps[spec] = got
            for (old, om), (new, nm) in zip(base, got, strict=True):
                tables = ([(r.base, r.size) for r in om.reserved], [(r.base, r.size) for r in nm.reserved])
                comparisons.append(Comparison(spec, new.boot, diff(old, new, trace=t, threshold=limit,
                                                                   reserved=tables)))
    rep = Report(str(trace), "baseline", kexec, (preserve or "hugetlb") if kexec else None, limit,
                 tuple(comparisons))
    _report(rep, form, output, quiet, maps, ti.files())
    raise typer.Exit(ExitCode.DIVERGED if rep.diverged else ExitCode.SAME)


@app.command(name="diff")
@_boundary
def diff_cmd(
    trace_a: Annotated[Path, typer.Argument(help="The first real boot (log or trace directory).")],
    trace_b: Annotated[Path | None, typer.Argument(
        help="The second real boot (default: A's second kernel, as --second).")] = None,
    boot: BootOpt = None,
    second: SecondOpt = None,
    threshold: ThresholdOpt = "0",
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    quiet: QuietOpt = False,
    kernel: KernelOpt = None,
    arch: ArchOpt = None,
) -> None:
    """Compare two real boots (two kernels on one machine, or a first and a second kernel):
    each is replayed as baseline (B as a KHO boot with A's scratch when it was one)
    and B is diffed against A, requests paired by caller.  Without B, A's second
    kernel (console-kernel2.log beside it, or the second boot of its capture).
    Exit 0 when they agree, 1 when they differ, 2 on bad input."""
    from .compare.diff import diff
    from .kho.boot import replay_pair
    from .report.text import Comparison, Report

    if trace_b is not None and second is not None:
        raise KhoReplayError("give TRACE_B or --second, not both")
    ta_in = resolve(trace_a, boot=boot, second=second or trace_b, pair=trace_b is None)
    if trace_b is not None:
        b_src = resolve(trace_b).first
    elif ta_in.second is not None:
        b_src = ta_in.second
    else:
        raise KhoReplayError(f"{trace_a}: no second kernel to compare with: give TRACE_B or --second")
    files = (ta_in.first.path, b_src.path)
    _options(output=output, inputs=files)
    form = _format(fmt, output, ("json", "html"))
    limit = _threshold(threshold)
    ta = load_source(ta_in.first, kernel=kernel, arch=arch)
    tb = load_source(b_src, kernel=kernel, arch=arch, handed_over=b_src is ta_in.second)
    for t, src in ((ta, ta_in.first), (tb, b_src)):
        _check_trace(t, src)
    if (ta.context.arch or "x86_64") != (tb.context.arch or "x86_64"):
        raise KhoReplayError(f"{ta_in.first} is {ta.context.arch or 'x86_64'}, {b_src} is "
                             f"{tb.context.arch or 'x86_64'}: cannot compare boots of different architectures")
    ra, rb = replay_pair(ta, tb)
    (a, amb), (b, bmb) = ra, rb
    tables = ([(r.base, r.size) for r in amb.reserved], [(r.base, r.size) for r in bmb.reserved])
    d = diff(a, b, trace=tb, old_trace=ta, sides=("A", "B"), threshold=limit, by_caller=True, reserved=tables)
    rep = Report(f"A = {ta_in.first}, B = {b_src}", "A", False, None, limit, (Comparison("B", b.boot, d),))
    _report(rep, form, output, quiet, {"A": [ra], "B": [rb]}, files)
    raise typer.Exit(ExitCode.DIVERGED if rep.diverged else ExitCode.SAME)


fixture_app = typer.Typer(help="Regression fixtures: traces/<name>/ with expected.json.", no_args_is_help=True,
                          context_settings=HELP)
app.add_typer(fixture_app, name="fixture")


@fixture_app.command("add")
@_boundary
def fixture_add(
    trace: TraceArg,
    name: Annotated[str | None, typer.Option("--name", help="Fixture name (default: the trace's).")] = None,
    fixtures: FixturesOpt = Path("traces"),
) -> None:
    """Store TRACE under FIXTURES/<name>/ with expected.json: the outcome of every
    strategy, cold and as the KHO boot after it."""
    from .fixtures import add

    dest = add(trace, fixtures, name)
    err.print(f"kho-replay: wrote {dest / 'expected.json'}", markup=False)


@fixture_app.command("check")
@_boundary
def fixture_check(
    names: Annotated[list[str] | None, typer.Argument(help="Fixtures to check (default: all).")] = None,
    fixtures: FixturesOpt = Path("traces"),
    quiet: QuietOpt = False,
) -> None:
    """Replay every fixture and compare with its expected.json; print what changed.
    Exit 0 when nothing changed, 1 when something did, 2 on bad input."""
    from .fixtures import check
    from .fixtures import fixtures as all_fixtures

    dirs = [fixtures / n for n in names] if names else all_fixtures(fixtures)
    if not dirs:
        raise KhoReplayError(f"{fixtures}: no fixtures (directories with expected.json)")
    lines, changed = [], 0
    with _progress(quiet) as bar:
        task = bar.add_task("fixtures", total=len(dirs)) if bar else None
        for d in dirs:
            if bar is not None:
                bar.update(task, description=d.name, advance=1)
            found = check(d)
            changed += bool(found)
            lines.append(f"{d.name}: {'CHANGED' if found else 'ok'}")
            lines += [f"  {x}" for x in found]
    lines.append(f"{len(dirs) - changed}/{len(dirs)} fixtures unchanged")
    if not quiet:
        _emit("\n".join(lines) + "\n", None)
    raise typer.Exit(ExitCode.DIVERGED if changed else ExitCode.SAME)


# ------------------------------------------------------------------ entry point

from .cli_whatif import register as _register_whatif  # noqa: E402  (needs the commands above)

_register_whatif(app)

from . import cli_fleet  # noqa: E402, F401  (registers retarget and fleet)


def dispatch(args: list[str]) -> list[str]:
    """*args* with the hidden ``compare`` command inserted unless they start with a command or -h/--help/--version.

    typer cannot have a positional default command beside subcommands, hence this.
    """
    if args and args[0] not in _commands() and args[0] not in ("-h", "--help", "--version"):
        return [_COMPARE, *args]
    return list(args)


def _plain_coercion() -> None:
    """Coerce ``str`` and plain ``Path`` parameters without pydantic.

    typer coerces every parameter, given or not, through a pydantic ``TypeAdapter`` built on
    first use: importing pydantic and building them is ~0.15 CPU-s, the start-up of a short
    ``run``.  An option not given (None) needs no coercion; a ``str`` is itself; a ``Path``
    goes through typer's own path checks.  Any other type still gets its adapter, when given.
    """
    from dataclasses import dataclass

    # typer's internals (0.29): another typer without them keeps its own coercion, only slower to start.
    try:
        from typer import _coercion, _param_types
        from typer import core as typer_core

        build = typer_core.build_runtime_param
        _coercion.RuntimeParam._coerce_value  # noqa: B018
        _param_types.coerce_cli_path  # noqa: B018
    except (ImportError, AttributeError):
        return
    if getattr(build, "plain", False):
        return

    try:
        @dataclass(frozen=True)
        class Deferred(_coercion.RuntimeParam):
            descriptor: Any

            def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
                info, kind = self.parameter_info, self.annotation
                if type(value) is str and value and info.parser is None and not param.multiple and param.nargs == 1:
                    if kind is str:
                        return value
                    if kind is Path and info.path_type is None:
                        return _param_types.coerce_cli_path(Path(value), info, path_type=Path, param=param, ctx=ctx)
                return build(self.descriptor)._coerce_value(value, param=param, ctx=ctx)
    except TypeError:  # a RuntimeParam of another shape
        return

    def plain(descriptor: Any) -> Any:
        try:
            if descriptor.file_annotation is None:
                return Deferred(descriptor.parameter_info, descriptor.annotation, descriptor)
        except (AttributeError, TypeError):  # a descriptor or RuntimeParam of another shape: typer's own way
            pass
        return build(descriptor)

    plain.plain = True  # type: ignore[attr-defined]
    typer_core.build_runtime_param = plain


def run_cli(args: list[str]) -> int:
    """Run kho-replay with *args* (no program name); returns the exit code.  A bad option is one line, exit 2."""
    _plain_coercion()
    try:
        code = app(args=dispatch(args), prog_name="kho-replay", standalone_mode=False)
    except click_exc.ClickException as e:
        # One line, and no usage line: the hidden default command has a name no user typed.
        msg = e.format_message().replace("\n", " ").replace("Value error, ", "")
        err.print(f"kho-replay: error: {msg}", markup=False)
        return ExitCode.ERROR
    except typer.Abort:
        return ExitCode.ERROR
    except BrokenPipeError:
        _pipe_closed()
        return ExitCode.SAME
    except SystemExit as e:
        # typer prints help through its own rich console, which turns a closed pipe (`-h | head`) into exit 1.
        if e.code == 1 and ({"-h", "--help"} & set(args)) and _stdout_is_devnull():
            return ExitCode.SAME
        raise
    return int(code or 0)


def _stdout_is_devnull() -> bool:
    """Whether stdout was pointed at /dev/null, as rich does when the reader of a pipe went away."""
    try:
        return os.path.samestat(os.fstat(sys.stdout.fileno()), os.stat(os.devnull))
    except (OSError, ValueError, AttributeError):
        return False

