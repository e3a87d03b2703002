#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""What a sweep's fork costs the walk after it: the rest of a cold boot on a fresh model and on a copy.

Run by hand:  python benchmarks/fork_copy.py [TRACE] [--points N] [--at OP]

For N KASLR slots of TRACE (default: the 7.3.4 B boot), a cold boot under
``merged`` walks to op OP (default 4, where a slot's image reservation is) and
the rest of the walk is timed (CPU, best of 5 per point, the variants
interleaved) on: the model as it is; ``Memblock.copy()`` of it (what
``Boot.fork()`` continues on, made attribute by attribute:
``regions.attribute_copy()``); and that copy with the model and its three
region tables copied again by ``copy.copy()``, as they were before.
``copy.copy()`` fills a new object's ``__dict__`` at once, which leaves a
CPython 3.11 object without its inline attribute values; the last variant
shows what that costs.  Anchor: the walk on the model as it is, same run.
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from collections.abc import Callable
from pathlib import Path

from kho_replay.parsers import load
from kho_replay.replay.fixtures import trace_files
from kho_replay.replay.kho.boot import Boot, new_boot
from kho_replay.replay.strategies import get
from kho_replay.replay.whatif import move_image, trace_slots
from kho_replay.replay.whatif.kaslr import sample_slots

DEFAULT = Path(__file__).resolve().parents[1] / "traces" / "x86_64-kho-7.3.4-B-8G-hugepages1G2-defaultscale"


def _copy(b: Boot) -> None:
    b.mb = b.mb.copy()


def _copy_whole_dicts(b: Boot) -> None:
    # Memblock.copy() before attribute_copy(): the model and its tables copied by copy.copy()
    mb = copy.copy(b.mb.copy())
    for name in ("memory", "reserved", "physmem"):
        setattr(mb, name, copy.copy(getattr(mb, name)))
    b.mb = mb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace", nargs="?", type=Path, default=DEFAULT)
    ap.add_argument("--points", type=int, default=60)
    ap.add_argument("--at", type=int, default=4, help="op the walk is copied at")
    args = ap.parse_args()
    trace = load(trace_files(args.trace)[0])
    traces = [move_image(trace, a, check=False) for a in sample_slots(trace_slots(trace), args.points, 0)]
    s = get("merged")
    variants: dict[str, Callable[[Boot], None]] = {
        "the model as it is": lambda b: None,
        "Memblock.copy()": _copy,
        "Memblock.copy() made again by copy.copy()": _copy_whole_dicts,
    }
    total = dict.fromkeys(variants, 0.0)
    for t in traces:
        for name, prepare in variants.items():
            best = float("inf")
            for _ in range(5):
                b = new_boot(t, s, kernel=None, arch=None, kexec=False)
                b.begin()
                b.walk(args.at)
                prepare(b)
                c = time.process_time()
                b.walk()
                b.finish()
                best = min(best, time.process_time() - c)
            total[name] += best
    print(f"trace: {args.trace.name}; {len(traces)} slots, walk copied at op {args.at} of {len(trace.ops)}; "
          f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    anchor = total["the model as it is"]
    for name, v in total.items():
        print(f"rest of the walk on {name}: {1000 * v / len(traces):.3f} ms CPU ({100 * (v / anchor - 1):+.1f}%)")


if __name__ == "__main__":
    main()
