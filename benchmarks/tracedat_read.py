# SPDX-License-Identifier: GPL-2.0-only
"""Time reading trace.dat files made by our writer: open, walk records, decode, extract console.

    .venv/bin/python benchmarks/tracedat_read.py [--events N] [--dir DIR]
    .venv/bin/python benchmarks/tracedat_read.py --vs-trace-cmd [--events 2000000]

Writes one file per layout (v7 zstd, v7 none, v6) with N printk:console events of
memblock_dbg-like text over 4 CPUs, then prints wall-clock figures for each phase.

``--vs-trace-cmd`` writes one v7 uncompressed file of N mixed events (half
printk:console memblock lines, a quarter function-tracer hits, a quarter
kprobes, about 146 MB for 2,000,000) and times, in the same run, ``trace-cmd
report > /dev/null`` against our read + extraction of its printk:console
events, wall and CPU time, each side's peak RSS in a fresh process.

Figures (2026-11-25, shared 2-vCPU machine, Python 3.11, trace-cmd 3.1.6; best of 3):

    v7 none, 2000000 events, 162.2 MB (1,000,000 printk:console)
      trace-cmd report   wall   4.74 s  cpu   4.56 s  peak RSS    138 MB (89% of the file)
      iter_console       wall   3.49 s  cpu   3.15 s  peak RSS     27 MB (17% of the file)
      extract            wall  14.26 s  cpu  13.52 s  peak RSS    306 MB (198% of the file)
      iter_console / trace-cmd report: wall 0.74x, cpu 0.69x
      extract / trace-cmd report: wall 3.01x, cpu 2.96x

``iter_console`` is reading the file and extracting its printk:console events.
``extract`` is read_tracedat()'s whole walk before the console parser: it also
turns the 500,000 kprobes into ops and looks up 500,000 function hits, and
keeps the rebuilt console text for the parser.  On a file of 2,000,000
console events only (251 MB), iter_console took 7.2-7.5 s CPU against
trace-cmd's 5.0-5.9 s (1.2-1.5x), 28 MB against 109 MB.
Not a test: the numbers depend on the machine; record them with the commit that changed them.
"""

from __future__ import annotations

import argparse
import os
import random
import struct
import tempfile
import time
from collections.abc import Callable

from kho_replay.parsers.tracedat import iter_console, open_tracedat
from kho_replay.parsers.tracedat.render import render_report
from kho_replay.parsers.tracedat.writer import (
    FUNCTION_FORMAT,
    ConsoleLine,
    RawEvent,
    probe_format,
    write_tracedat,
)


def make_lines(n: int, seed: int = 1) -> list[ConsoleLine]:
    """n console lines with kernel-like gaps (mostly microseconds, sometimes seconds)."""
    rng = random.Random(seed)
    ts = 1_000_000_000
    lines = []
    for i in range(n):
        ts += rng.choice((200, 1_000, 5_000, 50_000, 2_000_000_000))
        base = 0x1000000 + i * 0x1000
        msg = rng.choice((
            f"memblock_reserve: [{base:#018x}-{base + 0xfff:#018x}] setup_arch+0x1c2/0xd80",
            f"memblock_alloc_try_nid: {i % 8192 + 1} bytes align=0x40 nid=-1 from=0x0000000000000000 "
            f"max_addr=0x0000000000000000 alloc_node_data+0x1f/0x60",
            f"memblock_phys_free: [{base:#018x}-{base + 0x1fff:#018x}] free_initrd_mem+0x2a/0x60",
        ))
        lines.append(ConsoleLine(ts, i % 4, 1 + i % 3, msg))
    return lines


def timed(label: str, fn: Callable[[], int], repeat: int) -> None:
    """Best of *repeat* runs, wall and CPU time: on a shared machine CPU time is the steadier one."""
    wall = cpu = float("inf")
    count = 0
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        count = fn()
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    rate = f"{count / cpu / 1e3:7.0f}k/s" if cpu > 0 and count > 1 else " " * 9
    print(f"  {label:<34} wall {wall:7.3f} s  cpu {cpu:7.3f} s  {rate}  ({count} items)")


