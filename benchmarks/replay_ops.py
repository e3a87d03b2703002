#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Replay speed of the memblock model on large synthetic op streams.

Run by hand:  python benchmarks/replay_ops.py [--ops 100000 1000000] [--seed 1] [--repeat 3]

The stream is a boot-like mix on 256 GiB over two nodes: scattered
reservations (4 KiB - 64 KiB at random addresses), allocations of 4 KiB - 4 MiB
through the kernel's allocation APIs (random node; aligned as boot code aligns:
PAGE_SIZE mostly, SMP_CACHE_BYTES, or a power-of-two size aligned to itself),
and frees of earlier blocks (whole or in part), so that the reserved table
grows to hundreds of thousands of regions and fragments.  Prints ops/s and
peak memory for each run, then the best and median per size; the target is
>= 50,000 ops/s at 10^5 and 10^6 ops with memory under 2 GiB.

``--end-to-end`` also writes each stream as an op script and times
``kho-replay run SCRIPT -o /dev/null`` in a fresh process (read, replay,
print, start-up included, our packages byte-compiled first as an install leaves
them; CPU time from wait4()), beside the model alone.
"""

from __future__ import annotations

import argparse
import random
import resource
import time

from measure import child, compile_sources

from kho_replay.replay.memblock.engine import Memblock
from kho_replay.replay.ops import Add, Alloc, AllowResize, Free, Op, Reserve, SetCurrentLimit

GIB = 1 << 30
APIS = ("memblock_alloc_try_nid", "memblock_phys_alloc_try_nid", "memblock_alloc_try_nid_raw",
        "memblock_alloc", "memblock_phys_alloc_range")


def make_stream(n: int, seed: int) -> list[Op]:
    """*n* ops: layout first, then the reserve/alloc/free mix."""
    rng = random.Random(seed)
    ops: list[Op] = [
        Add(0x1000, 0x9E000, nid=0),
        Add(0x100000, 0x7FF00000, nid=0),
        Add(0x100000000, 127 * GIB, nid=0),
        Add(128 * GIB, 128 * GIB, nid=1),
        Reserve(0x1000000, 0x2000000),
        AllowResize(),
        SetCurrentLimit(256 * GIB),
    ]
    live: list[tuple[int, int]] = []
    top = 256 * GIB
    while len(ops) < n:
        r = rng.random()
        if r < 0.30:
            size = rng.randrange(1, 17) << 12
            base = rng.randrange(0x100000, top - size) & ~0xFFF
            ops.append(Reserve(base, size))
            live.append((base, size))
        elif r < 0.70:
            size = 1 << rng.randrange(12, 22)
            a = rng.random()
            if a < 0.2:
                align = size  # page tables, 2 MiB blocks: power-of-two size, self-aligned
            else:
                size += rng.randrange(0, size) & ~0xFFF
                align = 0x1000 if a < 0.9 else 64  # PAGE_SIZE or SMP_CACHE_BYTES
            api = rng.choice(APIS)
            nid = rng.choice((-1, 0, 1)) if "nid" in api else None
            ops.append(Alloc(api, size, align=align, nid=nid,
                             max_addr=0xFFFFFFFFFFFFFFFF if api == "memblock_phys_alloc_range" else None))
        elif live:
            i = rng.randrange(len(live))
            base, size = live[i]
            live[i] = live[-1]
            live.pop()
            if size > 0x2000 and rng.random() < 0.3:
                ops.append(Free(base + 0x1000, size - 0x2000))  # partial free: splits
            else:
                ops.append(Free(base, size))
    return ops


def bench(n: int, seed: int, repeat: int, end_to_end: bool = False) -> None:
    """Replay one stream *repeat* times on fresh models and print the figures.

    The best run is the figure to quote (as ``timeit`` does: on a shared
    machine, noise only ever adds time); the median shows the spread.
    """
    ops = make_stream(n, seed)
    cpus = []
    for _ in range(repeat):
        mb = Memblock.for_kernel("7.3", "x86_64")
        t0, c0 = time.perf_counter(), time.process_time()
        res = mb.run(ops)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        cpus.append(cpu)
        ok = sum(r.addr is not None for r in res.results)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{n:>9} ops  {dt:8.2f} s wall {cpu:8.2f} s cpu  {n / dt:>10,.0f} ops/s ({n / cpu:,.0f}/cpu-s)  "
              f"reserved.cnt {mb.reserved.cnt:>8}  "
              f"peak {mb.reserved.peak_cnt:>8}  doublings {len(mb.doublings):>3}  allocs ok {ok}/{len(res.results)}  "
              f"max RSS {rss:,.0f} MiB", flush=True)
    cpus.sort()
    print(f"{n:>9} ops  best {n / cpus[0]:,.0f} ops/cpu-s, median {n / cpus[len(cpus) // 2]:,.0f} "
          f"over {repeat} runs (target >= 50,000)", flush=True)
    if end_to_end:
        e2e = sorted(run_cpu(ops) for _ in range(repeat))
        print(f"{n:>9} ops  kho-replay run end to end: best {n / e2e[0]:,.0f} ops/cpu-s ({e2e[0]:.2f} s), "
              f"median {n / e2e[len(e2e) // 2]:,.0f} (target >= 50,000)", flush=True)


def run_cpu(ops: list[Op]) -> float:
    """CPU seconds of ``kho-replay run`` on *ops* written as an op script, in a child process."""
    import os
    import sys
    import tempfile

    from kho_replay.replay.ops import format_script

    exe = os.path.join(os.path.dirname(sys.executable), "kho-replay")
    compile_sources()  # as an install leaves them: a run does not compile our source
    with tempfile.NamedTemporaryFile("w", suffix=".ops", delete=False) as f:
        f.write(format_script(ops))
    try:
        got = child([exe, "run", f.name, "-o", os.devnull])
        if got.status != 0:
            raise SystemExit(f"kho-replay run failed on {f.name}")
        return got.cpu
    finally:
        os.unlink(f.name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3, help="runs per size (best and median are printed)")
    ap.add_argument("--end-to-end", action="store_true", help="also time 'kho-replay run' on the script")
    args = ap.parse_args()
    for n in args.ops:
        bench(n, args.seed, args.repeat, args.end_to_end)


if __name__ == "__main__":
    main()
