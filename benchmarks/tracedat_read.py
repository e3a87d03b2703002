# SPDX-License-Identifier: GPL-2.0-only
"""Time reading trace.dat files made by our writer: open, walk records, decode, extract console.

    .venv/bin/python benchmarks/tracedat_read.py [--events N] [--dir DIR]
    .venv/bin/python benchmarks/tracedat_read.py --vs-trace-cmd [--events 2000000]
    .venv/bin/python benchmarks/tracedat_read.py --shapes [--events 500000] [--only probe ...]

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
keeps the console records' times, positions and where each message sits in
its page (the figures above are from before 2026-12-07, when it also made the
console text; that text is now made as the console parser reads it, from the
pages read again: no message is held for the whole file).  On a file of 2,000,000
console events only (251 MB), iter_console took 7.2-7.5 s CPU against
trace-cmd's 5.0-5.9 s (1.2-1.5x), 28 MB against 109 MB.
``--shapes`` writes one file per event shape (probe: kprobe/kretprobe and
fprobe entry/exit pairs on memblock_* with a kprobe on memblock_reserve;
function: function-tracer hits; console; mixed), uncompressed and zstd, and
prints read_tracedat()'s extraction walk against ``trace-cmd report`` on
each, then a table; README.md (Benchmarks) holds the latest figures.  For
the shapes with console events the table's ``+text`` column is the walk with
the console text made at once, as the walk made it before.

Probe shape, 2026-12-07 (issue 15, branch probe; load 7, three other helpers
running; best of 3 in one run, old = main 3e4653c): extract CPU 1.73 -> 1.59 s
(none) and 1.81 -> 1.66 s (zstd) against trace-cmd report's 0.98 / 1.01 s;
``kho-replay parse`` 1.85 -> 1.67 s and 2.02 -> 1.85 s; peak RSS unchanged.
What is left is per record and per op: the page walk's step per record, an
op, a Src, its float time and ints per call (the ops' construction is about
0.35 s, their release at exit about 0.2 s), and the interpreter with its
imports (0.12 s, of which replay/ops.py's 33 dataclasses about 30 ms).

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

from measure import child, compile_sources

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


KALLSYMS = (b"ffffffff81000000 T _stext\nffffffff81001000 T setup_arch\nffffffff81002000 T memblock_reserve\n"
            b"ffffffff81002800 T memblock_alloc_try_nid\nffffffff81003000 T kfree\n"
            b"ffffffff81004000 T memblock_phys_alloc_range\nffffffff81005000 T kmalloc\n")
_ALLOC_ARGS = [("size", "x64"), ("align", "x64"), ("min_addr", "x64"), ("max_addr", "x64"), ("nid", "s32")]


def make_shape(shape: str, n: int, seed: int = 3) -> tuple[list[ConsoleLine], list[RawEvent], list[tuple[str, str]]]:
    """*n* events of one shape over 4 CPUs (one task each, so calls pair with returns).

    ``probe``: kprobe/kretprobe pairs on memblock_alloc_try_nid, fprobe entry/exit pairs on
    memblock_phys_alloc_range and kprobes on memblock_reserve; ``function``: function-tracer
    hits, one in eight on a memblock_* function; ``console``: printk:console memblock lines;
    ``mixed``: the four kinds of make_mixed().
    """
    if shape == "mixed":
        lines, events, formats, _ = make_mixed(n)
        return lines, events, formats
    if shape == "console":
        return make_lines(n, seed), [], []
    rng = random.Random(seed)
    formats: list[tuple[str, str]] = []
    events: list[RawEvent] = []
    ts = 1_000_000_000
    if shape == "function":
        formats.append(("ftrace", FUNCTION_FORMAT.format(id=1)))
        fn = struct.Struct("<HBBiQQ").pack
        ips = (0xFFFFFFFF81002010, 0xFFFFFFFF81003010, 0xFFFFFFFF81005020, 0xFFFFFFFF81003100,
               0xFFFFFFFF81005100, 0xFFFFFFFF81003200, 0xFFFFFFFF81005200, 0xFFFFFFFF81003300)
        for i in range(n):
            ts += rng.choice((100, 300, 1_000))
            cpu = i % 4
            events.append(RawEvent(ts, cpu, fn(1, 0, 0, 100 + cpu, ips[i % 8], 0xFFFFFFFF81001100)))
        return [], events, formats
    assert shape == "probe", shape
    formats += [
        ("kprobes", probe_format("memblock_alloc_try_nid", 2001, _ALLOC_ARGS)),
        ("kprobes", probe_format("memblock_alloc_try_nid__return", 2002, [("arg1", "x64")], is_return=True)),
        ("fprobes", probe_format("memblock_phys_alloc_range__entry", 2003, _ALLOC_ARGS)),
        ("fprobes", probe_format("memblock_phys_alloc_range__exit", 2004, [("arg1", "x64")], is_return=True)),
        ("kprobes", probe_format("memblock_reserve", 2005, [("base", "x64"), ("size", "x64")])),
    ]
    call = struct.Struct("<HBBiQQQQQi").pack
    ret = struct.Struct("<HBBiQQQ").pack
    rsv = struct.Struct("<HBBiQQQ").pack
    i = 0
    while len(events) < n:
        cpu = i % 4
        pid = 100 + cpu
        base = 0x100000000 + i * 0x1000
        kind = i % 5
        ts += rng.choice((100, 300, 1_000))
        if kind < 2:
            events.append(RawEvent(ts, cpu, call(2001, 0, 0, pid, 0xFFFFFFFF81002800, 0x1000, 0x1000, 0,
                                                 0xFFFFFFFFFFFFFFFF, -1)))
            events.append(RawEvent(ts + 50, cpu, ret(2002, 0, 0, pid, 0xFFFFFFFF81002800, 0xFFFFFFFF81001100,
                                                     0xFFFF888000000000 + base)))
        elif kind < 4:
            events.append(RawEvent(ts, cpu, call(2003, 0, 0, pid, 0xFFFFFFFF81004000, 0x200000, 0x200000,
                                                 0, 1 << 40, -1)))
            events.append(RawEvent(ts + 50, cpu, ret(2004, 0, 0, pid, 0xFFFFFFFF81004000, 0xFFFFFFFF81001100,
                                                     base)))
        else:
            events.append(RawEvent(ts, cpu, rsv(2005, 0, 0, pid, 0xFFFFFFFF81002000, base, 0x1000)))
        ts += 100
        i += 1
    return [], events[:n], formats


_CHILD = """
import resource, sys, time
from kho_replay.parsers.tracedat import iter_console, open_tracedat
from kho_replay.parsers.tracedat.extract import _Extractor
what, path = sys.argv[1], sys.argv[2]
w0, c0 = time.perf_counter(), time.process_time()
with open_tracedat(path) as td:
    if what == "imports":  # the interpreter and the extraction's imports alone: the floor of every figure
        n = 0
    elif what == "data":  # bytes of ring-buffer pages, uncompressed: the trace data a compressed file holds
        buf = td.buffer("")
        n = sum(len(page) for c in buf.cpus for _, page in td.iter_pages(buf, c))
    elif what == "iter_console":
        n = sum(1 for _ in iter_console(td))
    else:  # the extraction walk of read_tracedat(): console events decoded, probes and functions collected
        ex = _Extractor(td, path, False, None)
        ex.walk(ex._meta())
        if what == "text":  # ... and the console text the parser reads (made as it reads it) made now
            ex.console_text()
        n = len(ex.lines) + len(ex.probe_ops) + len(ex.probe_obs)
