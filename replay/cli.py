# SPDX-License-Identifier: GPL-2.0-only
"""The ``kho-replay`` command: wiring only.

Reports go to stdout (or ``-o FILE``); errors go to stderr as one line,
``kho-replay: error: <what>``.  Exit codes are an interface:

* 0 — done, and (for comparisons) nothing diverged;
* 1 — a comparison diverged;
* 2 — bad input or an error.
"""

from __future__ import annotations

import contextlib
import enum
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from .compare.validate import ValidationReport
from .errors import InputError, KhoReplayError, UnsupportedError
from .kho.model import memblock_for
from .memblock.engine import Memblock, run_json
from .ops import Alloc, Trace, format_op, format_script, op_fields

if TYPE_CHECKING:
    from .report.html import Map
    from .report.text import Report

__all__ = ["ExitCode", "app", "dispatch", "main"]


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


app = typer.Typer(
    name="kho-replay",
    help="Replay real Linux boots on a bit-exact model of memblock and compare KHO/hugetlb designs.",
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
)

err = Console(stderr=True, highlight=False, soft_wrap=True)

TraceArg = Annotated[
    Path,
    typer.Argument(help="memblock=debug console log (.gz/.xz too), debugfs dump or directory, op script, "
                        "or trace-cmd trace.dat."),
]
KernelOpt = Annotated[
    str | None, typer.Option("--kernel", "-k", help="Kernel release to model (default: the trace's, else 7.3).")
]
ArchOpt = Annotated[
    str | None, typer.Option("--arch", help="x86_64, arm64 or harness (default: the trace's, else x86_64).")
]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="text or json.")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write the report here, not stdout.")]
BootOpt = Annotated[
    int | None, typer.Option("--boot", help="For a log holding several boots: which one (1-based, -1 the last).")
]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Unknown memblock-looking lines are errors.")]
VmlinuxOpt = Annotated[
    Path | None, typer.Option("--vmlinux", help="For a trace.dat: an ELF whose symbols name traced addresses.")
]


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


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)


def _fail(e: KhoReplayError) -> typer.Exit:
    err.print(f"kho-replay: error: {e}", markup=False)
    return typer.Exit(ExitCode.ERROR)


def _load(path: Path, *, strict: bool = False, boot: int | None = None, vmlinux: Path | None = None) -> Trace:
    from kho_replay.parsers import load

    return load(path, strict=strict, boot=boot, vmlinux=vmlinux)


@app.command()
def run(
    trace: TraceArg,
    kernel: KernelOpt = None,
    arch: ArchOpt = None,
    fmt: FormatOpt = Format.text,
    output: OutputOpt = None,
    boot: BootOpt = None,
) -> None:
    """Execute a trace or op script on the memblock model and print each allocation's
    result and the final memory/reserved tables as memblock_dump_all() does."""
    try:
        t = _load(trace, boot=boot)
        mb = memblock_for(t, kernel=kernel, arch=arch)
        res = mb.run(t.ops)
    except KhoReplayError as e:
        raise _fail(e) from None
    if fmt is Format.json:
        _emit(json.dumps(run_json(mb, res), indent=1) + "\n", output)
        return
    lines = []
    allocs = [op for op in t.ops if isinstance(op, Alloc)]
    for op, r in zip(allocs, res.results, strict=False):
        got = "failed" if r.addr is None else f"{r.addr:#018x}"
        lines.append(f"{format_op(op)}  -> {got}")
    lines += [m.text for m in res.messages if m.level != "dbg"]
    if res.panic is not None:
        lines.append(f"Kernel panic - not syncing: {res.panic}")
    lines += mb.dump_all()
    _emit("\n".join(lines) + "\n", output)