def make_mixed(n: int, seed: int = 2) -> tuple[list[ConsoleLine], list[RawEvent], list[tuple[str, str]], bytes]:
    """n events: half console memblock lines, a quarter function hits, a quarter kprobes, over 4 CPUs."""
    rng = random.Random(seed)
    fn_id, kp_id = 1, 2000
    formats = [("ftrace", FUNCTION_FORMAT.format(id=fn_id)),
               ("kprobes", probe_format("memblock_reserve", kp_id, [("base", "x64"), ("size", "x64")]))]
    kallsyms = (b"ffffffff81000000 T _stext\nffffffff81001000 T setup_arch\n"
                b"ffffffff81002000 T memblock_reserve\nffffffff81003000 T kfree\n")
    fn = struct.Struct("<HBBiQQ").pack
    kp = struct.Struct("<HBBiQQQ").pack
    lines: list[ConsoleLine] = []
    events: list[RawEvent] = []
    ts = 1_000_000_000
    for i in range(n):
        ts += rng.choice((100, 300, 1_000, 5_000))
        cpu = i % 4
        kind = i % 4
        base = 0x1000000 + i * 0x1000
        if kind < 2:
            msg = (f"memblock_reserve: [{base:#018x}-{base + 0xfff:#018x}] setup_arch+0x1c2/0xd80" if kind == 0 else
                   f"memblock_alloc_try_nid: {i % 8192 + 1} bytes align=0x40 nid=-1 from=0x0000000000000000 "
                   f"max_addr=0x0000000000000000 alloc_node_data+0x1f/0x60")
            lines.append(ConsoleLine(ts, cpu, 1, msg))
        elif kind == 2:
            events.append(RawEvent(ts, cpu, fn(fn_id, 0, 0, 1, 0xFFFFFFFF81003010, 0xFFFFFFFF81001100)))
        else:
            events.append(RawEvent(ts, cpu, kp(kp_id, 0, 0, 1, 0xFFFFFFFF81002000, base, 0x1000)))
    return lines, events, formats, kallsyms


_CHILD = """
import resource, sys, time
from kho_replay.parsers.tracedat import iter_console, open_tracedat
from kho_replay.parsers.tracedat.extract import _Extractor
what, path = sys.argv[1], sys.argv[2]
w0, c0 = time.perf_counter(), time.process_time()
with open_tracedat(path) as td:
    if what == "iter_console":
        n = sum(1 for _ in iter_console(td))
    else:  # the extraction walk of read_tracedat(): console text rebuilt, probes and functions collected
        ex = _Extractor(td, path, False, None)
        ex.walk(ex._meta())
        n = len(ex.offs)
print(n, time.perf_counter() - w0, time.process_time() - c0)
"""


