# SPDX-License-Identifier: GPL-2.0-only
"""Peak memory of ``kho-replay parse FILE`` on trace.dat files of each event shape, old code beside new.

    .venv/bin/python benchmarks/tracedat_memory.py [--events 500000] [--old /work/main/.venv/bin/kho-replay]

Writes (once, into ``--dir``) the files of ``tracedat_read.py --shapes`` (probe, function, console,
mixed; uncompressed and zstd), with a UNAME option so that the console shapes parse, then runs
``kho-replay parse FILE > out`` in a fresh process per run and prints, per file: its size, the bytes of
ring-buffer pages it holds uncompressed, each side's peak RSS (from wait4(), the child alone; the
most of the runs), the peak minus the floor (the same command on a tiny trace.dat: the interpreter
and the imports), CPU seconds (best of the runs) and whether both sides printed the same bytes.

Not a test: the numbers depend on the machine; record them with the commit that changed them.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPES = ("probe", "function", "console", "mixed")
TINY = os.path.join(HERE, "..", "traces", "tracedat", "synthetic", "v7zstd.dat")

_DATA = """
import sys
from kho_replay.parsers.tracedat import open_tracedat
with open_tracedat(sys.argv[1]) as td:
    buf = td.buffer("")
    print(sum(len(page) for c in buf.cpus for _, page in td.iter_pages(buf, c)))
"""


def generate(shape: str, compression: str, n: int, path: str) -> None:
    """One file of *n* events of *shape* (tracedat_read.make_shape), with a UNAME option."""
    sys.path.insert(0, HERE)
    from tracedat_read import KALLSYMS, make_shape

    from kho_replay.parsers.tracedat.writer import write_tracedat

    lines, events, formats = make_shape(shape, n)
    write_tracedat(path, lines, events=events, formats=formats, kallsyms=KALLSYMS, compression=compression,
                   comms={1: "swapper/0"}, uname="Linux host 7.2.13 #1 SMP x86_64")


def run(argv: list[str], out: str) -> tuple[float, int, str]:
    """CPU seconds, peak RSS (KiB) and the sha256 of stdout of one child; stdout goes to a file so that
    this process stays small (a child's maxrss starts from its parent's)."""
    with open(out, "wb") as f:
        proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
    h = hashlib.sha256()
    with open(out, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss, f"{os.waitstatus_to_exitcode(status)}:{h.hexdigest()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=500_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--new", default=os.path.join(os.path.dirname(sys.executable), "kho-replay"))
    ap.add_argument("--old", default=None, help="another kho-replay to run beside it (e.g. main's)")
    ap.add_argument("--dir", default=None, help="where the files are written (kept; default: a temp dir)")
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--generate", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate:
        shape, compression, n, path = args.generate
        generate(shape, compression, int(n), path)
        return
    out = args.dir or tempfile.mkdtemp(prefix="tracedat-mem-")
    os.makedirs(out, exist_ok=True)
    sides = [("new", args.new)] + ([("old", args.old)] if args.old else [])
    scratch = os.path.join(out, "stdout")
    for _, exe in sides:
        # Each side's sources byte-compiled, as installing them does (PYTHONDONTWRITEBYTECODE leaves them not):
        # compiling on every import would count in its floor and peaks.
        subprocess.run([os.path.join(os.path.dirname(exe), "python"), "-c",
                        "import sys; sys.path.insert(0, sys.argv[1]); from measure import compile_sources; "
                        "compile_sources()", HERE], check=True)
    floor = {}
    for name, exe in sides:
        floor[name] = min(run([exe, "parse", TINY], scratch)[1] for _ in range(args.repeat))
    print("floor (parse of a 200-event trace.dat): " + ", ".join(f"{n} {floor[n] / 1024:.1f} MB" for n, _ in sides))
    head = f"{'shape':<9} {'compr':<5} {'file':>8} {'pages':>8}"
    for name, _ in sides:
        head += f" {name + ' RSS':>9} {'-floor':>7} {name + ' cpu':>8}"
    print(head + "  same output")
    for shape in args.shapes.split(","):
        for compression in ("none", "zstd"):
            path = os.path.join(out, f"{shape}-{compression}-{args.events}-u.dat")
            if not os.path.exists(path):
                # In a child: a big parent would lend its peak RSS to every later child.
                subprocess.run([sys.executable, __file__, "--generate", shape, compression, str(args.events), path],
                               check=True)
            data = int(subprocess.run([sys.executable, "-c", _DATA, path], capture_output=True, text=True,
                                      check=True).stdout)
            row = f"{shape:<9} {compression:<5} {os.path.getsize(path) / 1e6:5.1f} MB {data / 1e6:5.1f} MB"
            digests = set()
            best: dict[str, tuple[float, int]] = {}
            for _ in range(args.repeat):
                for name, exe in sides:
                    cpu, rss, digest = run([exe, "parse", path], scratch)
                    digests.add(digest)
                    old = best.get(name, (float("inf"), 0))
                    best[name] = (min(old[0], cpu), max(old[1], rss))
            for name, _ in sides:
                cpu, rss = best[name]
                row += f" {rss / 1024:6.0f} MB {(rss - floor[name]) / 1024:4.0f} MB {cpu:6.2f} s"
            print(row + ("  yes" if len(digests) == 1 else f"  NO ({len(digests)} outputs)"), flush=True)
    print(f"load average {os.getloadavg()[0]:.2f}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


if __name__ == "__main__":
    main()