@app.command()
def validate(
    trace: TraceArg,
    fmt: FormatOpt = Format.text,
    output: OutputOpt = None,
    boot: BootOpt = None,
    strict: StrictOpt = False,
) -> None:
    """Replay baseline on a real boot and check every recorded allocation, failure,
    MEMBLOCK configuration dump, debugfs table and Memory: total against the model.
    A log holding several boots (both kernels of a kexec) is checked boot by boot.
    Exit 0 only when everything matches, 1 on a mismatch."""
    from kho_replay.parsers import boot_count

    from .compare.validate import validate as run_validate

    try:
        boots = [boot] if boot is not None else list(range(1, boot_count(trace) + 1))
        if len(boots) == 1 and boot is None:
            boots = [None]
        traces = [_load(trace, strict=strict, boot=b) for b in boots]
        for t in traces:
            if not t.ops:
                raise KhoReplayError(f"{t.context.source}: no memblock operations to replay (a debugfs dump "
                                     "alone?): give the boot's console log, or a directory holding both")
        reports = [run_validate(t) for t in traces]
    except KhoReplayError as e:
        raise _fail(e) from None
    if fmt is Format.json:
        docs = [_report_json(r, b) for r, b in zip(reports, boots, strict=True)]
        doc = docs[0] if len(docs) == 1 else {"schema_version": 1, "boots": docs,
                                              "ok": all(d["ok"] for d in docs)}
        _emit(json.dumps(doc, indent=1, sort_keys=True) + "\n", output)
    else:
        parts = []
        for r, b in zip(reports, boots, strict=True):
            text = (f"boot {b}: " if b is not None else "") + r.summary() + "\n"
            if r.first_mismatch is not None and r.model is not None:
                text += _context_table(r) + "\n"
            parts.append(text)
        _emit("".join(parts), output)
    if not all(r.ok for r in reports):
        raise typer.Exit(ExitCode.DIVERGED)


def _report_json(report: ValidationReport, boot: int | None) -> dict[str, object]:
    return {
        "schema_version": 1,
        "boot": boot,
        "source": report.source,
        "ok": report.ok,
        "ops": report.ops,
        "inferred_ops": report.inferred_ops,
        "allocations": [report.allocations_ok, report.allocations],
        "dumps": [report.dumps_ok, report.dumps],
        "debugfs": [report.debugfs_ok, report.debugfs],
        "doublings": [report.doublings_ok, report.doublings],
        "memory_lines": [report.memory_lines_ok, report.memory_lines],
        "after_boot_frees": [[hex(b), hex(sz)] for b, sz in report.after_boot_frees],
        "panic": report.panic,
        "mismatches": [str(m) for m in report.mismatches],
    }


def _context_table(report: ValidationReport) -> str:
    """The model's reserved regions around the first mismatching allocation, if it names one."""
    import re

    m = report.first_mismatch
    mb = report.model
    if m is None or mb is None:
        return ""
    addrs = [int(a, 16) for a in re.findall(r"0x[0-9a-f]{9,}", f"{m.expected} {m.got}")]
    if not addrs:
        return ""
    lo = min(addrs)
    regions = [r for r in mb.reserved if r.base + r.size >= lo - 0x200000 and r.base <= max(addrs) + 0x200000]
    lines = ["  reserved regions around it (model at the end of the boot):"]
    for r in regions[:16]:
        lines.append(f"    [{r.base:#018x}-{r.base + r.size - 1:#018x}] flags={r.flags:#x} nid={r.nid}")
    return "\n".join(lines)


@app.command()
def parse(
    trace: TraceArg,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="text (op script) or json.")] = Format.text,
    output: OutputOpt = None,
    boot: BootOpt = None,
    strict: StrictOpt = False,
    skipped: Annotated[bool, typer.Option("--skipped", help="List the lines the parser did not understand.")] = False,
    events: Annotated[
        bool, typer.Option("--events", help="For a trace.dat: print its events as 'trace-cmd report' does.")
    ] = False,
    nsec: Annotated[bool, typer.Option("-t", help="With --events: times in ns, as 'trace-cmd report -t'.")] = False,
    vmlinux: VmlinuxOpt = None,
) -> None:
    """Print the operation stream a trace parses to, as an op script (or JSON);
    --skipped lists every memblock-looking line that was not understood;
    --events prints a trace.dat's events as trace-cmd report does."""
    if events:
        _events_report(trace, output, nsec=nsec)
        return
    try:
        t = _load(trace, strict=strict, boot=boot, vmlinux=vmlinux)
    except KhoReplayError as e:
        raise _fail(e) from None
    if skipped:
        lines = [f"{s.path}:{s.position}: {s.reason}: {s.raw}" for s in t.skipped]
        lines.append(f"{len(t.skipped)} line(s) skipped")
        _emit("\n".join(lines) + "\n", output)
        return
    if fmt is Format.json:
        doc = {
            "schema_version": 1,
            "context": {"source": t.context.source, "release": t.context.release, "arch": t.context.arch,
                        "cmdline": t.context.cmdline},
            "ops": [{"op": op.keyword, **{k: _jsonable(v) for k, v in op_fields(op).items()},
                     "caller": op.caller, "inferred": op.inferred,
                     "src": None if op.src is None else str(op.src)} for op in t.ops],
            "skipped": len(t.skipped),
        }
        _emit(json.dumps(doc, indent=1, sort_keys=True) + "\n", output)
        return
    _emit(format_script(t.ops), output)


