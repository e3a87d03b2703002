# SPDX-License-Identifier: GPL-2.0-only
"""Print the README's pair table: every ordered pair of boots of one build, retargeted and compared.

    .venv/bin/python benchmarks/retarget_pairs.py [TRACES_DIR]
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

from kho_replay.replay.errors import KhoReplayError
from kho_replay.replay.retarget.pairs import measure_pair

GROUPS = {
    "7.2 KHO (x86_64-kho-7.2.13)": ["x86_64-kho-7.2.13-A-8G-nohuge-memfd64M",
                                    "x86_64-kho-7.2.13-B-8G-hugepages1G2-defaultscale-scratchfail",
                                    "x86_64-kho-7.2.13-C-12G-hugepages1G2-kho_scratch3G",
                                    "x86_64-kho-7.2.13-D-8G-hugepages1G2-kho_scratch512M"],
    "Debian 7.2 (kho forced on)": ["x86_64-debian-7.2.13-4G", "x86_64-debian-7.2.13-4G-hugepagesz1G-hugepages4",
                                   "x86_64-debian-7.2.13-8G-crashkernel256M-cma128M-hugepages1G2",
                                   "x86_64-debian-7.2.13-8G-hugepagesz1G-hugepages4",
                                   "x86_64-debian-7.2.13-numa2-8G-hugepages1G-pernode"],
    "7.3 KHO (x86_64-kho-7.3.4)": ["x86_64-kho-7.3.4-A-8G-nohuge-memfd64M",
                                   "x86_64-kho-7.3.4-B-8G-hugepages1G2-defaultscale",
                                   "x86_64-kho-7.3.4-D-8G-hugepages1G2-kho_scratch512M",
                                   "x86_64-kho-7.3.4-H-8G-hugepages1G4-defaultscale"],
}


def short(name: str) -> str:
    return name.split("-", 3)[-1][:34]


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/traces")
    print("| build | template -> target | KHO on/off (pred/real) | scratch delta, no iomem | with --iomem "
          "| pages exact (no iomem / iomem) | printed facts matched |")
    print("|---|---|---|---|---|---|---|")
    for group, names in GROUPS.items():
        kho = True if group.startswith("Debian") else None
        for t, h in itertools.permutations(names, 2):
            try:
                a = measure_pair(root / t, root / h, iomem=False, kho=kho)
                b = measure_pair(root / t, root / h, iomem=True, kho=kho)
            except KhoReplayError as e:
                print(f"| {group} | {short(t)} -> {short(h)} | error: {e} | | | | |")
                continue
            onoff = f"{'on' if b.kho_pred else 'off'}/{'on' if b.kho_real else 'off'}" + ("" if a.kho_ok and b.kho_ok
                                                                                          else " WRONG")
            print(f"| {group} | {short(t)} -> {short(h)} | {onoff} | {a.scratch_delta >> 20} MiB "
                  f"| {b.scratch_delta >> 20} MiB | {'yes' if a.pages_ok else 'no'} / {'yes' if b.pages_ok else 'no'} "
                  f"| {b.printed_matched}/{b.printed_total} |")


if __name__ == "__main__":
    main()