# VmHWM is this process's own peak: wait4()'s maxrss cannot go below the parent's RSS (kept across exec).
hwm = next((int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM:")), 0)
print(n, time.perf_counter() - w0, time.process_time() - c0, hwm)
"""


def _measured(argv: list[str], *, keep_output: bool = True) -> tuple[str, float, float, int]:
    """Run *argv*; its stdout, wall time, CPU time and peak RSS (KiB), from wait4() on that one child."""
    # trace-cmd's report goes to /dev/null: read into this process, it would swell every later child's RSS.
    got = child(argv, keep_output=keep_output)
    if got.status != 0:
        raise SystemExit(f"{argv[0]} failed with {got.status}")
    return got.out, got.wall, got.cpu, got.rss


def vs_trace_cmd(n: int, out: str, repeat: int, shape: str = "mixed", compression: str = "none",
                 phases: tuple[str, ...] = ("iter_console", "extract")) -> dict[str, tuple[float, float, int]]:
    """Same run, same file: trace-cmd report against our read + extraction; returns the best figures."""
    import shutil
    import subprocess
    import sys

    tc = shutil.which("trace-cmd")
    name = f"mixed-{n}.dat" if (shape, compression) == ("mixed", "none") else f"{shape}-{compression}-{n}.dat"
    path = os.path.join(out, name)
    if not os.path.exists(path):
        # Generate in a child: a big parent would lend its peak RSS to every process it starts (exec keeps maxrss).
        t0 = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--generate", path, "--events", str(n), "--shape", shape,
                        "--compression", compression], check=True)
        print(f"wrote {path} in {time.perf_counter() - t0:.1f} s")
    size = os.path.getsize(path)
    data = int(_measured([sys.executable, "-c", _CHILD, "data", path])[0].split()[0])
    print(f"{shape}: v7 {compression}, {n} events, {size / 1e6:.1f} MB ({data / 1e6:.1f} MB of ring-buffer pages)")
    best: dict[str, tuple[float, float, int]] = {"file": (size, data, 0)}

    def keep(label: str, wall: float, cpu: float, rss: int) -> None:
        old = best.get(label, (float("inf"), float("inf"), 0))
        best[label] = (min(old[0], wall), min(old[1], cpu), max(old[2], rss))

    for _ in range(repeat):
        if tc:
            _, wall, cpu, rss = _measured([tc, "report", path], keep_output=False)
            keep("trace-cmd report", wall, cpu, rss)
        for what in phases:
            # Whole-process figures on both sides: our interpreter's start-up counts, as trace-cmd's does.
            _, wall, cpu, rss = _measured([sys.executable, "-c", _CHILD, what, path])
            keep(what, wall, cpu, rss)
    for label, (wall, cpu, rss) in best.items():
        if label == "file":
            continue
        print(f"  {label:<18} wall {wall:6.2f} s  cpu {cpu:6.2f} s  peak RSS {rss / 1024:6.0f} MB "
              f"({rss * 1024 / size:.0%} of the file)")
    if "trace-cmd report" in best:
        tw, tcpu, _ = best["trace-cmd report"]
        for what in phases:
            w, c, _ = best[what]
            print(f"  {what} / trace-cmd report: wall {w / tw:.2f}x, cpu {c / tcpu:.2f}x")
    return best


SHAPES = ("probe", "function", "console", "mixed")


def shapes_table(n: int, out: str, repeat: int, shapes: tuple[str, ...] = SHAPES) -> None:
    """Every shape (or *shapes*), uncompressed and zstd: extraction against trace-cmd report, then a table."""
    import sys

    compile_sources()

    rows = []
    for shape in shapes:
        for compression in ("none", "zstd"):
            # "text": the walk and the console text made at once (the console parser makes it as it reads)
            phases = ("extract", "text") if shape in ("console", "mixed") else ("extract",)
            best = vs_trace_cmd(n, out, repeat, shape, compression, phases)
            rows.append((shape, compression, best))
    any_file = os.path.join(out, f"{shapes[0]}-none-{n}.dat")
    floor = min((_measured([sys.executable, "-c", _CHILD, "imports", any_file]) for _ in range(repeat)),
                key=lambda m: m[2])
    floor_hwm = int(floor[0].split()[3])
    print(f"\n{'shape':<9} {'compr':<5} {'file':>8} {'pages':>8} {'trace-cmd cpu':>14} {'extract cpu':>12} "
          f"{'ratio':>6} {'trace-cmd RSS':>14} {'extract RSS':>12} {'+text cpu':>10}")
    for shape, compression, best in rows:
        size, data, _ = best["file"]
        tc, tc_rss = best.get("trace-cmd report", (0.0, 0.0, 0))[1:]
        ex = best["extract"]
        ratio = f"{ex[1] / tc:5.2f}x" if tc else "   -"
        text = f"{best['text'][1]:8.2f} s" if "text" in best else f"{'-':>10}"
        print(f"{shape:<9} {compression:<5} {size / 1e6:5.1f} MB {data / 1e6:5.1f} MB {tc:12.2f} s {ex[1]:10.2f} s "
              f"{ratio:>6} {tc_rss / 1024:11.0f} MB {ex[2] / 1024:9.0f} MB {text}")
    print(f"interpreter start and the extraction's imports alone: cpu {floor[2]:.2f} s, peak RSS "
          f"{floor_hwm / 1024:.0f} MB (VmHWM); no child's peak RSS reads below this process's, "
          f"{floor[3] / 1024:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--vs-trace-cmd", action="store_true", help="the comparison with trace-cmd report (see above)")
    ap.add_argument("--shapes", action="store_true",
                    help="every event shape (probe, function, console, mixed), none and zstd, vs trace-cmd report")
    ap.add_argument("--only", nargs="+", choices=SHAPES, default=SHAPES, metavar="SHAPE",
                    help=f"with --shapes: these shapes alone ({', '.join(SHAPES)})")
    ap.add_argument("--generate", metavar="PATH", help=argparse.SUPPRESS)
    ap.add_argument("--shape", default="mixed", help=argparse.SUPPRESS)
    ap.add_argument("--compression", default="none", help=argparse.SUPPRESS)
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs per phase")
    ap.add_argument("--dir", default=None, help="where to write the files (default: a temp dir)")
    args = ap.parse_args()
    if args.generate:
        lines, events, formats = make_shape(args.shape, args.events)
        write_tracedat(args.generate, lines, events=events, formats=formats, kallsyms=KALLSYMS,
                       compression=args.compression, comms={1: "swapper/0"})
        return
    out = args.dir or tempfile.mkdtemp(prefix="tracedat-bench-")
    os.makedirs(out, exist_ok=True)
    if args.shapes:
        shapes_table(args.events, out, args.repeat, tuple(args.only))
        return
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