def _events_report(trace: Path, output: Path | None, *, nsec: bool) -> None:
    """``trace-cmd report`` lines of a trace.dat, streamed (a trace.dat can hold millions of events)."""
    from kho_replay.parsers.tracedat import open_tracedat
    from kho_replay.parsers.tracedat.render import render_report

    try:
        # stdout is not ours to close: only a file named with -o is.
        sink = contextlib.nullcontext(sys.stdout) if output is None else output.open("w")
        with open_tracedat(trace) as td, sink as out:
            write = out.write
            for line in render_report(td, nsec=nsec):
                write(line)
                write("\n")
    except KhoReplayError as e:
        raise _fail(e) from None
    except OSError as e:
        raise _fail(InputError(str(trace), e.strerror or str(e))) from None


@app.command()
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
        Compression, typer.Option("--compression", help="none, zlib or zstd (v7 only).")
    ] = Compression.zstd,
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

    try:
        if file_version not in (6, 7):
            raise UnsupportedError(str(output), f"trace.dat version {file_version} (we write 6 or 7)")
        if file_version == 6 and compression is not Compression.none:
            compression = Compression.none  # v6 has no compression: the default must not refuse
        if live and log is not None:
            raise InputError(str(log), "give a console log or --live, not both")
        if live:
            n = record_live(output, root=root, version=file_version, compression=compression.value)
        elif log is None:
            raise InputError("record", "give a console log to record, or --live")
        else:
            tables = read_debugfs_dir(debugfs) if debugfs is not None else None
            n = record_text(read_text(log), str(log), output, boot=boot, debugfs=tables, version=file_version,
                            compression=compression.value)
    except KhoReplayError as e:
        raise _fail(e) from None
    except OSError as e:
        raise _fail(InputError(str(output), e.strerror or str(e))) from None
    err.print(f"kho-replay: wrote {n} printk:console events to {output}", markup=False)


def _jsonable(v: object) -> object:
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return hex(v) if v >= 0 else v
    return str(v)


# ---------------------------------------------------------------- KHO designs

KhoTraceArg = Annotated[Path, typer.Argument(
    help="A memblock=debug console log, a trace directory, an op script, or scenario:NAME.")]
StrategyOpt = Annotated[list[str] | None, typer.Option(
    "--strategy", "-s",
    help="Design to run (repeatable); NAME+OPTION adds an option, e.g. inverted-ext+protect-scratch.")]
OptionOpt = Annotated[list[str] | None, typer.Option("--option", help="Strategy option, e.g. protect-scratch.")]
KexecOpt = Annotated[bool, typer.Option("--kexec", help="Also run the KHO boot that follows the cold boot.")]
PreserveOpt = Annotated[str, typer.Option("--preserve", help="hugetlb, memfd:SIZE[:FOLIO], or log.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for memfd:SIZE scattering.")]
SecondOpt = Annotated[Path | None, typer.Option("--second", help="Real second-kernel log (for --preserve log).")]
ScratchFromOpt = Annotated[str | None, typer.Option("--scratch-from",
                                                    help="Take the KHO boot's scratch from this design's cold boot.")]

KhoOpt = Annotated[bool | None, typer.Option("--kho/--no-kho",
                                             help="Force kho on/off (default: the trace's kho= parameter).")]

_COLD_LOGS = ("console-kernel1.log", "console-kernel1.log.gz", "console.log", "console.log.gz", "console.log.xz")
_SECOND_LOGS = ("console-kernel2.log", "console-kernel2.log.gz", "console-kernel2.log.xz")


def _trace_files(path: Path) -> tuple[Path, Path | None]:
    """The cold-boot log of *path* and, for a KHO trace directory, the second kernel's log."""
    if str(path).startswith("scenario:") or not path.is_dir():
        return path, None
    cold = next((path / n for n in _COLD_LOGS if (path / n).exists()), None)
    if cold is None:
        raise KhoReplayError(f"{path}: no console log ({', '.join(_COLD_LOGS)})")
    second = next((path / n for n in _SECOND_LOGS if (path / n).exists()), None)
    return cold, second


