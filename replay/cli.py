# SPDX-License-Identifier: GPL-2.0-only
"""The ``kho-replay`` command: wiring only.

Reports go to stdout (or ``-o FILE``); errors go to stderr as one line,
``kho-replay: error: <what>``.  Exit codes are an interface:

* 0 — done, and (for comparisons) nothing diverged;
* 1 — a comparison diverged;
* 2 — bad input or an error.
"""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .engine import Memblock
from .errors import KhoReplayError
from .ops import Alloc, format_op, parse_script
from .profile import arch_for, profile_for

__all__ = ["ExitCode", "app", "main"]


class ExitCode(enum.IntEnum):
    """Process exit codes."""

    SAME = 0
    DIVERGED = 1
    ERROR = 2


class Format(enum.StrEnum):
    """Output formats."""

    text = "text"
    json = "json"


app = typer.Typer(
    name="kho-replay",
    help="Replay real Linux boots on a bit-exact model of memblock and compare KHO/hugetlb designs.",
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
)

err = Console(stderr=True, highlight=False, soft_wrap=True)

ScriptArg = Annotated[Path, typer.Argument(help="Op script (one memblock call per line, see README).")]
KernelOpt = Annotated[str, typer.Option("--kernel", "-k", help="Kernel release whose memblock to model.")]
ArchOpt = Annotated[str, typer.Option("--arch", help="x86_64, arm64 or harness (tools/testing/memblock).")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="text or json.")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write the report here, not stdout.")]


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


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise KhoReplayError(f"{path}: {e.strerror or e}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise KhoReplayError(f"{path}@0x{e.start:08x}: not a text op script") from None


@app.command()
def run(
    script: ScriptArg,
    kernel: KernelOpt = "7.3",
    arch: ArchOpt = "x86_64",
    fmt: FormatOpt = Format.text,
    output: OutputOpt = None,
) -> None:
    """Execute an op script on the memblock model and print each allocation's
    result and the final memory/reserved tables as memblock_dump_all() does."""
    try:
        ops = parse_script(_read_text(script), str(script))
        mb = Memblock(profile_for(kernel), arch_for(arch))
        res = mb.run(ops)
    except KhoReplayError as e:
        err.print(f"kho-replay: error: {e}")
        raise typer.Exit(ExitCode.ERROR) from None
    if fmt is Format.json:
        doc: dict[str, object] = {"allocs": [None if a is None else hex(a) for a in res.allocs]}
        doc.update(mb.tables_json())
        doc["messages"] = [m.text for m in res.messages]
        if res.panic is not None:
            doc["panic"] = res.panic
        _emit(json.dumps(doc, indent=1) + "\n", output)
        return
    lines = []
    allocs = [op for op in ops if isinstance(op, Alloc)]
    for op, r in zip(allocs, res.results, strict=False):
        got = "failed" if r.addr is None else f"{r.addr:#018x}"
        lines.append(f"{format_op(op)}  -> {got}")
    lines += [m.text for m in res.messages if m.level != "dbg"]
    if res.panic is not None:
        lines.append(f"Kernel panic - not syncing: {res.panic}")
    lines += mb.dump_all()
    _emit("\n".join(lines) + "\n", output)


def main() -> None:
    """Console-script entry point."""
    app()
