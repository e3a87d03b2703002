#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Time the console-log commands as the log grows: parse, validate, kho -s merged.

    .venv/bin/python benchmarks/console_scale.py [--lines 20000 60000 200000] [--log PATH]

A synthetic capture of about N lines is made from a real boot by repeating
its per-CPU setup window (allocations, the reservations that record their
addresses and the frees of their tails: ops at fixed addresses inside earlier
allocations, which link() ties to them) and a firmware reservation (in no
allocation) before the rest of the boot.  Each
command runs in a fresh process; wall and CPU time and peak RSS are printed
with the rate in lines per second.  The targets (issue 15): linear growth;
parse and validate at >= 200,000 lines/s on 2,000,000 lines.
Not a test: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from measure import child

DEFAULT_LOG = "/work/shared/traces/x86_64-kho-7.2.13-C-12G-hugepages1G2-kho_scratch3G/console-kernel1.log"
#: The window repeated: from this line to the first free after it (pcpu setup in a 7.2 boot).
WINDOW_START = "setup_percpu:"


def make_log(src: str, lines: int, out: str) -> int:
    """Write a capture of about *lines* lines to *out*; return its line count."""
    with open(src, encoding="utf-8", errors="surrogateescape") as f:
        text = f.read().splitlines(keepends=True)
    start = next(i for i, ln in enumerate(text) if WINDOW_START in ln)
    end = next(i for i in range(start, len(text)) if "memblock_phys_free" in text[i]) + 1
    # plus the first reservation at a fixed address (firmware tables): it lies in no allocation, so it
    # is checked against every live one; the pcpu tail frees fall inside the newest.
    window = [*text[start:end], next(ln for ln in text if "memblock_reserve: [" in ln)]
    reps = max(1, (lines - len(text)) // len(window))
    with open(out, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.writelines(text[:start])
        for _ in range(reps):
            f.writelines(window)
        f.writelines(text[end:])
    return len(text) + (reps - 1) * len(window)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, nargs="+", default=[20_000, 60_000, 200_000])
    ap.add_argument("--log", default=DEFAULT_LOG, help="the real boot to grow")
    ap.add_argument("--dir", default=None)
    ap.add_argument("--commands", nargs="+", default=["parse", "validate", "kho -s merged"])
    args = ap.parse_args()
    out = args.dir or tempfile.mkdtemp(prefix="console-scale-")
    os.makedirs(out, exist_ok=True)
    exe = os.path.join(os.path.dirname(sys.executable), "kho-replay")
    for n in args.lines:
        path = os.path.join(out, f"console-{n}.log")
        count = make_log(args.log, n, path)
        size = os.path.getsize(path)
        print(f"{count} lines, {size / 1e6:.1f} MB ({path})")
        for cmd in args.commands:
            wall, cpu, rss, rc = child([exe, *cmd.split(), path])[1:]
            print(f"  {cmd:<16} wall {wall:7.2f} s  cpu {cpu:7.2f} s  {count / cpu:>10,.0f} lines/cpu-s  "
                  f"peak RSS {rss / 1024:6.0f} MB  exit {rc}", flush=True)


if __name__ == "__main__":
    main()
