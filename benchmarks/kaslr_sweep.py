#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Speed of a KASLR sweep: every slot of an 8 GiB trace x 2 designs, cold boot.

Run by hand:  python benchmarks/kaslr_sweep.py [TRACE] [--jobs N] [-s S]... [--limit N]

Target: every KASLR slot of an 8 GiB trace (about 4,000) x 2 strategies, cold
boot, in <= 60 s on a 2-core machine.  Prints the parse time (done once), the
slot count, the time to build the grid, the sweep's wall time, the cost per
point (wall, and CPU summed over the workers), how many ops come before the
first op a slot changes (the image reservation: the shared prefix the sweep
replays once per strategy and forks per point), the share of the time spent
in work done once (parse, slots, prefix walks), and a from-scratch replay's
cost per point for comparison.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

from kho_replay.parsers import load
from kho_replay.replay.fixtures import trace_files
from kho_replay.replay.whatif import find_image, sweep, trace_slots
from kho_replay.replay.whatif.image import move_image
from kho_replay.replay.whatif.kaslr import all_slots, sample_slots, slot_count
from kho_replay.replay.whatif.sweep import Point, prefix_boot, run_point, summary

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
    args = ap.parse_args()
    strategies = args.strategy or ["baseline", "merged"]

    t0, c0 = time.perf_counter(), _cpu()
    trace = load(trace_files(args.trace)[0])
    t1 = time.perf_counter()
    slots = slot_count(trace_slots(trace))
    t2 = time.perf_counter()
    done = [0]
    res = sweep(trace, strategies=strategies, kaslr=args.limit or "all", jobs=args.jobs,
                progress=lambda n, total: done.__setitem__(0, n))
    t3, c3 = time.perf_counter(), _cpu()
    n = len(res.rows)
    # what the sweep does once per strategy, timed again on its own: the walk of the shared prefix
    areas = trace_slots(trace)
    slot_list = list(sample_slots(areas, args.limit, 0) if args.limit else all_slots(areas))
    t4 = time.perf_counter()
    prefixes = [prefix_boot(trace, s, (move_image(trace, a, check=False) for a in slot_list)) for s in strategies]
    t5 = time.perf_counter()
    sample = slot_list[:: max(1, len(slot_list) // 100)]
    for a in sample:
        for s in strategies:
            run_point(trace, False, "hugetlb", Point(a, (), s))
    scratch = (time.perf_counter() - t5) / (len(sample) * len(strategies))
    once = (t2 - t0) + (t5 - t4)
    print(f"trace: {args.trace.name} ({len(trace.ops)} ops)")
    print(f"cores: {len(os.sched_getaffinity(0))}, jobs: {args.jobs or 'every core'}, "
          f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"KASLR slots: {slots:,}; points: {n:,} ({len(strategies)} strategies)")
    print(f"parse: {t1 - t0:.3f} s; slot enumeration: {t2 - t1:.3f} s (once)")
    print(f"sweep wall: {t3 - t2:.1f} s (target <= 60 s); per point: {1000 * (t3 - t2) / n:.2f} ms wall, "
          f"{1000 * (c3 - c0) / n:.2f} ms CPU")
    first = find_image(trace).indexes[0]
    print(f"shared prefix: ops [0, {prefixes[0].at}) of {len(trace.ops)} walked once per strategy "
          f"(first point-dependent op: {first}, the image reservation); "
          f"finding it over every slot and walking it: {1000 * (t5 - t4):.1f} ms")
    print(f"share of the run spent in work done once (parse, slots, prefix walks): "
          f"{100 * once / (t3 - t0):.2f}% of {t3 - t0:.1f} s")
    print(f"from-scratch replay of one point (no shared prefix, {len(sample)} slots x {len(strategies)}, one process): "
          f"{1000 * scratch:.2f} ms")
    print("\n".join(summary(res)))


if __name__ == "__main__":
    main()
