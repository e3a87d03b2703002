# SPDX-License-Identifier: GPL-2.0-only
"""What-if options and the ``sweep`` command, registered onto :data:`~.cli_app.app`.

``--image-at ADDR`` and ``--set PARAM=VALUE`` join every command that replays
a boot (the default comparison, ``kho``, ``matrix``, ``diff``) without those
commands knowing: while one runs, each cold boot it loads through
:func:`~.inputs.load_source` (not the second kernel of a kexec, which booted
where kexec put it) passes through :func:`~.whatif.whatif` first.  ``sweep`` replays one
trace over a grid of what-ifs x designs.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_type_hints

import typer

from .errors import KhoReplayError
from .inputs import whatifs

if TYPE_CHECKING:
    from . import cli_app as cli

__all__ = ["register", "sweep_cmd"]

ImageAtOpt = Annotated[str | None, typer.Option(
    "--image-at", help="Replay with the kernel image at this physical address (a KASLR slot of the machine).")]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="Boot parameter what-if, PARAM=VALUE (hugepages, hugepagesz, default_hugepagesz, kho, "
                  "kho_scratch, hugetlb_cma, hugetlb_cma_only); repeatable.")]

#: commands that replay a boot and take the what-if options.
REPLAYING = ("compare", "kho", "matrix", "diff")


def _parse_whatif(image_at: str | None, sets: list[str] | None) -> tuple[int | None, tuple[tuple[str, str], ...]]:
    addr = None
    if image_at is not None:
        try:
            addr = int(image_at, 0)
        except ValueError:
            raise KhoReplayError(f"--image-at {image_at}: not an address (0x141000000)") from None
    pairs = []
    for s in sets or ():
        key, eq, val = s.partition("=")
        if not eq or not key or not val:
            raise KhoReplayError(f"--set {s}: expected PARAM=VALUE")
        pairs.append((key, val))
    return addr, tuple(pairs)


def _with_whatif(func: Callable[..., Any]) -> Callable[..., Any]:
    """*func* with ``--image-at`` and ``--set``, applied to the traces it loads."""
    hints = get_type_hints(func, include_extras=True)
    sig = inspect.signature(func)
    params = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in sig.parameters.values()]
    params += [inspect.Parameter("image_at", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ImageAtOpt),
               inspect.Parameter("set_", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=SetOpt)]

    def wrapper(*args: Any, image_at: str | None = None, set_: list[str] | None = None, **kwargs: Any) -> Any:
        try:
            addr, pairs = _parse_whatif(image_at, set_)
        except KhoReplayError as e:
            raise cli._fail(e) from None
        if addr is None and not pairs:
            return func(*args, **kwargs)
        paths = [v for v in kwargs.values() if isinstance(v, Path)]
        paths += [p for v in kwargs.values() if isinstance(v, list) for p in v if isinstance(p, Path)]
        if any(str(p).startswith("scenario:") for p in paths):
            raise cli._fail(KhoReplayError("--image-at/--set: a scenario is synthesized, not a real boot; "
                                           "what-ifs apply to traces"))
        with whatifs(addr, pairs):
            return func(*args, **kwargs)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


def register(app: typer.Typer) -> None:
    """Add the what-if options to the replaying commands of *app* and the ``sweep`` command.

    Called by :mod:`.cli_app` once its commands exist; the sweep command's option types are its own.
    """
    from . import cli_app as module

    globals()["cli"] = module
    for info in app.registered_commands:
        name = info.name or (info.callback.__name__.replace("_", "-") if info.callback else "")
        if name in REPLAYING and info.callback is not None and not getattr(info.callback, "_whatif", False):
            info.callback = _with_whatif(info.callback)
            info.callback._whatif = True  # type: ignore[attr-defined]
    app.command(name="sweep")(sweep_cmd)


# ------------------------------------------------------------------- sweep

def sweep_cmd(
    trace: cli.TraceArg,
    strategy: cli.StrategyOpt = None,
    kaslr: Annotated[str | None, typer.Option(
        "--kaslr", help="all: every KASLR slot; N or N:SEED: a seeded sample of N slots.")] = None,
    image_at: Annotated[list[str] | None, typer.Option(
        "--image-at", help="Explicit image addresses (repeatable) instead of --kaslr.")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="PARAM=V1,V2,.. (repeatable; ';' between per-node hugepages= or kho_scratch= size "
                      "triples).")] = None,
    kexec: cli.KexecOpt = False,
    preserve: cli.PreserveOpt = "hugetlb",
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", help="Processes (default: every core).")] = None,
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", help="Dask distributed scheduler address (tcp://host:8786).")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Run grids over 100,000 points.")] = False,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the table here: .json, .csv, .html or .parquet (needs pyarrow).")] = None,
    quiet: cli.QuietOpt = False,
) -> None:
    """Replay TRACE over a grid of what-ifs (KASLR slots x boot parameters) x designs (default: baseline
    and merged); print a summary per design and the full table (or write it with -o)."""
    from .output import need_pyarrow
    from .whatif.params import parse_set
    from .whatif.report import write_table
    from .whatif.sweep import parse_kaslr, summary, sweep

    try:
        if output is not None and output.suffix not in (".json", ".csv", ".html", ".parquet"):
            raise KhoReplayError(f"{output}: unknown output format (use .json, .csv, .html or .parquet)")
        if output is not None and output.suffix == ".parquet":
            need_pyarrow(output)  # before the sweep runs, not after
        k, seed = parse_kaslr(kaslr) if kaslr is not None else (None, 0)
        if k is not None and image_at:
            raise KhoReplayError("--kaslr and --image-at: give one of them")
        images = None
        if image_at:
            images = []
            for a in image_at:
                try:
                    images.append(int(a, 0))
                except ValueError:
                    raise KhoReplayError(f"--image-at {a}: not an address") from None
        sets: dict[str, list[str]] = {}
        for s in set_ or ():
            key, values = parse_set(s)
            sets.setdefault(key, []).extend(values)
        cold_path, second_path = cli._trace_files(trace) if not str(trace).startswith("scenario:") else (trace, None)
        if not str(trace).startswith("scenario:") and not Path(cold_path).exists():
            raise KhoReplayError(f"{trace}: no such file or directory")
        t = cli._load_trace(cold_path)
        cli._check_trace(t, cold_path)
        # As kho --kexec: a real second kernel gives the preserved set (log) and the kexec segments in scratch.
        t2 = cli._load_trace(second_path) if kexec and second_path is not None else None
        with cli._progress(quiet) as bar:
            task = bar.add_task("sweep", total=None) if bar else None

            def tick(done: int, total: int) -> None:
                if bar is not None:
                    bar.update(task, completed=done, total=total)

            res = sweep(t, strategies=strategy or ["baseline", "merged"], kaslr=k, seed=seed, sets=sets,
                        images=images, kexec=kexec, preserve=preserve, second=t2, jobs=jobs, scheduler=scheduler,
                        progress=tick, yes=yes)
        text = write_table(res, output)
    except KhoReplayError as e:
        raise cli._fail(e) from None
    if quiet:
        return
    lines = summary(res)
    if output is None:
        sys.stdout.write("\n".join(lines) + "\n\n" + text)
    else:
        sys.stdout.write("\n".join(lines) + "\n")
        cli.err.print(f"kho-replay: wrote {len(res.rows):,} rows to {output}", markup=False)
