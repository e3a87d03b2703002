# SPDX-License-Identifier: GPL-2.0-only
"""What changes when a real boot runs under 7.3's merged design instead of the kernel it ran?

The boot: an 8 GiB x86_64 machine with two 1 GiB pages and kho=on, where 7.2
printed "KHO: Failed to reserve global scratch buffer".  Replayed cold and
as the KHO boot after it, under baseline (the kernel's own code) and merged.
"""

from pathlib import Path

import kho_replay as kr
from kho_replay.replay.report.units import human

TRACE = Path(__file__).resolve().parent.parent / "traces/x86_64-kho-7.2.13-B-8G-hugepages1G2-defaultscale-scratchfail"

t = kr.load(TRACE)
base = kr.replay(t, "baseline", kexec=True)
merged = kr.replay(t, kr.Design.MERGED, kexec=True)
c = kr.compare(base, merged)

for boot, verdict in c.verdicts().items():
    print(f"{boot}: {verdict}")
print()


def value(m: kr.Metric, v: int | str | None) -> str:
    return "-" if v is None else human(v) if m.unit == "bytes" and isinstance(v, int) else str(v)


print(f"{'cold boot metric':24} {'baseline':>22} {'merged':>10}")
for m in c.cold.shown_metrics:
    if not m.informational:
        print(f"{m.name:24} {value(m, m.old):>22} {value(m, m.new):>10}")
print()
for a in merged.cold.scratch.areas:
    print(f"kho_scratch {a.name:7} [{a.base:#018x}-{a.end - 1:#018x}] {a.size >> 20} MiB")
first = c.cold.first
if first is not None:
    print(f"first divergence: {first.kind} {first.caller} ({first.subsystem}) at {first.src}")