def _measured(argv: list[str], *, keep_output: bool = True) -> tuple[str, float, float, int]:
    """Run *argv*; its stdout, wall time, CPU time and peak RSS (KiB), from wait4() on that one child."""
    import subprocess

    w0 = time.perf_counter()
    # trace-cmd's report goes to /dev/null: read into this process, it would swell every later child's RSS.
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE if keep_output else subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - w0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed with {proc.returncode}")
    return out, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def vs_trace_cmd(n: int, out: str, repeat: int) -> None:
    """Same run, same file: trace-cmd report against our read + console extraction."""
    import shutil
    import subprocess
    import sys

    tc = shutil.which("trace-cmd")
    path = os.path.join(out, f"mixed-{n}.dat")
    if not os.path.exists(path):
        # Generate in a child: a big parent would lend its peak RSS to every process it starts (exec keeps maxrss).
        t0 = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--generate", path, "--events", str(n)], check=True)
        print(f"wrote {path} in {time.perf_counter() - t0:.1f} s")
    size = os.path.getsize(path)
    print(f"v7 none, {n} events, {size / 1e6:.1f} MB")
    best: dict[str, tuple[float, float, int]] = {}

    def keep(label: str, wall: float, cpu: float, rss: int) -> None:
        old = best.get(label, (float("inf"), float("inf"), 0))
        best[label] = (min(old[0], wall), min(old[1], cpu), max(old[2], rss))

    for _ in range(repeat):
        if tc:
            _, wall, cpu, rss = _measured([tc, "report", path], keep_output=False)
            keep("trace-cmd report", wall, cpu, rss)
        for what in ("iter_console", "extract"):
            # Whole-process figures on both sides: our interpreter's start-up counts, as trace-cmd's does.
            text, wall, cpu, rss = _measured([sys.executable, "-c", _CHILD, what, path])
            count = text.split()[0]
            keep(what, wall, cpu, rss)
            print(f"  ({what}: {count} console lines)")
    for label, (wall, cpu, rss) in best.items():
        print(f"  {label:<18} wall {wall:6.2f} s  cpu {cpu:6.2f} s  peak RSS {rss / 1024:6.0f} MB "
              f"({rss * 1024 / size:.0%} of the file)")
    if "trace-cmd report" in best:
        tw, tcpu, _ = best["trace-cmd report"]
        for what in ("iter_console", "extract"):
            w, c, _ = best[what]
            print(f"  {what} / trace-cmd report: wall {w / tw:.2f}x, cpu {c / tcpu:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--vs-trace-cmd", action="store_true", help="the comparison with trace-cmd report (see above)")
    ap.add_argument("--generate", metavar="PATH", help=argparse.SUPPRESS)
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs per phase")
    ap.add_argument("--dir", default=None, help="where to write the files (default: a temp dir)")
    args = ap.parse_args()
    if args.generate:
        lines, events, formats, kallsyms = make_mixed(args.events)
        write_tracedat(args.generate, lines, events=events, formats=formats, kallsyms=kallsyms,
                       compression="none", comms={1: "swapper/0"})
        return
    out = args.dir or tempfile.mkdtemp(prefix="tracedat-bench-")
    os.makedirs(out, exist_ok=True)
    if args.vs_trace_cmd:
        vs_trace_cmd(args.events, out, args.repeat)
        return
    t0 = time.perf_counter()
    lines = make_lines(args.events)
    print(f"generated {len(lines)} lines in {time.perf_counter() - t0:.2f} s")
    for version, compression in ((7, "zstd"), (7, "none"), (6, "none")):
        path = os.path.join(out, f"bench-v{version}-{compression}.dat")
        t0 = time.perf_counter()
        write_tracedat(path, lines, version=version, compression=compression, comms={1: "swapper/0"})
        size = os.path.getsize(path)
        print(f"v{version} {compression}: {size / 1e6:.1f} MB, written in {time.perf_counter() - t0:.2f} s")

        def opening(path: str = path) -> int:
            with open_tracedat(path):
                return 1

        def records(path: str = path) -> int:
            with open_tracedat(path) as td:
                return sum(1 for _ in td.iter_records())

        def events(path: str = path) -> int:
            with open_tracedat(path) as td:
                return sum(1 for _ in td.iter_events())

        def console_only(path: str = path) -> int:
            with open_tracedat(path) as td:
                return sum(1 for _ in td.iter_events(only=[("printk", "console")]))

        def console(path: str = path) -> int:
            with open_tracedat(path) as td:
                return sum(1 for _ in iter_console(td))

        def report(path: str = path) -> int:
            with open_tracedat(path) as td:
                return sum(1 for _ in render_report(td)) - 1

        timed("open (header, options, index)", opening, args.repeat)
        timed("walk + merge records", records, args.repeat)
        timed("decode all events", events, args.repeat)
        timed("iter_events(only=printk:console)", console_only, args.repeat)
        timed("iter_console (fast path)", console, args.repeat)
        timed("render report -t lines", report, args.repeat)
    print(f"files left in {out}")


if __name__ == "__main__":
    main()
