# SPDX-License-Identifier: GPL-2.0-only
"""Fleet throughput: N synthetic hosts retargeted from one template and replayed under two designs.

    .venv/bin/python benchmarks/fleet_throughput.py [N] [TEMPLATE_DIR]

Runs the same fleet on 1 process, on 2 processes and on a Dask LocalCluster
(2 worker processes), checks the rows are identical, and prints hosts/s.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from kho_replay.parsers import read_text
from kho_replay.replay.retarget import _cold_log
from kho_replay.replay.retarget.fleet import fleet, summary
from kho_replay.replay.retarget.synth import write_fleet


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    template = Path(sys.argv[2] if len(sys.argv) > 2 else "traces/x86_64-kho-7.2.13-A-8G-nohuge-memfd64M")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        hosts = write_fleet(read_text(_cold_log(template)), tmp, n, seed=16)
        print(f"generated {n} host logs in {time.perf_counter() - t0:.1f} s")
        runs = {}
        for label, kw in (("jobs=1", {"jobs": 1}), ("jobs=2", {"jobs": 2})):
            t0 = time.perf_counter()
            runs[label] = fleet(template, hosts, ["baseline", "merged"], **kw)
            dt = time.perf_counter() - t0
            print(f"{label:14} {dt:7.1f} s  {n / dt:6.1f} hosts/s")
        from distributed import LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            t0 = time.perf_counter()
            runs["LocalCluster"] = fleet(template, hosts, ["baseline", "merged"], scheduler=cluster.scheduler_address)
            dt = time.perf_counter() - t0
            print(f"{'LocalCluster':14} {dt:7.1f} s  {n / dt:6.1f} hosts/s (2 workers)")
        first = runs["jobs=1"]
        print("identical rows:", all(r == first for r in runs.values()))
        print("\n".join(summary(first)[:2]))


if __name__ == "__main__":
    main()