def _load_trace(path: Path) -> Trace:
    from .kho.scenarios import SCENARIOS

    name = str(path)
    if name.startswith("scenario:"):
        key = name.removeprefix("scenario:")
        if key not in SCENARIOS:
            raise KhoReplayError(f"unknown scenario {key!r} (known: {', '.join(SCENARIOS)})")
        return SCENARIOS[key]()
    return _load(path)


@app.command()
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


@app.command()
def kho(
    trace: KhoTraceArg,
    strategy: StrategyOpt = None,
    option: OptionOpt = None,
    kexec: KexecOpt = False,
    preserve: PreserveOpt = "hugetlb",
    seed: SeedOpt = 0,
    second: SecondOpt = None,
    scratch_from: ScratchFromOpt = None,
    force_kho: KhoOpt = None,
    kernel: Annotated[str | None, typer.Option("--kernel", "-k", help="Override the trace's kernel release.")] = None,
    fmt: FormatOpt = Format.text,
    output: OutputOpt = None,
) -> None:
    """Re-execute a boot under each design: KHO scratch, gigantic pages, accounting, messages.
    With --kexec, also the KHO boot that inherits the cold boot's scratch and a preserved set."""
    from .kho.boot import run_cold, run_kexec
    from .kho.outcome import format_outcome, outcome_json

    try:
        cold_path, second_path = _trace_files(trace)
        t = _load_trace(cold_path)
        # A real second kernel gives the preserved set (log/debugfs) and the kexec segments in scratch.
        t2 = _load_trace(second or second_path) if kexec and (second or second_path) else None
        outcomes = []
        for spec in strategy or ["baseline"]:
            name, *more = spec.split("+")
            opts = tuple(option or ()) + tuple(more)
            if kexec:
                outcomes += run_kexec(t, name, preserve=preserve, options=opts, kernel=kernel, seed=seed,
                                      second=t2, scratch_from=scratch_from, kho=force_kho)
            else:
                outcomes.append(run_cold(t, name, options=opts, kernel=kernel, kho=force_kho))
    except KhoReplayError as e:
        raise _fail(e) from None
    if fmt is Format.json:
        _emit(json.dumps([outcome_json(o) for o in outcomes], indent=1, sort_keys=True) + "\n", output)
        return
    _emit("\n".join(line for o in outcomes for line in format_outcome(o)) + "\n", output)


@app.command()
def matrix(
    traces: Annotated[list[Path], typer.Argument(help="Trace directories or logs.")],
    strategy: StrategyOpt = None,
    preserve: PreserveOpt = "hugetlb",
    force_kho: KhoOpt = None,
    output: OutputOpt = None,
) -> None:
    """One line per trace and design: cold-boot scratch reserved?, gigantic pages placed (cold;
    KHO boot and how many inside kho_scratch[]), max_threads (cold; KHO boot)."""
    from .kho.boot import run_kexec
    from .strategies import available

    names = strategy or list(available())
    rows = [("trace", "strategy", "scratch", "cold pages", "kexec pages/in scratch", "max_threads cold/kexec")]
    try:
        for path in traces:
            cold_path, second_path = _trace_files(path)
            t = _load_trace(cold_path)
            t2 = _load_trace(second_path) if second_path is not None else None
            label = path.name if path.is_dir() and not str(path).startswith("scenario:") else str(path)
            for spec in names:
                name, *opts = spec.split("+")
                c, k = run_kexec(t, name, preserve=preserve, kho=force_kho, options=opts, second=t2)
                sc = "yes" if c.scratch.enabled else (f"FAIL {c.scratch.failed}" if c.scratch.failed else "KHO off")
                kx = (f"{k.gigantic.allocated}/{k.gigantic.requested} in {k.gigantic.in_scratch}" if k.kho_boot
                      else "no KHO boot")
                rows.append((label, spec, sc, f"{c.gigantic.allocated}/{c.gigantic.requested}", kx,
                             f"{c.max_threads}/{k.max_threads if k.kho_boot else '-'}"))
    except KhoReplayError as e:
        raise _fail(e) from None
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    text = "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows)
    _emit(text + "\n", output)


# ------------------------------------------------- compare (default), diff, fixture
# Issue 5: "what changes?" — kho-replay TRACE --strategy S, two real boots, regression fixtures.

