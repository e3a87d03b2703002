#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Speed of a KASLR sweep: every slot of an 8 GiB trace x 2 designs, cold boot (or with --kexec, KHO boot too).

Run by hand:  python benchmarks/kaslr_sweep.py [TRACE] [--jobs N] [-s S]... [--limit N]
                  [--set PARAM=V1,V2,..]... [--kaslr all|N|none] [--kexec] [--preserve SPEC]

Target: every KASLR slot of an 8 GiB trace (about 4,000) x 2 strategies, cold
boot, in <= 60 s on a 2-core machine.  Prints the parse time (done once), the
slot count, the sweep's wall time, the cost per point (wall, and CPU summed
over the workers), how many ops come before the first op a point changes (for
a KASLR slot the image reservation: the shared prefix the sweep replays once
per strategy and forks per point; with --kexec also the KHO boot's, which stops
at its first decision point, ``kho_populate()``), the share of the time spent in
work done once (parse, slots, prefix walks), and a from-scratch replay's cost
per point (the sweep before the shared prefix) for comparison, measured in the
same run.  With --set, the grid is the parameter values (x the slots, with
--kaslr).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

from kho_replay.parsers import load
from kho_replay.replay.fixtures import trace_files
from kho_replay.replay.kho.boot import first_difference
from kho_replay.replay.whatif import sweep
from kho_replay.replay.whatif.image import move_image
from kho_replay.replay.whatif.kaslr import slot_count, trace_slots
from kho_replay.replay.whatif.params import apply_sets, parse_set
from kho_replay.replay.whatif.sweep import points, prefix_boot, run_point, summary

DEFAULT = Path(__file__).resolve().parents[1] / "traces" / "x86_64-kho-7.2.13-A-8G-nohuge-memfd64M"


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace", nargs="?", type=Path, default=DEFAULT)
    ap.add_argument("--jobs", type=int, default=None, help="processes (default: every core)")
    ap.add_argument("-s", "--strategy", action="append", default=None)
    ap.add_argument("--limit", type=int, default=None, help="only this many slots (a seeded sample)")
    ap.add_argument("--kaslr", default=None, help="all, N (a seeded sample) or none (default: all without --set)")
    ap.add_argument("--set", action="append", default=[], dest="sets", help="PARAM=V1,V2,.. (as sweep --set)")
    ap.add_argument("--kexec", action="store_true", help="each point's KHO boot too (sweep --kexec)")
    ap.add_argument("--preserve", default="hugetlb", help="what kernel 1 preserves (with --kexec)")
    ap.add_argument("--repeat", type=int, default=1, help="run the sweep and the from-scratch points N times: "
                    "best CPU of the runs (the machine is shared)")
    args = ap.parse_args()
    strategies = args.strategy or ["baseline", "merged"]
    sets: dict[str, list[str]] = {}
    for text in args.sets:
        key, values = parse_set(text)
        sets.setdefault(key, []).extend(values)
    kaslr: str | int | None = args.kaslr or ("none" if sets else "all")
    if args.limit:
        kaslr = args.limit
    kaslr = None if kaslr == "none" else (int(kaslr) if str(kaslr).isdigit() else kaslr)

    t0 = time.perf_counter()
    files = trace_files(args.trace)
    trace = load(files[0])
    second = load(files[1]) if args.kexec and args.preserve == "log" and len(files) > 1 else None
    t1 = time.perf_counter()
    slots = slot_count(trace_slots(trace)) if kaslr is not None else 0
    setup = time.perf_counter() - t0  # parse and slots: one process, wall = CPU
    runs = []
    for _ in range(max(1, args.repeat)):
        t2, c2 = time.perf_counter(), _cpu()
        res = sweep(trace, strategies=strategies, kaslr=kaslr, sets=sets, jobs=args.jobs, kexec=args.kexec,
                    preserve=args.preserve, second=second, progress=lambda n, total: None)
        t3, c3 = time.perf_counter(), _cpu()
        runs.append((c3 - c2, t3 - t2))
    cpu, wall = min(runs)
    n = len(res.rows) // (2 if args.kexec else 1)
    # what the sweep does once per strategy, timed again on its own: finding and walking the shared prefix
    grid = points(trace, strategies=strategies, kaslr=kaslr, sets=sets)
    mine = [p for p in grid if p.strategy == strategies[0]]

    def what_ifs():  # type: ignore[no-untyped-def]
        for p in mine:
            t = apply_sets(trace, p.sets)
            yield t if p.image_at is None else move_image(t, p.image_at, check=False)

    first = min(first_difference(trace.ops, t.ops) for t in what_ifs())
    # CPU seconds of this process from here on: the machine is shared
    t4 = time.process_time()
    prefixes = [prefix_boot(trace, s, what_ifs()) for s in strategies]
    t5 = time.process_time()
    kho = [prefix_boot(trace, s, what_ifs(), kexec=True) for s in strategies] if args.kexec else []
    t6 = time.process_time()
    sample = grid[:: max(1, len(grid) // (100 * len(strategies)))]
    scratch = 1e9
    for _ in range(max(1, args.repeat)):
        t7 = time.process_time()
        for p in sample:
            run_point(trace, args.kexec, args.preserve, p, second)
        scratch = min(scratch, (time.process_time() - t7) / len(sample))
    # the KHO prefix's own walk finds the cold prefix again: the sweep does that once, for both boots
    once = setup + (t6 - t5 if args.kexec else t5 - t4)
    boots = "cold boot and KHO boot" if args.kexec else "cold boot"
    print(f"trace: {args.trace.name} ({len(trace.ops)} ops); {boots}"
          + (f", --preserve {args.preserve}" if args.kexec else ""))
    print(f"cores: {len(os.sched_getaffinity(0))}, jobs: {args.jobs or 'every core'}, "
          f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    swept = ", ".join([f"KASLR slots ({slots:,} in all)"] * (kaslr is not None)
                      + [f"{k}= ({len(v)} values)" for k, v in sets.items()])
    print(f"grid: {swept}; points: {n:,} ({len(strategies)} strategies), rows: {len(res.rows):,}")
    print(f"parse: {t1 - t0:.3f} s; slot enumeration: {t0 + setup - t1:.3f} s (once)")
    print(f"sweep wall: {wall:.1f} s; per point: {1000 * wall / n:.2f} ms wall, "
          f"{1000 * cpu / n:.2f} ms CPU (every process; best of {len(runs)})")
    differ = f"op {first}" if first < len(trace.ops) else "no op: only the command line"
    print(f"shared prefix: cold boot ops [0, {prefixes[0].at}) of {len(trace.ops)} walked once per strategy "
          f"(what-ifs change {differ}); finding it over every point and walking it: {1000 * (t5 - t4):.1f} ms CPU")
    if args.kexec:
        print(f"  KHO boot ops [0, {kho[0].at}) walked once per strategy (its first decision point: op "
              f"{kho[0].first_hook()}, kho_populate()); both prefixes: {1000 * (t6 - t5):.1f} ms CPU")
    print(f"share of the CPU spent in work done once (parse, slots, prefix walks): "
          f"{100 * once / (setup + cpu):.2f}% of {setup + cpu:.1f} s")
    print(f"from-scratch replay of one point (the sweep without a shared prefix; {len(sample)} points, one "
          f"process): {1000 * scratch:.2f} ms CPU")
    print("\n".join(summary(res)))


if __name__ == "__main__":
    main()
