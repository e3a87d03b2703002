# SPDX-License-Identifier: GPL-2.0-only
"""``kho-replay retarget`` and ``kho-replay fleet``: hosts that never booted with memblock=debug.

Registered onto the main :data:`~.cli.app`; wiring only (the work is in :mod:`.retarget`).
"""

from __future__ import annotations

import glob
import sys
from pathlib import Path
from typing import Annotated

import typer

from .cli_app import ExitCode, _emit, _fail, app, err
from .errors import KhoReplayError

__all__ = ["fleet_cmd", "retarget_cmd"]


@app.command(name="retarget")
def retarget_cmd(
    template: Annotated[Path, typer.Argument(help="Template: a memblock=debug boot log or trace directory of the "
                                                  "same kernel build.")],
    plain: Annotated[Path, typer.Argument(help="The host's plain boot log (dmesg, journalctl -k, serial).")],
    iomem: Annotated[Path | None, typer.Option("--iomem", help="The host's /proc/iomem (read as root): "
                                                               "where its kernel image sits.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Predict even when the host runs another build.")] = False,
    check: Annotated[bool, typer.Option("--check/--no-check", help="Print the printed-address check "
                                                                   "on stderr.")] = True,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the host's trace here.")] = None,
) -> None:
    """Build a host's op stream from TEMPLATE and the host's plain log: every op names its origin
    (template, host line, formula); `parse`, `run`, `validate` and `kho` read the result."""
    from kho_replay.parsers.retargeted import format_retargeted

    from .retarget import retarget_files
    from .retarget.check import check as run_check

    try:
        r = retarget_files(template, plain, iomem=iomem, force=force)
        rep = run_check(r.trace) if check else None
    except KhoReplayError as e:
        raise _fail(e) from None
    for a in r.assumptions:
        err.print(f"kho-replay: assumed: {a}", markup=False)
    if rep is not None:
        err.print(rep.summary(), markup=False)
    _emit(format_retargeted(r.trace), output)


@app.command(name="fleet")
def fleet_cmd(
    hosts: Annotated[list[str], typer.Argument(help="Host logs: files, directories (every file in them) or globs.")],
    template: Annotated[Path, typer.Option("--template", "-t", help="Template boot (memblock=debug) of the "
                                                                    "fleet's kernel build.")],
    strategy: Annotated[list[str] | None, typer.Option("--strategy", "-s", help="Design(s); default "
                                                                                "baseline and merged.")] = None,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", help="Processes (default: every core).")] = None,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="Dask scheduler address.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Predict hosts of another build too.")] = False,
    kexec: Annotated[bool, typer.Option("--kexec", help="Also the KHO boot after each cold boot, preserving "
                                                        "its gigantic pages.")] = False,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="report.csv, .json, .parquet or .html; a csv/json/parquet already there is resumed.")
    ] = None,
) -> None:
    """Predict every host of a fleet from one template: KHO scratch and gigantic pages per design,
    a summary, hosts grouped by outcome.  Exit 0, or 2 on bad input."""
    from .output import write_parquet
    from .retarget.fleet import ROW_FIELDS, fleet, format_rows, read_rows, summary

    files: list[str] = []
    for h in hosts:
        p = Path(h)
        if p.is_dir():
            files += sorted(str(f) for f in p.iterdir() if f.is_file())
        elif p.exists():
            files.append(h)
        else:
            found = sorted(glob.glob(h))
            if not found:
                err.print(f"kho-replay: error: {h}: no such file or directory", markup=False)
                raise typer.Exit(ExitCode.ERROR)
            files += found
    strategies = strategy or ["baseline", "merged"]
    try:
        resumable = output is not None and output.suffix in (".csv", ".json", ".parquet")
        old = read_rows(output) if resumable else []
        done = {r.host for r in old}
        todo = [f for f in files if f not in done]
        bar = None
        if sys.stderr.isatty():
            from rich.progress import Progress

            bar = Progress(console=err.console, transient=True)
            task = bar.add_task("hosts", total=len(todo))
            bar.start()
        try:
            rows = fleet(template, todo, strategies, jobs=jobs, scheduler=scheduler, force=force, kexec=kexec,
                         progress=(lambda n: bar.update(task, completed=n)) if bar else None)
        finally:
            if bar is not None:
                bar.stop()
        rows = old + rows
        if output is not None and output.suffix == ".parquet":
            write_parquet(output, {f: [getattr(r, f) for r in rows] for f in ROW_FIELDS})
        elif output is not None:
            _emit(format_rows(rows, output.suffix.lstrip(".")), output)
    except KhoReplayError as e:
        raise _fail(e) from None
    if len(done):
        err.print(f"kho-replay: {len(done)} host(s) already in {output}: skipped", markup=False)
    _emit("\n".join(summary(rows)) + "\n", None)