ThresholdOpt = Annotated[str, typer.Option(
    "--threshold", help="Hide byte deltas and moves smaller than this size (4K, 2M, 0x1000).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No report on stdout and no progress: exit code only.")]
ReportFormatOpt = Annotated[Format, typer.Option("--format", "-f", help="text, json or html.")]
FixturesOpt = Annotated[Path, typer.Option("--fixtures", help="Directory holding the fixtures.")]

app.info.epilog = ("Without a command: kho-replay TRACE [--strategy S]... [--kexec] [--preserve SPEC] replays TRACE "
                   "under each strategy and diffs it against baseline (options: kho-replay compare --help).")

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
    return Progress(console=err, transient=True)


def _report(rep: Report, fmt: Format, output: Path | None, quiet: bool, maps: dict[str, Map] | None = None) -> None:
    from .report.text import report_json, report_text

    if quiet and output is None:
        return
    if fmt is Format.text and output is not None and output.suffix in (".html", ".json"):
        # -o report.html means the HTML report; plain text is only the default.
        fmt = Format(output.suffix[1:])
    if fmt is Format.json:
        text = report_json(rep)
    elif fmt is Format.html:
        from .report.html import report_html

        text = report_html(rep, maps or {})
    else:
        color = output is None and sys.stdout.isatty()
        text = report_text(rep, color=color, width=err.width if color else 120)
    _emit(text, output)


def _check_trace(t: Trace, path: Path) -> None:
    if not any(isinstance(op, Alloc) for op in t.ops):
        raise KhoReplayError(f"{path}: no allocation requests (not a memblock=debug boot log?)")


