# SPDX-License-Identifier: GPL-2.0-only
"""``record`` then ``load``: every bundled console log gives the same Trace from its trace.dat.

A capture across a kexec is recorded boot by boot: a trace.dat holds one
kernel's ring buffer, and the second kernel's clock starts again at zero,
which one flyrecord stream cannot hold.  Where Debian's trace-cmd is
installed, it must read every file ``record`` writes and print the lines
``kho-replay parse --events`` prints.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kho_replay.parsers import boot_count, load, read_text
from kho_replay.parsers.tracedat import open_tracedat
from kho_replay.parsers.tracedat.record import record_text
from kho_replay.parsers.tracedat.render import render_report
from kho_replay.replay.cli import app
from kho_replay.replay.compare.validate import validate
from kho_replay.replay.ops import Trace

TRACES = Path(__file__).resolve().parents[2] / "traces"
LOGS = sorted({*TRACES.glob("*/console*.log*"), *TRACES.glob("*/*/console*.log*")})
CASES = [(log, b) for log in LOGS for b in ([None] if boot_count(log) == 1 else range(1, boot_count(log) + 1))]
X86 = TRACES / "x86_64-debian-7.2.13-4G" / "console.log"
TRACE_CMD = shutil.which("trace-cmd")
runner = CliRunner()


def _id(case: tuple[Path, int | None]) -> str:
    log, boot = case
    return f"{log.parent.name}/{log.name}" + (f"#boot{boot}" if boot else "")


def _trace_cmd_report(path: Path) -> str:
    run = subprocess.run([TRACE_CMD, "report", str(path)], capture_output=True, text=True, check=False,
                         errors="surrogateescape")
    assert run.returncode == 0, run.stderr
    return run.stdout


def _same(a: Trace, b: Trace) -> None:
    """Equal modulo where things were read (Src and the context's source are positions, not content)."""
    assert a.ops == b.ops
    assert a.observations == b.observations
    assert dataclasses.replace(a.context, source="") == dataclasses.replace(b.context, source="")
    assert [s.reason for s in a.skipped] == [s.reason for s in b.skipped]


def test_every_bundled_log_is_covered() -> None:
    assert len(LOGS) >= 29
    # Each KHO capture holds both kernels of its kexec: both are recorded.
    assert sum(1 for _, b in CASES if b == 2) == len([p for p in LOGS if p.name.startswith("console.log")
                                                      and "kho" in p.parent.name])


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_recorded_boot_loads_as_its_log(case: tuple[Path, int | None], tmp_path: Path) -> None:
    log, boot = case
    out = tmp_path / "boot.dat"
    n = record_text(read_text(log), str(log), out, boot=boot)
    want, got = load(log, boot=boot), load(out)
    _same(want, got)
    assert n > 0 and got.ops
    # Positions are the trace.dat's: record offsets with the event's timestamp.
    read = [op for op in got.ops if op.src is not None and op.src.offset is not None]
    assert read and all(str(op.src).startswith(f"{out}@0x") for op in read)
    assert all(op.src.timestamp == w.src.timestamp for op, w in zip(got.ops, want.ops, strict=True)
               if op.src is not None and op.src.offset is not None)
    if len(want.ops) < 1000:
        # validate() is the slow part for the big KHO boots: sample the small ones.
        a, b = validate(want), validate(got)
        assert a.ok == b.ok
        assert a.summary().replace(str(log), "X") == b.summary().replace(str(out), "X")
    if TRACE_CMD:
        with open_tracedat(out) as td:
            ours = "".join(line + "\n" for line in render_report(td, nsec=False))
        assert _trace_cmd_report(out) == ours


@pytest.mark.parametrize(("version", "compression"), [(7, "zstd"), (7, "none"), (7, "zlib"), (6, "none")])
def test_every_layout_record_writes_reads_back(version: int, compression: str, tmp_path: Path) -> None:
    out = tmp_path / "boot.dat"
    r = runner.invoke(app, ["record", str(X86), "-o", str(out), "--version", str(version),
                            "--compression", compression])
    assert r.exit_code == 0, r.stderr
    assert re.fullmatch(r"kho-replay: wrote \d+ printk:console events to .*\n", r.stderr)
    with open_tracedat(out) as td:
        assert td.file_version == version
        assert td.compression == (compression if version == 7 else "none")
    _same(load(X86), load(out))
    events = runner.invoke(app, ["parse", str(out), "--events"])
    assert events.exit_code == 0
    assert events.stdout.startswith("cpus=1\n")
    assert "console:              Linux version 7.2.13+deb14-amd64" in events.stdout
    if TRACE_CMD and compression != "zlib":  # Debian's trace-cmd is built with zstd only
        assert _trace_cmd_report(out) == events.stdout
        run = subprocess.run([TRACE_CMD, "report", "-t", str(out)], capture_output=True, text=True, check=True)
        assert run.stdout == runner.invoke(app, ["parse", str(out), "--events", "-t"]).stdout


def test_uname_cmdline_and_version_ride_along(tmp_path: Path) -> None:
    out = tmp_path / "boot.dat"
    record_text(read_text(X86), str(X86), out)
    with open_tracedat(out) as td:
        uname = td.option(5)
        assert uname is not None and b" 7.2.13+deb14-amd64 " in uname.data
        ours = td.option(0x4B52)
        assert ours is not None and b'"tool": "kho-replay ' in ours.data
        assert b"memblock=debug" in ours.data
    assert load(out).context.cmdline == load(X86).context.cmdline != ""


def test_debugfs_tables_ride_along(tmp_path: Path) -> None:
    arm = TRACES / "arm64-debian-7.2.13-4G"
    debugfs = tmp_path / "debug"
    (debugfs / "memblock").mkdir(parents=True)
    for name in ("memory", "reserved"):
        (debugfs / "memblock" / name).write_text((arm / f"memblock-{name}.txt").read_text())
    log = tmp_path / "console.log"
    # The log without its own debugfs sections: the tables must come from --debugfs.
    text = re.sub(r"===== BEGIN memblock-(memory|reserved) =====\n.*?===== END =====\n", "",
                  read_text(arm / "console.log.gz"), flags=re.S)
    log.write_text(text)
    out = tmp_path / "boot.dat"
    r = runner.invoke(app, ["record", str(log), "--debugfs", str(debugfs), "-o", str(out)])
    assert r.exit_code == 0, r.stderr
    tables = {o.name: o.regions for o in load(out).observations if type(o).__name__ == "DebugfsTable"}
    assert set(tables) == {"memory", "reserved"}
    assert tables == {o.name: o.regions for o in load(arm / "console.log.gz").observations
                      if type(o).__name__ == "DebugfsTable"}
    assert validate(load(out)).debugfs_ok == 2


def test_a_capture_of_two_boots_needs_boot(tmp_path: Path) -> None:
    log = next(log for log, b in CASES if b == 2)
    r = runner.invoke(app, ["record", str(log), "-o", str(tmp_path / "x.dat")])
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1 and "boots in this log: choose one with --boot N" in r.stderr
    assert not (tmp_path / "x.dat").exists()


# ------------------------------------------------------------------ record --live


def _fake_machine(root: Path, log: Path, *, debugfs: Path | None = None) -> None:
    """A /dev/kmsg (its record format) and a debugfs copy under *root*, from a bundled boot."""
    from kho_replay.parsers.console.prefixes import clean_line

    records = []
    for seq, raw in enumerate(read_text(log).splitlines()):
        ts, text = clean_line(raw)
        if ts is not None and not text.startswith("====="):
            records.append(f"6,{seq},{round(ts * 1e6)},-;{text}\n")
    (root / "dev").mkdir(parents=True)
    (root / "dev" / "kmsg").write_text("".join(records))
    if debugfs is not None:
        mb = root / "sys" / "kernel" / "debug" / "memblock"
        mb.mkdir(parents=True)
        for name in ("memory", "reserved"):
            (mb / name).write_text((debugfs / f"memblock-{name}.txt").read_text())


def test_record_live_reads_kmsg_and_debugfs(tmp_path: Path) -> None:
    arm = TRACES / "arm64-debian-7.2.13-4G"
    _fake_machine(tmp_path / "root", arm / "console.log.gz", debugfs=arm)
    out = tmp_path / "live.dat"
    r = runner.invoke(app, ["record", "--live", "--root", str(tmp_path / "root"), "-o", str(out)])
    assert r.exit_code == 0, r.stderr
    got, want = load(out), load(arm / "console.log.gz")
    assert got.ops == want.ops
    tables = [(o.name, o.regions) for o in got.observations if type(o).__name__ == "DebugfsTable"]
    assert tables == [(o.name, o.regions) for o in want.observations if type(o).__name__ == "DebugfsTable"]
    assert validate(got).ok


def test_record_live_refuses_a_kernel_without_memblock_debug(tmp_path: Path) -> None:
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "kmsg").write_text("6,1,0,-;Linux version 7.2.13 (gcc)\n6,2,5,-;Command line: quiet\n")
    r = runner.invoke(app, ["record", "--live", "--root", str(tmp_path), "-o", str(tmp_path / "x.dat")])
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "no memblock debug lines (boot it with memblock=debug" in r.stderr
    assert not (tmp_path / "x.dat").exists()


def test_record_live_without_permission_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    arm = TRACES / "arm64-debian-7.2.13-4G"
    _fake_machine(tmp_path / "root", arm / "console.log.gz")
    real_open = os.open

    def deny(path: object, *args: object, **kw: object) -> int:
        if str(path).endswith("kmsg"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", deny)
    r = runner.invoke(app, ["record", "--live", "--root", str(tmp_path / "root"), "-o", str(tmp_path / "x.dat")])
    assert r.exit_code == 2
    assert r.stderr == f"kho-replay: error: {tmp_path}/root/dev/kmsg: permission denied (reading the kernel log " \
                       "needs root or kernel.dmesg_restrict=0)\n"


def test_record_needs_a_log_or_live(tmp_path: Path) -> None:
    r = runner.invoke(app, ["record", "-o", str(tmp_path / "x.dat")])
    assert r.exit_code == 2 and "give a console log to record, or --live" in r.stderr
    r = runner.invoke(app, ["record", str(X86), "--live", "-o", str(tmp_path / "x.dat")])
    assert r.exit_code == 2 and "not both" in r.stderr
