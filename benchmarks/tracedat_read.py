# SPDX-License-Identifier: GPL-2.0-only
"""Time reading trace.dat files made by our writer: open, walk records, decode, extract console.

    .venv/bin/python benchmarks/tracedat_read.py [--events N] [--dir DIR]

Writes one file per layout (v7 zstd, v7 none, v6) with N printk:console events of
memblock_dbg-like text over 4 CPUs, then prints wall-clock figures for each phase.
Not a test: the numbers depend on the machine; record them with the commit that changed them.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Callable

from kho_replay.parsers.tracedat import iter_console, open_tracedat
from kho_replay.parsers.tracedat.render import render_report
from kho_replay.parsers.tracedat.writer import ConsoleLine, write_tracedat


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs per phase")
    ap.add_argument("--dir", default=None, help="where to write the files (default: a temp dir)")
    args = ap.parse_args()
    out = args.dir or tempfile.mkdtemp(prefix="tracedat-bench-")
    os.makedirs(out, exist_ok=True)
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