@app.command(name=_COMPARE, hidden=True)
def compare(
    trace: TraceArg,
    strategy: StrategyOpt = None,
    kexec: KexecOpt = False,
    preserve: PreserveOpt = "hugetlb",
    threshold: ThresholdOpt = "0",
    seed: SeedOpt = 0,
    fmt: ReportFormatOpt = Format.text,
    output: OutputOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Replay TRACE under each strategy (default: all) and diff each against baseline.
    Exit 0 when no strategy diverges, 1 when one does, 2 on bad input."""
    from kho_replay.parsers import load

    from .compare.diff import diff
    from .kho.boot import run_cold, run_kexec
    from .kho.outcome import Outcome
    from .kho.params import memparse
    from .kho.preserve import check_preserve
    from .report.text import Comparison, Report
    from .strategies import available, get

    try:
        limit = memparse(threshold)
        check_preserve(preserve)
        names = strategy or [n for n in available() if n != "baseline"]
        for spec in names:
            name, *opts = spec.split("+")
            get(name, tuple(opts))
        if str(trace).startswith("scenario:"):
            cold_path, second_path, t = trace, None, _load_trace(trace)
        else:
            cold_path, second_path = _trace_files_new(trace)
            t = load(cold_path)
        _check_trace(t, cold_path)
        t2 = load(second_path) if kexec and second_path is not None else None
        comparisons = []
        maps = {}
        with _progress(quiet) as bar:
            task = bar.add_task("replaying", total=len(names) + 1) if bar else None

            def one(spec: str) -> list[tuple[Outcome, Memblock]]:
                name, *opts = spec.split("+")
                if bar is not None:
                    bar.update(task, description=spec, advance=1)
                models: list[Memblock] = []
                if kexec:
                    got = run_kexec(t, name, preserve=preserve, options=opts, seed=seed, second=t2, models=models)
                else:
                    got = (run_cold(t, name, options=opts, models=models),)
                return list(zip(got, models, strict=True))

            base = one("baseline")
            maps["baseline"] = base
            for spec in names:
                got = one(spec)
                maps[spec] = got
                for (old, om), (new, nm) in zip(base, got, strict=True):
                    tables = ([(r.base, r.size) for r in om.reserved], [(r.base, r.size) for r in nm.reserved])
                    comparisons.append(Comparison(spec, new.boot, diff(old, new, trace=t, threshold=limit,
                                                                       reserved=tables)))
    except KhoReplayError as e:
        raise _fail(e) from None
    rep = Report(str(trace), "baseline", kexec, preserve if kexec else None, limit, tuple(comparisons))
    _report(rep, fmt, output, quiet, maps)
    raise typer.Exit(ExitCode.DIVERGED if rep.diverged else ExitCode.SAME)


def _trace_files_new(path: Path) -> tuple[Path, Path | None]:
    from .fixtures import trace_files

    if not path.exists():
        raise KhoReplayError(f"{path}: no such file or directory")
    return trace_files(path)


@app.command(name="diff")
def diff_cmd(
    trace_a: Annotated[Path, typer.Argument(help="The first real boot (log or trace directory).")],
    trace_b: Annotated[Path, typer.Argument(help="The second real boot.")],
    threshold: ThresholdOpt = "0",
    fmt: ReportFormatOpt = Format.text,
    output: OutputOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Compare two real boots (two kernels on one machine, or a first and a second kernel):
    each is replayed as baseline (B as a KHO boot with A's scratch when it was one)
    and B is diffed against A, requests paired by caller.
    Exit 0 when they agree, 1 when they differ, 2 on bad input."""
    from kho_replay.parsers import load

    from .compare.diff import diff
    from .kho.boot import run_pair
    from .kho.params import memparse
    from .report.text import Comparison, Report

    try:
        limit = memparse(threshold)
        ta, tb = (load(_trace_files_new(p)[0]) for p in (trace_a, trace_b))
        for t, p in ((ta, trace_a), (tb, trace_b)):
            _check_trace(t, p)
        if (ta.context.arch or "x86_64") != (tb.context.arch or "x86_64"):
            raise KhoReplayError(f"{trace_a} is {ta.context.arch or 'x86_64'}, {trace_b} is "
                                 f"{tb.context.arch or 'x86_64'}: cannot compare boots of different architectures")
        models: list[Memblock] = []
        a, b = run_pair(ta, tb, models=models)
    except KhoReplayError as e:
        raise _fail(e) from None
    tables = tuple([(r.base, r.size) for r in m.reserved] for m in models)
    d = diff(a, b, trace=tb, threshold=limit, by_caller=True, reserved=(tables[0], tables[1]))
    rep = Report(f"A = {trace_a}, B = {trace_b}", "A", False, None, limit, (Comparison("B", b.boot, d),))
    _report(rep, fmt, output, quiet, {"A": [(a, models[0])], "B": [(b, models[1])]})
    raise typer.Exit(ExitCode.DIVERGED if rep.diverged else ExitCode.SAME)


fixture_app = typer.Typer(help="Regression fixtures: traces/<name>/ with expected.json.", no_args_is_help=True)
app.add_typer(fixture_app, name="fixture")


@fixture_app.command("add")
def fixture_add(
    trace: TraceArg,
    name: Annotated[str | None, typer.Option("--name", help="Fixture name (default: the trace's).")] = None,
    fixtures: FixturesOpt = Path("traces"),
) -> None:
    """Store TRACE under FIXTURES/<name>/ with expected.json: the outcome of every
    strategy, cold and as the KHO boot after it."""
    from .fixtures import add

    try:
        dest = add(trace, fixtures, name)
    except KhoReplayError as e:
        raise _fail(e) from None
    err.print(f"kho-replay: wrote {dest / 'expected.json'}", markup=False)


@fixture_app.command("check")
def fixture_check(
    names: Annotated[list[str] | None, typer.Argument(help="Fixtures to check (default: all).")] = None,
    fixtures: FixturesOpt = Path("traces"),
    quiet: QuietOpt = False,
) -> None:
    """Replay every fixture and compare with its expected.json; print what changed.
    Exit 0 when nothing changed, 1 when something did, 2 on bad input."""
    from .fixtures import check
    from .fixtures import fixtures as all_fixtures

    try:
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
    except KhoReplayError as e:
        raise _fail(e) from None
    lines.append(f"{len(dirs) - changed}/{len(dirs)} fixtures unchanged")
    if not quiet:
        _emit("\n".join(lines) + "\n", None)
    raise typer.Exit(ExitCode.DIVERGED if changed else ExitCode.SAME)


def dispatch(args: list[str]) -> list[str]:
    """*args* with the hidden ``compare`` command inserted unless they start with a command or --help/--version.

    typer cannot have a positional default command beside subcommands, hence this.
    """
    if args and args[0] not in _commands() and args[0] not in ("--help", "--version"):
        return [_COMPARE, *args]
    return list(args)


def main() -> None:
    """Console-script entry point: ``kho-replay TRACE ...`` runs the hidden ``compare`` command."""
    app(args=dispatch(sys.argv[1:]), prog_name="kho-replay")
