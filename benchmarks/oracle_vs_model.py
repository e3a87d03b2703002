# SPDX-License-Identifier: GPL-2.0-only
"""Throughput of the kernel's own memblock.c (oracle driver) against our model.

Run by hand, not a test::

    .venv/bin/python benchmarks/oracle_vs_model.py            # 1e4, 1e5, 1e6 ops on 7.3
    .venv/bin/python benchmarks/oracle_vs_model.py --sizes 10000 100000 --kernel 7.2

Each size is one stream of random reserve / alloc / free ops (seeded, so both
sides get the same text) on a 16 GiB, 2-node layout with ``allow_resize``
(see :func:`stream`).
Times are CPU times (the driver process's, this process's for the model), so
that a shared machine does not skew them; they include parsing the op script
on each side and, for the kernel, the process start and the JSON output.  The model column is
skipped when ``kho_replay.replay.memblock.engine.replay_json`` cannot be imported, or
for sizes above ``--model-max`` (default 100000; pass 1000000 to wait for it).
The ``run e2e`` column is ``kho-replay run --arch harness`` on the same script
in a fresh process (read, replay, print: the whole command, start-up included),
CPU time from wait4(); the issue-15 target is >= 50,000 ops/s at 1e5 and 1e6.
"""

from __future__ import annotations

import argparse
import importlib
import random
import resource
import sys
import time
from pathlib import Path

from measure import child

from kho_replay.replay.ops import parse_script

# the oracle wrapper lives with the tests, not in the package
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
harness = importlib.import_module("oracle.harness")
WINDOW, comparable, kernel_run = harness.WINDOW, harness.comparable, harness.kernel_run

G = 1 << 30


def stream(n_ops: int, seed: int = 0) -> str:
    """An op script of *n_ops* ops: layout, then 40% reserve, 35% alloc, 25% free.

    Memory is 16 GiB on two nodes; the reserves (and the frees, which undo
    earlier reserves exactly) go to the 32 GiB above it.  They still fill the
    reserved table that every alloc walks, but can never overlap an allocation
    or one of memblock's own arrays, so no free releases an array (a hazard,
    see tests/oracle/driver.c).
    """
    rnd = random.Random(seed)
    base = WINDOW[0]
    lines = [f"add {base:#x} 8G nid=0", f"add {base + 8 * G:#x} 8G nid=1", "allow_resize"]
    live: list[tuple[int, int]] = []
    apis = ["memblock_alloc", "memblock_phys_alloc", "memblock_alloc_raw", "memblock_alloc_try_nid_raw"]
    while len(lines) < n_ops:
        k = rnd.random()
        if k < 0.40:
            b = base + 16 * G + rnd.randrange(32 * G // 4096) * 4096
            sz = rnd.choice([64, 4096, 12288, 100])
            lines.append(f"reserve {b:#x} {sz}")
            live.append((b, sz))
        elif k < 0.75:
            api = rnd.choice(apis)
            nid = f" nid={rnd.choice([-1, 0, 1])}" if api == "memblock_alloc_try_nid_raw" else ""
            size, align = rnd.choice([32, 64, 512, 4096]), rnd.choice([0, 64, 4096])
            lines.append(f"alloc {api} size={size} align={align}{nid}")
        elif live:
            b, sz = live.pop(rnd.randrange(len(live)))
            lines.append(f"free {b:#x} {sz}")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Time both sides on each size and print ops/s and the ratio."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--kernel", default="7.3", choices=["7.2", "7.3"])
    # the model is O(n) per op like the kernel but ~10-100x slower: 1e6 ops take hours
    ap.add_argument("--model-max", type=int, default=100_000, help="skip the model above this many ops")
    ap.add_argument("--run-max", type=int, default=1_000_000, help="skip 'kho-replay run' above this many ops")
    args = ap.parse_args()

    try:
        from kho_replay.replay.memblock.engine import replay_json
    except ImportError:
        replay_json = None
        print("model: kho_replay.replay.memblock.engine.replay_json not importable, timing the kernel only")

    kernel_run("", args.kernel)  # build outside the timings
    print(f"{'ops':>9} {'kernel ops/s':>13} {'model ops/s':>12} {'kernel/model':>12}  reserved  same"
          f"  {'run e2e ops/s':>13}")
    for n in args.sizes:
        text = stream(n)
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        kres = kernel_run(text, args.kernel)
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        tk = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
        if "panic" in kres or "hazard" in kres:
            print(f"{n:>9} kernel stopped: {kres}")
            continue
        line = f"{n:>9} {n / tk:>13,.0f}"
        if replay_json is not None and n <= args.model_max:
            t0 = time.process_time()
            mres = replay_json(parse_script(text), kernel=args.kernel, arch="harness")
            tm = time.process_time() - t0
            same = comparable(mres) == comparable(kres)
            line += f" {n / tm:>12,.0f} {tm / tk:>11.1f}x  {len(kres['reserved']):>8}  {same}"
        else:
            line += f" {'-':>12} {'-':>12}  {len(kres['reserved']):>8}"
        if n <= args.run_max:
            line += f"  {n / run_cpu(text, args.kernel):>13,.0f}"
        print(line, flush=True)


def run_cpu(text: str, kernel: str) -> float:
    """CPU seconds of ``kho-replay run`` on *text* as an op script, in a child (its output to /dev/null)."""
    import os
    import tempfile

    exe = Path(sys.executable).with_name("kho-replay")
    with tempfile.NamedTemporaryFile("w", suffix=".ops", delete=False) as f:
        f.write(text)
    try:
        got = child([str(exe), "run", "-k", kernel, "--arch", "harness", f.name, "-o", os.devnull])
        if got.status != 0:
            raise SystemExit(f"kho-replay run failed on {n_ops(text)} ops")
        return got.cpu
    finally:
        os.unlink(f.name)


def n_ops(text: str) -> int:
    return text.count("\n")


if __name__ == "__main__":
    main()
